//! The run's progress: which section and step it is at, with an estimate of the time left (from
//! the pace of the steps so far).

use std::sync::atomic::{AtomicU64, Ordering};

use local_runtime::progress::Progress;

/// The steps of a run, counted as they start.
pub struct Steps {
    progress: Progress,
    started: AtomicU64,
}

impl Steps {
    pub fn new(total: u64) -> Self {
        Self {
            progress: Progress::new("benchmarks", Some(total)),
            started: AtomicU64::new(0),
        }
    }

    /// A step of `section` starts (the steps before it are done).
    pub fn start(&self, section: &str, step: impl std::fmt::Display) {
        let done = self.started.fetch_add(1, Ordering::Relaxed);
        self.progress.set(done, format!("{section}: {step}"));
    }

    pub fn finish(self) {
        self.progress.finish("done");
    }
}
