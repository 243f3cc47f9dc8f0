//! Progress on a terminal while a run goes (`indicatif`): a spinner naming the run with its
//! elapsed time. It draws to stderr only when stderr is a terminal, so CI logs and redirected
//! output stay clean; the report itself is printed as before.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner for one run, shown until it is dropped.
pub struct Progress(ProgressBar);

impl Progress {
    pub fn start(label: &str) -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(bar)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
