"""nbgrader 0.9.6 and quantlab-grade on the same submissions of course/quantization.ipynb.

Rerunnable measurement behind course/README.md's "nbgrader" section (not part of CI: it
needs nbgrader, the `rust` kernel and about ten minutes). Builds an nbgrader course folder
with course/nbgrader_config.py, releases the lesson with `nbgrader generate_assignment`,
hands in four submissions (`good`: the solutions; `faulty`: one answer left unanswered, so
it panics at `todo!()`, one that loops, and one left empty with its expected line printed by
a cell the learner added; `faulty_noloop`: the same without the loop; `compile_error`: the solutions but one answer
that does not compile), grades them with
`nbgrader autograde` (one learner at a time) and with quantlab-grade
reading nbgrader's submitted/ folder as it is, and prints each question's points by both.

    /path/to/venv-with-nbgrader/bin/python tests/nbgrader/compare.py \
        [--grader target/debug/quantlab-grade] [--keep DIR]

Run it with `source binder/env.sh` done, so that Jupyter finds the `rust` kernel.
"""

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LESSON = ROOT / "course" / "quantization.ipynb"
ASSIGNMENT = "quantization"
STUDENTS = ["good", "faulty", "faulty_noloop", "compile_error"]


def source_text(cell):
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solution(text):
    """The instructor's answer: the solution region's lines kept, the markers dropped."""
    return "".join(l for l in text.splitlines(True) if "BEGIN SOLUTION" not in l and "END SOLUTION" not in l)


def run(cmd, cwd, log, check=True):
    t = time.monotonic()
    # nbgrader runs `alembic` from PATH: its own venv's bin goes first.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    log.write(f"$ {' '.join(map(str, cmd))}\n{p.stdout}{p.stderr}\n")
    if p.returncode != 0 and not check:
        return None
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return time.monotonic() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--grader", default=str(ROOT / "target" / "debug" / "quantlab-grade"))
    ap.add_argument("--keep", help="build the course folder here and keep it")
    args = ap.parse_args()
    nbgrader = Path(sys.executable).parent / "nbgrader"
    course = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nbgrader-course-"))
    if course.exists():
        shutil.rmtree(course)
    course.mkdir(parents=True)
    log = open(course / "commands.log", "w")
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course / "nbgrader_config.py")

    # The source, with the `:dep` paths (relative to course/) made absolute: nbgrader runs
    # notebooks in autograded/<student>/<assignment>/.
    nb = json.loads(LESSON.read_text())
    for cell in nb["cells"]:
        text = source_text(cell)
        if text.lstrip().startswith(":dep") or "\n:dep" in text:
            cell["source"] = re.sub(r'path\s*=\s*"\.\./', f'path = "{ROOT}/', text)
    src_dir = course / "source" / ASSIGNMENT
    src_dir.mkdir(parents=True)
    (src_dir / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb, indent=1) + "\n")
    solutions = {grade_id(c): solution(source_text(c)) for c in nb["cells"] if grade_id(c)}

    for student in STUDENTS:
        run([nbgrader, "db", "student", "add", student], course, log)
    run([nbgrader, "generate_assignment", ASSIGNMENT, "--force"], course, log)
    release = json.loads((course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())

    def hand_in(student, answers, added=()):
        sub = json.loads(json.dumps(release))
        for cell in sub["cells"]:
            if grade_id(cell) in answers:
                cell["source"] = answers[grade_id(cell)]
        for after, text in added:
            at = next(i for i, c in enumerate(sub["cells"]) if grade_id(c) == after)
            sub["cells"].insert(at + 1, {"cell_type": "code", "execution_count": None, "id": f"added-{after}",
                                         "metadata": {}, "outputs": [], "source": text})
        d = course / "submitted" / student / ASSIGNMENT
        d.mkdir(parents=True)
        (d / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(sub, indent=1) + "\n")
        (d / "timestamp.txt").write_text("2026-12-01 09:00:00.000000 UTC\n")

    answer_ids = [grade_id(c) for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
    hand_in("good", {i: solutions[i] for i in answer_ids})
    faulty = {i: solutions[i] for i in answer_ids}
    # Unanswered: the release's todo!() stays, and panics when the tests call it.
    del faulty["scale_zero_point"]
    # An endless loop.
    faulty["per_channel"] = re.sub(r"// BEGIN SOLUTION.*?// END SOLUTION", "loop {}",
                                   nb_cell(nb, "per_channel"), flags=re.S)
    # Left empty; its expected line printed by a cell the learner added below it.
    faulty["iinfo_int16"] = "// TODO: Information of `16-bit (signed) integer`\n"
    hand_in("faulty", faulty, [("iinfo_int16", 'println!("iinfo(min=-32768, max=32767, dtype=int16)");')])
    # The same without the loop: only the unanswered (panicking) and the printed-by-hand one.
    del faulty["per_channel"]
    faulty["per_channel"] = solutions["per_channel"]
    hand_in("faulty_noloop", faulty, [("iinfo_int16", 'println!("iinfo(min=-32768, max=32767, dtype=int16)");')])

    # The solutions, but exercise 3 does not compile.
    broken = {i: solutions[i] for i in answer_ids}
    broken["footprint"] = 'fn int4_group_bytes(n: u64, group: u64) -> u64 {\n    "not a number"\n}'
    hand_in("compile_error", broken)

    # One autograde per learner: nbgrader drops a learner whose notebook it cannot process.
    nbg, nbgrader_s = {}, {}
    for student in STUDENTS:
        nbgrader_s[student] = run([nbgrader, "autograde", ASSIGNMENT, "--student", student, "--force"],
                                  course, log, check=False)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in STUDENTS:
            if nbgrader_s[student] is None:
                continue
            s = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            nbg[student] = {g.name: (g.score, g.max_score) for g in s.grades}

    ql_s = run([args.grader, "grade", course / "submitted", "--source", src_dir / f"{ASSIGNMENT}.ipynb",
                "--csv", course / "quantlab-grades.csv", "--feedback", course / "quantlab-feedback",
                "--jobs", "2"], course, log)
    ql = {}
    with open(course / "quantlab-grades.csv") as f:
        for row in csv.DictReader(f):
            ql.setdefault(row["student_id"], {})[row["question"]] = (float(row["score"]), row["status"])

    print(f"course folder: {course}")
    print(f"quantlab-grade --jobs 2, all three: {ql_s:.0f} s")
    for student in STUDENTS:
        if student not in nbg:
            print(f"\n{student}: nbgrader autograde FAILED (no grade; see {course / 'commands.log'});"
                  f" quantlab-grade:")
            for q, (ours, status) in ql[student].items():
                print(f"  {q:24} {ours:>4g} ({status})")
            print(f"  {'total':24} {sum(s for s, _ in ql[student].values()):>4g}")
            continue
        print(f"\n{student} (nbgrader autograde {nbgrader_s[student]:.0f} s): question, nbgrader points,"
              f" quantlab-grade points (status)")
        for q, (score, max_score) in nbg[student].items():
            ours, status = ql[student].get(q, (None, "absent"))
            print(f"  {q:24} {score:>4g}/{max_score:g}   {ours:>4g}/{max_score:g} ({status})")
        tot = sum(s for s, _ in nbg[student].values())
        mx = sum(m for _, m in nbg[student].values())
        print(f"  {'total':24} {tot:>4g}/{mx:g}   {sum(s for s, _ in ql[student].values()):>4g}/{mx:g}")


def nb_cell(nb, gid):
    return next(source_text(c) for c in nb["cells"] if grade_id(c) == gid)


if __name__ == "__main__":
    main()
