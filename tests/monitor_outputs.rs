//! The deputy's outputs of monitoring, through the command line, on a synthetic school
//! written into the store: the board as XLSX holds the same findings as the JSON (read back
//! by openpyxl and by LibreOffice's headless conversion), with its header frozen, a filter
//! and readable widths; the monthly report per teacher (P2) counts what the generator made;
//! the справка (M20) counts the findings found and fixed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use ejgate::store::{ChangeOp, ChangeSet, RunError, RunErrorKind, RunStats, RunStatus, SqliteStore, Store};
use ejgate_sdk::model::{Entity, EntityKind, IdSpace};
use ejgate_sdk::synth::expected::ExpectedRecords;
use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::Value;
use sqlx::Connection;

mod common;

const SOURCE: &str = "journal";
const SCHOOL: &str = "Школа № 1";
/// February 2026: the small world is simulated into March, so the month is whole.
const DAY: &str = "2026-02-10";

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    world: World,
    store: SqliteStore,
}

async fn setup(profile: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ejgate.db");
    let store = SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
    let world = World::generate(SynthConfig::small(11));
    ejgate::report::synthetic::store_world(&store, SOURCE, &world).await.unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "unused").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let regulations = Path::new(env!("CARGO_MANIFEST_DIR")).join("regulations");
    let config = dir.path().join("ejgate.toml");
    std::fs::write(
        &config,
        format!(
            "regulations_dir = \"{}\"\n[store]\nurl = \"sqlite://{}\"\n\n[[source]]\nname = \"{SOURCE}\"\nsystem = \"dnevnik\"\n\
             base_url = \"http://127.0.0.1:9\"\ntoken_file = \"token\"\n\n[[school]]\nname = \"{SCHOOL}\"\nsources = [\"{SOURCE}\"]\n\
             regulation = \"{profile}\"\n",
            regulations.display(),
            db.display()
        ),
    )
    .unwrap();
    Setup { dir, config, world, store }
}

fn monitor(s: &Setup, args: &[&str]) -> Vec<u8> {
    monitor_by(&s.config, args)
}

/// `ejgate monitor` with the configuration `config`.
fn monitor_by(config: &Path, args: &[&str]) -> Vec<u8> {
    let out = common::ejgate()
        .arg("--config")
        .arg(config)
        .args(["monitor", "--school", SCHOOL, "--date", DAY])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::output_text(&out));
    out.stdout
}

fn day() -> NaiveDate {
    DAY.parse().unwrap()
}

/// (key → rule, clause, teacher, what) of the board's JSON findings.
fn json_findings(board: &Value) -> BTreeMap<String, (String, String, String, String)> {
    board["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_string(),
                (
                    f["rule"].as_str().unwrap().to_string(),
                    f["clause"].as_str().unwrap().to_string(),
                    f["teacher"].as_str().unwrap_or("").to_string(),
                    f["what"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// The same from a sheet's rows (header first), by heading.
fn sheet_findings(rows: &[Vec<String>]) -> BTreeMap<String, (String, String, String, String)> {
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (key, rule, clause, teacher, what) =
        (col("Ключ"), col("Правило"), col("Пункт положения"), col("Учитель"), col("Нарушение"));
    rows[1..]
        .iter()
        .map(|r| (r[key].clone(), (r[rule].clone(), r[clause].clone(), r[teacher].clone(), r[what].clone())))
        .collect()
}

fn openpyxl_rows(book: &Value, sheet: &str) -> Vec<Vec<String>> {
    book["data"][sheet]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no sheet {sheet}: {}", book["sheets"]))
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|c| match c {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn the_board_as_xlsx_holds_the_findings_of_the_json_for_openpyxl_and_libreoffice() {
    let s = setup("s3-molodechno").await;
    let board: Value = serde_json::from_slice(&monitor(&s, &["--month", "--format", "json", "--dry-run"])).unwrap();
    let expected = json_findings(&board);
    let rules: BTreeSet<&str> = expected.values().map(|v| v.0.as_str()).collect();
    // the world's late marks and lessons without a topic break S3 3.4.2 in February
    assert!(rules.contains("M1") && rules.contains("M3"), "{rules:?}");
    let xlsx = s.dir.path().join("board.xlsx");
    monitor(&s, &["--month", "--format", "xlsx", "--out", xlsx.to_str().unwrap(), "--dry-run"]);

    let book = common::openpyxl(&xlsx);
    assert_eq!(book["sheets"][0], "Нарушения");
    let rows = openpyxl_rows(&book, "Нарушения");
    assert_eq!(sheet_findings(&rows), expected);
    let sheet = &book["data"]["Нарушения"];
    assert_eq!(sheet["freeze"], "A2", "the header row stays in view");
    assert_eq!(sheet["filter"], format!("A1:L{}", expected.len() + 1), "a filter over every row and column");
    // widths a person can read: the violation's text column is wide, none is left at the default
    // (openpyxl keys a run of columns of one width by its first column)
    let widths = sheet["widths"].as_object().unwrap();
    assert!(widths.len() >= 8, "{widths:?}");
    assert!(widths["H"].as_f64().unwrap() >= 40.0, "{widths:?}");
    assert!(widths.values().all(|w| w.as_f64().unwrap() >= 8.0), "{widths:?}");
    // the clause of every finding is there, as the profile writes it
    assert!(rows[1..].iter().all(|r| r[1].starts_with("S3 ")), "{:?}", &rows[1]);
    let unchecked = openpyxl_rows(&book, "Не проверено");
    assert_eq!(unchecked.len() - 1, board["unchecked"].as_array().unwrap().len());

    let lo = common::libreoffice_csv(&xlsx);
    assert_eq!(sheet_findings(&lo["Нарушения"]), expected, "LibreOffice reads the same findings");
    // the lesson day is a date cell: LibreOffice shows it as a date, openpyxl reads a date
    let date_col = rows[0].iter().position(|h| h == "Дата").unwrap();
    let first_date = board["findings"][0]["date"].as_str().unwrap();
    assert_eq!(rows[1][date_col], format!("{first_date}T00:00:00"));
    // S3 has no M21: no служебная записка, no sheet of them
    assert!(board["notices"].as_array().unwrap().is_empty());
    assert!(book["data"].get("Служебные записки").is_none(), "{}", book["sheets"]);

    // M21 (S4 учитель 12): the journal did not answer on Tuesday 10 February 2026 — syncs at
    // 09:00 and 10:00 Moscow time (the world's zone) failed with a server error, the one at
    // 12:00 succeeded. Judged under S4, the drafted служебная записка is in the JSON, on a
    // sheet of its own in the workbook (key and text, the text wrapped in a readable column),
    // and in the CSV's last column.
    let failed = "HTTP 503 Service Unavailable";
    for (at, error) in
        [("2026-02-10T06:00:00Z", Some(failed)), ("2026-02-10T07:00:00Z", Some(failed)), ("2026-02-10T09:00:00Z", None)]
    {
        let run = s.store.begin_run(SOURCE, "incremental").await.unwrap();
        let error = error.map(|e| RunError::new(RunErrorKind::Server, e));
        let status = if error.is_some() { RunStatus::Failed } else { RunStatus::Succeeded };
        s.store.finish_run(run, status, error.as_ref(), &RunStats::default()).await.unwrap();
        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", s.dir.path().join("ejgate.db").display()))
            .await
            .unwrap();
        sqlx::query("UPDATE sync_runs SET started_at = ?1, finished_at = ?1 WHERE id = ?2")
            .bind(at.replace('Z', ".000000Z"))
            .bind(run)
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
    }
    let s4 = s.dir.path().join("ejgate-s4.toml");
    std::fs::write(&s4, std::fs::read_to_string(&s.config).unwrap().replace("s3-molodechno", "s4-korolev")).unwrap();
    let board: Value = serde_json::from_slice(&monitor_by(&s4, &["--format", "json", "--dry-run"])).unwrap();
    let notices: Vec<(String, String)> = board["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["key"].as_str().unwrap().to_string(), n["text"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].0, "M21:outage:2026-02-10T09:00:00");
    assert!(
        notices[0].1.contains("СЛУЖЕБНАЯ ЗАПИСКА") && notices[0].1.contains("10.02.2026 с 09:00 по 12:00"),
        "{}",
        notices[0].1
    );
    let xlsx = s.dir.path().join("board-s4.xlsx");
    monitor_by(&s4, &["--format", "xlsx", "--out", xlsx.to_str().unwrap(), "--dry-run"]);
    let book = common::openpyxl(&xlsx);
    let rows = openpyxl_rows(&book, "Служебные записки");
    assert_eq!(rows[0], ["Ключ нарушения", "Текст служебной записки"]);
    let read: Vec<(String, String)> = rows[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(read, notices, "openpyxl reads the notices of the JSON");
    let sheet = &book["data"]["Служебные записки"];
    assert_eq!(sheet["freeze"], "A2");
    let widths = sheet["widths"].as_object().unwrap();
    assert!(widths["A"].as_f64().unwrap() >= notices[0].0.chars().count() as f64, "the key in view: {widths:?}");
    assert!(widths["B"].as_f64().unwrap() >= 50.0, "the text in a wide column: {widths:?}");
    assert!(sheet["wrapped"].as_array().unwrap().iter().any(|c| c == "B2"), "the text wraps: {}", sheet["wrapped"]);
    let lines = notices[0].1.lines().count() as f64;
    assert!(sheet["heights"]["2"].as_f64().unwrap() >= 15.0 * lines, "its row shows every line: {}", sheet["heights"]);
    // the notice's finding is on the findings' sheet
    assert!(sheet_findings(&openpyxl_rows(&book, "Нарушения")).contains_key(&notices[0].0));
    let csv = monitor_by(&s4, &["--format", "csv", "--dry-run"]);
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let headers = reader.headers().unwrap().clone();
    let (key, text) = (
        headers.iter().position(|h| h == "ключ").unwrap(),
        headers.iter().position(|h| h == "служебная записка").unwrap(),
    );
    let in_csv: Vec<(String, String)> = reader
        .records()
        .map(|r| r.unwrap())
        .filter(|r| !r[text].is_empty())
        .map(|r| (r[key].to_string(), r[text].to_string()))
        .collect();
    assert_eq!(in_csv, notices, "the CSV's rows carry the notice of their finding");
    // the PDF has the same sheets: the notice of several lines goes into it too
    let pdf = s.dir.path().join("board-s4.pdf");
    monitor_by(&s4, &["--format", "pdf", "--out", pdf.to_str().unwrap(), "--dry-run"]);
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
}

#[tokio::test]
async fn the_teachers_report_counts_what_the_generator_made() {
    let s = setup("s3-molodechno").await;
    let school = &s.world.schools[0];
    let month = |d: NaiveDate| d.year() == day().year() && d.month() == day().month();
    let name = |id: u64| {
        let p = school.teachers.iter().find(|t| t.id == id).unwrap();
        format!("{} {} {}", p.last_name, p.first_name, p.middle_name)
    };
    // (lessons, with topic, with homework, marks) per teacher, from the world
    let mut truth: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    for l in school.lessons.values().filter(|l| !l.cancelled && month(l.date)) {
        let e = truth.entry(name(l.substitute.unwrap_or(l.teacher))).or_default();
        e.0 += 1;
        e.1 += u64::from(l.topic.as_deref().is_some_and(|t| !t.trim().is_empty()));
        e.2 += u64::from(school.works.values().any(|w| w.is_homework && w.lesson == l.id));
        e.3 += school.marks.values().filter(|m| m.lesson == l.id).count() as u64;
    }
    assert!(truth.len() > 5);

    let board: Value = serde_json::from_slice(&monitor(&s, &["--month", "--format", "json", "--dry-run"])).unwrap();
    let mut findings_of: BTreeMap<String, u64> = BTreeMap::new();
    for f in board["findings"].as_array().unwrap() {
        *findings_of.entry(f["teacher"].as_str().unwrap_or("Учитель не указан").to_string()).or_default() += 1;
    }
    let report: Value =
        serde_json::from_slice(&monitor(&s, &["--month", "--report", "teachers", "--format", "json", "--dry-run"]))
            .unwrap();
    assert_eq!(report["from"], "2026-02-01");
    assert_eq!(report["to"], "2026-02-28");
    let mut got: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    for r in report["rows"].as_array().unwrap() {
        let teacher = r["teacher"].as_str().unwrap().to_string();
        assert_eq!(r["findings_total"].as_u64().unwrap(), findings_of.get(&teacher).copied().unwrap_or(0), "{teacher}");
        let n = |k: &str| r[k].as_u64().unwrap();
        if n("lessons") > 0 {
            got.insert(teacher, (n("lessons"), n("with_topic"), n("with_homework"), n("marks")));
        }
    }
    assert_eq!(got, truth);

    // the same report as XLSX: the teachers' rows with their numbers, Russian headings
    let xlsx = s.dir.path().join("teachers.xlsx");
    monitor(&s, &["--month", "--report", "teachers", "--format", "xlsx", "--out", xlsx.to_str().unwrap(), "--dry-run"]);
    let book = common::openpyxl(&xlsx);
    let rows = openpyxl_rows(&book, "Учителя");
    assert_eq!(&rows[0][..3], ["Учитель", "Уроков проведено", "С темой"]);
    for r in &rows[1..] {
        if let Some(t) = truth.get(&r[0]) {
            assert_eq!(
                (r[1].as_str(), r[2].as_str()),
                (t.0.to_string().as_str(), t.1.to_string().as_str()),
                "{}",
                r[0]
            );
        }
    }
    let lo = common::libreoffice_csv(&xlsx);
    assert_eq!(lo["Учителя"].len(), rows.len());
}

#[tokio::test]
async fn the_spravka_counts_the_findings_found_and_the_one_fixed() {
    let s = setup("s3-molodechno").await;
    // monitoring records the month's findings
    let board: Value = serde_json::from_slice(&monitor(&s, &["--month", "--format", "json"])).unwrap();
    let found = json_findings(&board);
    // the teacher enters the topic of one lesson that had none: a new sync brings it
    let missing = board["findings"].as_array().unwrap().iter().find(|f| f["rule"] == "M3").expect("an M3 finding");
    let lesson: uuid::Uuid = missing["lesson"].as_str().unwrap().parse().unwrap();
    let expected_records = ExpectedRecords::of(&s.world, &IdSpace::new(SOURCE));
    let mut record =
        expected_records.of_kind(EntityKind::Lesson).find(|r| r.id == lesson).expect("the lesson in the world").clone();
    let Entity::Lesson(l) = &mut record.entity else { panic!() };
    l.topic = Some("Тема, записанная позже".into());
    let mut upsert = ejgate::sync::canonical(record);
    upsert.op = ChangeOp::Update;
    let run = s.store.begin_run(SOURCE, "window").await.unwrap();
    s.store.apply(run, SOURCE, &ChangeSet { upserts: vec![upsert], deletes: vec![], seen: vec![] }, &[]).await.unwrap();
    s.store.finish_run(run, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();

    let spravka: Value =
        serde_json::from_slice(&monitor(&s, &["--month", "--report", "spravka", "--format", "json"])).unwrap();
    let mut per_rule: BTreeMap<String, u64> = BTreeMap::new();
    for (rule, ..) in found.values() {
        *per_rule.entry(rule.clone()).or_default() += 1;
    }
    let lines = spravka["rules"].as_array().unwrap();
    let got: BTreeMap<String, u64> =
        lines.iter().map(|l| (l["rule"].as_str().unwrap().to_string(), l["found"].as_u64().unwrap())).collect();
    assert_eq!(got, per_rule);
    for l in lines {
        let fixed = u64::from(l["rule"] == "M3");
        assert_eq!(l["fixed"].as_u64().unwrap(), fixed, "{l}");
        // fixed seconds after it was found: within the day of S3 3.5.5
        assert_eq!(l["fixed_within_day"].as_u64().unwrap(), fixed, "{l}");
        assert_eq!(l["open"].as_u64().unwrap(), l["found"].as_u64().unwrap() - fixed, "{l}");
    }
    let fixed: Vec<&Value> =
        spravka["findings"].as_array().unwrap().iter().filter(|f| !f["fixed_at"].is_null()).collect();
    assert_eq!(fixed.len(), 1);
    assert_eq!(fixed[0]["key"], missing["key"]);

    let xlsx = s.dir.path().join("spravka.xlsx");
    monitor(&s, &["--month", "--report", "spravka", "--format", "xlsx", "--out", xlsx.to_str().unwrap(), "--dry-run"]);
    let book = common::openpyxl(&xlsx);
    let totals = openpyxl_rows(&book, "Итоги");
    assert_eq!(
        totals[0],
        ["Правило", "Пункт положения", "Выявлено", "Устранено", "Из них в течение суток", "Не устранено"]
    );
    let last = totals.last().unwrap();
    assert_eq!(
        (last[0].as_str(), last[2].as_str(), last[3].as_str()),
        ("Всего", found.len().to_string().as_str(), "1")
    );
    let lo = common::libreoffice_csv(&xlsx);
    assert_eq!(lo["Нарушения"].len(), found.len() + 1);
}

#[tokio::test]
async fn a_login_reported_compromised_through_the_command_line_makes_its_marks_findings() {
    let s = setup("s4-korolev").await;
    // A teacher with marks entered in February from the 10th, 08:00 (school time) on.
    let school = &s.world.schools[0];
    let from = day().and_hms_opt(8, 0, 0).unwrap();
    let february = |d: NaiveDate| d.year() == 2026 && d.month() == 2;
    let teacher = school
        .marks
        .values()
        .find(|m| m.entered_at >= from && february(school.lessons[&m.lesson].date))
        .map(|m| m.entered_by)
        .expect("a mark entered after the report");
    let person = school.teachers.iter().find(|t| t.id == teacher).unwrap();
    let login = format!("{} {} {}", person.last_name, person.first_name, person.middle_name);
    let compromised = |args: &[&str]| {
        common::ejgate().arg("--config").arg(&s.config).args(["monitor", "compromised"]).args(args).output().unwrap()
    };

    let out = compromised(&["--school", SCHOOL, "--login", &format!(" {login} "), "--at", "2026-02-10T08:00"]);
    assert!(out.status.success(), "{}", common::output_text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("«{login}»")) && said.contains("10.02.2026 08:00"), "{said}");
    // Kept in UTC: 08:00 in the school's zone.
    let zone: chrono_tz::Tz = school.time_zone.parse().unwrap();
    let at = chrono::TimeZone::from_local_datetime(&zone, &from).single().unwrap().with_timezone(&chrono::Utc);
    let kept = s.store.compromised(SCHOOL).await.unwrap();
    assert_eq!(kept.iter().map(|c| (c.login.as_str(), c.at)).collect::<Vec<_>>(), [(login.as_str(), at)]);
    // The same report again changes nothing.
    let again = compromised(&["--school", SCHOOL, "--login", &login, "--at", "2026-02-10T08:00"]);
    assert!(again.status.success(), "{}", common::output_text(&again));
    assert_eq!(s.store.compromised(SCHOOL).await.unwrap().len(), 1);

    // Refused, saying why: a time in another form, a school the configuration lacks.
    let bad = compromised(&["--school", SCHOOL, "--login", &login, "--at", "10.02.2026 08:00"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("2026-02-10T09:30"), "{}", common::output_text(&bad));
    let nowhere = compromised(&["--school", "Школа № 2", "--login", &login, "--at", "2026-02-10T08:00"]);
    assert!(!nowhere.status.success());
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("«Школа № 2»"), "{}", common::output_text(&nowhere));
    assert_eq!(s.store.compromised(SCHOOL).await.unwrap().len(), 1);

    // The month's monitoring: every mark the teacher entered from then on is an M19 finding,
    // and none before (the generator's marks, not the engine's).
    let board: Value = serde_json::from_slice(&monitor(&s, &["--month", "--format", "json", "--dry-run"])).unwrap();
    let found: BTreeSet<String> = board["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "M19")
        .map(|f| f["key"].as_str().unwrap().to_string())
        .collect();
    let ids = IdSpace::new(SOURCE);
    let want: BTreeSet<String> = school
        .marks
        .values()
        .filter(|m| m.entered_by == teacher && m.entered_at >= from && february(school.lessons[&m.lesson].date))
        .map(|m| format!("M19:{login}:{}", ids.id(EntityKind::Mark, &ejgate_sdk::synth::key::id(m.id))))
        .collect();
    assert!(!want.is_empty());
    assert_eq!(found, want);
}
