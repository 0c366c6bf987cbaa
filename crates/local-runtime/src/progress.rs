//! Progress of long work (the emulator's first install, the demo's wait, the benchmarks): a bar
//! or spinner on a terminal (indicatif, on stderr), plain lines when stderr is not one (CI logs),
//! at most one every few seconds unless what is said changes.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Plain lines are written at most this often while the message stays the same.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One piece of long work.
pub struct Progress {
    label: String,
    total: Option<u64>,
    started: Instant,
    /// On a terminal.
    bar: Option<ProgressBar>,
    /// Otherwise: when the last line was written, and what it said.
    last: Mutex<Option<(Instant, String)>>,
}

impl Progress {
    /// Work of `total` steps (`None`: a spinner) called `label`.
    pub fn new(label: &str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{prefix} [{bar:30}] {pos}/{len} {elapsed}, about {eta} left  {msg}",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{prefix} {spinner} {elapsed}  {msg}",
                ),
            };
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            label: label.to_owned(),
            total,
            started: Instant::now(),
            bar,
            last: Mutex::new(None),
        }
    }

    /// `done` steps of the total are done; `message` says what is going on.
    pub fn set(&self, done: u64, message: impl Into<String>) {
        let message = message.into();
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message);
            return;
        }
        let line = match self.total {
            Some(total) => format!("{}: {done}/{total}, {message}", self.label),
            None => format!("{}: {message}", self.label),
        };
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let due = match &*last {
            None => true,
            Some((at, said)) => *said != line || at.elapsed() >= PLAIN_EVERY,
        };
        if due {
            let estimate = self
                .estimate(done)
                .map(|left| format!(" (about {}s left)", left.as_secs()))
                .unwrap_or_default();
            eprintln!(
                "  {line} [{:.0}s{estimate}]",
                self.started.elapsed().as_secs_f64()
            );
            *last = Some((Instant::now(), line));
        }
    }

    /// Time left at the rate so far.
    fn estimate(&self, done: u64) -> Option<Duration> {
        let total = self.total?;
        if done == 0 || done >= total {
            return None;
        }
        Some(
            self.started
                .elapsed()
                .mul_f64((total - done) as f64 / done as f64),
        )
    }

    /// The work is over; `message` says how it ended.
    pub fn finish(self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) => bar.finish_with_message(message),
            None => eprintln!(
                "  {}: {message} [{:.0}s]",
                self.label,
                self.started.elapsed().as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_is_the_time_so_far_scaled_by_what_is_left() {
        let mut progress = Progress::new("work", Some(4));
        progress.started = Instant::now() - Duration::from_secs(10);
        let left = progress.estimate(1).unwrap();
        assert!((29..=31).contains(&left.as_secs()), "{left:?}");
        assert_eq!(progress.estimate(0), None);
        assert_eq!(progress.estimate(4), None);
        assert_eq!(Progress::new("spin", None).estimate(3), None);
    }
}
