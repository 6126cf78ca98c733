//! Progress bars on stderr (indicatif) for runs and sweeps that take more than a second. They
//! read the wall clock, hence their place here. When stderr is not a terminal (a batch job's
//! log, CI), there is no bar: a plain line every [`LOG_EVERY`] instead, so that a long plan or
//! sweep under Slurm or in a script says how far it is, and a short command prints nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Quiet period before a bar appears: short commands print no bar at all.
const SHOW_AFTER: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(120);
/// Without a terminal: one progress line this often.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// A bar (with a total) or a spinner (without), shown after [`SHOW_AFTER`].
pub struct Progress {
    bar: ProgressBar,
    done: Arc<AtomicBool>,
    /// No terminal: progress goes to the log as lines; when the last one was written (ms into
    /// the work).
    log: Option<AtomicU64>,
}

impl Progress {
    /// `total` runs, or `None` for a spinner (one run: the engine reports no fraction).
    pub fn new(message: &str, total: Option<u64>) -> Progress {
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::hidden()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()),
        };
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} runs, {elapsed} (~{eta} left)",
            ),
            None => ProgressStyle::with_template("{spinner} {msg} ({elapsed})"),
        };
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(message.to_string());
        let done = Arc::new(AtomicBool::new(false));
        let terminal = std::io::stderr().is_terminal();
        if terminal {
            let (bar2, done2) = (bar.clone(), done.clone());
            // Detached: it only sleeps, then shows the bar unless the work is already done.
            std::thread::spawn(move || {
                std::thread::sleep(SHOW_AFTER);
                if !done2.load(Ordering::Acquire) && !bar2.is_finished() {
                    bar2.set_draw_target(ProgressDrawTarget::stderr());
                    bar2.enable_steady_tick(TICK);
                }
            });
        }
        Progress {
            bar,
            done,
            log: (!terminal).then(|| AtomicU64::new(0)),
        }
    }

    /// One more run finished.
    pub fn inc(&self) {
        self.bar.inc(1);
        if let Some(last) = &self.log {
            let now = self.bar.elapsed().as_millis() as u64;
            let prev = last.load(Ordering::Relaxed);
            if due(prev, now)
                && last
                    .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                eprintln!(
                    "{}",
                    log_line(
                        &self.bar.message(),
                        self.bar.position(),
                        self.bar.length(),
                        self.bar.elapsed(),
                        self.bar.eta()
                    )
                );
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.bar.finish_and_clear();
    }
}

/// Whether a progress line is due `now` (ms into the work) after the last at `last`.
fn due(last: u64, now: u64) -> bool {
    now >= last + LOG_EVERY.as_millis() as u64
}

/// "plan eu (about): 40/150 runs, 2m10s elapsed, about 5m20s left".
fn log_line(message: &str, pos: u64, len: Option<u64>, elapsed: Duration, eta: Duration) -> String {
    let t = |d: Duration| {
        let s = d.as_secs();
        if s >= 60 {
            format!("{}m{:02}s", s / 60, s % 60)
        } else {
            format!("{s}s")
        }
    };
    match len {
        Some(n) => format!(
            "{message}: {pos}/{n} runs, {} elapsed, about {} left",
            t(elapsed),
            t(eta)
        ),
        None => format!("{message}: {} elapsed", t(elapsed)),
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_every_thirty_seconds_says_how_far_and_how_long() {
        assert!(!due(0, 29_999));
        assert!(due(0, 30_000));
        assert!(!due(30_000, 45_000));
        assert_eq!(
            log_line(
                "plan eu (about)",
                40,
                Some(150),
                Duration::from_secs(130),
                Duration::from_secs(320)
            ),
            "plan eu (about): 40/150 runs, 2m10s elapsed, about 5m20s left"
        );
        assert_eq!(
            log_line("run x", 0, None, Duration::from_secs(45), Duration::ZERO),
            "run x: 45s elapsed"
        );
    }
}
