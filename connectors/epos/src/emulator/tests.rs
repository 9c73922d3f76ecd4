//! The emulator over HTTP: credentials in headers or cookies, the lost-session bodies,
//! paging until an empty page, the date formats.

use std::net::SocketAddr;

use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::Value;

use super::*;

const TOKEN: &str = "emu-test-token";

async fn emu() -> EmulatorHandle {
    let world = World::generate(SynthConfig::small(1));
    start(world, EmulatorOptions::new(TOKEN), SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

#[tokio::test]
async fn headers_or_cookies_open_the_api_and_a_refused_token_gets_the_session_body() {
    let e = emu().await;
    let http = reqwest::Client::new();
    let url = format!("{}core/api/academic_years", e.base_url());
    let pid = profile_id(0).to_string();
    let r = http.get(&url).header("auth-token", TOKEN).header("profile-id", &pid).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let years: Vec<Value> = r.json().await.unwrap();
    assert_eq!(years.iter().filter(|y| y["current_year"] == true).count(), 1);
    let cookie = format!("auth_token={TOKEN}; profile_id={pid}; aid=1");
    let r = http.get(&url).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(&url).header("auth-token", "wrong").header("profile-id", &pid).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново");
    e.state().set_token_ttl(Some(std::time::Duration::from_millis(1)));
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = http.get(&url).header("auth-token", TOKEN).header("profile-id", &pid).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново");
    e.shutdown().await;
}

#[tokio::test]
async fn marks_page_until_empty_with_both_date_formats() {
    let e = emu().await;
    let http = reqwest::Client::new();
    let pid = profile_id(0).to_string();
    let mut all = 0;
    let mut short_seen = false;
    for page in 1.. {
        let url = format!(
            "{}core/api/marks?created_at_from=01.09.2025&created_at_to=31.12.2025&page={page}&per_page=1000",
            e.base_url()
        );
        let r = http.get(&url).header("auth-token", TOKEN).header("profile-id", &pid).send().await.unwrap();
        let items: Vec<Value> = r.json().await.unwrap();
        if items.is_empty() {
            break;
        }
        short_seen |= items.len() < 1000;
        let m = &items[0];
        assert_eq!(m["date"].as_str().unwrap().len(), 10, "dd.MM.yyyy");
        assert_eq!(m["updated_at"].as_str().unwrap().len(), 16, "dd.MM.yyyy HH:mm");
        all += items.len();
    }
    assert!(short_seen, "the server caps per_page: a short page is not the end");
    let expected = e.world().read(|w| {
        w.schools[0]
            .marks
            .values()
            .filter(|m| m.entered_at.date() <= chrono::NaiveDate::from_ymd_opt(2025, 12, 31).unwrap())
            .count()
    });
    assert_eq!(all, expected);
    e.shutdown().await;
}

async fn get(e: &EmulatorHandle, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", e.base_url()))
        .header("auth-token", TOKEN)
        .header("profile-id", profile_id(0).to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn lessons_progress_and_attendance_carry_their_quirks() {
    let e = emu().await;
    let (student, units) = e.world().read(|w| {
        let s = &w.schools[0];
        let student = s
            .final_marks
            .keys()
            .map(|k| k.0)
            .find(|st| s.attendance.keys().any(|(_, a)| a == st))
            .expect("a pupil with final marks and absences");
        let units: Vec<String> = s.classes.iter().map(|c| c.id.to_string()).collect();
        (student, units.join(","))
    });
    let (status, lessons) =
        get(&e, &format!("jersey/api/schedule_items?from=2025-09-01&to=2025-09-07&group_id={units}&per_page=100"))
            .await;
    assert_eq!(status, 200);
    let l = &lessons[0];
    // `lesson_name` is the topic (null when there is none), `topic_name` the plan's section.
    let all = lessons.as_array().unwrap();
    assert!(all.iter().all(|l| l.get("lesson_name").is_some() && l.get("topic_name").is_some()));
    assert!(all.iter().all(|l| l["lesson_name"].is_string() || l["lesson_name"].is_null()));
    assert!(all.iter().any(|l| l["lesson_name"].is_string()), "the topics are in `lesson_name`");
    assert_eq!(l["date"].as_array().unwrap().len(), 3);
    assert_eq!(l["time"].as_array().unwrap().len(), 3);
    let iso = l["iso_date_time"].as_str().unwrap();
    assert!(iso.starts_with("2025-09-0") && iso.ends_with(".000") && !iso.contains('Z'), "{iso}");
    assert!(lessons
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["homeworks_to_give"].is_null() || l["homeworks_to_verify"].is_null()));

    let (_, progress) =
        get(&e, &format!("reports/api/progress/json?student_profile_id={student}&academic_year_id=1")).await;
    let subjects = progress.as_array().unwrap();
    assert!(subjects.iter().all(|s| s.get("subject_id").is_none() && s["subject_name"].is_string()), "no ids");
    assert!(subjects.iter().any(|s| s["periods"].as_array().unwrap().is_empty()), "subjects with \"periods\": []");
    let periods: Vec<&Value> = subjects.iter().flat_map(|s| s["periods"].as_array().unwrap()).collect();
    assert!(periods.iter().all(|p| p["avg_five"].is_null() || p["avg_five"].is_string()));
    assert!(periods.iter().any(|p| p["final_mark"].is_string()) && periods.iter().any(|p| p["final_mark"].is_null()));

    for flag in ["with_attendance", "with_attendances"] {
        let (_, profile) = get(&e, &format!("core/api/student_profiles/{student}?{flag}=true")).await;
        let list = profile["attendances"].as_array().unwrap();
        assert!(!list.is_empty(), "{flag}");
        // МЭШ's reason ids: 1 «н», 2 «б» (SOURCES.md); 3 and 4 are our assumption.
        assert!(list.iter().all(|a| [1, 2, 3, 4].contains(&a["absence_reason_id"].as_u64().unwrap())), "{flag}");
    }
    let (_, profile) = get(&e, &format!("core/api/student_profiles/{student}")).await;
    assert!(profile.get("attendances").is_none());
    let (status, body) = get(&e, "core/api/marks?created_at_from=2025-13-01&created_at_to=01.10.2025").await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(400)));
    e.shutdown().await;
}

/// A family token: its session profile, its children's data, and a refusal for the rest.
#[tokio::test]
async fn a_parent_token_sees_its_children_only() {
    let world = World::generate(SynthConfig::small(2));
    let (guardian, child, other) = {
        let s = &world.schools[0];
        let (g, c) = s.guardianships[0];
        let other =
            s.students.iter().map(|p| p.id).find(|p| !s.guardianships.iter().any(|(gg, st)| *gg == g && st == p));
        (g, c, other.unwrap())
    };
    let mut options = EmulatorOptions::new(TOKEN);
    options.family = vec![("parent-token".into(), FamilyAccount::Parent { guardian })];
    let e = start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let http = reqwest::Client::new();
    let session: Value = http
        .post(format!("{}lms/api/sessions", e.base_url()))
        .json(&serde_json::json!({"auth_token": "parent-token"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["profiles"][0]["type"], "parent");
    assert_eq!(session["profiles"][0]["id"], guardian);
    let ask = |path: String| {
        http.get(format!("{}{path}", e.base_url()))
            .header("cookie", format!("auth_token=parent-token; profile_id={guardian}"))
            .send()
    };
    let list: Vec<Value> = ask("core/api/student_profiles".into()).await.unwrap().json().await.unwrap();
    assert!(list.iter().any(|p| p["id"] == child) && list.iter().all(|p| p["id"] != other));
    assert!(list[0]["class_unit"]["id"].is_u64() && list[0]["groups"].is_array());
    assert_eq!(ask(format!("core/api/student_profiles/{child}")).await.unwrap().status(), 200);
    assert_eq!(ask(format!("core/api/student_profiles/{other}")).await.unwrap().status(), 403);
    let marks =
        ask(format!("core/api/marks?created_at_from=01.09.2025&created_at_to=31.12.2025&student_profile_id={other}"));
    assert_eq!(marks.await.unwrap().status(), 403);
    assert_eq!(ask("core/api/class_units?school_id=1".into()).await.unwrap().status(), 403, "staff lists");
    e.shutdown().await;
}
