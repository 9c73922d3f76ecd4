//! The emulator's own contract tests: the refresh rotation, token expiry, `{"msg"}` errors,
//! both forms of `lesson_marks`, and the failure modes.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::NaiveDate;
use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::Value;

use super::*;

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

/// `{accessToken, refreshToken}`, as SOURCES.md names them.
#[derive(serde::Deserialize)]
struct Pair {
    #[serde(rename = "accessToken")]
    access_token: String,
    #[serde(rename = "refreshToken")]
    refresh_token: String,
}

/// The `{accessToken, refreshToken}` pair of a granted refresh.
async fn pair(answer: reqwest::Response) -> (String, String) {
    assert_eq!(answer.status(), 200);
    let v: Value = answer.json().await.unwrap();
    (v["accessToken"].as_str().unwrap().to_string(), v["refreshToken"].as_str().unwrap().to_string())
}

/// The `exp` claim of a JWT (its payload decoded here, not with the connector's code).
fn exp_of(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let mut bytes = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    serde_json::from_slice::<Value>(&bytes).ok()?["exp"].as_u64()
}

async fn get(base: &str, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_access_tokens_are_jwts_that_expire() {
    let e = emu(|_| {}).await;
    let base = e.base_url();
    let (access, refresh) = pair(refresh_form(&base, RT).await).await;
    assert_eq!(refresh.len(), 32);
    assert!(refresh.chars().all(|c| c.is_ascii_hexdigit()));
    let exp = exp_of(&access).expect("a JWT with exp");
    assert!(exp > 1_700_000_000);

    // The old refresh token is refused after use, with {"msg"}.
    let again = refresh_form(&base, RT).await;
    assert_eq!(again.status(), 401);
    let body: Value = again.json().await.unwrap();
    assert!(body["msg"].as_str().unwrap().contains("refresh"));

    // JSON body works too, with the new one.
    let json = reqwest::Client::new()
        .post(format!("{base}diary/refresh"))
        .json(&serde_json::json!({"refresh-token": refresh}))
        .send()
        .await
        .unwrap();
    let (access2, refresh2) = pair(json).await;
    assert_eq!(e.state().current_refresh_token().as_deref(), Some(refresh2.as_str()));
    let control: Value = reqwest::get(format!("{base}__emulator/refresh_token")).await.unwrap().json().await.unwrap();
    assert_eq!(control["refreshToken"], refresh2.as_str(), "the control route shows the token in force");

    let user = get(&base, "diary/api/user?id=0", &access2).await;
    assert_eq!(user.status(), 200);
    let user: Value = user.json().await.unwrap();
    assert_eq!(user["parent"], true);
    let child = &user["children"][0];
    let id = child["id"].as_u64().expect("a child id as a JSON number");
    assert!(id > 1 << 53, "ids above 2^53: {id}");

    let no_token = reqwest::get(format!("{base}diary/api/user?id=0")).await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(no_token.json::<Value>().await.unwrap()["msg"].is_string());

    // The lifetime passes (the emulator's clock, not a wait): the same token is refused.
    e.state().expire_access_tokens();
    let expired = get(&base, "diary/api/user?id=0", &access2).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(expired.json::<Value>().await.unwrap()["msg"], "Token has expired");
    assert!(e.stats().expired >= 1);
    e.shutdown().await;
}

/// The children `user` lists and the study periods of the first one.
async fn children_and_periods(base: &str, token: &str) -> (Vec<Value>, Vec<Value>) {
    let user: Value = get(base, "diary/api/user?id=0", token).await.json().await.unwrap();
    let children = user["children"].as_array().unwrap().clone();
    let periods: Value =
        get(base, &format!("diary/api/study_periods?id={}", children[0]["id"]), token).await.json().await.unwrap();
    (children, periods.as_array().unwrap().clone())
}

#[tokio::test]
async fn both_forms_of_lesson_marks_carry_marks_and_attendance_with_string_weights() {
    for legacy in [false, true] {
        let e = emu(|o| o.legacy_marks = legacy).await;
        let base = e.base_url();
        let pair: Pair = refresh_form(&base, RT).await.json().await.unwrap();
        let (children, periods) = children_and_periods(&base, &pair.access_token).await;
        let (mut values, mut weights, mut averages) = (Vec::new(), Vec::new(), Vec::new());
        for child in &children {
            let path = format!("diary/api/lesson_marks/{}?id={}", periods[0]["id"], child["id"]);
            let raw: Value = get(&base, &path, &pair.access_token).await.json().await.unwrap();
            let field = if legacy { "marks" } else { "slots" };
            for l in raw["lessons"].as_array().unwrap() {
                averages.push(l["averages"]["for_student"].clone());
                for slot in l[field].as_array().unwrap_or_else(|| panic!("{field}: {l}")) {
                    // The current form: `mark: {value}`; the older: a bare string.
                    let value = if legacy { &slot["mark"] } else { &slot["mark"]["value"] };
                    values.push(value.as_str().expect("a mark value as a string").to_string());
                    weights.push(slot["weight"].clone());
                }
            }
        }
        assert!(values.iter().any(|v| v.parse::<u8>().is_ok()), "marks are served");
        assert!(values.iter().any(|v| v == "Н" || v == "Б" || v == "У"), "attendance as mark values");
        // Rails writes decimals as strings: "1.0".
        let weight = weights.iter().find_map(|w| w.as_str()).expect("a weight");
        assert!(weight.ends_with(".0") && weight.parse::<f64>().is_ok(), "{weight}");
        assert!(weights.iter().all(|w| w.is_string() || w.is_null()), "{weights:?}");
        // Averages are pairs like ["4.57", 5].
        let pair = averages.iter().find(|a| !a.is_null()).expect("an average");
        let (text, rounded) = (pair[0].as_str().unwrap(), pair[1].as_u64().unwrap());
        assert_eq!(text.split('.').nth(1).map(str::len), Some(2), "{pair}");
        assert_eq!(text.parse::<f64>().unwrap().round() as u64, rounded);
        e.shutdown().await;
    }
}

#[tokio::test]
async fn without_the_assumed_fields_slots_carry_what_the_public_clients_show() {
    let e = emu(|o| o.assumed_fields = false).await;
    let base = e.base_url();
    let pair: Pair = refresh_form(&base, RT).await.json().await.unwrap();
    let (children, periods) = children_and_periods(&base, &pair.access_token).await;
    assert!(children.iter().all(|c| c.get("school_class_id").is_none() && c["school_class"].is_string()));
    let mut slot = None;
    for child in &children {
        let path = format!("diary/api/lesson_marks/{}?id={}", periods[0]["id"], child["id"]);
        let raw: Value = get(&base, &path, &pair.access_token).await.json().await.unwrap();
        slot = raw["lessons"].as_array().unwrap().iter().find_map(|l| l["slots"].as_array()?.first().cloned());
        if slot.is_some() {
            break;
        }
    }
    let slot = slot.expect("a slot");
    let mut keys: Vec<&str> = slot.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert!(["lesson_date", "mark", "text", "updated_at"].iter().all(|k| keys.contains(k)), "{keys:?}");
    assert!(!keys.contains(&"id") && !keys.contains(&"lesson_event_id"), "{keys:?}");
    e.shutdown().await;
}

#[tokio::test]
async fn the_schedule_carries_marks_and_attendance_in_its_lessons_and_final_marks_are_keyed_by_mark_type() {
    let e = emu(|_| {}).await;
    let base = e.base_url();
    let pair: Pair = refresh_form(&base, RT).await.json().await.unwrap();
    let (children, periods) = children_and_periods(&base, &pair.access_token).await;
    let mut slot_values = Vec::new();
    for child in &children {
        // 2025-09-15..2025-10-03: ISO weeks 38 to 40 of 2025.
        for week in 38..=40 {
            let path = format!("diary/api/schedule?id={}&year=2025&week={week}", child["id"]);
            let raw: Value = get(&base, &path, &pair.access_token).await.json().await.unwrap();
            for lesson in raw["schedule"].as_array().unwrap() {
                assert!(lesson["lesson_event_id"].is_u64(), "{lesson}");
                for slot in lesson["slots"].as_array().unwrap() {
                    slot_values.push(slot["mark"]["value"].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert!(slot_values.iter().any(|v| v.parse::<u8>().is_ok()), "marks in the schedule's slots");
    assert!(slot_values.iter().any(|v| ["Н", "Б", "У"].contains(&v.as_str())), "«Н», «Б», «У» there too");

    // Final marks: keys are `standard_mark_type` ids, not study period ids.
    let class = children[0]["school_class_id"].as_str().unwrap();
    let path = format!("diary/api/student_marks/{class}?id={}", children[0]["id"]);
    let raw: Value = get(&base, &path, &pair.access_token).await.json().await.unwrap();
    let types = raw["standard_mark_type"].as_array().unwrap();
    let period_ids: Vec<String> = periods.iter().map(|p| p["id"].to_string()).collect();
    for t in types {
        assert!(t["id"].is_u64() && t["text"].is_string() && t["short_text"].is_string(), "{t}");
        assert!(!period_ids.contains(&t["id"].to_string()), "a type id is not a period id: {t}");
    }
    assert!(types.iter().any(|t| t["text"] == "Годовая"), "the year's type");
    let texts: Vec<&str> = types.iter().filter_map(|t| t["text"].as_str()).collect();
    assert!(periods.iter().all(|p| texts.contains(&p["text"].as_str().unwrap())), "each period's type by name");
    for subject in raw["lessons"].as_array().unwrap() {
        for (key, value) in subject["marks"].as_object().unwrap() {
            assert!(
                types.iter().any(|t| t["id"].as_u64().map(|i| i.to_string()).as_deref() == Some(key.as_str())),
                "{key} is a mark type"
            );
            assert!(value.is_u64() || value.is_string(), "{value}");
        }
    }
    e.shutdown().await;
}

#[tokio::test]
async fn a_parent_reads_its_children_and_a_pupil_itself_only() {
    let world = {
        let mut config = SynthConfig::small(21);
        config.students_per_class = 2;
        config.simulate_until = NaiveDate::from_ymd_opt(2025, 10, 3).unwrap();
        World::generate(config)
    };
    let pupils: Vec<u64> = world.schools[0].students.iter().map(|p| p.id).take(3).collect();
    let start_as = |account: Account| {
        let world = world.clone();
        async move {
            let mut options = EmulatorOptions::new(RT);
            options.account = account;
            start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
        }
    };
    let parent = start_as(Account::Parent(vec![pupils[0], pupils[1]])).await;
    let base = parent.base_url();
    let pair: Pair = refresh_form(&base, RT).await.json().await.unwrap();
    let user: Value = get(&base, "diary/api/user?id=0", &pair.access_token).await.json().await.unwrap();
    assert_eq!(user["parent"], true);
    let ids: Vec<u64> = user["children"].as_array().unwrap().iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![pupils[0], pupils[1]]);
    for (child, status) in [(pupils[1], 200), (pupils[2], 404)] {
        let answer = get(&base, &format!("diary/api/study_periods?id={child}"), &pair.access_token).await;
        assert_eq!(answer.status(), status, "child {child}");
    }
    parent.shutdown().await;

    let pupil = start_as(Account::Pupil(pupils[2])).await;
    let base = pupil.base_url();
    let pair: Pair = refresh_form(&base, RT).await.json().await.unwrap();
    let user: Value = get(&base, "diary/api/user?id=0", &pair.access_token).await.json().await.unwrap();
    assert_eq!((user["parent"].clone(), user["id"].as_u64()), (Value::Bool(false), Some(pupils[2])));
    assert_eq!(user["children"], serde_json::json!([]));
    assert!(user["last_name"].is_string() && user["school_class"].is_string(), "{user}");
    let own = get(&base, &format!("diary/api/study_periods?id={}", pupils[2]), &pair.access_token).await;
    assert_eq!(own.status(), 200);
    let other = get(&base, &format!("diary/api/study_periods?id={}", pupils[0]), &pair.access_token).await;
    assert_eq!(other.status(), 404);
    pupil.shutdown().await;
}

#[tokio::test]
async fn a_refresh_held_after_the_rotation_has_rotated_and_not_answered() {
    let e = emu(|_| {}).await;
    let base = e.base_url();
    control(&base, "hold?mode=refresh-answer").await;
    let asked = tokio::spawn({
        let base = base.clone();
        async move { refresh_form(&base, RT).await.status() }
    });
    let stats = wait_for_stats(&base, |s| s.refresh_held_now == 1).await;
    assert_eq!(stats.refresh_held, 1);
    let rotated = e.state().current_refresh_token().unwrap();
    assert_ne!(rotated, RT, "rotated before the answer");
    assert!(!asked.is_finished(), "unanswered while held");
    control(&base, "hold?mode=off").await;
    assert_eq!(asked.await.unwrap(), 200);

    // Held before: nothing rotates until it goes on.
    control(&base, "hold?mode=refresh").await;
    let asked = tokio::spawn({
        let (base, rt) = (base.clone(), rotated.clone());
        async move { refresh_form(&base, &rt).await.status() }
    });
    wait_for_stats(&base, |s| s.refresh_held_now == 1).await;
    assert_eq!(e.state().current_refresh_token().as_deref(), Some(rotated.as_str()), "not rotated yet");
    control(&base, "hold?mode=off").await;
    assert_eq!(asked.await.unwrap(), 200);
    assert_ne!(e.state().current_refresh_token().as_deref(), Some(rotated.as_str()));
    e.shutdown().await;
}

#[tokio::test]
async fn errors_are_msg_json_and_proxy_pages_are_html() {
    let e = emu(|_| {}).await;
    let base = e.base_url();
    let pair: Pair = refresh_form(&base, RT).await.json().await.unwrap();
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
    let st = EmulatorState::new(World::generate(SynthConfig::small(21)), &EmulatorOptions::new("r"));
    st.set_failure(Some(FailureMode::Html502), Some(2));
    assert_eq!(st.gate().take_failure(), Some(FailureMode::Html502));
    assert_eq!(st.gate().take_failure(), Some(FailureMode::Html502));
    assert_eq!(st.gate().take_failure(), None);
    assert_eq!(FailureMode::parse(st.failure_modes(), "off"), Some(None));
    assert_eq!(FailureMode::parse(st.failure_modes(), "expired"), Some(Some(FailureMode::Expired)));
    assert_eq!(FailureMode::parse(st.failure_modes(), "nope"), None);
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
    let old: Pair = refresh_form(&base, RT).await.json().await.unwrap();
    assert_eq!(get(&base, "diary/api/user?id=0", &old.access_token).await.status(), 200);

    let on = control(&base, "hold?mode=first-use").await;
    assert_eq!(on["mode"], "first-use");
    assert!(e.state().holds_first_use());
    let fresh: Pair = refresh_form(&base, &old.refresh_token).await.json().await.unwrap();
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
    let third: Pair = refresh_form(&base, &fresh.refresh_token).await.json().await.unwrap();
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
