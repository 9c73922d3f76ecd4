//! Progress bars for long work: one bar per stream of a sync.

use std::collections::BTreeMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use ejgate_sdk::connector::Chunk;

use crate::sync::Progress;

/// A bar per stream (`school`, `roster`, `final_marks`, `journal`), counting chunks and
/// showing records and changes written. Hidden when standard error is not a terminal.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, (ProgressBar, u64, u64)>>,
    source: String,
}

impl Bars {
    pub fn new(source: &str) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        Bars { multi, bars: Mutex::new(BTreeMap::new()), source: source.to_string() }
    }
}

impl Progress for Bars {
    /// Said before the run fetches, whether or not the bars are shown.
    fn estimated(&self, estimate: &crate::sync::Estimate) {
        println!("{}: {}", self.source, estimate.describe());
    }

    fn planned(&self, chunks: &[Chunk]) {
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for c in chunks {
            *totals.entry(c.stream.as_str()).or_default() += 1;
        }
        let style = ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> ");
        let mut bars = self.bars.lock().expect("bars");
        for (stream, total) in totals {
            let bar = self.multi.add(ProgressBar::new(total));
            bar.set_style(style.clone());
            bar.set_prefix(format!("{} {stream}", self.source));
            bars.insert(stream.to_string(), (bar, 0, 0));
        }
    }

    fn chunk_written(&self, chunk: &Chunk, records: usize, changes: usize) {
        let mut bars = self.bars.lock().expect("bars");
        if let Some((bar, r, c)) = bars.get_mut(&chunk.stream) {
            *r += records as u64;
            *c += changes as u64;
            bar.inc(1);
            bar.set_message(format!("{r} records, {c} changes"));
            if bar.position() == bar.length().unwrap_or(0) {
                bar.finish();
            }
        }
    }
}

/// A bar over the steps of a long piece of work that is not a sync (a report reading the
/// kinds of a school's journal): `what` on the left, one step per [`ProgressBar::inc`].
/// Hidden when standard error is not a terminal.
pub fn steps(what: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}
