//! `quantlab`: cast, quantize and measure checkpoints from the command line.
//!
//! Every failure is one line on stderr, `quantlab: <file>: <tensor>: <problem>`,
//! and exit code 2; a failed command leaves no output file behind.

mod args;
mod bench;
mod blocks;
mod cast;
mod dequantize;
mod footprint;
mod info;
mod io;
mod par;
mod quantize;
mod select;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use args::{Args, Command};

/// The exit code of every error, usage errors included.
const FAILURE: u8 = 2;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => return usage_error(e),
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quantlab: {e:#}");
            ExitCode::from(FAILURE)
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        Command::Info(a) => info::run(&a, &mut out)?,
        Command::Cast(a) => cast::run(&a, &mut out)?,
        Command::Quantize(a) => quantize::run(&a, &mut out)?,
        Command::Dequantize(a) => dequantize::run(&a)?,
        Command::Footprint(a) => footprint::run(&a, &mut out)?,
        Command::Bench(a) => bench::run(&a, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// Help and version go to stdout as clap prints them; a usage error becomes
/// one line, like every other error.
fn usage_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(FAILURE)
        }
        _ => {
            let text = e.render().to_string();
            // clap's first paragraph says what is wrong; the rest is usage.
            let first = text.split("\n\n").next().unwrap_or(&text);
            let line = first.split_whitespace().collect::<Vec<_>>().join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            eprintln!("quantlab: {line} (see `quantlab --help`)");
            ExitCode::from(FAILURE)
        }
    }
}

/// `quantlab info --all | head` closes the pipe early; that is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
