//! Progress bars on stderr (indicatif) for runs and sweeps that take more than a second. They
//! read the wall clock, hence their place here; they are hidden when stderr is not a terminal,
//! so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Quiet period before a bar appears: short commands print no bar at all.
const SHOW_AFTER: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(120);

/// A bar (with a total) or a spinner (without), shown after [`SHOW_AFTER`].
pub struct Progress {
    bar: ProgressBar,
    done: Arc<AtomicBool>,
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
        if std::io::stderr().is_terminal() {
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
        Progress { bar, done }
    }

    /// One more run finished.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
