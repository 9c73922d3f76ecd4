//! The emulator's own contract tests: the refresh rotation, token expiry, `{"msg"}` errors,
//! both forms of `lesson_marks`, and the failure modes.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::NaiveDate;
use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::Value;

use super::*;
use crate::api;

const RT: &str = "00112233445566778899aabbccddeeff";

async fn emu(tweak: impl FnOnce(&mut EmulatorOptions)) -> EmulatorHandle {
    let mut config = SynthConfig::small(21);
    config.students_per_class = 2;
    config.simulate_until = NaiveDate::from_ymd_opt(2025, 10, 3).unwrap();
    let mut options = EmulatorOptions::new(RT);
    tweak(&mut options);
    start(World::generate(config), options, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

async fn refresh_form(base: &str, rt: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}diary/refresh"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("refresh-token={rt}"))
        .send()
        .await
        .unwrap()
}

async fn get(base: &str, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_access_tokens_are_jwts_that_expire() {
    let e = emu(|o| o.access_lifetime = Duration::from_secs(1)).await;
    let base = e.base_url();
    let first = refresh_form(&base, RT).await;
    assert_eq!(first.status(), 200);
    let pair: api::RefreshAnswer = first.json().await.unwrap();
    assert_eq!(pair.refresh_token.len(), 32);
    assert!(pair.refresh_token.chars().all(|c| c.is_ascii_hexdigit()));
    let exp = api::jwt_exp(&pair.access_token).expect("a JWT with exp");
    assert!(exp > 1_700_000_000);

    // The old refresh token is refused after use, with {"msg"}.
    let again = refresh_form(&base, RT).await;
    assert_eq!(again.status(), 401);
    let body: Value = again.json().await.unwrap();
    assert!(body["msg"].as_str().unwrap().contains("refresh"));

    // JSON body works too, with the new one.
    let json = reqwest::Client::new()
        .post(format!("{base}diary/refresh"))
        .json(&serde_json::json!({"refresh-token": pair.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 200);
    let pair2: api::RefreshAnswer = json.json().await.unwrap();
    assert_eq!(e.state().current_refresh_token().as_deref(), Some(pair2.refresh_token.as_str()));

    let user = get(&base, "diary/api/user?id=0", &pair2.access_token).await;
    assert_eq!(user.status(), 200);
    let user: api::User = user.json().await.unwrap();
    assert!(user.parent && !user.children.is_empty());
    assert!(user.children[0].id.0.len() >= 16, "ids above 2^53 survive: {}", user.children[0].id);

    let no_token = reqwest::get(format!("{base}diary/api/user?id=0")).await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(no_token.json::<Value>().await.unwrap()["msg"].is_string());

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = get(&base, "diary/api/user?id=0", &pair2.access_token).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(expired.json::<Value>().await.unwrap()["msg"], "Token has expired");
    assert!(e.stats().expired >= 1);
    e.shutdown().await;
}

#[tokio::test]
async fn both_forms_of_lesson_marks_carry_marks_and_attendance() {
    for legacy in [false, true] {
        let e = emu(|o| o.legacy_marks = legacy).await;
        let base = e.base_url();
        let pair: api::RefreshAnswer = refresh_form(&base, RT).await.json().await.unwrap();
        let user: api::User = get(&base, "diary/api/user?id=0", &pair.access_token).await.json().await.unwrap();
        let periods: Vec<api::StudyPeriod> =
            get(&base, &format!("diary/api/study_periods?id={}", user.children[0].id), &pair.access_token)
                .await
                .json()
                .await
                .unwrap();
        let mut values = Vec::new();
        for child in &user.children {
            let raw: Value =
                get(&base, &format!("diary/api/lesson_marks/{}?id={}", periods[0].id, child.id), &pair.access_token)
                    .await
                    .json()
                    .await
                    .unwrap();
            let field = if legacy { "marks" } else { "slots" };
            assert!(raw["lessons"].as_array().unwrap().iter().all(|l| l[field].is_array()), "{field}");
            let parsed: api::LessonMarks = serde_json::from_value(raw).unwrap();
            for l in &parsed.lessons {
                for s in l.slots.iter().chain(&l.marks) {
                    values.push(s.value().unwrap().to_string());
                }
            }
        }
        assert!(values.iter().any(|v| v.parse::<u8>().is_ok()), "marks are served");
        assert!(values.iter().any(|v| v == "Н" || v == "Б" || v == "У"), "attendance as mark values");
        e.shutdown().await;
    }
}

#[tokio::test]
async fn errors_are_msg_json_and_proxy_pages_are_html() {
    let e = emu(|_| {}).await;
    let base = e.base_url();
    let pair: api::RefreshAnswer = refresh_form(&base, RT).await.json().await.unwrap();
    let unknown = get(&base, "diary/api/study_periods?id=42", &pair.access_token).await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.json::<Value>().await.unwrap()["msg"].is_string());
    let bad_week = get(&base, "diary/api/schedule?id=42", &pair.access_token).await;
    assert_eq!(bad_week.status(), 400);

    e.state().set_failure(Some(FailureMode::Html502), Some(1));
    let page = get(&base, "diary/api/user?id=0", &pair.access_token).await;
    assert_eq!(page.status(), 502);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert_eq!(get(&base, "diary/api/user?id=0", &pair.access_token).await.status(), 200, "count ran out");

    // `unauthorized` revokes the session: the refresh that follows is refused too.
    e.state().set_failure(Some(FailureMode::Unauthorized), Some(1));
    assert_eq!(get(&base, "diary/api/user?id=0", &pair.access_token).await.status(), 401);
    assert_eq!(refresh_form(&base, &pair.refresh_token).await.status(), 401);
    let fresh = e.state().login();
    assert_eq!(refresh_form(&base, &fresh).await.status(), 200);
    assert!(e.stats().refused_refreshes >= 1);
    e.shutdown().await;
}

#[test]
fn failure_count_runs_down() {
    let mut f = FailState { mode: Some(FailureMode::Html502), remaining: Some(2) };
    assert_eq!(f.take(), Some(FailureMode::Html502));
    assert_eq!(f.take(), Some(FailureMode::Html502));
    assert_eq!(f.take(), None);
    assert_eq!(FailureMode::parse("off"), Some(None));
    assert_eq!(FailureMode::parse("nope"), None);
}

async fn control(base: &str, query: &str) -> Value {
    let answer = reqwest::get(format!("{base}__emulator/{query}")).await.unwrap();
    assert_eq!(answer.status(), 200, "{query}");
    answer.json().await.unwrap()
}

/// Polls `stats` until `done` holds (a generous deadline, no fixed wait).
async fn wait_for_stats(base: &str, done: impl Fn(&EmulatorStats) -> bool) -> EmulatorStats {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats: EmulatorStats = serde_json::from_value(control(base, "stats").await).unwrap();
        if done(&stats) {
            return stats;
        }
        assert!(std::time::Instant::now() < deadline, "stats never got there: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn hold_first_use_keeps_the_first_request_of_a_fresh_access_token_open_until_released() {
    let e = emu(|_| {}).await;
    let base = e.base_url();
    // A token used before the hold goes on is not held.
    let old: api::RefreshAnswer = refresh_form(&base, RT).await.json().await.unwrap();
    assert_eq!(get(&base, "diary/api/user?id=0", &old.access_token).await.status(), 200);

    let on = control(&base, "hold?mode=first-use").await;
    assert_eq!(on["mode"], "first-use");
    assert!(e.state().holds_first_use());
    let fresh: api::RefreshAnswer = refresh_form(&base, &old.refresh_token).await.json().await.unwrap();
    // The refresh itself is never held, and the rotation happened.
    assert_eq!(e.state().current_refresh_token().as_deref(), Some(fresh.refresh_token.as_str()));
    assert_eq!(get(&base, "diary/api/user?id=0", &old.access_token).await.status(), 200, "a used token passes");

    let first_use = tokio::spawn({
        let (base, token) = (base.clone(), fresh.access_token.clone());
        async move { get(&base, "diary/api/user?id=0", &token).await.status() }
    });
    let stats = wait_for_stats(&base, |s| s.held_now == 1).await;
    assert_eq!((stats.held, stats.refreshes), (1, 2), "{stats:?}");
    assert!(!first_use.is_finished(), "the first use is held, unanswered");
    // Another request that came after it is answered, while the held one still is not:
    // held for good, not merely slow (ordered by events, not by waiting).
    assert_eq!(get(&base, "diary/api/user?id=0", &old.access_token).await.status(), 200);
    assert!(!first_use.is_finished(), "still held after a later request was answered");

    let off = control(&base, "hold?mode=off").await;
    assert_eq!((off["mode"].as_str(), off["held"].as_u64()), (Some("off"), Some(1)));
    assert_eq!(first_use.await.unwrap(), 200, "released, the request is answered");
    let stats = wait_for_stats(&base, |s| s.held_now == 0).await;
    assert_eq!(stats.held, 1);

    // Armed again: a token that has been used is never held again; a new one is.
    e.state().set_hold_first_use(true);
    assert_eq!(get(&base, "diary/api/user?id=0", &fresh.access_token).await.status(), 200);
    let third: api::RefreshAnswer = refresh_form(&base, &fresh.refresh_token).await.json().await.unwrap();
    let held = tokio::spawn({
        let (base, token) = (base.clone(), third.access_token.clone());
        async move { get(&base, "diary/api/user?id=0", &token).await.status() }
    });
    wait_for_stats(&base, |s| s.held_now == 1 && s.held == 2).await;
    e.state().set_hold_first_use(false);
    assert_eq!(held.await.unwrap(), 200);

    let bad = reqwest::get(format!("{base}__emulator/hold?mode=maybe")).await.unwrap();
    assert_eq!(bad.status(), 400);
    e.shutdown().await;
}
