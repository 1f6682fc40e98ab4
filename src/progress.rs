//! Progress of long-running commands, for a person at a terminal: lines on standard error when it
//! is a terminal, nothing otherwise, so that logs and pipes stay quiet and parseable.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Whether progress is shown: standard error is a terminal.
pub fn shown() -> bool {
    std::io::stderr().is_terminal()
}

/// Says what a command is about to do (one line), on a terminal only.
pub fn step(what: &str) {
    if shown() {
        eprintln!("… {what}");
    }
}

/// A count towards a known total, redrawn in place on a terminal.
pub struct Counter {
    what: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    shown: bool,
}

impl Counter {
    /// Counting `total` units of `what` (e.g. "credentials").
    pub fn new(what: &'static str, total: u64) -> Self {
        Self {
            what,
            total,
            done: 0,
            started: Instant::now(),
            shown: shown(),
        }
    }

    /// One more unit done.
    pub fn tick(&mut self) {
        self.done += 1;
        if self.shown {
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r{} / {} {} ({rate:.0}/s)",
                self.done, self.total, self.what
            );
            let _ = err.flush();
        }
    }

    /// Ends the line.
    pub fn finish(self) {
        if self.shown {
            eprintln!(
                "\r{} / {} {} in {:.1} s",
                self.done,
                self.total,
                self.what,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
