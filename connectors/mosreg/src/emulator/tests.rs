//! The emulator over HTTP: the token's transports, life and refresh, the wrappings, the
//! string values and the date formats.

use std::net::SocketAddr;

use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::Value;

use super::*;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl";

async fn emu(options: EmulatorOptions) -> EmulatorHandle {
    let world = World::generate(SynthConfig::small(1));
    start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

async fn get(e: &EmulatorHandle, path: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}{path}", e.base_url()))
        .bearer_auth(token)
        .header("Profile-Id", profile_id(0).to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn any_one_transport_opens_the_api_and_a_refused_token_gets_the_session_body() {
    let e = emu(EmulatorOptions::new(TOKEN)).await;
    let http = reqwest::Client::new();
    let url = format!("{}core/api/academic_years?pid=null", e.base_url());
    let pid = profile_id(0).to_string();
    let requests = [
        http.get(&url).header("Authorization", format!("Bearer {TOKEN}")),
        http.get(&url).header("Auth-Token", TOKEN),
        http.get(&url).header("Cookie", format!("aupd_token={TOKEN}")),
        http.get(&url).header("Cookie", format!("other=1; aupdtoken={TOKEN}")),
    ];
    for r in requests {
        let r = r.header("profile-id", &pid).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let years: Vec<Value> = r.json().await.unwrap();
        assert_eq!(years.iter().filter(|y| y["current_year"] == true).count(), 1, "a bare array");
    }
    let (status, body) = get(&e, "core/api/academic_years", "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["description"], "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново");
    e.shutdown().await;
}

#[tokio::test]
async fn a_token_expires_after_its_requests_and_the_refresh_answers_plain_text() {
    let mut options = EmulatorOptions::new(TOKEN);
    options.token_requests = Some(2);
    options.error_shape = ErrorShape::CodeMessage;
    let e = emu(options).await;
    assert_eq!(get(&e, "acl/api/users/profile_info", TOKEN).await.0, 200);
    assert_eq!(get(&e, "acl/api/users/profile_info", TOKEN).await.0, 200);
    let (status, body) = get(&e, "acl/api/users/profile_info", TOKEN).await;
    assert_eq!((status, body["code"].as_u64()), (401, Some(401)));
    assert_eq!(body["message"], "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново");

    let refresh = |token: &str| {
        reqwest::Client::new().get(format!("{}v2/token/refresh", e.base_url())).bearer_auth(token.to_string()).send()
    };
    let r = refresh(TOKEN).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let fresh = r.text().await.unwrap();
    assert!(!fresh.starts_with('"') && fresh != TOKEN, "the new token, as plain text: {fresh}");
    assert_eq!(get(&e, "acl/api/users/profile_info", &fresh).await.0, 200);

    e.state().set_refresh_allowed(false);
    let r = refresh(&fresh).await.unwrap();
    assert_eq!(r.status().as_u16(), 499);
    assert_eq!(r.text().await.unwrap(), "Something went wrong");
    assert_eq!(refresh("unknown").await.unwrap().status().as_u16(), 499);
    assert_eq!(e.stats().refreshed, 1);

    e.state().expire_tokens();
    assert_eq!(get(&e, "acl/api/users/profile_info", &fresh).await.0, 401);
    e.state().renew_token();
    assert_eq!(get(&e, "acl/api/users/profile_info", TOKEN).await.0, 200);
    e.shutdown().await;
}

#[tokio::test]
async fn events_marks_and_subject_marks_keep_their_wrapping_strings_and_offsets() {
    let e = emu(EmulatorOptions::new(TOKEN)).await;
    let (student, guid, subject_with_final) = e.world().read(|w| {
        let s = &w.schools[0];
        let (&(student, subject, _), _) =
            s.final_marks.iter().find(|((st, _, _), _)| s.attendance.keys().any(|(_, a)| a == st)).unwrap();
        (student, person_guid(student), subject)
    });
    let (status, events) = get(
        &e,
        &format!("api/eventcalendar/v1/api/events?person_ids={guid}&begin_date=2025-09-01&end_date=2025-12-31&expand=marks,homework,absence_reason_id,health_status,nonattendance_reason_id"),
        TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(events["total_count"].as_u64().unwrap() as usize, events["response"].as_array().unwrap().len());
    assert!(events["errors"].is_null());
    let list = events["response"].as_array().unwrap();
    let start = list[0]["start_at"].as_str().unwrap();
    assert!(start.ends_with("+03:00") && start.starts_with("2025-09-0"), "{start}");
    let mark = list.iter().flat_map(|ev| ev["marks"].as_array().unwrap()).next().expect("a mark");
    assert!(mark["value"].is_string(), "value is a JSON string: {mark}");
    assert!(mark["values"][0]["grade"]["five"].is_number());
    assert!(list.iter().any(|ev| ev["is_missed_lesson"] == true && ev["absence_reason_id"].is_number()));
    assert!(list.iter().any(|ev| !ev["homework"]["entries"].as_array().unwrap().is_empty()));

    let (_, bare) = get(
        &e,
        &format!("api/eventcalendar/v1/api/events?person_ids={guid}&begin_date=2025-09-01&end_date=2025-09-30"),
        TOKEN,
    )
    .await;
    assert!(bare["response"][0].get("marks").is_none(), "marks only when expanded");

    let (_, marks) =
        get(&e, &format!("api/family/web/v1/marks?student_id={student}&from=2025-09-01&to=2025-12-31"), TOKEN).await;
    let m = &marks["payload"][0];
    assert!(m["value"].is_string());
    let created = m["created_at"].as_str().unwrap();
    assert_eq!(created.len(), 19, "yyyy-MM-ddTHH:mm:ss without zone: {created}");
    assert_eq!(m["date"].as_str().unwrap().len(), 10);
    let (_, mobile) =
        get(&e, &format!("family/mobile/v1/marks?student_id={student}&from=2025-09-01&to=2025-12-31"), TOKEN).await;
    assert_eq!(mobile, marks, "the mobile twin answers the same");

    let (_, sm) = get(&e, &format!("family/mobile/v1/subject_marks?student_id={student}"), TOKEN).await;
    let subj = sm["payload"].as_array().unwrap().iter().find(|x| x["subject_id"] == subject_with_final).unwrap();
    assert!(subj["average"].is_string());
    let p = &subj["periods"][0];
    assert!(p["value"].is_string() && (p["fixed_value"].is_string() || p["fixed_value"].is_null()), "{p}");

    let (_, profiles) = get(
        &e,
        &format!(
            "core/api/profiles?class_unit_id={}&types=student&per_page=3",
            e.world().read(|w| w.schools[0].classes[0].id)
        ),
        TOKEN,
    )
    .await;
    assert!(profiles.is_array() && profiles.as_array().unwrap().len() == 3, "a bare array, paged");
    assert!(profiles[0]["person_id"].as_str().unwrap().contains('-'));

    let (status, body) =
        get(&e, "api/eventcalendar/v1/api/events?person_ids=x&begin_date=2025-13-01&end_date=2025-10-01", TOKEN).await;
    assert_eq!((status, body["type"].as_str()), (400, Some("parameterInvalid")));
    e.shutdown().await;
}

/// A contingent GUID leads back to its person; any other GUID to nobody.
#[test]
fn a_guid_leads_back_to_its_person() {
    for id in [1u64, 1_000_017, (7u64 << 48) | 0x1234_5678_9abc, u64::MAX >> 1] {
        assert_eq!(guid_person(&person_guid(id)), Some(id));
    }
    assert_eq!(guid_person("6d6f7372-0000-4000-8000-00000000000g"), None);
    assert_eq!(guid_person("00000000-0000-4000-8000-000000000001"), None, "another prefix");
    assert_eq!(guid_person("not a guid"), None);
}
