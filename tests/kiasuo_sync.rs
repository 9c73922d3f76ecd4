//! End to end: the КИАСУО emulator serving the synthetic school → the connector (Bearer
//! access token renewed with a rotating refresh token) → the sync engine → SQLite. The
//! ground truth, the idempotent re-sync, the change log after the school lives on, broken
//! answers, the refused refresh token (dead until the operator signs in again), a failure
//! in the middle of a run and the request limit are the acceptance kit's
//! (`tests/acceptance.rs`, `ejgate_kiasuo::acceptance`); what is КИАСУО's own is here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_kiasuo::acceptance::{KiasuoSystem, REFRESH};
use ejgate_kiasuo::emulator::EmulatorOptions;
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

struct Harness {
    system: KiasuoSystem,
    store: Box<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(config: SynthConfig, tweak: impl FnOnce(&mut EmulatorOptions)) -> Harness {
        let system = KiasuoSystem::start_with(World::generate(config), tweak).await.expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("store opens"));
        Harness { system, store, _dir: dir }
    }

    async fn sync(&self, mode: SyncMode) -> SyncReport {
        run_sync(self.store.as_ref(), self.system.connector().unwrap(), &SyncOptions { mode, ..SyncOptions::default() })
            .await
            .expect("the store records the run")
    }

    fn expected(&self) -> BTreeMap<EntityKind, u64> {
        self.system.emulator.world().read(ejgate_kiasuo::truth::expected_counts)
    }

    async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        self.store.live_counts(None).await.unwrap()
    }
}

#[tokio::test]
async fn every_run_rotates_the_refresh_token_and_the_file_holds_the_one_in_force() {
    let h = Harness::new(SynthConfig::small(7), |_| {}).await;
    let first = h.sync(SyncMode::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert_eq!(h.live_counts().await, h.expected());
    // The refresh token rotated, and the file holds the one the source accepts now.
    assert_ne!(h.system.persisted_refresh(), REFRESH);
    assert_eq!(Some(h.system.persisted_refresh()), h.system.emulator.state().current_refresh_token());
    // The next run starts from the persisted token, rotates it again, and still holds it.
    let before = h.system.persisted_refresh();
    let again = h.sync(SyncMode::Incremental).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
    assert_ne!(h.system.persisted_refresh(), before);
    assert_eq!(Some(h.system.persisted_refresh()), h.system.emulator.state().current_refresh_token());
}

#[tokio::test]
async fn an_access_token_expiring_mid_sync_is_refreshed_and_the_newest_refresh_token_is_persisted() {
    let h = Harness::new(SynthConfig::small(5), |o| o.access_lifetime = Duration::from_secs(1)).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.live_counts().await, h.expected());
    let stats = h.system.emulator.stats();
    assert!(stats.refreshes >= 2, "the access token was renewed during the run: {stats:?}");
    assert_eq!(stats.refused_refreshes, 0, "never a stale refresh token: {stats:?}");
    assert_eq!(Some(h.system.persisted_refresh()), h.system.emulator.state().current_refresh_token());
}

#[tokio::test]
async fn the_older_marks_form_syncs_the_same_records() {
    let mut config = SynthConfig::small(4);
    config.students_per_class = 3;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 11, 14).unwrap();
    let h = Harness::new(config, |o| o.legacy_marks = true).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let expected = h.expected();
    assert!(expected.get(&EntityKind::Mark).is_some_and(|n| *n > 0) && expected.contains_key(&EntityKind::Attendance));
    assert_eq!(h.live_counts().await, expected);
}

#[tokio::test]
async fn two_schools_seen_through_one_account_are_told_apart() {
    let mut config = SynthConfig::small(6);
    config.schools = 2;
    config.students_per_class = 2;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 10, 3).unwrap();
    let h = Harness::new(config, |_| {}).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.live_counts().await, h.expected());
    let periods = h.store.records(EntityKind::StudyPeriod, None, false).await.unwrap();
    let scopes: BTreeSet<&str> = periods.iter().map(|r| r.scope.as_str()).collect();
    assert_eq!(scopes.len(), 2, "one reference scope per school: {scopes:?}");
}

/// The records of `pupils` the store must hold, as sorted comparable rows: marks
/// (pupil, lesson, value), attendance (pupil, lesson, the letter, status, reason) and final
/// marks (pupil, period or year, value). Computed from the world with the letters and
/// statuses SOURCES.md gives («Н» unexcused, «Б» illness, «У» excused; «О» late is our
/// assumption), not from the connector.
type Rows = (Vec<String>, Vec<String>, Vec<String>);

fn expected_rows(world: &World, pupils: &[u64]) -> Rows {
    use ejgate_kiasuo::truth::{in_a_period, Visibility};
    use ejgate_sdk::synth::SynthAttendanceStatus as S;
    let ids = ejgate_sdk::model::IdSpace::new(ejgate_kiasuo::acceptance::INSTANCE);
    let person = |p: u64| ids.id(EntityKind::Person, &p.to_string());
    let lesson = |l: u64| ids.id(EntityKind::Lesson, &l.to_string());
    let (mut marks, mut attendance, mut finals) = (Vec::new(), Vec::new(), Vec::new());
    for s in &world.schools {
        let v = Visibility::of(s);
        let seen =
            |pupil: u64, l: u64| s.lessons.get(&l).is_some_and(|l| v.sees_unit(pupil, l.unit) && in_a_period(s, l));
        for m in s.marks.values().filter(|m| pupils.contains(&m.student) && seen(m.student, m.lesson)) {
            marks.push(format!("{} {} {}", person(m.student), lesson(m.lesson), m.value));
        }
        for ((l, pupil), a) in s.attendance.iter().filter(|((l, p), _)| pupils.contains(p) && seen(*p, *l)) {
            let (letter, status, reason) = match a.status {
                S::AbsentUnexcused => ("Н", "absent", "unexcused"),
                S::Ill => ("Б", "absent", "illness"),
                S::AbsentExcused => ("У", "absent", "excused"),
                S::Late => ("О", "late", "null"),
            };
            attendance.push(format!("{} {} {letter} {status} {reason}", person(*pupil), lesson(*l)));
        }
        for ((pupil, _, period), f) in s.final_marks.iter().filter(|((p, _, _), _)| pupils.contains(p)) {
            let period = period.map(|p| ids.id(EntityKind::StudyPeriod, &p.to_string()).to_string());
            finals.push(format!("{} {} {}", person(*pupil), period.as_deref().unwrap_or("year"), f.value));
        }
    }
    marks.sort();
    attendance.sort();
    finals.sort();
    (marks, attendance, finals)
}

fn text(v: &serde_json::Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

async fn stored_rows(store: &dyn Store) -> Rows {
    let rows = |kind: EntityKind, fields: &'static [&'static str]| async move {
        let mut out: Vec<String> = store
            .records(kind, None, false)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let field = |f: &str| match (f, &r.content[f]) {
                    ("period", serde_json::Value::Null) => "year".to_string(),
                    (_, v) => text(v),
                };
                fields.iter().map(|f| field(f)).collect::<Vec<_>>().join(" ")
            })
            .collect();
        out.sort();
        out
    };
    (
        rows(EntityKind::Mark, &["student", "lesson", "value"]).await,
        rows(EntityKind::Attendance, &["student", "lesson", "source_status", "status", "reason"]).await,
        rows(EntityKind::FinalMark, &["student", "period", "value"]).await,
    )
}

/// Two pupils of different classes, and one more.
fn three_pupils(world: &World) -> [u64; 3] {
    let s = &world.schools[0];
    let v = ejgate_kiasuo::truth::Visibility::of(s);
    let mut by_class: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    // Pupils with marks, an absence and final marks, so that every case has each to compare.
    let absent: BTreeSet<u64> = s.attendance.keys().map(|(_, p)| *p).collect();
    let marked: BTreeSet<u64> = s.marks.values().map(|m| m.student).collect();
    let finals: BTreeSet<u64> = s.final_marks.keys().map(|(p, _, _)| *p).collect();
    let full = |p: &u64| absent.contains(p) && marked.contains(p) && finals.contains(p);
    for (pupil, class) in v.class_of.iter().filter(|(p, _)| full(p)) {
        by_class.entry(*class).or_default().push(*pupil);
    }
    let mut by_class: Vec<Vec<u64>> = by_class.into_values().filter(|p| p.len() >= 2).collect();
    by_class.sort_by_key(|p| std::cmp::Reverse(p.len()));
    let mut classes = by_class.iter();
    let first = classes.next().expect("a class with two absent pupils");
    let second = classes.next().expect("two such classes");
    [first[0], second[0], first[1]]
}

/// The forms the public clients show (no slot ids, no class ids on children, final marks
/// keyed by `standard_mark_type`, weights as strings), both forms of `lesson_marks`, a
/// parent's token with two children and a pupil's own token, and the base URL pasted with
/// and without `/diary`: the store holds exactly the world's marks, attendance (with the
/// reason) and final marks (per period and for the year) of the pupils the token reads.
#[tokio::test]
async fn the_clients_forms_and_family_tokens_bring_the_right_values() {
    use ejgate_kiasuo::emulator::Account;
    let mut config = SynthConfig::small(8);
    config.students_per_class = 3;
    // The whole year: year marks are given at its end.
    config.students_per_class = 2;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2026, 6, 10).unwrap();
    let world = World::generate(config.clone());
    let [a, b, c] = three_pupils(&world);
    let cases = [
        (Account::Parent(vec![a, b]), false, true, vec![a, b]),
        (Account::Parent(vec![a, b]), true, false, vec![a, b]),
        (Account::Pupil(c), false, false, vec![c]),
    ];
    for (account, legacy, with_diary, pupils) in cases {
        let what = format!("{account:?}, older form {legacy}, base URL with /diary {with_diary}");
        let h = Harness::new(config.clone(), |o| {
            o.account = account.clone();
            o.legacy_marks = legacy;
            o.assumed_fields = false;
        })
        .await;
        let mut c = h.system.config();
        if with_diary {
            c.base_url = format!("{}diary", h.system.emulator.base_url()).parse().unwrap();
        }
        let connector = std::sync::Arc::new(ejgate_kiasuo::KiasuoConnector::new(c).unwrap());
        let report =
            run_sync(h.store.as_ref(), connector, &SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() })
                .await
                .unwrap();
        assert_eq!(report.status, RunStatus::Succeeded, "{what}: {:?}", report.error);
        let persons = h.store.records(EntityKind::Person, None, false).await.unwrap();
        let ids: BTreeSet<&str> = persons.iter().map(|p| p.source_id.as_str()).collect();
        let wanted: Vec<String> = pupils.iter().map(u64::to_string).collect();
        assert_eq!(ids, wanted.iter().map(String::as_str).collect::<BTreeSet<_>>(), "{what}");
        let expected = h.system.emulator.world().read(|w| expected_rows(w, &pupils));
        assert!(
            !expected.0.is_empty() && !expected.1.is_empty() && !expected.2.is_empty(),
            "{what}: the case has data: {} {} {}",
            expected.0.len(),
            expected.1.len(),
            expected.2.len()
        );
        assert!(expected.2.iter().any(|r| r.contains(" year ")), "{what}: year marks");
        let stored = stored_rows(h.store.as_ref()).await;
        assert_eq!(stored.0, expected.0, "{what}: marks");
        assert_eq!(stored.1, expected.1, "{what}: attendance");
        assert_eq!(stored.2, expected.2, "{what}: final marks");
        // Homework files: `url` relative to the host, made absolute with the base URL.
        let base = h.system.emulator.base_url();
        let homework = h.store.records(EntityKind::Homework, None, false).await.unwrap();
        let mut with_files = 0;
        for r in &homework {
            let id: u64 = r.source_id.parse().unwrap();
            let world: Vec<(String, String)> = h.system.emulator.world().read(|w| {
                let work = w.schools.iter().find_map(|s| s.works.get(&id)).expect("a world homework");
                work.attachments.iter().map(|a| (a.name.clone(), a.url.clone())).collect()
            });
            let stored: Vec<(String, String)> = r.content["attachments"]
                .as_array()
                .map(|a| a.iter().map(|x| (text(&x["name"]), text(&x["url"]))).collect())
                .unwrap_or_default();
            assert_eq!(stored.len(), world.len(), "{what}: homework {id}");
            for ((name, url), (world_name, world_url)) in stored.iter().zip(&world) {
                assert_eq!(name, world_name);
                let path = world_url.splitn(4, '/').nth(3).unwrap();
                assert_eq!(*url, format!("{base}{path}"), "{what}");
            }
            with_files += !world.is_empty() as usize;
        }
        assert!(with_files > 0, "{what}: some homework has files");
        let weights = h.store.records(EntityKind::Mark, None, false).await.unwrap();
        assert!(weights.iter().all(|r| r.content["weight"].is_number()), "{what}: string weights read as numbers");
        assert_eq!(Some(h.system.persisted_refresh()), h.system.emulator.state().current_refresh_token());
    }
}

#[tokio::test]
async fn naming_a_school_with_a_pupils_token_is_refused_plainly() {
    use ejgate_kiasuo::emulator::Account;
    let mut config = SynthConfig::small(8);
    config.students_per_class = 2;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 10, 3).unwrap();
    let world = World::generate(config.clone());
    let pupil = *ejgate_kiasuo::truth::Visibility::of(&world.schools[0]).class_of.keys().next().unwrap();
    let school = world.schools[0].name.clone();
    let h = Harness::new(config, |o| o.account = Account::Pupil(pupil)).await;
    let mut c = h.system.config();
    c.schools = vec![school.clone()];
    let connector = std::sync::Arc::new(ejgate_kiasuo::KiasuoConnector::new(c).unwrap());
    let report = run_sync(h.store.as_ref(), connector, &SyncOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("whole school") && error.contains("a pupil's own account"), "{error}");
    assert!(error.contains(&school), "{error}");
}

/// Issue #16: a run counts every request the emulator answers (planning and refreshes
/// included); a nightly sync reads one schedule per group set and week, not per pupil,
/// and stays within the bound its plan gives (README: 3 planning requests, group sets ×
/// weeks, pupils × periods touched, pupils for final marks when due); a change to a final
/// mark and to a mark of a closed period is not asked for by the nightly sync and is
/// picked up by the next full run (the cadence README states).
#[tokio::test]
async fn a_nightly_sync_keeps_to_its_budget_and_the_full_run_picks_up_closed_periods() {
    let h = Harness::new(SynthConfig::small(5), |_| {}).await;
    let answered = || {
        let s = h.system.emulator.stats();
        s.requests + s.refresh_requests
    };
    let before = answered();
    let full = h.sync(SyncMode::Full).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{:?}", full.error);
    assert_eq!(full.stats.requests, answered() - before, "the run counts what the source answered");

    // Pupils, and the sets of units (class and groups) they see.
    let (pupils, sets) = h.system.emulator.world().read(|w| {
        let s = &w.schools[0];
        let mut sets = BTreeSet::new();
        let mut pupils = 0u64;
        for p in &s.students {
            let view = ejgate_kiasuo::truth::ChildView::of(s, s.enrollments.iter().filter(|e| e.student == p.id));
            if let Some(v) = view {
                pupils += 1;
                sets.insert(v.units);
            }
        }
        (pupils, sets.len() as u64)
    });
    let before = answered();
    let nightly = h.sync(SyncMode::Incremental).await;
    assert_eq!(nightly.status, RunStatus::Succeeded, "{:?}", nightly.error);
    let n = answered() - before;
    assert_eq!(nightly.stats.requests, n, "the run counts what the source answered");
    // 36 days span at most 7 ISO weeks and touch at most 2 quarters.
    let bound = 3 + sets * 7 + pupils * 2 + pupils;
    assert!(n <= bound, "nightly: {n} requests, bound {bound} ({pupils} pupils, {sets} group sets)");
    assert!(n < pupils * 6, "nightly: {n} requests, fewer than one schedule per pupil and week");
    assert_eq!(nightly.stats.inserted + nightly.stats.updated + nightly.stats.deleted, 0);

    // A mark of the first quarter (closed long ago) and a final mark change at the source.
    let (mark, final_key) = h.system.emulator.world().update(|w| {
        let s = &mut w.schools[0];
        let q1_end = s.periods[0].end;
        let lesson_dates: BTreeMap<u64, chrono::NaiveDate> = s.lessons.iter().map(|(id, l)| (*id, l.date)).collect();
        let mark = s.marks.values_mut().find(|m| lesson_dates.get(&m.lesson).is_some_and(|d| *d <= q1_end)).unwrap();
        mark.value = if mark.value == "2" { "3".into() } else { "2".into() };
        let mark = (mark.id, mark.value.clone());
        let (key, f) = s.final_marks.iter_mut().next().unwrap();
        f.value = if f.value == "2" { "3".into() } else { "2".into() };
        (mark, (*key, f.value.clone()))
    });
    let stored_mark = |records: &[ejgate::store::StoredRecord]| {
        records.iter().find(|r| r.source_id == mark.0.to_string()).map(|r| r.content["value"].clone())
    };
    let nightly = h.sync(SyncMode::Incremental).await;
    assert_eq!(nightly.status, RunStatus::Succeeded, "{:?}", nightly.error);
    let marks = h.store.records(EntityKind::Mark, None, false).await.unwrap();
    assert_ne!(stored_mark(&marks), Some(serde_json::json!(mark.1)), "the nightly does not read closed periods");
    let full = h.sync(SyncMode::Full).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{:?}", full.error);
    let marks = h.store.records(EntityKind::Mark, None, false).await.unwrap();
    assert_eq!(stored_mark(&marks), Some(serde_json::json!(mark.1)), "the full run reads closed periods");
    let ((student, subject, period), value) = final_key;
    let key = format!("{student}:{subject}:{}", period.map_or("year".to_string(), |p| p.to_string()));
    let finals = h.store.records(EntityKind::FinalMark, None, false).await.unwrap();
    let stored = finals.iter().find(|r| r.source_id == key).map(|r| r.content["value"].clone());
    assert_eq!(stored, Some(serde_json::json!(value)), "the full run reads final marks");
    assert_eq!(h.live_counts().await, h.expected());
}
