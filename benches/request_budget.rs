//! Requests per run (`cargo bench --profile dev --bench request_budget --features acceptance`):
//! each API connector (Dnevnik, ЭПОС.Школа, КИАСУО, «Моя школа») syncs the demo school (22
//! classes, about 560 pupils, the whole year; `SynthConfig::demo`) from its emulator into a
//! fresh SQLite store: a full year, then a nightly (incremental) sync with no change at the
//! source, then a nightly sync after one more school day. For each it prints the requests
//! the emulator answered and the run counted (they must agree: the run counts every request,
//! planning and retries included), the lower bound the connector's README derives for that
//! run (computed here from the synthetic school's own counts — pupils, classes, groups,
//! weeks, lists — with the README's formula, never from what the connector did), their
//! ratio, the figure before issue #16 where the issue gives one, and the hours at
//! 3 requests/s for one school and for 30 schools on one token.
//!
//! Options (arguments after `--`, or environment variables):
//!   `--size small|demo|large`   (`EJGATE_BENCH_SIZE`, default `demo`)
//!   `--seed N`                  (`EJGATE_BENCH_SEED`, default 1)
//!   `--until YYYY-MM-DD`        (`EJGATE_BENCH_UNTIL`: simulate the school up to this day
//!                               instead of the size's default, e.g. a mid-year night)
//! With `RUST_LOG=ejgate_sdk::client=debug` every request is logged (to count them by
//! endpoint).

use chrono::{Datelike, NaiveDate};
use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::cadence::FinalMarksCadence;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::DateRange;
use ejgate_sdk::synth::{SynthConfig, World};
use std::collections::{BTreeSet, HashSet};

/// Requests before issue #16 on the demo school (the table): full year, nightly.
fn before(system: &str) -> Option<(u64, u64)> {
    match system {
        "dnevnik" => Some((2_488, 661)),
        "epos" => Some((1_919, 1_253)),
        "kiasuo" => Some((24_775, 6_196)),
        "mosreg" => Some((10_796, 2_914)),
        _ => None,
    }
}

/// The connectors' defaults the README formulas use.
const WINDOW_DAYS: u64 = 35;

/// What the lower bounds count, read from the synthetic school as the source serves it.
struct Facts {
    today: NaiveDate,
    year: DateRange,
    period_ends: Vec<NaiveDate>,
    periods: Vec<DateRange>,
    /// Pupils (every pupil a class lists: the connectors read each).
    pupils: u64,
    /// Their ids (the source ids of every emulator), for the final marks' cadence.
    pupil_ids: Vec<String>,
    /// Pupils per class id (КИАСУО's final marks are read per class on their cadence).
    class_sizes: Vec<(String, u64)>,
    classes: u64,
    /// Classes and groups (Dnevnik's edu-groups).
    units: u64,
    /// Teachers of the school.
    teachers: u64,
    /// КИАСУО: pupils of one class who see the same lessons (the same class and groups).
    group_sets: u64,
    lessons: Vec<NaiveDate>,
    /// Marks by the day they were entered.
    marks_entered: Vec<NaiveDate>,
    /// Homework by its lesson's day.
    homework: Vec<NaiveDate>,
}

fn facts(world: &World) -> Facts {
    let s = &world.schools[0];
    let class_ids: HashSet<u64> = s.classes.iter().map(|c| c.id).collect();
    let mut sets: BTreeSet<(u64, Vec<u64>)> = BTreeSet::new();
    let mut class_sizes: std::collections::BTreeMap<u64, u64> = Default::default();
    let pupils: HashSet<u64> =
        s.enrollments.iter().filter(|e| class_ids.contains(&e.unit)).map(|e| e.student).collect();
    for p in &pupils {
        let mine: Vec<&_> = s.enrollments.iter().filter(|e| e.student == *p && e.active).collect();
        let class = mine.iter().find(|e| class_ids.contains(&e.unit)).map(|e| e.unit).unwrap_or_default();
        let mut groups: Vec<u64> = mine.iter().filter(|e| !class_ids.contains(&e.unit)).map(|e| e.unit).collect();
        groups.sort();
        sets.insert((class, groups));
        *class_sizes.entry(class).or_default() += 1;
    }
    let lesson_date: std::collections::HashMap<u64, NaiveDate> = s.lessons.values().map(|l| (l.id, l.date)).collect();
    Facts {
        today: world.today,
        year: DateRange::new(s.year.start, s.year.end),
        period_ends: s.periods.iter().map(|p| p.end).collect(),
        periods: s.periods.iter().map(|p| DateRange::new(p.start, p.end)).collect(),
        pupils: pupils.len() as u64,
        pupil_ids: pupils.iter().map(|p| p.to_string()).collect(),
        class_sizes: class_sizes.into_iter().map(|(c, n)| (c.to_string(), n)).collect(),
        classes: s.classes.len() as u64,
        units: (s.classes.len() + s.groups.len()) as u64,
        teachers: s.teachers.len() as u64,
        group_sets: sets.len() as u64,
        lessons: s.lessons.values().map(|l| l.date).collect(),
        marks_entered: s.marks.values().map(|m| m.entered_at.date()).collect(),
        homework: s
            .works
            .values()
            .filter(|w| w.is_homework)
            .filter_map(|w| lesson_date.get(&w.lesson).copied())
            .collect(),
    }
}

/// The run a lower bound is for.
#[derive(Clone, Copy)]
enum Run {
    Full,
    /// An incremental run whose journal cursor is the last day the previous run read.
    Nightly {
        cursor: NaiveDate,
    },
}

impl Facts {
    /// The last day of the journal a run reads.
    fn end(&self) -> NaiveDate {
        self.year.to.min(self.today)
    }

    /// The journal's date range of a run.
    fn range(&self, run: Run) -> DateRange {
        match run {
            Run::Full => DateRange::new(self.year.from, self.end()),
            Run::Nightly { cursor } => DateRange::new(
                (cursor.min(self.end()) - chrono::Days::new(WINDOW_DAYS)).max(self.year.from),
                self.end(),
            ),
        }
    }

    /// Marks are listed by the day entered, up to the day the year's journal closes.
    fn marks_range(&self, run: Run) -> DateRange {
        let r = self.range(run);
        DateRange::new(r.from, self.year.entries_close().min(self.today))
    }

    fn count_in(dates: &[NaiveDate], r: DateRange) -> u64 {
        dates.iter().filter(|d| r.from <= **d && **d <= r.to).count() as u64
    }

    /// ISO weeks of the range with a school day (a weekday inside a study period).
    fn school_weeks(&self, r: DateRange) -> u64 {
        let mut weeks = BTreeSet::new();
        let mut d = r.from;
        while d <= r.to {
            if d.weekday().number_from_monday() <= 6 && self.periods.iter().any(|p| p.from <= d && d <= p.to) {
                weeks.insert(d.iso_week());
            }
            d = d + chrono::Days::new(1);
        }
        weeks.len() as u64
    }

    fn periods_touched(&self, r: DateRange) -> u64 {
        self.periods.iter().filter(|p| p.from <= r.to && r.from <= p.to).count() as u64
    }

    /// Pages of a list of `n` items at `per_page`, read until an empty page (the lists
    /// carry no total: SOURCES.md).
    fn pages(n: u64, per_page: u64) -> u64 {
        n.div_ceil(per_page) + 1
    }

    /// Pupils whose final marks a run reads: all in a full run; on a night, those the
    /// README's cadence (`ejgate_sdk::cadence`, per pupil) names for it.
    fn finals_per_pupil(&self, run: Run) -> u64 {
        let c = FinalMarksCadence::default();
        match run {
            Run::Full => self.pupils,
            Run::Nightly { .. } => {
                self.pupil_ids.iter().filter(|p| c.due(&self.period_ends, self.today, p)).count() as u64
            }
        }
    }

    /// The same, the cadence naming classes (КИАСУО).
    fn finals_per_class(&self, run: Run) -> u64 {
        let c = FinalMarksCadence::default();
        match run {
            Run::Full => self.pupils,
            Run::Nightly { .. } => {
                self.class_sizes.iter().filter(|(id, _)| c.due(&self.period_ends, self.today, id)).map(|(_, n)| n).sum()
            }
        }
    }
}

/// The lower bound of a run's requests, by the connector's README.
fn lower_bound(system: &str, f: &Facts, run: Run) -> u64 {
    let r = f.range(run);
    match system {
        // planning 5, school 2, one batch of memberships; per class its persons and final
        // marks; per class or group and request range: lessons, marks, attendance. Any
        // range is taken (one range per run).
        "dnevnik" => 8 + 2 * f.classes + 3 * f.units,
        // planning: session, years, 4 lists, the pupils' pages; school: its profile and the
        // teachers' pages; per range: the lessons' (100 a page), homework's (200) and marks'
        // (1,000) pages; per pupil attendance, and final marks on their cadence.
        "epos" => {
            6 + Facts::pages(f.pupils, 200)
                + 1
                + Facts::pages(f.teachers, 200)
                + Facts::pages(Facts::count_in(&f.lessons, r), 100)
                + Facts::pages(Facts::count_in(&f.homework, r), 200)
                + Facts::pages(Facts::count_in(&f.marks_entered, f.marks_range(run)), 1000)
                + f.pupils
                + f.finals_per_pupil(run)
        }
        // planning 3; per group set and school week its schedule; per pupil and period the
        // range touches its marks; final marks per pupil (full runs; on their cadence);
        // a full run learns each pupil's group set from one week of its schedule.
        "kiasuo" => {
            let finals = f.finals_per_class(run);
            let learn = if matches!(run, Run::Full) { f.pupils } else { 0 };
            3 + f.group_sets * f.school_weeks(r) + f.pupils * f.periods_touched(r) + finals + learn
        }
        // planning: profile_info, years, classes, periods, each class's pupils (one page and
        // the empty one); school: its profile, subjects, groups, the teachers' pages; per
        // pupil and request range events and family marks (events are per person); final
        // marks per pupil on their cadence.
        "mosreg" => 4 + 2 * f.classes + 3 + Facts::pages(f.teachers, 200) + 2 * f.pupils + f.finals_per_pupil(run),
        _ => 0,
    }
}

struct Row {
    system: &'static str,
    /// (label, requests the emulator answered, requests the run counted, lower bound)
    runs: Vec<(&'static str, u64, u64, u64)>,
}

fn option(name: &str, env: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).or_else(|| std::env::var(env).ok())
}

/// Requests the system answered, refreshes of credentials included.
fn answered(system: &dyn EmulatedSystem, extra: &dyn Fn() -> u64) -> u64 {
    system.requests() + extra()
}

async fn measure(system: &dyn EmulatedSystem, extra: &dyn Fn() -> u64) -> Row {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("the store opens"));
    let mut runs = Vec::new();
    let mut cursor = None;
    for (label, mode, advance) in [
        ("full year", SyncMode::Full, 0),
        ("nightly, no change", SyncMode::Incremental, 0),
        ("nightly, one day later", SyncMode::Incremental, 1),
    ] {
        if advance > 0 {
            system.advance(advance);
        }
        let mut bound = 0;
        system.read_world(&mut |w| {
            let f = facts(w);
            let run = match mode {
                SyncMode::Full => Run::Full,
                SyncMode::Incremental => Run::Nightly { cursor: cursor.unwrap_or(f.end()) },
            };
            bound = lower_bound(system.system(), &f, run);
            cursor = Some(f.end());
        });
        let connector = system.connector().expect("the connector builds");
        let before = answered(system, extra);
        let report = run_sync(store.as_ref(), connector, &SyncOptions { mode, ..SyncOptions::default() })
            .await
            .expect("the store records the run");
        assert_eq!(report.status, RunStatus::Succeeded, "{} {label}: {:?}", system.system(), report.error);
        runs.push((label, answered(system, extra) - before, report.stats.requests, bound));
    }
    Row { system: system.system(), runs }
}

fn hours(requests: u64, schools: u64) -> f64 {
    (requests * schools) as f64 / 3.0 / 3600.0
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let seed: u64 = option("--seed", "EJGATE_BENCH_SEED").and_then(|s| s.parse().ok()).unwrap_or(1);
    let size = option("--size", "EJGATE_BENCH_SIZE").unwrap_or_else(|| "demo".into());
    let mut config = match size.as_str() {
        "small" => SynthConfig::small(seed),
        "large" => SynthConfig::large(seed),
        _ => SynthConfig::demo(seed),
    };
    if let Some(until) = option("--until", "EJGATE_BENCH_UNTIL").and_then(|d| d.parse().ok()) {
        config.simulate_until = until;
    }
    println!(
        "request budget: school «{size}» (seed {seed}), simulated until {}; hours at 3 requests/s",
        config.simulate_until
    );
    let world = || World::generate(config.clone());
    {
        let f = facts(&world());
        println!(
            "the school: {} pupils, {} classes, {} classes and groups, {} group sets, {} teachers",
            f.pupils, f.classes, f.units, f.group_sets, f.teachers
        );
    }
    let mut rows = Vec::new();
    {
        let s = ejgate_dnevnik::acceptance::DnevnikSystem::start(world()).await.unwrap();
        rows.push(measure(&s, &|| 0).await);
    }
    {
        let s = ejgate_epos::acceptance::EposSystem::start(world()).await.unwrap();
        rows.push(measure(&s, &|| 0).await);
    }
    {
        // Its `requests` counts the token refreshes too.
        let s = ejgate_kiasuo::acceptance::KiasuoSystem::start(world()).await.unwrap();
        rows.push(measure(&s, &|| 0).await);
    }
    {
        let s = ejgate_mosreg::acceptance::MosregSystem::start(world()).await.unwrap();
        rows.push(measure(&s, &|| 0).await);
    }
    println!(
        "{:<8} {:<24} {:>9} {:>9} {:>7} {:>6} {:>7} {:>9} {:>10}",
        "system", "run", "answered", "counted", "bound", "ratio", "before", "h/school", "h/30 sch."
    );
    for row in &rows {
        for (i, (label, answered, counted, bound)) in row.runs.iter().enumerate() {
            let was = before(row.system).and_then(|(full, nightly)| match i {
                0 => Some(full),
                1 => Some(nightly),
                _ => None,
            });
            println!(
                "{:<8} {:<24} {:>9} {:>9} {:>7} {:>6.2} {:>7} {:>9.2} {:>10.1}{}",
                row.system,
                label,
                answered,
                counted,
                bound,
                *answered as f64 / (*bound).max(1) as f64,
                was.map_or("—".to_string(), |w| w.to_string()),
                hours(*answered, 1),
                hours(*answered, 30),
                if answered == counted { "" } else { "   (counts differ)" }
            );
        }
    }
}
