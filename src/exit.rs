//! How a command ends, as the shell sees it. One table for every subcommand: 0 done, 1 a
//! regression or a failure, 2 bad input (a flag, a file, a refused comparison), 130
//! interrupted. Library code marks bad input with [`Usage`]; `main` maps everything once.

use std::process::ExitCode;

/// Exit code of a run that Ctrl-C stopped (128 + SIGINT), as shells report it.
pub const INTERRUPTED: u8 = 130;
/// Exit code of bad input.
pub const USAGE: u8 = 2;

/// Bad input from the user: a flag, a value, a file that cannot be used as given.
/// Anywhere in an error's chain, it makes the exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// `bail!`-like shorthand: an error that exits 2.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// Mark any error as bad input (exit 2), keeping its message and context.
pub fn as_usage(e: anyhow::Error) -> anyhow::Error {
    if is_usage(&e) {
        e
    } else {
        let message = format!("{e:#}");
        usage(message)
    }
}

fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.is::<Usage>())
}

/// Errors carry their message, never a backtrace: candle (and anyhow) capture one into the
/// error itself when RUST_BACKTRACE is set, and candle prints it inside the message, in the
/// terminal and in `serve`'s error bodies alike. Library backtraces are turned off here, at
/// the start of `main` before any thread exists; panics still honour RUST_BACKTRACE.
pub fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Ctrl-C stopped it; what it measured is kept.
    Interrupted,
    /// A comparison found a regression (or a warning, with --fail-on-warn).
    Regression,
}

/// The one mapping from a command's end to its exit code; errors are printed here, with
/// their causes and without a backtrace.
pub fn code(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(INTERRUPTED),
        Ok(Outcome::Regression) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            if is_usage(&e) {
                ExitCode::from(USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_is_found_through_context() {
        let e = Err::<(), _>(usage("--rate 0: rates must be above 0"))
            .context("load")
            .unwrap_err();
        assert!(is_usage(&e));
        assert!(!is_usage(&anyhow::anyhow!("disk full")));
        let marked = as_usage(anyhow::anyhow!("x.json: not valid JSON").context("compare"));
        assert!(is_usage(&marked));
        assert_eq!(marked.to_string(), "compare: x.json: not valid JSON");
    }
}
