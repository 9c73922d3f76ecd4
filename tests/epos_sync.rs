//! End to end: the ЭПОС.Школа emulator serving the synthetic school → the connector → the
//! sync engine → SQLite. The ground truth, the idempotent re-sync, the change log after the
//! school lives on, the 401/400 session errors and their message, broken answers, a token
//! expiring mid-run and the request limit are the acceptance kit's (`tests/acceptance.rs`,
//! `ejgate_epos::acceptance`); what is ЭПОС's own is here.

use std::collections::BTreeMap;
use std::time::Duration;

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_epos::acceptance::EposSystem;
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

struct Harness {
    system: EposSystem,
    store: Box<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(config: SynthConfig) -> Harness {
        let system = EposSystem::start(World::generate(config)).await.expect("emulator starts");
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
        self.system.emulator.world().read(|w| ejgate_epos::truth::TRUTH.expected_counts(w))
    }

    async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        self.store.live_counts(None).await.unwrap()
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_with_400_until_the_operator_renews_it() {
    let h = Harness::new(SynthConfig::small(4)).await;
    let state = h.system.emulator.state();
    state.set_token_ttl(Some(Duration::from_millis(1)));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let failed = h.sync(SyncMode::Full).await;
    assert_eq!(failed.status, RunStatus::Failed);
    let error = failed.error.unwrap();
    assert!(error.contains("POST lms/api/sessions") && error.contains("HTTP 400"), "{error}");
    assert!(error.contains("Войдите в ЭЖД заново") && error.contains("EJGATE_EPOS_TOKEN"), "{error}");
    assert!(h.live_counts().await.is_empty());
    // The operator puts a fresh token in place (the emulator's token lives again).
    state.set_token_ttl(None);
    let next = h.sync(SyncMode::Full).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(h.live_counts().await, h.expected());
}

/// What a stored record holds, by source id.
async fn stored(store: &dyn Store, kind: EntityKind) -> BTreeMap<String, serde_json::Value> {
    store.records(kind, None, false).await.unwrap().into_iter().map(|r| (r.source_id, r.content)).collect()
}

const PARENT_TOKEN: &str = "epos-parent-token-5c1e";
const PUPIL_TOKEN: &str = "epos-pupil-token-7a2d";

/// A parent's and a pupil's token (the access every public client has) against an emulator
/// served under a path prefix: the connector reads the children they see — lessons with the
/// topic from `lesson_name` and the section from `topic_name`, marks, absences with their
/// reasons, final marks joined by subject name and period dates — and says plainly when the
/// configuration asks for a whole school.
#[tokio::test]
async fn family_tokens_read_their_children_with_topics_final_marks_and_absence_reasons() {
    use ejgate_epos::emulator::{self, EmulatorOptions, FamilyAccount};
    let world = World::generate(SynthConfig::small(5));
    let s = &world.schools[0];
    let mut by_guardian: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (g, st) in &s.guardianships {
        by_guardian.entry(*g).or_default().push(*st);
    }
    // A family whose marks hold a comment and a «точка» (so that both are compared), the
    // most children first; its first child the one with a «точка».
    let has =
        |st: u64, f: &dyn Fn(&ejgate_sdk::synth::SynthMark) -> bool| s.marks.values().any(|m| m.student == st && f(m));
    let (guardian, mut children) = by_guardian
        .iter()
        .filter(|(_, c)| {
            c.iter().any(|st| has(*st, &|m| m.is_point)) && c.iter().any(|st| has(*st, &|m| m.comment.is_some()))
        })
        .max_by_key(|(_, c)| c.len())
        .map(|(g, c)| (*g, c.clone()))
        .expect("a family with a commented mark and a «точка»");
    children.sort_by_key(|st| !has(*st, &|m| m.is_point));
    let pupil = children[0];
    let mut options = EmulatorOptions::new(ejgate_epos::acceptance::TOKEN);
    options.family = vec![
        (PARENT_TOKEN.into(), FamilyAccount::Parent { guardian }),
        (PUPIL_TOKEN.into(), FamilyAccount::Pupil { student: pupil }),
    ];
    options.path_prefix = Some("/epos".into());
    let emu = emulator::start(world, options, std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let root = emu.base_url();

    let (mut seen_comment, mut seen_point) = (false, false);
    for (token, base, readers) in [
        // The prefix without its trailing slash, and with an API path family left on.
        (PARENT_TOKEN, format!("{root}epos"), children.clone()),
        (PUPIL_TOKEN, format!("{root}epos/core/api/"), vec![pupil]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let mut config = ejgate_epos::EposConfig::new("epos-family", base.parse().unwrap(), token.into());
        config.retry = ejgate_sdk::acceptance::fast_retries();
        let connector = std::sync::Arc::new(ejgate_epos::EposConnector::new(config).unwrap());
        let report = run_sync(&store, connector, &SyncOptions::default()).await.unwrap();
        assert_eq!(report.status, RunStatus::Succeeded, "{token}: {:?}", report.error);

        let persons = stored(&store, EntityKind::Person).await;
        let mut want: Vec<String> = readers.iter().map(|c| c.to_string()).collect();
        want.sort();
        assert_eq!(persons.keys().cloned().collect::<Vec<_>>(), want, "only the children the token sees");

        let (lessons, marks, finals, attendance, attachments) = emu.world().read(|w| {
            let s = &w.schools[0];
            let today = w.today;
            let units: std::collections::HashSet<u64> =
                s.enrollments.iter().filter(|e| readers.contains(&e.student) && e.active).map(|e| e.unit).collect();
            let lessons: BTreeMap<String, (Option<String>, Option<String>)> = s
                .lessons
                .values()
                .filter(|l| units.contains(&l.unit) && l.date <= today)
                .map(|l| (l.id.to_string(), (l.topic.clone(), l.section.clone())))
                .collect();
            let marks: BTreeMap<String, (String, Option<String>, bool)> = s
                .marks
                .values()
                .filter(|m| readers.contains(&m.student))
                .map(|m| (m.id.to_string(), (m.value.clone(), m.comment.clone(), m.is_point)))
                .collect();
            let attachments: BTreeMap<String, Vec<(String, String)>> = s
                .works
                .values()
                .filter(|wk| wk.is_homework && !wk.attachments.is_empty())
                .filter(|wk| s.lessons.get(&wk.lesson).is_some_and(|l| units.contains(&l.unit) && l.date <= today))
                .map(|wk| (wk.id.to_string(), wk.attachments.iter().map(|a| (a.name.clone(), a.url.clone())).collect()))
                .collect();
            let finals: Vec<(u64, String)> = s
                .final_marks
                .iter()
                .filter(|((st, _, _), _)| readers.contains(st))
                .map(|((st, _, _), f)| (*st, f.value.clone()))
                .collect();
            let attendance: BTreeMap<String, ejgate_sdk::synth::SynthAttendanceStatus> = s
                .attendance
                .iter()
                .filter(|((_, st), _)| readers.contains(st))
                .map(|((l, st), a)| (format!("{l}:{st}"), a.status))
                .collect();
            (lessons, marks, finals, attendance, attachments)
        });

        let got = stored(&store, EntityKind::Lesson).await;
        assert_eq!(got.keys().collect::<Vec<_>>(), lessons.keys().collect::<Vec<_>>(), "{token}: the lessons");
        let mut without_topic = 0;
        for (id, (topic, section)) in &lessons {
            let content = &got[id];
            assert_eq!(content["topic"].as_str(), topic.as_deref(), "lesson {id}: the topic is `lesson_name`");
            assert_eq!(content["section"].as_str(), section.as_deref(), "lesson {id}: the section is `topic_name`");
            without_topic += usize::from(topic.is_none() && section.is_some());
        }
        assert!(without_topic > 0, "lessons with a section and no topic must stay without a topic");

        let got = stored(&store, EntityKind::Homework).await;
        assert!(!attachments.is_empty());
        for (id, files) in &attachments {
            let stored: Vec<(String, String)> = got[id]["attachments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["name"].as_str().unwrap().to_string(), a["url"].as_str().unwrap().to_string()))
                .collect();
            assert_eq!(&stored, files, "homework {id}: its attachments");
        }

        let got = stored(&store, EntityKind::Mark).await;
        let values: BTreeMap<String, (String, Option<String>, bool)> = got
            .iter()
            .map(|(id, c)| {
                let comment = c["comment"].as_str().map(str::to_string);
                (id.clone(), (c["value"].as_str().unwrap().to_string(), comment, c["is_point"] == true))
            })
            .collect();
        assert_eq!(values, marks, "{token}: every mark of the children, with its value, comment and «точка»");
        seen_comment |= marks.values().any(|m| m.1.is_some());
        seen_point |= marks.values().any(|m| m.2);

        let got = stored(&store, EntityKind::FinalMark).await;
        assert!(!finals.is_empty());
        let mut got_finals: Vec<(u64, String)> = got
            .iter()
            .map(|(id, c)| (id.split(':').next().unwrap().parse().unwrap(), c["value"].as_str().unwrap().to_string()))
            .collect();
        let mut want_finals = finals.clone();
        got_finals.sort();
        want_finals.sort();
        assert_eq!(got_finals, want_finals, "{token}: every final mark, joined by subject name and period dates");
        assert!(got.values().all(|c| !c["period"].is_null()), "period marks placed in their periods");

        let got = stored(&store, EntityKind::Attendance).await;
        assert_eq!(got.len(), attendance.len(), "{token}: every absence");
        use ejgate_sdk::synth::SynthAttendanceStatus as A;
        for (key, status) in &attendance {
            let c = &got[key];
            let want = match status {
                A::AbsentUnexcused => ("absent", Some("unexcused")),
                A::Ill => ("absent", Some("illness")),
                A::AbsentExcused => ("absent", Some("excused")),
                A::Late => ("late", None),
            };
            assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some(want.0), want.1), "{key}");
        }
    }

    assert!(seen_comment && seen_point, "the children's marks have comments and «точки» to compare");

    // Asked for the whole school, a family token stops the run and says why.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("e.db").display())).await.unwrap();
    let mut config =
        ejgate_epos::EposConfig::new("epos-family", format!("{root}epos/").parse().unwrap(), PARENT_TOKEN.into());
    config.retry = ejgate_sdk::acceptance::fast_retries();
    config.school_ids = vec![emu.world().read(|w| w.schools[0].id.to_string())];
    let connector = std::sync::Arc::new(ejgate_epos::EposConnector::new(config).unwrap());
    let report = run_sync(&store, connector, &SyncOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("parent") && error.contains("staff profile") && error.contains("whole school"), "{error}");
    emu.shutdown().await;
}
