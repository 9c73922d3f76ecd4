//! The monitoring engine on a store built with known violations and near misses: the same
//! marks judged by S1 (16:00) and S3 (19:00) differ exactly where the hours say; marks
//! without the source's time are judged by the syncs that saw them, or said undetermined;
//! findings are recorded, a re-run on unchanged data writes nothing, a corrected mark's
//! finding is marked fixed. Expected findings are computed here from the data built here.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use ejgate::monitor::{engine, findings, profile};
use ejgate::store::{ChangeOp, ChangeSet, RunStats, RunStatus, SqliteStore, Store, Upsert};
use ejgate::sync::canonical;
use ejgate_sdk::model::*;

mod common;

const SOURCE: &str = "journal";
const ZONE: chrono_tz::Tz = chrono_tz::Asia::Krasnoyarsk;

fn ids() -> IdSpace {
    IdSpace::new(SOURCE)
}

fn rec(kind_id: &str, date: Option<NaiveDate>, entity: Entity) -> Upsert {
    let id = ids().id(entity.kind(), kind_id);
    canonical(Record { id, source_id: kind_id.into(), scope: "school:1".into(), date, source_updated_at: None, entity })
}

fn person(last: &str, role: Role) -> Entity {
    Entity::Person(Person {
        last_name: last.into(),
        first_name: "Имя".into(),
        middle_name: None,
        sex: None,
        birth_date: None,
        roles: vec![role],
    })
}

fn mark(student: &str, lesson: &str, entered_at: Option<NaiveDateTime>) -> Entity {
    Entity::Mark(Mark {
        student: ids().id(EntityKind::Person, student),
        lesson: Some(ids().id(EntityKind::Lesson, lesson)),
        work: None,
        subject: Some(ids().id(EntityKind::Subject, "math")),
        value: "5".into(),
        numeric: Some(5.0),
        scale: MarkScale::Five,
        weight: None,
        entered_at,
        entered_by: None,
        comment: None,
        is_point: false,
        point_date: None,
    })
}

async fn apply(store: &dyn Store, upserts: Vec<Upsert>) {
    apply_as(store, "window", upserts).await;
}

/// One succeeded run of `mode` writing `upserts`.
async fn apply_as(store: &dyn Store, mode: &str, upserts: Vec<Upsert>) {
    let run = store.begin_run(SOURCE, mode).await.unwrap();
    store.apply(run, SOURCE, &ChangeSet { upserts, deletes: vec![], seen: vec![] }, &[]).await.unwrap();
    store.finish_run(run, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();
}

/// The marks' entry minutes on the lesson's day: near misses on both sides of 16:00 and 19:00.
const ENTERED: [(u32, u32); 6] = [(15, 59), (16, 0), (16, 1), (18, 59), (19, 0), (19, 1)];

struct World {
    day: NaiveDate,
    /// (mark source id, entered at) of the marks with the source's time
    timed: Vec<(String, NaiveDateTime)>,
}

async fn build(store: &dyn Store) -> World {
    // ten days ago in the school's zone: the syncs below happen now, after every deadline
    let day = Utc::now().with_timezone(&ZONE).date_naive() - Days::new(10);
    let mut u = vec![
        rec(
            "1",
            None,
            Entity::Organization(Organization {
                kind: OrganizationKind::School,
                name: "Школа".into(),
                full_name: None,
                municipality: None,
                time_zone: Some(ZONE.name().into()),
                regulation_profile: None,
            }),
        ),
        rec("t1", None, person("Учителева", Role::Staff)),
        rec(
            "math",
            None,
            Entity::Subject(Subject {
                organization: None,
                name: "Алгебра".into(),
                normalized_name: "алгебра".into(),
                knowledge_area: None,
            }),
        ),
        rec(
            "5a",
            None,
            Entity::Class(Class {
                organization: None,
                academic_year: None,
                name: "5А".into(),
                grade: Some(5),
                homeroom_teacher: Some(ids().id(EntityKind::Person, "t1")),
            }),
        ),
        // M22: a class without its class teacher
        rec(
            "6b",
            None,
            Entity::Class(Class {
                organization: None,
                academic_year: None,
                name: "6Б".into(),
                grade: Some(6),
                homeroom_teacher: None,
            }),
        ),
        rec(
            "load",
            None,
            Entity::TeachingLoad(TeachingLoad {
                teacher: ids().id(EntityKind::Person, "t1"),
                subject: ids().id(EntityKind::Subject, "math"),
                unit: ids().id(EntityKind::Class, "5a"),
                hours_per_week: 4.0,
            }),
        ),
    ];
    let lesson = |n: u8, topic: Option<&str>| {
        Entity::Lesson(Lesson {
            unit: ids().id(EntityKind::Class, "5a"),
            subject: Some(ids().id(EntityKind::Subject, "math")),
            date: day,
            number: Some(n),
            teacher: Some(ids().id(EntityKind::Person, "t1")),
            substitute: None,
            topic: topic.map(str::to_string),
            section: None,
            status: LessonStatus::Held,
        })
    };
    u.push(rec("l1", Some(day), lesson(1, Some("Дроби"))));
    // M3: a held lesson without its topic
    u.push(rec("l2", Some(day), lesson(2, None)));
    let mut timed = Vec::new();
    for (i, (h, m)) in ENTERED.iter().enumerate() {
        let student = format!("s{i}");
        u.push(rec(&student, None, person(&format!("Ученик{i}"), Role::Student)));
        let at = day.and_time(NaiveTime::from_hms_opt(*h, *m, 0).unwrap());
        let id = format!("m{i}");
        u.push(rec(&id, Some(day), mark(&student, "l1", Some(at))));
        timed.push((id, at));
    }
    // M10, M12: a quarter that ends on the lesson's day, the students enrolled in 5А, and an
    // «освобождён» period mark for s0
    let quarter = Entity::StudyPeriod(StudyPeriod {
        organization: None,
        academic_year: None,
        kind: PeriodKind::Quarter,
        number: 2,
        name: "2 четверть".into(),
        start: day - Days::new(30),
        end: day,
    });
    u.push(rec("q2", None, quarter));
    for i in 0..ENTERED.len() {
        u.push(rec(
            &format!("e{i}"),
            None,
            Entity::Enrollment(Enrollment {
                student: ids().id(EntityKind::Person, &format!("s{i}")),
                unit: ids().id(EntityKind::Class, "5a"),
                status: EnrollmentStatus::Active,
                from: None,
                to: None,
                order: None,
            }),
        ));
    }
    u.push(rec(
        "f0",
        None,
        Entity::FinalMark(FinalMark {
            student: ids().id(EntityKind::Person, "s0"),
            subject: ids().id(EntityKind::Subject, "math"),
            period: Some(ids().id(EntityKind::StudyPeriod, "q2")),
            value: "осв".into(),
            numeric: None,
            special: Some(SpecialFinal::Exempt),
            entered_at: None,
        }),
    ));
    // a mark without the source's time, brought by the first sync: nothing before it
    // tells when it was entered
    u.push(rec("early", Some(day), mark("s0", "l2", None)));
    apply(store, u).await;
    // a second sync brings a mark without the source's time: the first sync (after the
    // deadline) did not have it, so it was entered after the deadline for certain
    apply(store, vec![rec("late", Some(day), mark("s1", "l2", None))]).await;
    World { day, timed }
}

fn shipped() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regulations")
}

fn keys(report: &engine::Report, rule: &str) -> BTreeSet<String> {
    report.findings.iter().filter(|f| f.rule == rule).map(|f| f.key.clone()).collect()
}

fn mark_key(id: &str) -> String {
    format!("M1:mark:{}", ids().id(EntityKind::Mark, id))
}

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn the_same_marks_judged_by_16_00_and_19_00_differ_exactly_between_the_hours() {
    let (_dir, store) = open().await;
    let w = build(&store).await;
    let now = Utc::now() + chrono::TimeDelta::hours(1);
    let range = DateRange::new(w.day, w.day);
    let s1 = profile::load(&shipped(), "s1-kiasuo").unwrap();
    let s3 = profile::load(&shipped(), "s3-molodechno").unwrap();
    let r1 = engine::evaluate(&store, "Школа", SOURCE, &s1, range, now).await.unwrap();
    let r3 = engine::evaluate(&store, "Школа", SOURCE, &s3, range, now).await.unwrap();

    // late: entered after the hour of the lesson's day (the hour itself is on time)
    let late_after = |h: u32| -> BTreeSet<String> {
        let due = w.day.and_time(NaiveTime::from_hms_opt(h, 0, 0).unwrap());
        w.timed.iter().filter(|(_, at)| *at > due).map(|(id, _)| mark_key(id)).chain([mark_key("late")]).collect()
    };
    assert_eq!(keys(&r1, "M1"), late_after(16), "S1 5.5: by 16:00");
    assert_eq!(keys(&r3, "M1"), late_after(19), "S3 3.4.2: by 19:00");
    let differ: BTreeSet<String> = keys(&r1, "M1").symmetric_difference(&keys(&r3, "M1")).cloned().collect();
    let between: BTreeSet<String> = w
        .timed
        .iter()
        .filter(|(_, at)| {
            at.time() > NaiveTime::from_hms_opt(16, 0, 0).unwrap()
                && at.time() <= NaiveTime::from_hms_opt(19, 0, 0).unwrap()
        })
        .map(|(id, _)| mark_key(id))
        .collect();
    assert_eq!(differ, between);

    // the evidence says what it rests on
    let by_source = r1.findings.iter().find(|f| f.key == mark_key("m2")).unwrap();
    assert!(by_source.evidence.contains("по записи источника"), "{}", by_source.evidence);
    assert_eq!(by_source.clause, "S1 5.5");
    assert_eq!(by_source.teacher.as_deref(), Some("Учителева Имя"));
    assert_eq!(by_source.class.as_deref(), Some("5А"));
    let by_sync = r1.findings.iter().find(|f| f.key == mark_key("late")).unwrap();
    assert!(by_sync.evidence.contains("впервые получено синхронизацией"), "{}", by_sync.evidence);
    // the mark of the first sync is not judged on a guess, and says so
    assert!(!keys(&r1, "M1").contains(&mark_key("early")));
    assert!(r1.unchecked.iter().any(|u| u.rule == "M1" && u.reason.starts_with("1 отметка: ")), "{:?}", r1.unchecked);

    // M3 (S3 only): the lesson without its topic; S1 has no topic rule
    assert_eq!(keys(&r3, "M3"), BTreeSet::from([format!("M3:lesson:{}", ids().id(EntityKind::Lesson, "l2"))]));
    assert!(keys(&r1, "M3").is_empty());

    // S4's homework hour needs bell times the source does not give: reported, not passed
    let s4 = profile::load(&shipped(), "s4-korolev").unwrap();
    let r4 = engine::evaluate(&store, "Школа", SOURCE, &s4, range, now).await.unwrap();
    assert!(
        r4.unchecked.iter().any(|u| u.rule == "M4" && u.reason.contains("расписания звонков")),
        "{:?}",
        r4.unchecked
    );
    // S4 same day: every timed mark is on time, the late one by the syncs is not
    assert_eq!(keys(&r4, "M1"), BTreeSet::from([mark_key("late")]));

    // S2 checks the reference data: 6Б has no class teacher
    let s2 = profile::load(&shipped(), "s2-dubrovskaya").unwrap();
    let r2 = engine::evaluate(&store, "Школа", SOURCE, &s2, range, now).await.unwrap();
    assert_eq!(keys(&r2, "M22"), BTreeSet::from([format!("M22:class_teacher:{}", ids().id(EntityKind::Class, "6b"))]));
    // S2 3.4.4: one day after the lesson — every mark entered on the lesson's day is on time
    assert_eq!(keys(&r2, "M1"), BTreeSet::from([mark_key("late")]));

    // M10 (S1 5.2): at 4 hours a week «более пяти» marks, that is 6; every student here has
    // the marks built above: one on lesson 1, and s0 and s1 one more on lesson 2; s0 is
    // «освобождён» in the quarter (f0) and needs no marks
    let marks_of = |i: usize| 1 + usize::from(i < 2);
    let short: BTreeSet<String> = (0..ENTERED.len())
        .filter(|i| *i != 0 && marks_of(*i) < 6)
        .map(|i| {
            format!(
                "M10:{}:{}:{}:{}",
                ids().id(EntityKind::StudyPeriod, "q2"),
                ids().id(EntityKind::Person, &format!("s{i}")),
                ids().id(EntityKind::Subject, "math"),
                ids().id(EntityKind::Class, "5a")
            )
        })
        .collect();
    assert_eq!(keys(&r1, "M10"), short);
    // M12: S1 5.3 forbids «освобождён», S4 2.11 allows ОСВ
    let exempt = BTreeSet::from([format!("M12:final:{}", ids().id(EntityKind::FinalMark, "f0"))]);
    assert_eq!(keys(&r1, "M12"), exempt);
    assert!(keys(&r4, "M12").is_empty());

    let board = ejgate::monitor::board::render(&r1);
    assert!(board.contains("Учителева Имя") && board.contains("M1 (п. S1 5.5)"), "{board}");
}

/// M11 (S2 3.4.7: within 2 days after the period; S4 2.11: in its last week): no source says
/// when a period mark was entered, so the sync that first saw it tells, bounded by the last
/// full sync before it — only a full run reads every final mark (incremental runs read them
/// on a cadence). The quarter of `build` ended ten days ago; every run here is now, after
/// both deadlines. `build`'s two incremental runs brought f0; then an incremental run brings
/// fA (no full run before it: undetermined, though the incremental run before it was past
/// the deadline), a full run brings nothing new, an incremental run brings fB and a full
/// one fC (both late for certain: the full run before them did not have them).
#[tokio::test]
async fn period_marks_are_late_for_certain_only_after_a_full_sync_that_did_not_have_them() {
    let (_dir, store) = open().await;
    let w = build(&store).await;
    let now = Utc::now() + chrono::TimeDelta::hours(1);
    let range = DateRange::new(w.day, w.day);
    let s2 = profile::load(&shipped(), "s2-dubrovskaya").unwrap();
    let s4 = profile::load(&shipped(), "s4-korolev").unwrap();
    let m11 = |r: &engine::Report| -> Vec<engine::Unchecked> {
        r.unchecked.iter().filter(|u| u.rule == "M11").cloned().collect()
    };
    // no full run yet: the rule as a whole cannot be checked, and says why
    let r4 = engine::evaluate(&store, "Школа", SOURCE, &s4, range, now).await.unwrap();
    assert!(keys(&r4, "M11").is_empty());
    let said = m11(&r4);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].whole && said[0].reason.starts_with("нельзя проверить по данным этого источника, потому что "));
    assert!(said[0].reason.contains("полных синхронизаций"), "{}", said[0].reason);

    let period_mark = |id: &str, student: &str, entered_at: Option<NaiveDateTime>| {
        rec(
            id,
            None,
            Entity::FinalMark(FinalMark {
                student: ids().id(EntityKind::Person, student),
                subject: ids().id(EntityKind::Subject, "math"),
                period: Some(ids().id(EntityKind::StudyPeriod, "q2")),
                value: "4".into(),
                numeric: Some(4.0),
                special: None,
                entered_at,
            }),
        )
    };
    // with the source's time (Dnevnik's `date`) no sync is needed: fT set on the quarter's
    // last day at 12:00 (on time under both), fL the next day at 10:00 (late under S4 only)
    let at = |days: u64, h: u32| (w.day + Days::new(days)).and_hms_opt(h, 0, 0).unwrap();
    let (f_t, f_l) = (period_mark("fT", "s4", Some(at(0, 12))), period_mark("fL", "s5", Some(at(1, 10))));
    apply_as(&store, "incremental", vec![period_mark("fA", "s3", None), f_t, f_l]).await;
    apply_as(&store, "full", vec![]).await;
    apply_as(&store, "incremental", vec![period_mark("fB", "s1", None)]).await;
    apply_as(&store, "full", vec![period_mark("fC", "s2", None)]).await;
    let key = |f: &str| format!("M11:final:{}", ids().id(EntityKind::FinalMark, f));
    for profile in [&s2, &s4] {
        let r = engine::evaluate(&store, "Школа", SOURCE, profile, range, now).await.unwrap();
        let mut late: BTreeSet<String> = ["fB", "fC"].iter().map(|f| key(f)).collect();
        if profile.name == "s4-korolev" {
            late.insert(key("fL"));
            let f = r.findings.iter().find(|f| f.key == key("fL")).unwrap();
            assert!(f.evidence.contains("по записи источника"), "{}", f.evidence);
        }
        assert_eq!(keys(&r, "M11"), late, "{}", profile.name);
        // f0 and fA: first seen after the deadline, but no full run before them said they
        // were not there yet
        let said = m11(&r);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(!said[0].whole && said[0].reason.starts_with("2 итоговые отметки: "), "{}", said[0].reason);
        let fb = format!("M11:final:{}", ids().id(EntityKind::FinalMark, "fB"));
        let f = r.findings.iter().find(|f| f.key == fb).unwrap();
        assert!(f.evidence.contains("полная синхронизация"), "{}", f.evidence);
        assert_eq!(f.date, Some(w.day));
        assert_eq!((f.teacher.as_deref(), f.class.as_deref()), (Some("Учителева Имя"), Some("5А")));
        assert_eq!(f.subject.as_deref(), Some("Алгебра"));
        let deadline = if profile.name == "s2-dubrovskaya" {
            format!("до конца дня {}", (w.day + Days::new(2)).format("%d.%m.%Y"))
        } else {
            format!("{}–{}), до начала каникул", (w.day - Days::new(6)).format("%d.%m.%Y"), w.day.format("%d.%m.%Y"))
        };
        assert!(f.what.contains(&deadline) && f.what.contains("«4»"), "{}", f.what);
    }
    // S1 has no M11
    let s1 = profile::load(&shipped(), "s1-kiasuo").unwrap();
    let r1 = engine::evaluate(&store, "Школа", SOURCE, &s1, range, now).await.unwrap();
    assert!(keys(&r1, "M11").is_empty() && m11(&r1).is_empty());
}

#[tokio::test]
async fn findings_live_until_fixed_and_a_rerun_on_unchanged_data_writes_nothing() {
    let (_dir, store) = open().await;
    findings_live(&store).await;
}

#[tokio::test]
async fn findings_live_until_fixed_on_postgres() {
    let pg = common::PgSchema::create("ejgate_monitor").await;
    let store = ejgate::store::PostgresStore::open(&pg.url).await.unwrap();
    findings_live(&store).await;
}

async fn findings_live(store: &dyn Store) {
    let w = build(store).await;
    let s1 = profile::load(&shipped(), "s1-kiasuo").unwrap();
    let range = DateRange::new(w.day, w.day);
    let t0: DateTime<Utc> = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0) + chrono::TimeDelta::hours(1);

    let r = engine::evaluate(store, "Школа", SOURCE, &s1, range, t0).await.unwrap();
    let first = findings::record(store, &r, t0).await.unwrap();
    assert_eq!(first.new, r.findings.len());
    let stored = store.findings("Школа").await.unwrap();
    assert_eq!(stored.len(), r.findings.len());

    // the same data again, later: nothing written, the rows are as they were
    let t1 = t0 + chrono::TimeDelta::hours(1);
    let again = engine::evaluate(store, "Школа", SOURCE, &s1, range, t1).await.unwrap();
    assert_eq!(again, r);
    assert!(findings::record(store, &again, t1).await.unwrap().is_empty());
    assert_eq!(store.findings("Школа").await.unwrap(), stored);

    // the teacher's mark m2 (16:01) turns out entered at 15:30: its finding is fixed, only it
    let (id, _) = &w.timed[2];
    let corrected = w.day.and_time(NaiveTime::from_hms_opt(15, 30, 0).unwrap());
    let mut u = rec(id, Some(w.day), mark("s2", "l1", Some(corrected)));
    u.op = ChangeOp::Update;
    apply(store, vec![u]).await;
    let t2 = t1 + chrono::TimeDelta::hours(1);
    let after = engine::evaluate(store, "Школа", SOURCE, &s1, range, t2).await.unwrap();
    let changes = findings::record(store, &after, t2).await.unwrap();
    assert_eq!(changes, findings::Changes { new: 0, changed: 0, reopened: 0, fixed: 1 });
    let rows = store.findings("Школа").await.unwrap();
    let fixed: Vec<&str> = rows.iter().filter(|f| f.fixed_at.is_some()).map(|f| f.key.as_str()).collect();
    assert_eq!(fixed, [mark_key(id).as_str()]);
    assert_eq!(rows.iter().find(|f| f.fixed_at.is_some()).unwrap().fixed_at, Some(t2));
    // the others keep their first detection
    assert!(rows.iter().filter(|f| f.fixed_at.is_none()).all(|f| f.first_detected == t0 && f.last_detected == t0));

    // a run over another day does not look at this day's findings: nothing is fixed by it
    let other = DateRange::new(w.day - Days::new(3), w.day - Days::new(3));
    let elsewhere = engine::evaluate(store, "Школа", SOURCE, &s1, other, t2).await.unwrap();
    assert!(findings::record(store, &elsewhere, t2).await.unwrap().is_empty());
}

/// M21 (S4 учитель 12): outages of the journal from the sync runs. Literal runs in the
/// school's time (Krasnoyarsk, UTC+7) on Tuesday 1 December 2026: a sync at 07:00 succeeds;
/// syncs at 09:00 and 10:00 fail with a server error, one at 10:30 for the credentials (not
/// an outage: it neither ends nor extends one), 11:00 times out; 12:00 succeeds. An outage
/// at night (Wednesday 02:00 failed, 03:00 succeeded) is outside school hours; one from
/// Saturday 17:00 to Sunday 10:00 touches Saturday's hours only.
#[test]
fn outages_during_school_hours_are_findings_with_a_drafted_notice() {
    use ejgate::store::{RunErrorKind, SyncRun};
    let local = |d: u32, h: u32, m: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap().and_hms_opt(h, m, 0).unwrap();
    let utc = |t: NaiveDateTime| t.and_local_timezone(ZONE).single().unwrap().with_timezone(&Utc);
    let mut id = 0;
    let mut run = |t: NaiveDateTime, status: RunStatus, kind: Option<RunErrorKind>| {
        id += 1;
        SyncRun {
            id,
            source: SOURCE.into(),
            mode: "window".into(),
            started_at: utc(t),
            finished_at: Some(utc(t) + chrono::TimeDelta::minutes(1)),
            status,
            error: kind.map(|k| format!("{k:?}: the source did not answer")),
            error_kind: kind,
            stats: RunStats::default(),
        }
    };
    let runs = vec![
        run(local(1, 7, 0), RunStatus::Succeeded, None),
        run(local(1, 9, 0), RunStatus::Failed, Some(RunErrorKind::Server)),
        run(local(1, 10, 0), RunStatus::Failed, Some(RunErrorKind::Server)),
        run(local(1, 10, 30), RunStatus::Failed, Some(RunErrorKind::Unauthorized)),
        run(local(1, 11, 0), RunStatus::Failed, Some(RunErrorKind::Timeout)),
        run(local(1, 12, 0), RunStatus::Succeeded, None),
        run(local(2, 2, 0), RunStatus::Failed, Some(RunErrorKind::Transport)),
        run(local(2, 3, 0), RunStatus::Succeeded, None),
        run(local(5, 17, 0), RunStatus::Failed, Some(RunErrorKind::Server)),
        run(local(6, 10, 0), RunStatus::Succeeded, None),
    ];
    let outages = engine::outages(&runs, SOURCE, ZONE);
    let spans: Vec<(NaiveDateTime, Option<NaiveDateTime>, usize)> =
        outages.iter().map(|o| (o.from, o.to, o.failed.len())).collect();
    assert_eq!(
        spans,
        vec![
            (local(1, 9, 0), Some(local(1, 12, 0)), 3),
            (local(2, 2, 0), Some(local(2, 3, 0)), 1),
            (local(5, 17, 0), Some(local(6, 10, 0)), 1),
        ]
    );
    assert_eq!(outages[0].last_good, Some(local(1, 7, 0)));

    let s4 = profile::load(&shipped(), "s4-korolev").unwrap();
    let rule = s4.rule("M21").expect("S4 has M21");
    let week =
        DateRange::new(NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), NaiveDate::from_ymd_opt(2026, 12, 6).unwrap());
    let (found, notices) =
        engine::outage_findings(&runs, SOURCE, ZONE, ZONE.name(), "Школа", rule, week, local(7, 8, 0));
    let days: Vec<Option<NaiveDate>> = found.iter().map(|f| f.date).collect();
    assert_eq!(days, vec![Some(local(1, 0, 0).date()), Some(local(5, 0, 0).date())], "the night outage is not one");
    assert!(found.iter().all(|f| f.rule == "M21" && f.clause == "S4 учитель 12"));
    assert!(
        found[0].what.contains("01.12.2026 09:00") && found[0].what.contains("01.12.2026 12:00"),
        "{}",
        found[0].what
    );
    assert_eq!(notices.len(), 2);
    let text = &notices[0].text;
    assert!(text.contains("СЛУЖЕБНАЯ ЗАПИСКА") && text.contains("Системному администратору Школа"), "{text}");
    assert!(text.contains("01.12.2026 с 09:00 по 12:00"), "{text}");
    assert!(text.contains("3 попыток"), "{text}");
    assert!(notices[1].text.contains("05.12.2026 с 17:00 по 18:00"), "{}", notices[1].text);
    // outside the range: nothing
    let later =
        DateRange::new(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(), NaiveDate::from_ymd_opt(2026, 12, 13).unwrap());
    assert!(engine::outage_findings(&runs, SOURCE, ZONE, ZONE.name(), "Школа", rule, later, local(14, 8, 0))
        .0
        .is_empty());
}
