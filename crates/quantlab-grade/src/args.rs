//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Release, grade and validate the quantlab lesson notebook (nbgrader-style cells, evcxr kernel).
#[derive(Debug, Parser)]
#[command(name = "quantlab-grade", version)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Make the learners' notebook: solutions and hidden tests removed, checksums recorded.
    Release {
        /// The instructor's source notebook.
        source: PathBuf,
        /// Where to write the release.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run submissions through the kernel with the hidden tests and score each question.
    Grade {
        /// Submitted notebooks (never modified), or folders to search for them, such as
        /// nbgrader's `submitted/` (`submitted/<student>/<assignment>/<notebook>.ipynb`).
        #[arg(required = true)]
        submissions: Vec<PathBuf>,
        /// The instructor's source notebook (authoritative for locked cells and tests).
        /// Repeat it to grade several assignments in one run: each submission is graded
        /// against the source of its notebook's name (else its nbgrader assignment folder's
        /// name, else the one sharing the most graded cells with it).
        #[arg(long, required = true)]
        source: Vec<PathBuf>,
        /// Write the JSON report here; with several submissions or nbgrader's layout, a
        /// folder receiving `<student>.json` (`<student>/<assignment>/<notebook>.json`).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the executed copy here; with several submissions, a folder receiving
        /// `<name>.executed.ipynb`. Default: beside the JSON report, if any.
        #[arg(long)]
        executed: Option<PathBuf>,
        /// Write each learner's feedback page (self-contained HTML) into this folder:
        /// `<student>.html`, or `<student>/<assignment>/<notebook>.html` in nbgrader's layout.
        #[arg(long, value_name = "DIR")]
        feedback: Option<PathBuf>,
        /// Write the gradebook here: one CSV row per learner and question, columns
        /// `assignment,student_id,question,score,max_score,status,timestamp`.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Grade this many submissions at once, each in its own kernel and build directory.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        jobs: u32,
        /// Where the kernels' warm build directories live (one per kernel running at once,
        /// reused from run to run). Default: `$XDG_CACHE_HOME/quantlab-grade` or
        /// `~/.cache/quantlab-grade`.
        #[arg(long, value_name = "DIR")]
        build_dir: Option<PathBuf>,
        /// Time limit in seconds for each of the learner's cells; lesson and test cells get
        /// 60 s (at least this), cells with `:dep` 180 s.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// Jupyter kernel to use.
        #[arg(long, default_value = "rust")]
        kernel: String,
    },
    /// Run a notebook's visible tests and say which questions look done.
    Validate {
        /// The notebook to check.
        submission: PathBuf,
        /// Per-cell time limit in seconds (cells with `:dep` get at least 180 s).
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// Jupyter kernel to use.
        #[arg(long, default_value = "rust")]
        kernel: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_well_formed() {
        Args::command().debug_assert();
    }
}
