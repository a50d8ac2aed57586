# nbgrader configuration for the quantlab course (nbgrader 0.9.6, Rust kernel `rust`).
#
# Copy it to the root of an nbgrader course folder (beside source/, release/, submitted/)
# to release, collect and distribute the lesson with nbgrader and its exchange. nbgrader's
# `generate_assignment` then makes the same learners' notebook as `quantlab-grade release`
# (same markers, same stub). Do NOT trust `nbgrader autograde` with this lesson: under the
# evcxr kernel it gives full marks to unanswered, panicking and looping answers (measured in
# course/README.md, "nbgrader"). Grade nbgrader's submitted/ folder with quantlab-grade:
#
#   quantlab-grade grade submitted/ --source source/quantization/quantization.ipynb \
#       --feedback feedback/ --csv grades.csv
c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "quantlab"

# The lesson's markers are Rust comments: `// BEGIN SOLUTION`, `// BEGIN HIDDEN TESTS`.
# nbgrader matches the delimiter anywhere in a line, so the defaults' words suffice.
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"
# nbgrader knows no stub for Rust; this is the one quantlab-grade's release writes.
c.ClearSolutions.code_stub = {"rust": 'todo!("your code here")'}

# Run with the lesson's kernel (binder/setup.sh registers it as `rust`).
c.ExecutePreprocessor.kernel_name = "rust"
# The first cell builds the lesson's crate (`:dep`): minutes when the build dir is cold.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
