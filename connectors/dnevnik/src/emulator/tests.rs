//! The emulator against a real client: a server on 127.0.0.1:0 and reqwest.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use ejgate_sdk::model::{GroupKind, PeriodKind, Sex};
use ejgate_sdk::synth::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;

const TOKEN: &str = "test-token-123";

fn id(n: u64) -> u64 {
    FIRST_ID + n
}

fn day(m: u32, d: u32) -> NaiveDate {
    let y = if m >= 9 { 2025 } else { 2026 };
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at(m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
    day(m, d).and_hms_opt(h, mi, 0).unwrap()
}

fn person(n: u64, user: Option<u64>, last: &str, first: &str, middle: &str, sex: Sex) -> SynthPerson {
    SynthPerson {
        id: id(n),
        user_id: user.map(id),
        last_name: last.into(),
        first_name: first.into(),
        middle_name: middle.into(),
        sex,
        birth_date: NaiveDate::from_ymd_opt(2014, 3, 1).unwrap(),
    }
}

/// A hand-made school: class 5А (id 50) with an English subgroup (51) and an elective (52).
fn tiny_world() -> World {
    let mut config = SynthConfig::small(1);
    config.simulate_until = day(9, 10);
    let lesson = |n, unit, subject, teacher, date, number, topic: Option<&str>| SynthLesson {
        id: id(n),
        unit: id(unit),
        subject: id(subject),
        teacher: id(teacher),
        substitute: None,
        date,
        number,
        topic: topic.map(str::to_owned),
        cancelled: false,
        section: None,
    };
    let mut cancelled = lesson(61, 50, 10, 30, day(9, 2), 1, Some("Дроби"));
    cancelled.cancelled = true;
    cancelled.substitute = Some(id(31));
    let lessons = [
        lesson(60, 50, 10, 30, day(9, 1), 1, Some("Натуральные числа")),
        cancelled,
        lesson(62, 51, 11, 31, day(9, 1), 2, None),
        lesson(63, 50, 10, 30, day(9, 8), 1, Some("Повторение")),
    ];
    let work = |n, lesson, work_type, hw, text: &str, created, target| SynthWork {
        id: id(n),
        lesson: id(lesson),
        work_type: id(work_type),
        is_homework: hw,
        text: text.into(),
        created_at: created,
        target_date: target,
        attachments: Vec::new(),
    };
    let works = [
        work(70, 60, 20, false, "Работа на уроке", at(9, 1, 9, 0), day(9, 1)),
        SynthWork {
            attachments: vec![SynthAttachment {
                name: "Карточка №3.pdf".into(),
                url: "https://files.example/c3.pdf".into(),
            }],
            ..work(71, 60, 22, true, "№ 12, 14", at(9, 1, 14, 0), day(9, 3))
        },
        work(72, 62, 21, false, "Контрольная работа", at(9, 1, 10, 0), day(9, 1)),
    ];
    let mark = |n, student, lesson, work, value: &str, entered: NaiveDateTime| SynthMark {
        id: id(n),
        student: id(student),
        lesson: id(lesson),
        work: id(work),
        value: value.into(),
        entered_at: entered,
        entered_by: id(30),
        comment: None,
        is_point: false,
        point_date: None,
    };
    let marks = [
        mark(80, 40, 60, 70, "5", day(9, 1).and_time(NaiveTime::from_hms_nano_opt(10, 15, 30, 123_456_789).unwrap())),
        mark(81, 41, 60, 70, "3-", at(9, 3, 15, 0)),
        mark(82, 40, 62, 72, "2", at(9, 1, 11, 0)),
    ];
    let final_mark = |v: &str| SynthFinalMark { value: v.into(), entered_at: at(10, 24, 12, 0) };
    let attendance =
        |s, c: Option<&str>| SynthAttendance { status: s, comment: c.map(str::to_owned), entered_at: at(9, 1, 9, 5) };
    let school = School {
        id: id(1),
        name: "МБОУ СОШ № 16".into(),
        full_name: "Муниципальное бюджетное общеобразовательное учреждение «СОШ № 16»".into(),
        municipality: "Городской округ Подольск".into(),
        city: "Подольск".into(),
        time_zone: "Europe/Moscow".into(),
        year: SynthYear { id: id(2), name: "2025/2026".into(), start: day(9, 1), end: day(5, 31) },
        periods: vec![
            SynthPeriod {
                id: id(3),
                kind: PeriodKind::Quarter,
                number: 1,
                name: "1 четверть".into(),
                start: day(9, 1),
                end: day(10, 24),
            },
            SynthPeriod {
                id: id(4),
                kind: PeriodKind::Quarter,
                number: 2,
                name: "2 четверть".into(),
                start: day(11, 5),
                end: day(12, 28),
            },
        ],
        holidays: vec![SynthHoliday {
            id: id(5),
            name: "Осенние каникулы".into(),
            start: day(10, 25),
            end: day(11, 4),
        }],
        subjects: vec![
            SynthSubject {
                id: id(10), name: "Математика".into(), knowledge_area: "Математика".into()
            },
            SynthSubject {
                id: id(11), name: "Английский язык".into(), knowledge_area: "Филология".into()
            },
        ],
        work_types: vec![
            SynthWorkType {
                id: id(20),
                code: "lesson".into(),
                title: "Ответ на уроке".into(),
                abbr: "О".into(),
                weight: 1,
            },
            SynthWorkType {
                id: id(21),
                code: "control".into(),
                title: "Контрольная работа".into(),
                abbr: "К/Р".into(),
                weight: 3,
            },
            SynthWorkType {
                id: id(22),
                code: "homework".into(),
                title: "Домашнее задание".into(),
                abbr: "Д/З".into(),
                weight: 1,
            },
        ],
        bells: vec![],
        teachers: vec![
            person(30, Some(130), "Петрова", "Анна", "Сергеевна", Sex::Female),
            person(31, None, "Смит", "Джон", "", Sex::Male),
        ],
        students: vec![
            person(40, Some(140), "Иванов", "Пётр", "Андреевич", Sex::Male),
            person(41, None, "Кузнецова", "Мария", "Олеговна", Sex::Female),
            person(42, Some(142), "Сидоров", "Илья", "Павлович", Sex::Male),
            person(43, None, "Орлова", "Вера", "Ивановна", Sex::Female),
        ],
        guardians: vec![person(44, Some(144), "Иванова", "Ольга", "Петровна", Sex::Female)],
        guardianships: vec![(id(44), id(40)), (id(44), id(41))],
        classes: vec![SynthClass { id: id(50), name: "5А".into(), grade: 5, homeroom_teacher: Some(id(30)) }],
        groups: vec![
            SynthGroup {
                id: id(51),
                class_id: id(50),
                name: "5А Английский язык, 1 подгруппа".into(),
                kind: GroupKind::Subgroup,
                subject_id: Some(id(11)),
            },
            SynthGroup {
                id: id(52),
                class_id: id(50),
                name: "5А ГПД".into(),
                kind: GroupKind::AfterSchool,
                subject_id: None,
            },
        ],
        enrollments: [(40, 50, true), (41, 50, true), (42, 50, true), (43, 50, false), (40, 51, true), (41, 51, true)]
            .into_iter()
            .map(|(s, u, active)| SynthEnrollment {
                student: id(s),
                unit: id(u),
                active,
                from: day(9, 1),
                to: (!active).then(|| day(9, 5)),
            })
            .collect(),
        loads: vec![
            SynthLoad { teacher: id(30), subject: id(10), unit: id(50), hours_per_week: 5 },
            SynthLoad { teacher: id(31), subject: id(11), unit: id(51), hours_per_week: 3 },
            SynthLoad { teacher: id(30), subject: id(11), unit: id(50), hours_per_week: 1 },
        ],
        timetable: vec![],
        lessons: lessons.into_iter().map(|l| (l.id, l)).collect(),
        works: works.into_iter().map(|w| (w.id, w)).collect(),
        marks: marks.into_iter().map(|m| (m.id, m)).collect(),
        final_marks: BTreeMap::from([
            ((id(40), id(10), Some(id(3))), final_mark("5")),
            ((id(40), id(10), None), final_mark("осв")),
            ((id(43), id(11), Some(id(3))), final_mark("н/а")),
        ]),
        attendance: BTreeMap::from([
            ((id(60), id(42)), attendance(SynthAttendanceStatus::Ill, Some("справка"))),
            ((id(60), id(41)), attendance(SynthAttendanceStatus::AbsentExcused, None)),
            ((id(62), id(41)), attendance(SynthAttendanceStatus::Late, None)),
            ((id(63), id(40)), attendance(SynthAttendanceStatus::AbsentUnexcused, None)),
        ]),
    };
    World {
        config,
        today: day(9, 10),
        schools: vec![school],
        truth: vec![],
        next_id: id(1000),
        sim: SimState::default(),
    }
}

async fn emulator(options: EmulatorOptions) -> EmulatorHandle {
    start(tiny_world(), options, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

struct Client {
    http: reqwest::Client,
    base: String,
    root: String,
}

impl Client {
    fn new(emu: &EmulatorHandle) -> Self {
        Client { http: reqwest::Client::new(), base: emu.base_url(), root: emu.root_url() }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).header("Access-Token", TOKEN).send().await.unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("Access-Token", TOKEN)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn control(&self, path: &str) -> Value {
        let resp = self.http.post(format!("{}__emulator/{path}", self.root)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.unwrap()
    }
}

/// A GET over a bare socket, read until the server closes: (head, body bytes).
async fn raw_get(emu: &EmulatorHandle, path: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(emu.addr).await.unwrap();
    let request =
        format!("GET /v2/{path} HTTP/1.1\r\nHost: {}\r\nAccess-Token: {TOKEN}\r\nConnection: close\r\n\r\n", emu.addr);
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let head = head.replacen("http/1.1", "HTTP/1.1", 1);
    (head, answer[split..].to_vec())
}

fn error_body(kind: &str, description: &str) -> Value {
    json!({"type": kind, "description": description})
}

#[tokio::test]
async fn both_prefixes_answer_with_the_clock() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let http = reqwest::Client::new();
    for prefix in ["v2", "v2.0"] {
        let resp = http
            .get(format!("http://{}/{prefix}/users/me/context", emu.addr))
            .header("Access-Token", TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        // 10 September 2025, 20:00 Moscow time.
        assert_eq!(resp.headers()["date"], "Wed, 10 Sep 2025 17:00:00 GMT");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["schools"][0]["id"].as_u64(), Some(id(1)));
        assert_eq!(v["schools"][0]["groupIds"], json!([id(50)]));
        assert_eq!(v["roles"], json!(["EduSchoolAdministrator", "OrganizationStaff"]));
        assert_eq!(v["userId_str"], ADMIN_USER_ID.to_string());
    }
    // The token in the query works too.
    let resp = http.get(format!("{}schools/{}?access_token={TOKEN}", emu.base_url(), id(1))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_and_wrong_tokens() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let http = reqwest::Client::new();
    let url = format!("{}users/me/context", emu.base_url());
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("date"));
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        error_body("tokenRequired", "You must supply valid token to access method")
    );
    for resp in [
        http.get(&url).header("Access-Token", "nope").send().await.unwrap(),
        http.get(format!("{url}?access_token=nope")).send().await.unwrap(),
    ] {
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.json::<Value>().await.unwrap(), error_body("invalidToken", "Invalid token"));
    }
    assert_eq!(emu.stats().requests, 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn request_limit_answers_the_configured_status() {
    let options = EmulatorOptions { request_limit: Some(2), limit_status: 433, ..EmulatorOptions::new(TOKEN) };
    let emu = emulator(options).await;
    let c = Client::new(&emu);
    let mut limited = 0;
    for _ in 0..6 {
        let resp = c.get("marks/values").await;
        if resp.status().as_u16() == 433 {
            limited += 1;
            assert_eq!(
                resp.json::<Value>().await.unwrap(),
                error_body("apiRequestLimit", "Превышен лимит запросов для данного токена")
            );
        } else {
            assert_eq!(resp.status(), StatusCode::OK);
        }
    }
    assert!(limited >= 2, "only {limited} of 6 limited at 2 rps");
    assert_eq!(emu.stats().limited, limited);
    assert_eq!(c.control("limit?rps=0").await, json!({"rps": 0}));
    for _ in 0..10 {
        assert_eq!(c.get("marks/values").await.status(), StatusCode::OK);
    }
    let stats = c.control("stats").await;
    assert_eq!(stats["requests"], 16);
    assert_eq!(stats["limited"], limited);
    emu.shutdown().await;
}

#[tokio::test]
async fn failure_modes() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let c = Client::new(&emu);
    let path = format!("edu-groups/{}/marks/2025-09-01/2025-09-30", id(50));

    assert_eq!(c.control("fail?mode=malformed&count=1").await, json!({"mode": "malformed", "count": 1}));
    let resp = c.get(&path).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let text = resp.text().await.unwrap();
    assert!(text.starts_with('['));
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    // The count ran out.
    c.json(&path).await;

    c.control("fail?mode=html502&count=1").await;
    let resp = c.get(&path).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let text = resp.text().await.unwrap();
    assert!(text.contains("<div class=\"error__description\"><p>Сервис временно недоступен</p></div>"));

    c.control("fail?mode=truncated&count=1").await;
    let resp = c.get(&path).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let promised = resp.content_length().expect("a Content-Length");
    assert!(promised > 100);
    assert!(resp.bytes().await.is_err(), "a cut body must be an error");
    // On the wire: a part of the promised body arrives, then the connection closes.
    c.control("fail?mode=truncated&count=1").await;
    let (head, body) = raw_get(&emu, &path).await;
    let promised: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!body.is_empty() && body.len() < promised, "{} of {promised}", body.len());

    // Without a count: every answer until `off`.
    c.control("fail?mode=unauthorized").await;
    for _ in 0..3 {
        let resp = c.get(&path).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.json::<Value>().await.unwrap(), error_body("invalidToken", "Invalid token"));
    }
    assert_eq!(c.control("fail?mode=off").await, json!({"mode": "off", "count": null}));
    assert_eq!(c.json(&path).await.as_array().unwrap().len(), 2);
    let stats = emu.stats();
    assert_eq!(stats.failed, 7);
    // An unknown mode is refused.
    let resp = reqwest::Client::new().get(format!("{}__emulator/fail?mode=boom", c.root)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn every_date_spelling_is_accepted() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let c = Client::new(&emu);
    let g = id(50);
    for (from, to) in [
        ("2025-09-01", "2025-09-02"),
        ("2025-09-01T08:00", "2025-09-02T08:00"),
        ("2025-09-01T08:00:00", "2025-09-02T23:59:59"),
        ("2025-09-01%2008:00:00", "2025-09-02%2000:00:00"),
        ("2025-09-01T08:00:00.123456", "2025-09-02T00:00:00.000001"),
        ("2025-09-01T00:00:00.0000000Z", "2025-09-02T00:00:00.0000000Z"),
        ("2025-9-1T8:0:0", "2025-9-2T0:0:0"),
    ] {
        let lessons = c.json(&format!("edu-groups/{g}/lessons/{from}/{to}")).await;
        let ids: Vec<u64> = lessons.as_array().unwrap().iter().map(|l| l["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, [id(60), id(61)], "{from} {to}");
        let entries = c.json(&format!("lesson-log-entries/group/{g}?from={from}&to={to}")).await;
        assert_eq!(entries.as_array().unwrap().len(), 2, "{from} {to}");
    }
    // A space as `+` in the query.
    let entries = c.json(&format!("lesson-log-entries/group/{g}?from=2025-09-01+08:00:00&to=2025-09-30")).await;
    assert_eq!(entries.as_array().unwrap().len(), 3);
    for bad in [
        format!("edu-groups/{g}/lessons/01.09.2025/2025-09-02"),
        format!("edu-groups/{g}/marks/2025-09-01/2025-13-01"),
        format!("lesson-log-entries/group/{g}?from=2025-09-01"),
        format!("lesson-log-entries/group/{g}?from=2025-09-01&to=soon"),
    ] {
        let resp = c.get(&bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(resp.json::<Value>().await.unwrap()["type"], "parameterInvalid");
    }
    emu.shutdown().await;
}

/// Every `X_str` beside an `X` holds the same id, for numbers and lists of numbers.
fn assert_twins(v: &Value) -> usize {
    let mut checked = 0;
    match v {
        Value::Array(items) => checked += items.iter().map(assert_twins).sum::<usize>(),
        Value::Object(map) => {
            for (k, twin) in map {
                let base = if let Some(b) = k.strip_suffix("_str") {
                    b
                } else if let Some(b) = k.strip_suffix("Str") {
                    b
                } else {
                    checked += assert_twins(twin);
                    continue;
                };
                let number = &map[base];
                match (number, twin) {
                    (Value::Null, Value::Null) => {}
                    (Value::Number(n), Value::String(s)) => {
                        assert_eq!(n.as_u64().unwrap().to_string(), *s, "{k}")
                    }
                    (Value::Array(ns), Value::Array(ss)) => {
                        assert_eq!(ns.len(), ss.len(), "{k}");
                        for (n, s) in ns.iter().zip(ss) {
                            assert_eq!(n.as_u64().unwrap().to_string(), s.as_str().unwrap(), "{k}");
                        }
                    }
                    other => panic!("{k}: {other:?}"),
                }
                checked += 1;
            }
        }
        _ => {}
    }
    checked
}

#[tokio::test]
async fn string_twins_equal_the_numbers() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let c = Client::new(&emu);
    let (s, g) = (id(1), id(50));
    let mut checked = 0;
    for path in [
        "users/me/context".to_owned(),
        format!("schools/{s}"),
        format!("schools/{s}/edu-groups"),
        format!("schools/{s}/teachers"),
        format!("schools/{s}/subjects"),
        format!("work-types/{s}"),
        format!("edu-groups/{g}"),
        format!("edu-groups/{g}/persons?includeArchive=true"),
        format!("edu-groups/{g}/reporting-period-group"),
        format!("edu-groups/{g}/lessons/2025-09-01/2025-09-30"),
        format!("edu-groups/{g}/marks/2025-09-01/2025-09-30"),
        format!("edu-groups/{g}/final-marks"),
        format!("lesson-log-entries/group/{g}?from=2025-09-01&to=2025-09-30"),
    ] {
        let v = c.json(&path).await;
        let n = assert_twins(&v);
        assert!(n > 0, "{path}: no twins");
        checked += n;
    }
    assert!(checked > 50);
    emu.shutdown().await;
}

#[tokio::test]
async fn batch_answers_carry_objects_and_exact_big_ids() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let c = Client::new(&emu);
    let resp = c.post("edu-groups/students", &format!("[{}, {}, 12345]", id(50), id(51))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    // Exact integers on the wire, not floats.
    assert!(text.contains(&format!("\"id\":{}", id(43))), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(id(43) > 1 << 53);
    // `group` and `person` are full objects (the typed clients' StudentsWrapper).
    let groups: Vec<(u64, &str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"]["id"].as_u64().unwrap(),
                g["group"]["name"].as_str().unwrap(),
                g["group"]["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [(id(50), "5А", "Group"), (id(51), "5А Английский язык, 1 подгруппа", "Subgroup")]);
    let members: Vec<(u64, &str, &str)> = v[0]["students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["person"]["id"].as_u64().unwrap(),
                m["person"]["lastName"].as_str().unwrap(),
                m["membershipstatus"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            (id(40), "Иванов", "Active"),
            (id(41), "Кузнецова", "Active"),
            (id(42), "Сидоров", "Active"),
            (id(43), "Орлова", "Archive")
        ]
    );
    // Batch lessons and works: a bare array, the old `{"lessons": […]}`, string ids.
    let many = c.post("lessons/many", &format!("[{}, \"{}\"]", id(60), id(62))).await.json::<Value>().await.unwrap();
    assert_eq!(many.as_array().unwrap().len(), 2);
    assert_eq!(many[0]["works"][0]["tasks"], json!([]));
    let old = c.post("lessons/many", &format!("{{\"lessons\": [{}]}}", id(61))).await.json::<Value>().await.unwrap();
    assert_eq!(old[0]["status"], "Canceled");
    let works = c.post("works/many", &format!("[{}, {}]", id(71), id(72))).await.json::<Value>().await.unwrap();
    assert_eq!(works[0]["type"], "Homework");
    assert_eq!(works[1]["type"], "ControlWork");
    assert_eq!(c.post("works/many", "{oops").await.status(), StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn shapes_and_formats() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let c = Client::new(&emu);
    let (s, g) = (id(1), id(50));

    let school = c.json(&format!("schools/{s}")).await;
    assert_eq!(school["timeZone"], 3);
    assert_eq!(school["markType"], "Mark5");

    let groups = c.json(&format!("schools/{s}/edu-groups")).await;
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0]["type"], "Group");
    assert_eq!(groups[0]["journaltype"], "Regular");
    assert_eq!(groups[0]["parentIds"], json!([]));
    assert_eq!(groups[0]["studyyear"], 2025);
    assert_eq!(groups[0]["parallel"], 5);
    // Subject objects, as the typed clients model `EduGroup.subjects`.
    assert_eq!(
        groups[0]["subjects"],
        json!([
            {"id": id(10), "id_str": id(10).to_string(), "name": "Математика", "knowledgeArea": "Математика", "fgosSubjectId": null},
            {"id": id(11), "id_str": id(11).to_string(), "name": "Английский язык", "knowledgeArea": "Филология", "fgosSubjectId": null},
        ])
    );
    assert_eq!(groups[1]["type"], "Subgroup");
    assert_eq!(groups[1]["parentIds"], json!([g]));
    assert_eq!(groups[2]["type"], "Group");
    assert_eq!(groups[2]["journaltype"], "ExtendedDay");
    let one = c.json(&format!("edu-groups/{}", id(51))).await;
    assert_eq!(one["journalType"], "Regular");
    assert!(one.get("journaltype").is_none());

    let teachers = c.json(&format!("schools/{s}/teachers")).await;
    assert_eq!(teachers[0]["Subjects"], "Математика, Английский язык");
    assert_eq!(teachers[0]["ShortName"], "Петрова А. С.");
    assert_eq!(teachers[1]["UserId"], Value::Null);
    assert_eq!(teachers[1]["UserIdStr"], Value::Null);

    let active = c.json(&format!("edu-groups/{g}/persons")).await;
    assert_eq!(active.as_array().unwrap().len(), 3);
    let all = c.json(&format!("edu-groups/{g}/persons?includeArchive=true")).await;
    assert_eq!(all.as_array().unwrap().len(), 4);
    assert_eq!(all[1]["userId"], Value::Null);
    assert_eq!(all[0]["sex"], "Male");

    let rpg = c.json(&format!("edu-groups/{g}/reporting-period-group")).await;
    assert_eq!(rpg["reportingPeriods"][0]["start"], "2025-09-01T00:00:00");
    assert_eq!(rpg["reportingPeriods"][0]["finish"], "2025-10-24T23:59:59");
    assert_eq!(rpg["reportingPeriods"][0]["type"], "Quarter");
    assert_eq!(rpg["reportingPeriods"][1]["number"], 2);
    assert_eq!(rpg["holidays"][0]["reportingPeriodGroupId"], rpg["id"]);

    let kinds = c.json(&format!("work-types/{s}")).await;
    let kinds: Vec<&str> = kinds.as_array().unwrap().iter().map(|k| k["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["LessonAnswer", "ControlWork", "Homework"]);

    let lessons = c.json(&format!("edu-groups/{g}/lessons/2025-09-01/2025-09-01")).await;
    let l = &lessons[0];
    assert_eq!(l["date"], "2025-09-01T00:00:00");
    assert_eq!(l["status"], "Conducted");
    assert_eq!(l["title"], "Натуральные числа");
    assert_eq!(l["subject"]["name"], "Математика");
    assert_eq!(l["teachers"], json!([id(30)]));
    assert_eq!(l["resultPlaceId"], Value::Null);
    assert_eq!(l["works"][0]["type"], "DefaultNewLessonWork");
    assert_eq!(l["works"][0]["sentDate"], Value::Null);
    assert_eq!(l["works"][0]["periodNumber"], 1);
    assert_eq!(l["works"][1]["type"], "Homework");
    assert_eq!(l["works"][1]["targetDate"], "2025-09-03T00:00:00");
    let file = &l["works"][1]["files"][0];
    assert_eq!(
        (file["name"].as_str(), file["downloadUrl"].as_str()),
        (Some("Карточка №3.pdf"), Some("https://files.example/c3.pdf"))
    );
    assert_eq!(l["works"][0]["files"], json!([]));
    // Entered at 14:00 Moscow time = 11:00 UTC.
    assert_eq!(l["works"][1]["sentDate"], "2025-09-01T11:00:00.000Z");
    let sub = c.json(&format!("edu-groups/{}/lessons/2025-09-01/2025-09-01", id(51))).await;
    assert_eq!(sub[0]["title"], Value::Null);
    assert_eq!(sub[0]["works"][0]["type"], "ControlWork");
    let cancelled = c.json(&format!("edu-groups/{g}/lessons/2025-09-02/2025-09-02")).await;
    assert_eq!(cancelled[0]["teachers"], json!([id(30), id(31)]));
    assert_eq!(cancelled[0]["teachers_str"], json!([id(30).to_string(), id(31).to_string()]));

    // Marks by the day entered: the late «3-» of 1 September's lesson is a 3 September mark.
    let marks = c.json(&format!("edu-groups/{g}/marks/2025-09-01/2025-09-01")).await;
    assert_eq!(marks.as_array().unwrap().len(), 1);
    assert_eq!(marks[0]["date"], "2025-09-01T10:15:30.1234567");
    assert_eq!(marks[0]["mood"], "Good");
    assert_eq!(marks[0]["workType"], id(20));
    let late = c.json(&format!("edu-groups/{g}/marks/2025-09-03/2025-09-03")).await;
    assert_eq!(late[0]["value"], "3-");
    assert_eq!(late[0]["textValue"], "3-");
    assert_eq!(late[0]["mood"], "Average");
    let sub_marks = c.json(&format!("edu-groups/{}/marks/2025-09-01/2025-09-30", id(51))).await;
    assert_eq!(sub_marks[0]["mood"], "Bad");
    assert_eq!(sub_marks[0]["type"], "mark5");

    let finals = c.json(&format!("edu-groups/{g}/final-marks")).await;
    assert_eq!(
        finals,
        json!([
            {"person": id(40), "person_str": id(40).to_string(), "group": g, "group_str": g.to_string(),
             "reportingPeriod": id(3), "reportingPeriod_str": id(3).to_string(),
             "per-subject-final-marks": [{"subject": id(10), "subject_str": id(10).to_string(),
                "final-mark": {"value": "5", "textValue": "5", "type": "mark5", "date": "2025-10-24T12:00:00.0000000"}}]},
            {"person": id(40), "person_str": id(40).to_string(), "group": g, "group_str": g.to_string(),
             "reportingPeriod": null, "reportingPeriod_str": null,
             "per-subject-final-marks": [{"subject": id(10), "subject_str": id(10).to_string(),
                "final-mark": {"value": "осв", "textValue": "осв", "type": "markdismiss", "date": "2025-10-24T12:00:00.0000000"}}]},
            {"person": id(43), "person_str": id(43).to_string(), "group": g, "group_str": g.to_string(),
             "reportingPeriod": id(3), "reportingPeriod_str": id(3).to_string(),
             "per-subject-final-marks": [{"subject": id(11), "subject_str": id(11).to_string(),
                "final-mark": {"value": "н/а", "textValue": "н/а", "type": "markna", "date": "2025-10-24T12:00:00.0000000"}}]},
        ])
    );
    assert_eq!(c.json(&format!("edu-groups/{}/final-marks", id(51))).await, json!([]));

    let log = c.json(&format!("lesson-log-entries/group/{g}?from=2025-09-01&to=2025-09-30")).await;
    let statuses: Vec<&str> = log.as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["Pass", "Ill", "Absent"]);
    assert_eq!(log[1]["comment"], "справка");
    assert_eq!(log[0]["createdDate"], "2025-09-01T09:05:00.000000");
    let by_subject =
        c.json(&format!("lesson-log-entries/group/{}?subject={}&from=2025-09-01&to=2025-09-30", id(51), id(11))).await;
    assert_eq!(by_subject[0]["status"], "Late");
    let other_subject =
        c.json(&format!("lesson-log-entries/group/{}?subject={}&from=2025-09-01&to=2025-09-30", id(51), id(10))).await;
    assert_eq!(other_subject, json!([]));

    assert_eq!(c.json("lesson-log-entries/statuses").await, json!(["Attend", "Absent", "Ill", "Late", "Pass"]));
    let values = c.json("marks/values").await;
    assert_eq!(values["mark5"].as_array().unwrap().len(), 15);
    assert_eq!(values["mark5"][0], "1-");
    assert_eq!(values["mark5"][14], "5+");
    assert_eq!(values["markdismiss"], json!(["осв"]));
    assert_eq!(values["markna"], json!(["н/а"]));
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_ids() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let c = Client::new(&emu);
    let resp = c.get("no/such/method").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.json::<Value>().await.unwrap()["type"], "apiMethodNotSupported");
    let resp = c.get("schools/42").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.json::<Value>().await.unwrap()["type"], "apiResourceUnavailable");
    let resp = c.get("edu-groups/abc/final-marks").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["type"], "parameterInvalid");
    emu.shutdown().await;
}

#[tokio::test]
async fn world_updates_rebuild_indexes_and_clock() {
    let emu = emulator(EmulatorOptions::new(TOKEN)).await;
    let c = Client::new(&emu);
    let path = format!("edu-groups/{}/marks/2025-09-11/2025-09-11", id(50));
    assert_eq!(c.json(&path).await, json!([]));
    emu.world().update(|w| {
        w.today = day(9, 11);
        let school = &mut w.schools[0];
        let m = SynthMark {
            id: id(90),
            student: id(42),
            lesson: id(63),
            work: id(70),
            value: "4".into(),
            entered_at: at(9, 11, 8, 0),
            entered_by: id(30),
            comment: None,
            is_point: false,
            point_date: None,
        };
        school.marks.insert(m.id, m);
    });
    let resp = c.get(&path).await;
    assert_eq!(resp.headers()["date"], "Thu, 11 Sep 2025 17:00:00 GMT");
    let marks: Value = resp.json().await.unwrap();
    assert_eq!(marks[0]["id"].as_u64(), Some(id(90)));
    emu.shutdown().await;
}

/// The control surface over the generated world: truth, advance, truth since, and the new
/// day's marks served with the new clock.
#[tokio::test]
async fn truth_and_advance_round_trip() {
    let world = World::generate(SynthConfig::small(1));
    let emu = start(world, EmulatorOptions::new(TOKEN), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let c = Client::new(&emu);
    let truth = c.control("truth").await;
    let seq = truth["last_seq"].as_u64().unwrap();
    assert!(seq > 0);
    assert!(truth["counts"]["mark"].as_u64().unwrap() > 0);
    assert!(!truth["changes"].as_array().unwrap().is_empty());
    let today = NaiveDate::parse_from_str(truth["today"].as_str().unwrap(), "%Y-%m-%d").unwrap();

    // Move to the next school day (at most 3 calendar days ahead from a Friday).
    let mut moved = Value::Null;
    for _ in 0..7 {
        moved = c.control("advance?days=1").await;
        if moved["last_seq"].as_u64().unwrap() > seq {
            break;
        }
    }
    let new_today = NaiveDate::parse_from_str(moved["today"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    assert!(new_today > today);
    let new_seq = moved["last_seq"].as_u64().unwrap();
    assert!(new_seq > seq, "a week passed with no change");
    let since = c.control(&format!("truth?since={seq}")).await;
    assert_eq!(since["last_seq"], new_seq);
    let changes = since["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for ch in changes {
        assert!(ch["kind"].is_string() && ch["key"].is_string() && ch["op"].is_string());
    }

    // The new day's marks are served (by entry day), with the new clock.
    let (school, class) = emu.world().read(|w| (w.schools[0].id, w.schools[0].classes[0].id));
    let resp = c.get(&format!("schools/{school}")).await;
    let date = resp.headers()["date"].to_str().unwrap().to_owned();
    assert!(date.ends_with("17:00:00 GMT"), "{date}");
    let entered_today = emu.world().read(|w| {
        let s = &w.schools[0];
        s.marks
            .values()
            .filter(|m| m.entered_at.date() == new_today)
            .filter(|m| s.lessons[&m.lesson].unit == class)
            .count()
    });
    let marks = c.json(&format!("edu-groups/{class}/marks/{new_today}/{new_today}")).await;
    assert_eq!(marks.as_array().unwrap().len(), entered_today);
    emu.shutdown().await;
}

/// Throughput of the big lists on the benchmark school (run with `--release --ignored`):
/// every lesson, mark and attendance entry of the year, month by month, per class and group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: cargo test --release … throughput -- --ignored --nocapture"]
async fn throughput_on_the_benchmark_school() {
    use serde::de::IgnoredAny;
    let t0 = std::time::Instant::now();
    let world = World::generate(SynthConfig::large(1));
    eprintln!("generated in {:?}", t0.elapsed());
    let units: Vec<u64> =
        world.schools[0].classes.iter().map(|c| c.id).chain(world.schools[0].groups.iter().map(|g| g.id)).collect();
    let t0 = std::time::Instant::now();
    let emu = start(world, EmulatorOptions::new(TOKEN), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    eprintln!("indexed in {:?}", t0.elapsed());
    let c = Client::new(&emu);
    let months = [(2025, 9), (2025, 10), (2025, 11), (2025, 12), (2026, 1), (2026, 2), (2026, 3), (2026, 4), (2026, 5)];
    let t0 = std::time::Instant::now();
    let (mut records, mut bytes) = (0usize, 0usize);
    let mut t_head = std::time::Duration::ZERO;
    let (mut t_body, mut t_parse) = (t_head, t_head);
    for (y, m) in months {
        let from = NaiveDate::from_ymd_opt(y, m, 1).unwrap();
        let to = from.checked_add_months(chrono::Months::new(1)).unwrap().pred_opt().unwrap();
        for &g in &units {
            for path in [
                format!("edu-groups/{g}/lessons/{from}/{to}"),
                format!("edu-groups/{g}/marks/{from}/{to}"),
                format!("lesson-log-entries/group/{g}?from={from}&to={to}"),
            ] {
                let t = std::time::Instant::now();
                let resp = c.get(&path).await;
                t_head += t.elapsed();
                let t = std::time::Instant::now();
                let body = resp.bytes().await.unwrap();
                t_body += t.elapsed();
                bytes += body.len();
                let t = std::time::Instant::now();
                records += serde_json::from_slice::<Vec<IgnoredAny>>(&body).unwrap().len();
                t_parse += t.elapsed();
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!("until headers {t_head:?}, body {t_body:?}, client parse {t_parse:?}");
    eprintln!(
        "{records} records, {} MB in {secs:.2} s: {:.0} records/s, {:.0} MB/s",
        bytes / 1_000_000,
        records as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
    emu.shutdown().await;
}

const PARENT: &str = "parent-token-7";
const PUPIL: &str = "pupil-token-7";

async fn family_emulator() -> EmulatorHandle {
    emulator(
        EmulatorOptions::new(TOKEN)
            .with_account(PARENT, Account::Parent(id(44)))
            .with_account(PUPIL, Account::Pupil(id(42))),
    )
    .await
}

impl Client {
    async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).header("Access-Token", token).send().await.unwrap()
    }

    async fn json_as(&self, token: &str, path: &str) -> Value {
        let resp = self.get_as(token, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.unwrap()
    }
}

/// The forms switched on: bare ids in the batch answer and the class's subjects, numbers
/// as strings without twins, classes with a parent, every group a subgroup, the batch
/// endpoints refused.
#[tokio::test]
async fn forms_on_request() {
    let forms = Forms { bare_ids: true, numbers_as_strings: true, classes_with_parent: true, ..Forms::default() };
    let emu = emulator(EmulatorOptions { forms, ..EmulatorOptions::new(TOKEN) }).await;
    let c = Client::new(&emu);
    let v = c.post("edu-groups/students", &format!("[{}]", id(51))).await.json::<Value>().await.unwrap();
    assert_eq!(
        v,
        json!([{"group": id(51).to_string(), "students": [
            {"person": id(40).to_string(), "membershipstatus": "Active"},
            {"person": id(41).to_string(), "membershipstatus": "Active"},
        ]}])
    );
    let groups = c.json(&format!("schools/{}/edu-groups", id(1))).await;
    assert_eq!(groups[0]["subjects"], json!([id(10).to_string(), id(11).to_string()]));
    assert_eq!(groups[0]["parallel"], "5");
    assert_eq!(groups[0]["type"], "Group");
    // The class's parallel: a group no list holds.
    assert_eq!(groups[0]["parentIds"], json!([(FIRST_ID - 1000 + 5).to_string()]));
    assert!(groups[0].get("id_str").is_none() && groups[0].get("parentIds_str").is_none());
    let school = c.json(&format!("schools/{}", id(1))).await;
    assert_eq!(school["timeZone"], "3");

    let forms = Forms { all_subgroups: true, refuse_batch: true, ..Forms::default() };
    let emu = emulator(EmulatorOptions { forms, ..EmulatorOptions::new(TOKEN) }).await;
    let c = Client::new(&emu);
    let groups = c.json(&format!("schools/{}/edu-groups", id(1))).await;
    let kinds: Vec<&str> = groups.as_array().unwrap().iter().map(|g| g["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Subgroup", "Subgroup", "Subgroup"]);
    let resp = c.post("edu-groups/students", &format!("[{}]", id(50))).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.json::<Value>().await.unwrap()["type"], "apiMethodNotSupported");
}

/// The read calls of the public clients beyond ours, with the tiny school's values.
#[tokio::test]
async fn the_public_clients_read_calls() {
    let emu = family_emulator().await;
    let c = Client::new(&emu);
    let me = c.json("users/me").await;
    assert_eq!(me["roles"], json!(["EduSchoolAdministrator", "OrganizationStaff"]));
    let schools = c.json("schools/person-schools").await;
    assert_eq!(
        schools,
        json!([{"id": id(1), "id_str": id(1).to_string(), "name": "МБОУ СОШ № 16", "educationType": "Regular",
                "tsoCityId": null, "tsoRegionTreePath": null}])
    );
    let p = c.json(&format!("persons/{}", id(41))).await;
    assert_eq!(
        (p["lastName"].as_str(), p["middleName"].as_str(), p["sex"].as_str()),
        (Some("Кузнецова"), Some("Олеговна"), Some("Female"))
    );
    let groups = c.json(&format!("persons/{}/edu-groups", id(40))).await;
    let names: Vec<&str> = groups.as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["5А", "5А Английский язык, 1 подгруппа"]);
    // A pupil's marks by the day entered, in a datetime spelling a Python client writes.
    let marks =
        c.json(&format!("persons/{}/schools/{}/marks/2025-09-01 00:00:00/2025-09-30 00:00:00", id(40), id(1))).await;
    let values: Vec<(&str, u64)> = marks
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["value"].as_str().unwrap(), m["lesson"].as_u64().unwrap()))
        .collect();
    assert_eq!(values, [("5", id(60)), ("2", id(62))]);
    let log = c
        .json(&format!("persons/{}/lesson-log-entries?startDate=2025-09-01+00:00:00&endDate=2025-09-30", id(41)))
        .await;
    let entries: Vec<(&str, u64)> = log["logEntries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["lesson"].as_u64().unwrap()))
        .collect();
    assert_eq!(entries, [("Pass", id(60)), ("Late", id(62))]);
    assert_eq!(log["lessons"][0]["title"], "Натуральные числа");
    let lesson = c.json(&format!("lessons/{}", id(60))).await;
    assert_eq!(
        (lesson["title"].as_str(), lesson["subject"]["name"].as_str()),
        (Some("Натуральные числа"), Some("Математика"))
    );
    let works = c.json(&format!("works?lesson={}", id(60))).await;
    let texts: Vec<&str> = works.as_array().unwrap().iter().map(|w| w["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["Работа на уроке", "№ 12, 14"]);
    assert_eq!(c.json(&format!("lessons/{}/works", id(60))).await, works);
    let lm = c.json(&format!("lessons/{}/marks", id(60))).await;
    let lm: Vec<&str> = lm.as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(lm, ["5", "3-"]);
    let ll = c.json(&format!("lessons/{}/log-entries", id(60))).await;
    let ll: Vec<&str> = ll.as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(ll, ["Pass", "Ill"]);
    assert_eq!(
        c.json(&format!("lesson-log-entries?lessons={}&lessons={}", id(60), id(62))).await.as_array().unwrap().len(),
        3
    );
    let subjects = c.json(&format!("edu-groups/{}/subjects", id(51))).await;
    assert_eq!(subjects[0]["name"], "Английский язык");
    let periods = c.json(&format!("edu-groups/{}/reporting-periods", id(50))).await;
    assert_eq!(periods[1]["name"], "2 четверть");
    let many = c.json(&format!("edu-groups?eduGroups={}&eduGroups={}", id(50), id(52))).await;
    assert_eq!(many[1]["journaltype"], "ExtendedDay");
    let by_subject = c.json(&format!("edu-groups/{}/subjects/{}/marks/2025-09-01/2025-09-30", id(50), id(10))).await;
    assert_eq!(by_subject.as_array().unwrap().len(), 2);
    // `lessons/many` as a Python client posts it: a form.
    let resp = c
        .http
        .post(format!("{}lessons/many", c.base))
        .header("Access-Token", TOKEN)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("lessons={}&lessons={}", id(60), id(63)))
        .send()
        .await
        .unwrap();
    let many: Value = resp.json().await.unwrap();
    let titles: Vec<&str> = many.as_array().unwrap().iter().map(|l| l["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Натуральные числа", "Повторение"]);
}

/// A parent's and a pupil's token: the context says whose, the children's data is served,
/// the school-wide lists and other pupils are not.
#[tokio::test]
async fn family_tokens_see_their_own() {
    let emu = family_emulator().await;
    let c = Client::new(&emu);
    let ctx = c.json_as(PARENT, "users/me/context").await;
    assert_eq!(ctx["roles"], json!(["EduParent"]));
    assert_eq!(ctx["personId"].as_u64(), Some(id(44)));
    assert_eq!(ctx["userId"].as_u64(), Some(id(144)));
    let children: Vec<(u64, &str, Value)> = ctx["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ch| (ch["personId"].as_u64().unwrap(), ch["firstName"].as_str().unwrap(), ch["groupIds"].clone()))
        .collect();
    assert_eq!(children, [(id(40), "Пётр", json!([id(50)])), (id(41), "Мария", json!([id(50)]))]);
    assert_eq!(ctx["schools"][0]["id"].as_u64(), Some(id(1)));
    for path in [
        format!("schools/{}/edu-groups", id(1)),
        format!("edu-groups/{}/persons", id(50)),
        format!("edu-groups/{}/marks/2025-09-01/2025-09-30", id(50)),
        format!("edu-groups/{}/final-marks", id(50)),
        format!("lesson-log-entries/group/{}?from=2025-09-01&to=2025-09-30", id(50)),
        format!("persons/{}", id(42)),
        format!("persons/{}/schools/{}/marks/2025-09-01/2025-09-30", id(42), id(1)),
    ] {
        let resp = c.get_as(PARENT, &path).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(resp.json::<Value>().await.unwrap()["type"], "authorizationNotOwner", "{path}");
    }
    let refused = c
        .http
        .post(format!("{}edu-groups/students", c.base))
        .header("Access-Token", PARENT)
        .body(format!("[{}]", id(50)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // The children's groups, lessons and marks; a lesson's list keeps their rows only.
    let lessons = c.json_as(PARENT, &format!("edu-groups/{}/lessons/2025-09-01/2025-09-30", id(51))).await;
    assert_eq!(lessons.as_array().unwrap().len(), 1);
    let marks = c.json_as(PARENT, &format!("persons/{}/schools/{}/marks/2025-09-01/2025-09-30", id(41), id(1))).await;
    assert_eq!(marks[0]["value"], "3-");
    let lm = c.json_as(PARENT, &format!("lessons/{}/log-entries", id(60))).await;
    let who: Vec<u64> = lm.as_array().unwrap().iter().map(|e| e["person"].as_u64().unwrap()).collect();
    assert_eq!(who, [id(41)]);
    let finals = c.json_as(PARENT, &format!("persons/{}/edu-groups/{}/final-marks", id(40), id(50))).await;
    let values: Vec<&str> = finals
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["per-subject-final-marks"][0]["final-mark"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["5", "осв"]);
    // The ГПД group (no child in it) is not theirs.
    assert_eq!(c.get_as(PARENT, &format!("edu-groups/{}", id(52))).await.status(), StatusCode::FORBIDDEN);

    let ctx = c.json_as(PUPIL, "users/me/context").await;
    assert_eq!(ctx["roles"], json!(["EduStudent"]));
    assert_eq!(ctx["personId"].as_u64(), Some(id(42)));
    assert_eq!(ctx["groupIds"], json!([id(50)]));
    assert_eq!(ctx["children"], json!([]));
    let mine = c.json_as(PUPIL, "users/me/edu-groups").await;
    assert_eq!(mine[0]["name"], "5А");
    assert_eq!(c.get_as(PUPIL, &format!("persons/{}", id(40))).await.status(), StatusCode::FORBIDDEN);
    let me = c.json_as(PUPIL, "users/me").await;
    assert_eq!((me["lastName"].as_str(), me["id"].as_u64()), (Some("Сидоров"), Some(id(142))));
}
