//! The inferbench command line: parses, dispatches to the subcommand's handler, and maps how
//! it ended to an exit code (`inferbench::exit`).

use std::process::ExitCode;

use clap::Parser;
use inferbench::cli::{self, Cli, Command};

fn main() -> ExitCode {
    inferbench::exit::quiet_library_backtraces();
    inferbench::device::pin_cpu_threads();
    let result = match Cli::parse().command {
        Command::Info(args) => cli::info::handle(args),
        Command::Generate(args) => cli::generate::handle(*args),
        Command::Agree(args) => cli::agree::handle(*args),
        Command::Profile(args) => cli::profile::handle(*args),
        Command::Run(args) => cli::run::handle(args),
        Command::Retrieval(args) => cli::retrieval::handle(*args),
        Command::Load(args) => cli::load(*args),
        Command::Merge(args) => cli::merge::handle(args),
        Command::K8s(command) => cli::k8s::handle(command),
        Command::Serve(args) => cli::serve::handle(*args),
        Command::Compare(args) => cli::compare::handle(args),
        Command::Report(args) => cli::report::handle(args),
        Command::Baseline(cmd) => cli::baseline::handle(cmd),
        Command::Instructions(args) => cli::instructions::handle(*args),
        Command::History(cmd) => cli::history::handle(cmd),
    };
    inferbench::exit::code(result)
}
