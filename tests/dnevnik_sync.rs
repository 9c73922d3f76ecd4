//! End to end: the Dnevnik emulator serving the synthetic school → the connector → the
//! sync engine → SQLite. The ground truth, the idempotent re-sync, the change log after the
//! school lives on, broken answers, a failure in the middle of a run and the request limit
//! are the acceptance kit's (`tests/acceptance.rs`); what is Dnevnik's own is here.

mod common;

use std::collections::BTreeSet;

use common::Harness;
use ejgate::store::RunStatus;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::synth::SynthConfig;

#[tokio::test]
async fn ids_above_two_to_the_53_survive_exactly() {
    let h = Harness::new(SynthConfig::small(2)).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let marks = h.store.records(ejgate_sdk::model::EntityKind::Mark, None, false).await.unwrap();
    let world_ids: BTreeSet<String> =
        h.emulator.world().read(|w| w.schools.iter().flat_map(|s| s.marks.keys().map(|k| k.to_string())).collect());
    let stored: BTreeSet<String> = marks.iter().map(|m| m.source_id.clone()).collect();
    assert!(world_ids.iter().all(|id| id.parse::<u64>().unwrap() > (1u64 << 53)));
    assert_eq!(stored, world_ids);
}

// ------------------------------------------------------------------ the forms of issue #14
//
// The connector against the forms SOURCES.md lists where the public clients disagree: the
// store must then hold the world's records, value by value (not only as many of them).

use std::collections::BTreeMap;

use ejgate_dnevnik::emulator::{Account, EmulatorOptions, Forms};
use ejgate_sdk::model::{EntityKind, IdSpace};
use ejgate_sdk::synth::World;

const INSTANCE: &str = "dnevnik-test";

fn small_world() -> World {
    World::generate(SynthConfig::small(1))
}

/// source id → content of the live records of a kind.
async fn stored(h: &Harness, kind: EntityKind) -> BTreeMap<String, serde_json::Value> {
    h.store.records(kind, None, false).await.unwrap().into_iter().map(|r| (r.source_id, r.content)).collect()
}

fn uuid(kind: EntityKind, id: u64) -> String {
    IdSpace::new(INSTANCE.to_string()).id(kind, &id.to_string()).to_string()
}

/// The marks of the world (all, or those of `pupils`): mark id → (student uuid, value).
fn world_marks(w: &World, pupils: Option<&[u64]>) -> BTreeMap<String, (String, String)> {
    w.schools
        .iter()
        .flat_map(|s| s.marks.values())
        .filter(|m| pupils.is_none_or(|p| p.contains(&m.student)))
        .map(|m| (m.id.to_string(), (uuid(EntityKind::Person, m.student), m.value.clone())))
        .collect()
}

fn marks_of(stored: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, (String, String)> {
    stored
        .iter()
        .map(|(k, v)| {
            (k.clone(), (v["student"].as_str().unwrap().to_string(), v["value"].as_str().unwrap().to_string()))
        })
        .collect()
}

/// Enrollments of the world (all, or those of `pupils`): "group:student" → archived.
fn world_enrollments(w: &World, pupils: Option<&[u64]>) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for e in w.schools.iter().flat_map(|s| &s.enrollments) {
        if pupils.is_none_or(|p| p.contains(&e.student)) && (pupils.is_none() || e.active) {
            let archived = out.entry(format!("{}:{}", e.unit, e.student)).or_insert(true);
            *archived &= !e.active;
        }
    }
    out
}

fn enrollments_of(stored: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, bool> {
    stored.iter().map(|(k, v)| (k.clone(), v["status"] == "archived")).collect()
}

/// Every number as a string, no `_str` twins, classes with a parent id, base URL `/v2.0/`:
/// the store holds every mark with its value and pupil, every pupil's name, every lesson's
/// topic, and the classes as classes.
#[tokio::test]
async fn string_numbers_parent_ids_and_the_v2_0_prefix() {
    let forms = Forms { numbers_as_strings: true, classes_with_parent: true, ..Forms::default() };
    let h =
        Harness::with_options(small_world(), EmulatorOptions { forms, ..EmulatorOptions::new(common::TOKEN) }).await;
    let base = h.emulator.base_url().replace("/v2/", "/v2.0/");
    let report = h.sync_with(SyncMode::Full, |c| c.base_url = base.parse().unwrap()).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let world = h.emulator.world().read(|w| w.clone());
    assert_eq!(marks_of(&stored(&h, EntityKind::Mark).await), world_marks(&world, None));
    assert_eq!(enrollments_of(&stored(&h, EntityKind::Enrollment).await), world_enrollments(&world, None));
    let persons = stored(&h, EntityKind::Person).await;
    for p in world.schools.iter().flat_map(|s| s.students.iter().chain(&s.teachers)) {
        let got = &persons[&p.id.to_string()];
        assert_eq!(
            (got["last_name"].as_str(), got["first_name"].as_str()),
            (Some(&*p.last_name), Some(&*p.first_name))
        );
    }
    let lessons = stored(&h, EntityKind::Lesson).await;
    for l in world.schools.iter().flat_map(|s| s.lessons.values()).filter(|l| l.date <= world.today) {
        let got = &lessons[&l.id.to_string()];
        assert_eq!(got["topic"].as_str(), l.topic.as_deref(), "lesson {}", l.id);
        assert_eq!(got["number"].as_u64(), Some(l.number as u64));
    }
    // Homework with its attachments (the works' `files[]`).
    let homework = stored(&h, EntityKind::Homework).await;
    let mut with_files = 0;
    for w in world.schools.iter().flat_map(|s| s.works.values()).filter(|w| w.is_homework) {
        let Some(got) = homework.get(&w.id.to_string()) else { continue };
        assert_eq!(got["text"].as_str(), Some(&*w.text));
        let files: Vec<(String, String)> = got["attachments"]
            .as_array()
            .map(|a| {
                a.iter().map(|f| (f["name"].as_str().unwrap().into(), f["url"].as_str().unwrap().into())).collect()
            })
            .unwrap_or_default();
        let expected: Vec<(String, String)> = w.attachments.iter().map(|a| (a.name.clone(), a.url.clone())).collect();
        assert_eq!(files, expected, "homework {}", w.id);
        with_files += usize::from(!expected.is_empty());
    }
    assert!(with_files > 0, "no homework with attachments was compared");
    let classes = stored(&h, EntityKind::Class).await;
    let world_classes: BTreeMap<String, (String, u64)> = world
        .schools
        .iter()
        .flat_map(|s| &s.classes)
        .map(|c| (c.id.to_string(), (c.name.clone(), c.grade as u64)))
        .collect();
    let got: BTreeMap<String, (String, u64)> = classes
        .iter()
        .map(|(k, v)| (k.clone(), (v["name"].as_str().unwrap().to_string(), v["grade"].as_u64().unwrap())))
        .collect();
    assert_eq!(got, world_classes);
}

/// Bare ids in the batch answer, and then the batch endpoint refused: the memberships are
/// the world's either way (the refused batch read group by group).
#[tokio::test]
async fn bare_ids_and_a_refused_batch_endpoint() {
    for forms in [Forms { bare_ids: true, ..Forms::default() }, Forms { refuse_batch: true, ..Forms::default() }] {
        let h = Harness::with_options(small_world(), EmulatorOptions { forms, ..EmulatorOptions::new(common::TOKEN) })
            .await;
        let report = h.sync(SyncMode::Full).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{forms:?}: {:?}", report.error);
        let world = h.emulator.world().read(|w| w.clone());
        assert_eq!(
            enrollments_of(&stored(&h, EntityKind::Enrollment).await),
            world_enrollments(&world, None),
            "{forms:?}"
        );
        if forms.refuse_batch {
            assert!(
                report.stats.warnings.iter().any(|w| w.contains("edu-groups/students") && w.contains("group by group")),
                "{:?}",
                report.stats.warnings
            );
        }
    }
}

/// Every group typed `Subgroup`: no class can be placed, and the run fails saying so
/// instead of succeeding with nothing read.
#[tokio::test]
async fn a_roster_without_a_placeable_class_fails_the_run() {
    let forms = Forms { all_subgroups: true, ..Forms::default() };
    let h =
        Harness::with_options(small_world(), EmulatorOptions { forms, ..EmulatorOptions::new(common::TOKEN) }).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("can be placed as a class"), "{error}");
    assert!(stored(&h, EntityKind::Mark).await.is_empty());
}

/// A parent's token reads the children's journal — their marks, attendance and
/// memberships, exactly — says so in the run, and refuses a configuration that asks for the
/// whole school.
#[tokio::test]
async fn a_parent_token_reads_the_children() {
    let world = small_world();
    let (guardian, children): (u64, Vec<u64>) = {
        let s = &world.schools[0];
        // The parent of a pupil with marks (first-graders get none).
        let marked = s.marks.values().next().unwrap().student;
        let g = s.guardianships.iter().find(|(_, c)| *c == marked).unwrap().0;
        (g, s.guardianships.iter().filter(|(x, _)| *x == g).map(|(_, c)| *c).collect())
    };
    let options = EmulatorOptions::new(common::TOKEN).with_account("parent-token-1", Account::Parent(guardian));
    let h = Harness::with_options(world, options).await;
    let report = h.sync_with(SyncMode::Full, |c| c.token = "parent-token-1".into()).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert!(report.stats.warnings.iter().any(|w| w.contains("parent") && w.contains("not the whole school")));
    let world = h.emulator.world().read(|w| w.clone());
    let marks = world_marks(&world, Some(&children));
    assert!(!marks.is_empty());
    assert_eq!(marks_of(&stored(&h, EntityKind::Mark).await), marks);
    assert_eq!(enrollments_of(&stored(&h, EntityKind::Enrollment).await), world_enrollments(&world, Some(&children)));
    let people: Vec<String> = stored(&h, EntityKind::Person).await.keys().cloned().collect();
    for c in &children {
        assert!(people.contains(&c.to_string()), "child {c} not stored");
    }
    let attendance = stored(&h, EntityKind::Attendance).await;
    let expected: BTreeMap<String, ()> = world
        .schools
        .iter()
        .flat_map(|s| s.attendance.keys())
        .filter(|(l, st)| {
            children.contains(st)
                && world.schools.iter().any(|s| s.lessons.get(l).is_some_and(|x| x.date <= world.today))
        })
        .map(|(l, st)| (format!("{l}:{st}"), ()))
        .collect();
    assert_eq!(attendance.keys().cloned().collect::<Vec<_>>(), expected.keys().cloned().collect::<Vec<_>>());
    // Asking for the whole school with this token is said plainly.
    let school = world.schools[0].id.to_string();
    let report = h
        .sync_with(SyncMode::Full, |c| {
            c.token = "parent-token-1".into();
            c.school_ids = vec![school.clone()];
        })
        .await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("staff member's token") && error.contains("parent"), "{error}");
}

/// A pupil's token reads the pupil: their marks and memberships, nobody else's.
#[tokio::test]
async fn a_pupil_token_reads_the_pupil() {
    let world = small_world();
    let pupil = world.schools[0].marks.values().next().unwrap().student;
    let options = EmulatorOptions::new(common::TOKEN).with_account("pupil-token-1", Account::Pupil(pupil));
    let h = Harness::with_options(world, options).await;
    let report = h.sync_with(SyncMode::Full, |c| c.token = "pupil-token-1".into()).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let world = h.emulator.world().read(|w| w.clone());
    let marks = world_marks(&world, Some(&[pupil]));
    assert!(!marks.is_empty());
    assert_eq!(marks_of(&stored(&h, EntityKind::Mark).await), marks);
    assert_eq!(enrollments_of(&stored(&h, EntityKind::Enrollment).await), world_enrollments(&world, Some(&[pupil])));
}
