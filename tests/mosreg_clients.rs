//! A published «Моя школа» client, unchanged, against our emulator: OctoDiary (PyPI
//! `octodiary`, pinned in `.ci/requirements.txt`) reads a parent's profile, family profile
//! (both hosts), academic years, events (mobile and web), marks, subject marks and class
//! members, then refreshes the token. What it must see is computed here from the synthetic
//! world, not from the emulator's code. `tests/clients/octodiary_mosreg.py` is the client's
//! side; a missing Python package fails the test (CI installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use chrono::NaiveDate;
use ejgate_mosreg::emulator::{self, person_guid, EmulatorOptions, FamilyAccount};
use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::json;

const STAFF_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzdGFmZiJ9.c3RhZmY";
const PARENT_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwYXJlbnQifQ.cGFyZW50";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octodiary_reads_a_parents_children_from_the_emulator() {
    let world = World::generate(SynthConfig::small(11));
    let (from, to) = (NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(), NaiveDate::from_ymd_opt(2025, 10, 31).unwrap());
    // A guardian with two children if there is one (else one), and what each must show.
    let s = &world.schools[0];
    let mut by_guardian: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (g, st) in &s.guardianships {
        by_guardian.entry(*g).or_default().push(*st);
    }
    let (guardian, children) =
        by_guardian.iter().max_by_key(|(_, c)| c.len()).map(|(g, c)| (*g, c.clone())).expect("a guardian");
    let mut expected_children = Vec::new();
    for &child in &children {
        let units: BTreeSet<u64> = s.enrollments.iter().filter(|e| e.student == child).map(|e| e.unit).collect();
        let class = s
            .enrollments
            .iter()
            .filter(|e| e.student == child && e.active)
            .find_map(|e| s.classes.iter().find(|c| c.id == e.unit))
            .expect("a class");
        let lessons: Vec<u64> = s
            .lessons
            .values()
            .filter(|l| units.contains(&l.unit) && l.date >= from && l.date <= to)
            .map(|l| l.id)
            .collect();
        let in_range: BTreeSet<u64> = lessons.iter().copied().collect();
        let marks: BTreeMap<String, String> = s
            .marks
            .values()
            .filter(|m| m.student == child && in_range.contains(&m.lesson))
            .map(|m| (m.id.to_string(), m.value.clone()))
            .collect();
        let absences: Vec<u64> =
            s.attendance.keys().filter(|(l, st)| *st == child && in_range.contains(l)).map(|(l, _)| *l).collect();
        let members: BTreeSet<u64> = s.enrollments.iter().filter(|e| e.unit == class.id).map(|e| e.student).collect();
        assert!(!lessons.is_empty() && !marks.is_empty(), "the test needs lessons and marks to compare");
        expected_children.push(json!({
            "id": child, "guid": person_guid(child), "class_unit_id": class.id,
            "lessons": lessons, "marks": marks, "absences": absences, "class_members": members,
        }));
    }
    let expected = json!({
        "profile_id": guardian, "year_id": s.year.id, "from": from.to_string(), "to": to.to_string(),
        "children": expected_children,
    });

    let mut options = EmulatorOptions::new(STAFF_TOKEN);
    options.family.push((PARENT_TOKEN.into(), FamilyAccount::Parent { guardian }));
    let emu = emulator::start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("expected.json");
    std::fs::write(&path, expected.to_string()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/octodiary_mosreg.py");
    let base = emu.base_url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(base)
            .arg(&path)
            .env("OCTODIARY_TOKEN", PARENT_TOKEN)
            .output()
            .expect("python3 runs (the CI installs it with .ci/requirements.txt)")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "octodiary against the emulator failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(emu.stats().refreshed >= 1, "the client's refresh reached the emulator");
    emu.shutdown().await;
}
