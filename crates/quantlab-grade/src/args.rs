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
        /// One or more submitted notebooks (never modified).
        #[arg(required = true)]
        submissions: Vec<PathBuf>,
        /// The instructor's source notebook (authoritative for locked cells and tests).
        #[arg(long)]
        source: PathBuf,
        /// Write the JSON report here; with several submissions, a folder receiving
        /// `<name>.json` per submission.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the executed copy here; with several submissions, a folder receiving
        /// `<name>.executed.ipynb`. Default: beside the JSON report, if any.
        #[arg(long)]
        executed: Option<PathBuf>,
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
