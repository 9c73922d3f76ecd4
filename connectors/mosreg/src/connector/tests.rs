use super::*;

#[test]
fn the_session_end_is_read_from_the_body_in_both_shapes() {
    let c = MosregErrors;
    let a = format!(r#"{{"type": "authorization", "description": "{}", "details": null}}"#, api::SESSION_ENDED);
    let b = format!(r#"{{"code": 401, "message": "{}"}}"#, api::SESSION_ENDED);
    for body in [a, b] {
        for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST] {
            let got = c.classify(status, body.as_bytes()).unwrap();
            assert_eq!(got.kind, ErrorKind::Unauthorized, "{status} {body}");
            assert!(got.message.contains("Войдите в ЭЖД заново"));
        }
    }
    let other = br#"{"code": 400, "message": "Invalid parameter begin_date"}"#;
    assert_eq!(c.classify(StatusCode::BAD_REQUEST, other).unwrap().kind, ErrorKind::Client);
    assert_eq!(
        c.classify(StatusCode::TOO_MANY_REQUESTS, br#"{"type": "requestLimit", "description": "x"}"#).unwrap().kind,
        ErrorKind::RateLimited
    );
    assert_eq!(
        c.classify(StatusCode::BAD_GATEWAY, br#"{"code": 502, "message": "x"}"#).unwrap().kind,
        ErrorKind::Server
    );
    assert!(c.classify(StatusCode::BAD_GATEWAY, b"<html>").is_none());
    assert!(c.classify(StatusCode::from_u16(499).unwrap(), api::REFRESH_FAILED.as_bytes()).is_none());
    assert!(c.classify(StatusCode::BAD_REQUEST, b"[1, 2]").is_none(), "an array is no error body");
}

#[test]
fn the_staff_profile_of_a_school_is_chosen() {
    let p = |id: &str, kind: &str, school: Option<&str>| api::ProfileInfo {
        id: SourceId(id.into()),
        kind: Some(kind.into()),
        school_id: school.map(|s| SourceId(s.into())),
    };
    let staff = MosregConfig::new("x", MosregBaseUrls::production(), SecretString::from("t")).staff_profile_types;
    let list = [p("1", "parent", None), p("2", "student", Some("9")), p("3", "school_admin", Some("9"))];
    assert_eq!(choose_profile(&list, &staff).unwrap().id.0, "3");
    assert!(choose_profile(&list[..2], &staff).is_none());
    assert!(choose_profile(&[p("4", "school_admin", None)], &staff).is_none(), "a staff profile needs its school");
}

#[test]
fn the_current_year_wins_else_the_last() {
    let y = |id: &str, current: bool| api::AcademicYear {
        id: SourceId(id.into()),
        name: None,
        begin_date: None,
        end_date: None,
        current_year: current,
    };
    assert_eq!(choose_year(&[y("1", false), y("2", true), y("3", false)], None).unwrap().id.0, "2");
    assert_eq!(choose_year(&[y("1", false), y("3", false)], None).unwrap().id.0, "3");
    assert!(choose_year(&[], None).is_err());
}

#[test]
fn built_in_tables_load() {
    let t = Tables::load(None).unwrap();
    assert_eq!(t.attendance.get("1").unwrap().reason, Some(m::AbsenceReason::Illness));
    assert_eq!(t.attendance.get("4").unwrap().status, "late");
    assert_eq!(t.marks.get("five").unwrap().values.get("4+"), Some(&4.25));
    assert_eq!(t.marks.get("five").unwrap().special.get("н/а"), Some(&m::SpecialFinal::NotCertified));
    assert_eq!(t.work_types.get("Контрольная работа"), Some(&m::WorkKind::Control));
    assert_eq!(t.groups.get("elective"), Some(&m::GroupKind::Elective));
    assert_eq!(t.period_types.get("quarter"), Some(&m::PeriodKind::Quarter));
}

#[test]
fn a_mappings_dir_replaces_a_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mosreg")).unwrap();
    std::fs::write(dir.path().join("mosreg/attendance.toml"), "[codes]\n\"77\" = { status = \"late\" }\n").unwrap();
    let t = Tables::load(Some(dir.path())).unwrap();
    assert_eq!(t.attendance.get("77").unwrap().status, "late");
    assert!(t.attendance.get("1").is_none());
    std::fs::write(dir.path().join("mosreg/marks.toml"), "[codes\n").unwrap();
    let e = Tables::load(Some(dir.path())).err().unwrap();
    assert!(e.contains("mosreg/marks") && e.contains("marks.toml"), "{e}");
}

#[test]
fn the_refusal_hint_names_the_token_and_where_it_goes() {
    let h = refused_hint("mosreg-16", "/etc/ejgate/mosreg.token");
    for part in ["mosreg-16", "aupd_token", "Госуслуги", "/etc/ejgate/mosreg.token", "v2/token/refresh"] {
        assert!(h.contains(part), "{part}: {h}");
    }
}

#[test]
fn persons_read_sex_and_birth_date_when_given() {
    let p: api::Profile = serde_json::from_str(
        r#"{"id": 5, "type": "student", "person_id": "a-b", "user": {"last_name": "Иванова", "first_name": "Анна",
            "middle_name": "", "sex": "female", "birth_date": "2014-03-02"}, "class_unit": {"id": 7, "name": "5А"}}"#,
    )
    .unwrap();
    let person = person(p, m::Role::Student);
    assert_eq!(person.middle_name, None);
    assert_eq!(person.sex, Some(m::Sex::Female));
    assert_eq!(person.birth_date, NaiveDate::from_ymd_opt(2014, 3, 2));
}

#[test]
fn an_unreadable_event_is_skipped_naming_the_field_and_the_others_are_kept() {
    let c =
        MosregConnector::new(MosregConfig::new("mosreg-test", MosregBaseUrls::production(), "t".to_string().into()))
            .unwrap();
    let good = r#"{"id": 1, "start_at": "2025-09-01T08:30:00+03:00", "group_id": 7, "marks": null}"#;
    // `marks` is an object where a list is expected: this copy cannot be read.
    let bad = r#"{"id": 2, "start_at": "2025-09-01T09:30:00+03:00", "marks": {"value": "5"}}"#;
    let one_pass = format!(r#"{{"total_count": 2, "response": [{good}, {good}], "errors": null}}"#);
    let mut skipped = Vec::new();
    let events = c.events(one_pass.as_bytes(), &mut skipped).unwrap();
    assert_eq!((events.len(), skipped.len()), (2, 0));
    let mixed = format!(r#"{{"total_count": 2, "response": [{good}, {bad}], "errors": null}}"#);
    let events = c.events(mixed.as_bytes(), &mut skipped).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id.0, "1");
    assert_eq!(events[0].lesson().unwrap().group_id.unwrap().0, "7");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].endpoint, "GET api/eventcalendar/v1/api/events");
    assert_eq!(skipped[0].field, "marks");
    assert!(skipped[0].excerpt.contains(r#""id": 2"#), "{:?}", skipped[0]);
    // Not an events answer at all: the whole answer fails, naming the endpoint.
    let e = c.events(b"<html>502</html>", &mut skipped).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(e.to_string().contains("api/eventcalendar/v1/api/events"), "{e}");
    // A lesson part that does not read names its field.
    let odd: api::Events = serde_json::from_str(r#"{"response": [{"id": 3, "lesson_number": "первый"}]}"#).unwrap();
    let e = odd.response.unwrap()[0].lesson().unwrap_err();
    assert!(e.starts_with("field `lesson_number`"), "{e}");
}
