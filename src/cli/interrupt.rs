//! Ctrl-C for long runs: the first sets a flag (the run stops at its next check and keeps
//! what it measured); a second quits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::exit::INTERRUPTED;

/// Install the handler; `what` says where the run will stop.
pub(super) fn install(what: &'static str) -> anyhow::Result<Arc<AtomicBool>> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: quitting now");
            std::process::exit(i32::from(INTERRUPTED));
        }
        eprintln!("\ninterrupt: stopping after {what} (Ctrl-C again to quit now)");
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(interrupt)
}
