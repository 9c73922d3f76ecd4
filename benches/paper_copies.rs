//! Paper copies per second (`cargo bench --bench paper_copies --features acceptance`): the
//! large synthetic school (40 classes, about 1,000 pupils, the whole year) written into a
//! SQLite store as a full sync brings it, then, timed in the same run:
//!
//! - the journal read: `archive::paper::Journal::load` (one query per kind);
//! - the quarterly copies (A1) of the second quarter, every class;
//! - the year's books (A2) and сводные ведомости (P4), every class;
//!
//! each as `ejgate archive paper` writes them (PDF/A-2u files in a temporary directory).
//! Printed: pages, seconds and pages per second of each, the median of R runs.
//!
//! Options: `--runs R` (`EJGATE_BENCH_RUNS`, default 3), `--classes C`
//! (`EJGATE_BENCH_CLASSES`, default 40: the large school).

use std::time::Instant;

use ejgate::archive::paper::{self, PaperSpan};
use ejgate::documents::template::Template;
use ejgate_sdk::synth::{SynthConfig, World};
use ejgate_sdk::year::SchoolYear;

#[allow(dead_code)]
mod common;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let runs = common::option("--runs", "EJGATE_BENCH_RUNS", 3).max(1);
    let classes = common::option("--classes", "EJGATE_BENCH_CLASSES", 40).max(11) as u32;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let started = Instant::now();
    let world = World::generate(SynthConfig { classes_per_school: classes, ..SynthConfig::large(2026) });
    let pupils = world.schools[0].students.len();
    let generated = started.elapsed().as_secs_f64();
    let store = ejgate::store::SqliteStore::open(&url).await.unwrap();
    let started = Instant::now();
    ejgate::report::synthetic::store_world(&store, "school", &world).await.unwrap();
    let loaded = started.elapsed().as_secs_f64();
    println!(
        "large school: {classes} classes, {pupils} pupils; generated in {generated:.1} s, stored in {loaded:.1} s"
    );
    let template = Template::builtin();
    let year = SchoolYear::new(2025);
    let mut read = Vec::new();
    let mut quarter = Vec::new();
    let mut yearly = Vec::new();
    let (mut quarter_pages, mut year_pages) = (0, 0);
    for run in 0..runs {
        let started = Instant::now();
        let journal = paper::Journal::load(&store, "Школа", "school").await.unwrap();
        read.push(started.elapsed().as_secs_f64());
        let out = dir.path().join(format!("run-{run}"));
        let span = PaperSpan::Period { period: "2".into(), year: Some(year) };
        let started = Instant::now();
        let report = tokio::task::block_in_place(|| paper::write(&journal, &template, &span, &out.join("q2"))).unwrap();
        quarter.push(started.elapsed().as_secs_f64());
        quarter_pages = report.pages();
        let started = Instant::now();
        let report = tokio::task::block_in_place(|| {
            paper::write(&journal, &template, &PaperSpan::Year(year), &out.join("year"))
        })
        .unwrap();
        yearly.push(started.elapsed().as_secs_f64());
        year_pages = report.pages();
        std::fs::remove_dir_all(&out).unwrap();
    }
    let (read, quarter, yearly) = (common::median(read), common::median(quarter), common::median(yearly));
    println!("journal read (Journal::load): {read:.2} s (median of {runs})");
    println!(
        "quarterly copies, Q2, {classes} classes: {quarter_pages} pages in {quarter:.2} s = {:.0} pages/s",
        quarter_pages as f64 / quarter
    );
    println!(
        "year-end books and svodnye vedomosti, {classes} classes: {year_pages} pages in {yearly:.2} s = {:.0} pages/s",
        year_pages as f64 / yearly
    );
}
