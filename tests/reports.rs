//! Reports and exports through the command line, on a synthetic district written into the
//! store (three schools, each a source of its own): every figure expected here is computed
//! from the generator's world, never from the report code.
//!
//! - `ejgate export --entity E`: one row per record of the world, CSV and XLSX (openpyxl);
//! - `ejgate export --oneroster`: the OneRoster 1.2 CSV files with the headers of the
//!   specification (written out below), counts from the world, references that resolve;
//! - `ejgate report rollout` (P10): per school and quarter the people, lessons, topics,
//!   homework, marks, timeliness under each school's regulation, marks per student per
//!   subject, findings per rule (from the monitoring runs' own output), the previous
//!   quarter; the XLSX opens in openpyxl and LibreOffice, has native charts, and holds no
//!   student's name (K5).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use ejgate::store::SqliteStore;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{School, SynthConfig, World};
use serde_json::Value;

mod common;

/// The schools' sources and regulations (S1: marks by 16:00, S3: by 19:00, S4: the same
/// day — REGULATIONS M1).
const SCHOOLS: [(&str, &str); 3] =
    [("school-1", "s1-kiasuo"), ("school-2", "s3-molodechno"), ("school-3", "s4-korolev")];

fn deadline(profile: &str, day: NaiveDate) -> NaiveDateTime {
    let (h, m, s) = match profile {
        "s1-kiasuo" => (16, 0, 0),
        "s3-molodechno" => (19, 0, 0),
        _ => (23, 59, 59),
    };
    day.and_time(NaiveTime::from_hms_opt(h, m, s).unwrap())
}

struct District {
    dir: tempfile::TempDir,
    config: PathBuf,
    world: World,
}

fn school_name(i: usize) -> String {
    format!("Школа {}", i + 1)
}

async fn district() -> District {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ejgate.db");
    let store = SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
    let world = World::generate(SynthConfig { schools: 3, ..SynthConfig::small(21) });
    let sources: Vec<String> = SCHOOLS.iter().map(|(s, _)| s.to_string()).collect();
    ejgate::report::synthetic::store_schools(&store, &world, &sources).await.unwrap();
    store.close().await;
    let token = dir.path().join("token");
    std::fs::write(&token, "unused").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let regulations = Path::new(env!("CARGO_MANIFEST_DIR")).join("regulations");
    let mut text =
        format!("regulations_dir = \"{}\"\n[store]\nurl = \"sqlite://{}\"\n", regulations.display(), db.display());
    for (i, (source, profile)) in SCHOOLS.iter().enumerate() {
        text.push_str(&format!(
            "\n[[source]]\nname = \"{source}\"\nsystem = \"dnevnik\"\nbase_url = \"http://127.0.0.1:9\"\ntoken_file = \"token\"\n\
             \n[[school]]\nname = \"{}\"\nsources = [\"{source}\"]\nregulation = \"{profile}\"\n",
            school_name(i)
        ));
    }
    let config = dir.path().join("ejgate.toml");
    std::fs::write(&config, text).unwrap();
    District { dir, config, world }
}

fn run(d: &District, args: &[&str]) -> Vec<u8> {
    let out = common::ejgate().arg("--config").arg(&d.config).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", common::output_text(&out));
    out.stdout
}

fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn every_entity_exports_one_row_per_record_of_the_world() {
    let d = district().await;
    for (kind, n) in d.world.counts() {
        let rows = csv_rows(&run(&d, &["export", "--entity", kind.as_str()]));
        assert_eq!(rows.len() as u64 - 1, n, "{kind}");
        assert_eq!(&rows[0][..3], ["id", "source", "source_id"], "{kind}");
    }
    // one source only, and the model's fields in its order
    let school = &d.world.schools[0];
    let marks = csv_rows(&run(&d, &["export", "--entity", "mark", "--source", "school-1"]));
    assert_eq!(marks.len() - 1, school.marks.len());
    assert_eq!(&marks[0][3..7], ["student", "lesson", "work", "subject"]);
    let values: BTreeMap<String, String> = marks[1..].iter().map(|r| (r[2].clone(), r[7].clone())).collect();
    for m in school.marks.values().take(50) {
        assert_eq!(values[&m.id.to_string()], m.value);
    }
    // XLSX: openpyxl reads as many lessons, the header frozen
    let xlsx = d.dir.path().join("lessons.xlsx");
    run(
        &d,
        &["export", "--entity", "lesson", "--source", "school-1", "--format", "xlsx", "--out", xlsx.to_str().unwrap()],
    );
    let book = common::openpyxl(&xlsx);
    assert_eq!(book["data"]["lesson"]["rows"].as_array().unwrap().len() - 1, school.lessons.len());
    assert_eq!(book["data"]["lesson"]["freeze"], "A2");
}

/// The header rows of OneRoster 1.2's CSV files (1EdTech, OneRoster 1.2 CSV tables).
const ONEROSTER: [(&str, &str); 10] = [
    ("orgs", "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId"),
    ("academicSessions", "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear"),
    (
        "users",
        "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,\
         email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds,preferredGivenName,\
         preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns",
    ),
    ("roles", "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,userProfileSourcedId"),
    ("courses", "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,subjectCodes"),
    (
        "classes",
        "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,\
         termSourcedIds,subjects,subjectCodes,periods",
    ),
    ("enrollments", "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate"),
    ("categories", "sourcedId,status,dateLastModified,title,weight"),
    (
        "lineItems",
        "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId,categorySourcedId,\
         gradingPeriodSourcedId,resultValueMin,resultValueMax",
    ),
    ("results", "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,scoreStatus,score,scoreDate,comment"),
];

#[tokio::test]
async fn the_oneroster_bundle_has_the_specifications_files_and_the_worlds_counts() {
    let d = district().await;
    let out = d.dir.path().join("oneroster");
    run(&d, &["export", "--oneroster", "--source", "school-1", "--out", out.to_str().unwrap()]);
    let read = |name: &str| csv_rows(&std::fs::read(out.join(format!("{name}.csv"))).unwrap());
    let manifest: HashMap<String, String> =
        read("manifest")[1..].iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(manifest["oneroster.version"], "1.2");
    assert_eq!(manifest["manifest.version"], "1.0");
    let mut files = HashMap::new();
    for (name, header) in ONEROSTER {
        let rows = read(name);
        assert_eq!(rows[0].join(","), header, "{name}.csv");
        assert_eq!(manifest[&format!("file.{name}")], "bulk");
        assert!(rows[1..].iter().all(|r| r.len() == rows[0].len() && r[1] == "active"), "{name}.csv");
        files.insert(name, rows);
    }
    let count = |name: &str| files[name].len() - 1;

    let s: &School = &d.world.schools[0];
    let people = s.teachers.len() + s.students.len() + s.guardians.len();
    assert_eq!(count("orgs"), 2, "the school and its district");
    assert_eq!(count("academicSessions"), 1 + s.periods.len());
    assert_eq!((count("users"), count("roles")), (people, people));
    assert_eq!(count("courses"), s.subjects.len());
    let sections: BTreeSet<(u64, u64)> = s.loads.iter().map(|l| (l.unit, l.subject)).collect();
    assert_eq!(count("classes"), sections.len());
    let mut enrollments = 0;
    for (unit, subject) in &sections {
        let teachers: HashSet<u64> =
            s.loads.iter().filter(|l| l.unit == *unit && l.subject == *subject).map(|l| l.teacher).collect();
        enrollments += teachers.len() + s.enrollments.iter().filter(|e| e.unit == *unit && e.active).count();
    }
    assert_eq!(count("enrollments"), enrollments);
    let marked: HashSet<u64> = s.marks.values().map(|m| m.work).collect();
    assert_eq!(count("lineItems"), marked.len());
    let kinds: HashSet<u64> = marked.iter().map(|w| s.works[w].work_type).collect();
    let codes: HashSet<&str> =
        kinds.iter().map(|k| s.work_types.iter().find(|t| t.id == *k).unwrap().code.as_str()).collect();
    assert_eq!(count("categories"), codes.len());
    assert_eq!(count("results"), s.marks.len());

    // every reference resolves inside the bundle
    let ids = |name: &str| -> HashSet<String> { files[name][1..].iter().map(|r| r[0].clone()).collect() };
    let col = |name: &str, c: &str| files[name][0].iter().position(|h| h == c).unwrap();
    let refs = |name: &str, c: &str, target: &str| {
        let (i, known) = (col(name, c), ids(target));
        for r in &files[name][1..] {
            assert!(known.contains(&r[i]), "{name}.{c} {} is not in {target}.csv", r[i]);
        }
    };
    refs("results", "lineItemSourcedId", "lineItems");
    refs("results", "studentSourcedId", "users");
    refs("lineItems", "classSourcedId", "classes");
    refs("lineItems", "categorySourcedId", "categories");
    refs("lineItems", "gradingPeriodSourcedId", "academicSessions");
    refs("enrollments", "classSourcedId", "classes");
    refs("enrollments", "userSourcedId", "users");
    refs("classes", "courseSourcedId", "courses");
    refs("roles", "userSourcedId", "users");
    refs("users", "primaryOrgSourcedId", "orgs");
    // a student's result is the mark's value read on the five-point scale
    let five = s.marks.values().find(|m| m.value == "5").unwrap();
    let id = ejgate_sdk::model::IdSpace::new("school-1").id(EntityKind::Mark, &five.id.to_string()).to_string();
    let result = files["results"][1..].iter().find(|r| r[0] == id).expect("the mark's result");
    assert_eq!(result[col("results", "score")], "5");
}

/// The world's figures of one school over one period, as the rollout report defines them.
#[derive(Debug, PartialEq)]
struct Expected {
    lessons: u64,
    with_topic: u64,
    with_homework: u64,
    marks: u64,
    on_time: u64,
    student_subjects: u64,
}

fn expected(s: &School, profile: &str, from: NaiveDate, to: NaiveDate) -> Expected {
    let lessons: HashMap<u64, &ejgate_sdk::synth::SynthLesson> = s
        .lessons
        .iter()
        .filter(|(_, l)| !l.cancelled && from <= l.date && l.date <= to)
        .map(|(k, v)| (*k, v))
        .collect();
    let homework: HashSet<u64> =
        s.works.values().filter(|w| w.is_homework && lessons.contains_key(&w.lesson)).map(|w| w.lesson).collect();
    let marks: Vec<_> = s.marks.values().filter(|m| lessons.contains_key(&m.lesson)).collect();
    let on_time = marks.iter().filter(|m| m.entered_at <= deadline(profile, lessons[&m.lesson].date)).count();
    let taught: HashSet<(u64, u64)> = lessons.values().map(|l| (l.unit, l.subject)).collect();
    let mut pairs = HashSet::new();
    for (unit, subject) in &taught {
        for e in s.enrollments.iter().filter(|e| e.unit == *unit && e.active) {
            pairs.insert((e.student, *subject));
        }
    }
    Expected {
        lessons: lessons.len() as u64,
        with_topic: lessons.values().filter(|l| l.topic.as_deref().is_some_and(|t| !t.trim().is_empty())).count()
            as u64,
        with_homework: homework.len() as u64,
        marks: marks.len() as u64,
        on_time: on_time as u64,
        student_subjects: pairs.len() as u64,
    }
}

fn got(f: &Value) -> Expected {
    let n = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k} in {f}"));
    Expected {
        lessons: n("lessons"),
        with_topic: n("with_topic"),
        with_homework: n("with_homework"),
        marks: n("marks"),
        on_time: n("marks_on_time"),
        student_subjects: n("student_subjects"),
    }
}

/// Words of a text (letters and hyphens), for looking names up as whole words.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !(c.is_alphabetic() || c == '-')).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

#[tokio::test]
async fn the_rollout_report_counts_the_district_from_the_world_and_names_nobody() {
    let d = district().await;
    let municipality = d.world.schools[0].municipality.clone();
    let quarter = |s: &School, n: u8| s.periods.iter().find(|p| p.number == n).map(|p| (p.start, p.end)).unwrap();

    // monitoring records each school's findings of the first two quarters
    let mut findings: Vec<[BTreeMap<String, u64>; 2]> = Vec::new();
    for (i, s) in d.world.schools.iter().enumerate() {
        let mut per = [BTreeMap::new(), BTreeMap::new()];
        for (q, slot) in [(1u8, 0usize), (2, 1)] {
            let (from, _) = quarter(s, q);
            let board: Value = serde_json::from_slice(&run(
                &d,
                &["monitor", "--school", &school_name(i), "--quarter", "--date", &from.to_string(), "--format", "json"],
            ))
            .unwrap();
            assert_eq!(board["from"], from.to_string(), "the school's own quarter");
            for f in board["findings"].as_array().unwrap() {
                *per[slot].entry(f["rule"].as_str().unwrap().to_string()).or_default() += 1;
            }
        }
        findings.push(per);
    }
    assert!(findings.iter().any(|f| !f[1].is_empty()), "the world breaks some rule in the second quarter");

    let report: Value = serde_json::from_slice(&run(
        &d,
        &["report", "rollout", "--district", &municipality, "--quarter", "2", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(report["year"], d.world.schools[0].year.name);
    let lines = report["schools"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    for (i, (s, (source, profile))) in d.world.schools.iter().zip(SCHOOLS).enumerate() {
        let line = &lines[i];
        assert_eq!(line["school"], school_name(i));
        assert_eq!(line["sources"], serde_json::json!([source]));
        assert_eq!(line["systems"], serde_json::json!(["dnevnik"]));
        assert!(line["last_sync"].is_string());
        assert_eq!(line["students"].as_u64().unwrap(), s.students.len() as u64);
        assert_eq!(line["teachers"].as_u64().unwrap(), s.teachers.len() as u64);
        assert_eq!(line["parents"].as_u64().unwrap(), s.guardians.len() as u64);
        for (key, q, slot) in [("quarter", 2u8, 1usize), ("previous", 1, 0)] {
            let (from, to) = quarter(s, q);
            let f = &line[key];
            assert_eq!(f["from"], from.to_string(), "{key}");
            assert_eq!(got(f), expected(s, profile, from, to), "{} {key}", school_name(i));
            // every mark of the world has its entry time: all are judged
            assert_eq!(f["marks_judged"], f["marks"]);
            // the world has no activity records: the share of parents reading is not told
            assert!(f["parents_reading"].is_null());
            let per_rule: BTreeMap<String, u64> =
                f["findings"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
            assert_eq!(per_rule, findings[i][slot], "{} {key}", school_name(i));
        }
    }
    // a district the store does not hold is refused, naming the ones it holds
    let out = common::ejgate()
        .arg("--config")
        .arg(&d.config)
        .args(["report", "rollout", "--district", "Нет такого", "--quarter", "2", "--format", "json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&municipality), "{}", common::output_text(&out));

    // XLSX: openpyxl and LibreOffice read it; the district's total; native charts
    let xlsx = d.dir.path().join("rollout.xlsx");
    run(&d, &["report", "rollout", "--district", &municipality, "--quarter", "2", "--out", xlsx.to_str().unwrap()]);
    let book = common::openpyxl(&xlsx);
    assert_eq!(book["sheets"], serde_json::json!(["Школы", "Динамика", "Нарушения", "Сведения"]));
    let rows = book["data"]["Школы"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1 + 3 + 1);
    assert_eq!(book["data"]["Школы"]["freeze"], "A2");
    let total = &rows[4];
    assert_eq!(total[0], "Итого по району");
    let students: u64 = d.world.schools.iter().map(|s| s.students.len() as u64).sum();
    assert_eq!(total[4].as_f64().unwrap() as u64, students);
    let lessons: u64 = d
        .world
        .schools
        .iter()
        .zip(SCHOOLS)
        .map(|(s, (_, p))| {
            let (from, to) = quarter(s, 2);
            expected(s, p, from, to).lessons
        })
        .sum();
    assert_eq!(total[9].as_f64().unwrap() as u64, lessons);
    let lo = common::libreoffice_csv(&xlsx);
    assert_eq!(lo["Школы"].len(), 5);
    assert_eq!(lo["Школы"][4][0], "Итого по району");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&xlsx).unwrap()).unwrap();
    let charts =
        (0..zip.len()).filter(|i| zip.by_index(*i).unwrap().name().unwrap().starts_with("xl/charts/chart")).count();
    assert!(charts >= 3, "native charts in the workbook: {charts}");

    // PDF: qpdf finds it sound; the XLSX's charts are drawn in it — each chart's title, the
    // legend and the scale in per cent, every school on every chart, and the bars in the
    // colours of the series (pdftoppm renders the pages: pixels of the first two series'
    // colours are on them, tables alone are black on white)
    let pdf = d.dir.path().join("rollout.pdf");
    run(
        &d,
        &[
            "report",
            "rollout",
            "--district",
            &municipality,
            "--quarter",
            "2",
            "--format",
            "pdf",
            "--out",
            pdf.to_str().unwrap(),
        ],
    );
    let check = common::tool("qpdf", &["--check"], &pdf);
    assert!(check.contains("No syntax or stream encoding errors found"), "{check}");
    let pdf_text = common::tool("pdftotext", &[], &pdf);
    let flat = pdf_text.split_whitespace().collect::<Vec<_>>().join(" ");
    for title in [
        "Заполнение журнала: доля уроков с темой и с домашним заданием",
        "Отметок на ученика по предмету",
        "Доля уроков с темой: прошлая и эта четверть",
        "Нарушения по правилам",
    ] {
        assert!(flat.contains(title), "chart «{title}» not in the PDF:\n{pdf_text}");
    }
    // the scale's marks are whole per cent (the tables write shares with a decimal; the
    // mark «0 %» sits on the axis, where pdftotext may join its two glyphs)
    for tick in ["25 %", "50 %", "75 %", "100 %"] {
        assert!(flat.split(' ').collect::<Vec<_>>().windows(2).any(|w| format!("{} {}", w[0], w[1]) == tick), "{tick}");
    }
    for i in 0..3 {
        // on each of the four charts (and in the tables, where a narrow column may wrap it)
        let times = flat.matches(&school_name(i)).count();
        assert!(times >= 4, "{} {times} times in the PDF", school_name(i));
    }
    let pages = d.dir.path().join("rollout-page");
    let out = std::process::Command::new("pdftoppm").args(["-r", "40"]).arg(&pdf).arg(&pages).output().unwrap();
    assert!(out.status.success(), "{}", common::output_text(&out));
    let mut colours = [0usize; 2];
    for entry in std::fs::read_dir(d.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if !path.file_name().unwrap().to_string_lossy().starts_with("rollout-page") {
            continue;
        }
        let ppm = std::fs::read(&path).unwrap();
        // P6: «P6», width, height, 255, each after one whitespace; then RGB bytes
        let mut fields = 0;
        let mut at = 0;
        while fields < 4 {
            while ppm[at].is_ascii_whitespace() {
                at += 1;
            }
            while !ppm[at].is_ascii_whitespace() {
                at += 1;
            }
            fields += 1;
        }
        for px in ppm[at + 1..].chunks_exact(3) {
            for (n, want) in [[0x4F, 0x81, 0xBD], [0xC0, 0x50, 0x4D]].iter().enumerate() {
                if px.iter().zip(want).all(|(a, b)| a.abs_diff(*b) <= 6) {
                    colours[n] += 1;
                }
            }
        }
    }
    assert!(colours.iter().all(|n| *n > 50), "pixels of the two series' colours: {colours:?}");

    // K5: no student's or parent's name anywhere in the workbook, the JSON, the CSV or the PDF
    let mut text = String::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if f.name().unwrap().ends_with(".xml") {
            f.read_to_string(&mut text).unwrap();
        }
    }
    text.push_str(&serde_json::to_string(&report).unwrap());
    text.push_str(
        &String::from_utf8(run(
            &d,
            &["report", "rollout", "--district", &municipality, "--quarter", "2", "--format", "csv"],
        ))
        .unwrap(),
    );
    text.push_str(&pdf_text);
    let present = words(&text);
    let mut looked = 0;
    for s in &d.world.schools {
        for p in s.students.iter().chain(&s.guardians) {
            assert!(!text.contains(&format!("{} {}", p.last_name, p.first_name)), "{} {}", p.last_name, p.first_name);
            assert!(!present.contains(&p.last_name), "the last name {} is in the report", p.last_name);
            looked += 1;
        }
    }
    assert!(looked > 100);
}

#[tokio::test]
async fn a_report_job_writes_each_schools_monthly_reports_and_the_districts() {
    let d = district().await;
    std::fs::create_dir_all(d.dir.path().join("schedules")).unwrap();
    std::fs::write(
        d.dir.path().join("schedules/reports.toml"),
        "time_zone = \"Europe/Moscow\"\n\n[[job]]\nname = \"monthly-reports\"\nkind = \"report\"\ntarget = \"all\"\n\
         cron = \"0 6 1 * *\"\ncatch_up = \"once\"\ntime_limit_minutes = 60\n",
    )
    .unwrap();
    run(&d, &["jobs", "run", "monthly-reports"]);
    let day = std::fs::read_dir(d.dir.path().join("reports")).unwrap().next().unwrap().unwrap().path();
    let mut files: Vec<String> =
        std::fs::read_dir(&day).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    files.sort();
    // per school the report per teacher, the справка and the activity of the month (and the
    // progress of any period that ended since the month's first day), and the district's
    let progress: Vec<&String> = files.iter().filter(|f| f.contains("-успеваемость-")).collect();
    assert_eq!(files.len(), 3 * 3 + 1 + progress.len(), "{files:?}");
    for i in 0..3 {
        let prefix = school_name(i).replace(' ', "_");
        assert!(files.iter().any(|f| f.starts_with(&format!("{prefix}-учителя-"))), "{files:?}");
        assert!(files.iter().any(|f| f.starts_with(&format!("{prefix}-справка-"))), "{files:?}");
        let activity = files.iter().find(|f| f.starts_with(&format!("{prefix}-активность-"))).expect("P3");
        let book = common::openpyxl(&day.join(activity));
        assert!(!book["data"].as_object().unwrap().is_empty(), "{activity}: {book}");
    }
    for p in progress {
        assert!(!common::openpyxl(&day.join(p))["data"].as_object().unwrap().is_empty(), "{p}");
    }
    let rollout = files.iter().find(|f| f.starts_with("внедрение-")).expect("the district's report");
    let book = common::openpyxl(&day.join(rollout));
    assert_eq!(book["data"]["Школы"]["rows"].as_array().unwrap().len(), 1 + 3 + 1);
}

#[tokio::test]
async fn a_monthly_job_finds_the_periods_that_ended_in_its_month() {
    let d = district().await;
    let school = &d.world.schools[0];
    let store = ejgate::store::open(&format!("sqlite://{}", d.dir.path().join("ejgate.db").display())).await.unwrap();
    let j = ejgate::report::school::Journal::load(store.as_ref(), &[SCHOOLS[0].0.to_string()]).await.unwrap();
    for p in school.periods.iter().filter(|p| p.kind != ejgate_sdk::model::PeriodKind::Year) {
        // The month after the period's end: its first day up to the job's day.
        let from = p.end.with_day(1).unwrap();
        let to = p.end + chrono::Days::new(1);
        let found = ejgate::report::school::ended_between(&j, from, to);
        assert!(found.iter().any(|s| s.name == p.name && s.from == p.start && s.to == p.end), "{}: {found:?}", p.name);
        // From the day after its end it is no longer new.
        let later = ejgate::report::school::ended_between(&j, to, to + chrono::Days::new(1));
        assert!(!later.iter().any(|s| s.name == p.name), "{}: {later:?}", p.name);
    }
    let year_end = school.year.end;
    let found = ejgate::report::school::ended_between(&j, year_end, year_end + chrono::Days::new(1));
    assert!(found.iter().any(|s| s.period.is_none() && s.to == year_end), "{found:?}");
}
