//! КИАСУО exchange files end to end: a store filled from the synthetic school (with
//! arrivals, departures and transfers added) → export of the contingent, the movement and
//! the final marks as XML and XLSX → import into a fresh store → export again: the same
//! bytes. Dry runs write nothing and predict the import; a second import writes nothing;
//! planted errors are all reported with where they are, and nothing is written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ejgate::kiasuo::{self, ExportOptions, ImportOptions, KiasuoError};
use ejgate::store::{SqliteStore, Store};
use ejgate_kiasuo::exchange::{self, ExchangeKind, Format, Location, ProblemCode};
use ejgate_sdk::model::{self as m, Entity, EntityKind, IdSpace, Record};
use ejgate_sdk::synth::{key, SynthConfig, World};

const SOURCE_A: &str = "kiasuo-school";

fn d(y: i32, mo: u32, da: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, mo, da).unwrap()
}

async fn open_store(dir: &Path, name: &str) -> Box<dyn Store> {
    let url = format!("sqlite://{}", dir.join(name).display());
    Box::new(SqliteStore::open(&url).await.expect("store opens"))
}

async fn change_count(store: &dyn Store) -> usize {
    store.changes_since(0, 1_000_000).await.unwrap().len()
}

/// The school's classes, pupils, class enrollments, subjects, quarters and final marks as
/// canonical records, with three movements added: a transfer, a departure, an arrival.
fn school_records(world: &World) -> Vec<Record> {
    let s = &world.schools[0];
    let ids = IdSpace::new(SOURCE_A);
    let rec = |source_id: String, entity: Entity| Record {
        id: ids.id(entity.kind(), &source_id),
        source_id,
        scope: "test".into(),
        date: None,
        source_updated_at: None,
        entity,
    };
    let mut out = Vec::new();
    out.push(rec(
        key::id(s.year.id),
        Entity::AcademicYear(m::AcademicYear {
            organization: None,
            name: s.year.name.clone(),
            start: s.year.start,
            end: s.year.end,
        }),
    ));
    for p in &s.periods {
        out.push(rec(
            key::id(p.id),
            Entity::StudyPeriod(m::StudyPeriod {
                organization: None,
                academic_year: None,
                kind: p.kind,
                number: p.number,
                name: p.name.clone(),
                start: p.start,
                end: p.end,
            }),
        ));
    }
    for c in &s.classes {
        out.push(rec(
            key::id(c.id),
            Entity::Class(m::Class {
                organization: None,
                academic_year: None,
                name: c.name.clone(),
                grade: Some(c.grade),
                homeroom_teacher: None,
            }),
        ));
    }
    for p in &s.students {
        out.push(rec(
            key::id(p.id),
            Entity::Person(m::Person {
                last_name: p.last_name.clone(),
                first_name: p.first_name.clone(),
                middle_name: Some(p.middle_name.clone()).filter(|x| !x.is_empty()),
                sex: Some(p.sex),
                birth_date: Some(p.birth_date),
                roles: vec![m::Role::Student],
            }),
        ));
    }
    for sub in &s.subjects {
        out.push(rec(
            key::id(sub.id),
            Entity::Subject(m::Subject {
                organization: None,
                name: sub.name.clone(),
                normalized_name: m::normalize_name(&sub.name),
                knowledge_area: Some(sub.knowledge_area.clone()),
            }),
        ));
    }
    let class_ids: BTreeSet<u64> = s.classes.iter().map(|c| c.id).collect();
    let mut class_enrollments: Vec<_> = s.enrollments.iter().filter(|e| class_ids.contains(&e.unit)).collect();
    class_enrollments.sort_by_key(|e| (e.unit, e.student));
    let enrollment = |unit: u64, student: u64, status, from, to, order: Option<String>| {
        rec(
            key::enrollment(unit, student),
            Entity::Enrollment(m::Enrollment {
                student: ids.id(EntityKind::Person, &key::id(student)),
                unit: ids.id(EntityKind::Class, &key::id(unit)),
                status,
                from,
                to,
                order,
            }),
        )
    };
    // Movements: the first pupil is transferred to the next class on 15 December, the second
    // leaves on 20 January, the third arrived on 6 October.
    let (moved, left, arrived) = (class_enrollments[0], class_enrollments[1], class_enrollments[2]);
    let other_class = s.classes.iter().find(|c| c.id != moved.unit).unwrap().id;
    for (n, e) in class_enrollments.iter().enumerate() {
        let admission = Some(format!("№ {}-у", n + 1));
        let r = if e.student == moved.student {
            enrollment(
                e.unit,
                e.student,
                m::EnrollmentStatus::Archived,
                Some(e.from),
                Some(d(2025, 12, 14)),
                Some(format!("зачисление: № {}-у; выбытие: № 77-п", n + 1)),
            )
        } else if e.student == left.student {
            enrollment(
                e.unit,
                e.student,
                m::EnrollmentStatus::Archived,
                Some(e.from),
                Some(d(2026, 1, 20)),
                Some(format!("зачисление: № {}-у; выбытие: № 90-в", n + 1)),
            )
        } else if e.student == arrived.student {
            enrollment(
                e.unit,
                e.student,
                m::EnrollmentStatus::Active,
                Some(d(2025, 10, 6)),
                None,
                Some("№ 55-у".into()),
            )
        } else {
            enrollment(e.unit, e.student, m::EnrollmentStatus::Active, Some(e.from), e.to, admission)
        };
        out.push(r);
    }
    out.push(enrollment(
        other_class,
        moved.student,
        m::EnrollmentStatus::Active,
        Some(d(2025, 12, 15)),
        None,
        Some("№ 77-п".into()),
    ));
    for ((student, subject, period), fm) in &s.final_marks {
        out.push(rec(
            key::final_mark(*student, *subject, *period),
            Entity::FinalMark(m::FinalMark {
                student: ids.id(EntityKind::Person, &key::id(*student)),
                subject: ids.id(EntityKind::Subject, &key::id(*subject)),
                period: period.map(|p| ids.id(EntityKind::StudyPeriod, &key::id(p))),
                value: fm.value.clone(),
                numeric: None,
                special: None,
                entered_at: None,
            }),
        ));
    }
    out
}

/// A store holding the synthetic school as source `SOURCE_A`.
async fn filled_store(dir: &Path) -> Box<dyn Store> {
    let world = World::generate(SynthConfig::small(5));
    let store = open_store(dir, "a.db").await;
    let records = school_records(&world);
    let ids: Vec<_> = records.iter().map(|r| r.id).collect();
    let existing = store.existing(SOURCE_A, &ids, &[]).await.unwrap();
    let changes = ejgate::sync::diff(records.into_iter().map(ejgate::sync::canonical).collect(), &existing);
    let run = store.begin_run(SOURCE_A, "test").await.unwrap();
    store.apply(run, SOURCE_A, &changes, &[]).await.unwrap();
    store
}

async fn export(store: &dyn Store, source: &str, what: ExchangeKind, out: PathBuf) -> Vec<u8> {
    kiasuo::export(
        store,
        &ExportOptions { what, out: out.clone(), format: None, source: source.into(), mapping: None },
    )
    .await
    .unwrap_or_else(|e| panic!("export of {what} failed: {e}"));
    std::fs::read(out).unwrap()
}

fn import_options(file: &Path, dry_run: bool) -> ImportOptions {
    ImportOptions {
        file: file.to_path_buf(),
        source: kiasuo::DEFAULT_SOURCE.into(),
        mapping: None,
        mappings_dir: None,
        dry_run,
    }
}

const ORDER: [ExchangeKind; 3] = [ExchangeKind::Contingent, ExchangeKind::Movement, ExchangeKind::FinalMarks];

#[tokio::test]
async fn export_import_export_gives_the_same_bytes_and_a_second_import_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled_store(dir.path()).await;
    for ext in ["xml", "xlsx"] {
        let b = open_store(dir.path(), &format!("b-{ext}.db")).await;
        let mut first = Vec::new();
        for what in ORDER {
            let path = dir.path().join(format!("a-{what}.{ext}"));
            let bytes = export(a.as_ref(), SOURCE_A, what, path.clone()).await;
            // The same store exports the same bytes twice.
            assert_eq!(bytes, export(a.as_ref(), SOURCE_A, what, path.clone()).await, "{what}.{ext} is not stable");
            first.push((what, path, bytes));
        }
        if ext == "xml" {
            let movement = String::from_utf8(first[1].2.clone()).unwrap();
            for kind in
                ["<Вид>Перевод</Вид>", "<Вид>Прибытие</Вид>", "<Вид>Выбытие</Вид>", "№ 77-п", "№ 90-в", "№ 55-у"]
            {
                assert!(movement.contains(kind), "movement lacks {kind}:\n{movement}");
            }
            let marks = String::from_utf8(first[2].2.clone()).unwrap();
            assert!(marks.matches("<Отметка>").count() > 500, "final marks are exported");
            assert!(marks.contains("<Период>Год</Период>") || marks.contains("четверть"), "{}", &marks[..2000]);
        }
        for (what, path, _) in &first {
            let report =
                kiasuo::import(b.as_ref(), &import_options(path, false)).await.unwrap_or_else(|e| panic!("{e}"));
            assert!(report.total() > 0, "{what}.{ext} brought nothing");
        }
        for (what, _, bytes) in &first {
            let again =
                export(b.as_ref(), kiasuo::DEFAULT_SOURCE, *what, dir.path().join(format!("b-{what}.{ext}"))).await;
            assert!(again == *bytes, "{what}.{ext}: export → import → export changed the file");
        }
        let before = change_count(b.as_ref()).await;
        for (what, path, _) in &first {
            let report = kiasuo::import(b.as_ref(), &import_options(path, false)).await.unwrap();
            assert_eq!(report.total(), 0, "a second import of {what}.{ext} changed {:?}", report.changes);
        }
        assert_eq!(change_count(b.as_ref()).await, before);
    }
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_announces_what_the_import_then_writes() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled_store(dir.path()).await;
    let b = open_store(dir.path(), "b.db").await;
    for what in ORDER {
        let path = dir.path().join(format!("{what}.xml"));
        export(a.as_ref(), SOURCE_A, what, path.clone()).await;
        let (changes_before, runs_before) = (change_count(b.as_ref()).await, b.runs(100).await.unwrap().len());
        let plan = kiasuo::import(b.as_ref(), &import_options(&path, true)).await.unwrap();
        assert!(plan.dry_run && plan.run.is_none());
        assert!(plan.total() > 0);
        assert_eq!(change_count(b.as_ref()).await, changes_before, "a dry run wrote changes");
        assert_eq!(b.runs(100).await.unwrap().len(), runs_before, "a dry run recorded a run");
        let text = kiasuo::render_import(&plan);
        assert!(text.contains("dry run, nothing written") && text.contains("would write"), "{text}");

        let done = kiasuo::import(b.as_ref(), &import_options(&path, false)).await.unwrap();
        assert_eq!(done.changes, plan.changes, "{what}: the import did other than the dry run said");
        let logged = b.changes_of_run(done.run.unwrap()).await.unwrap();
        assert_eq!(logged.len() as u64, plan.total());
        assert_eq!(change_count(b.as_ref()).await - changes_before, plan.total() as usize);
    }
}

/// A contingent with ten planted errors, each of a different kind, and the line of each.
const TEN_ERRORS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Контингент УчебныйГод="2025/2026">
  <Классы>
    <Класс><Ид>101</Ид><Наименование>5А</Наименование></Класс>
    <Класс><Ид>102</Ид><Наименование>5Б</Наименование></Класс>
    <Класс><Ид>103</Ид><Наименование>5А</Наименование></Класс>
  </Классы>
  <Ученики>
    <Ученик><Ид>1</Ид><Фамилия>Иванов</Фамилия><Имя>Иван</Имя><Пол>М</Пол><ДатаРождения>31.02.2014</ДатаРождения><Класс>5А</Класс></Ученик>
    <Ученик><Ид>2</Ид><Фамилия>Петрова</Фамилия><Имя>Анна</Имя><Пол>Ж</Пол><Класс>9Я</Класс></Ученик>
    <Ученик><Ид>3</Ид><Фамилия>Сидоров</Фамилия><Имя>Пётр</Имя><Класс>5А</Класс></Ученик>
    <Ученик><Ид>3</Ид><Фамилия>Сидорова</Фамилия><Имя>Мария</Имя><Класс>5Б</Класс></Ученик>
    <Ученик><Ид>4</Ид><Имя>Олег</Имя><Класс>5Б</Класс></Ученик>
    <Ученик><Ид>5</Ид><Фамилия>Орлов</Фамилия><Имя>Глеб</Имя><Пол>X</Пол><Класс>5Б</Класс></Ученик>
    <Ученик><Ид>6</Ид><Фамилия>Зуев</Фамилия><Имя>Лев</Имя><Класс>5Б</Класс><ДатаЗачисленияВКласс>01.09.2024</ДатаЗачисленияВКласс></Ученик>
    <Ученик><Ид>7</Ид><Фамилия>Котов</Фамилия><Имя>Ян</Имя><Отчесво>Ильич</Отчесво><Класс>5Б</Класс></Ученик>
    <Ученик><Ид>8</Ид><Фамилия>Рыбин</Фамилия><Имя>Ной</Имя><ДатаРождения>02.09.2025</ДатаРождения><Класс>5Б</Класс><ДатаЗачисленияВКласс>01.09.2025</ДатаЗачисленияВКласс></Ученик>
    <Ученик><Ид>9</Ид><Фамилия>Лисин</Фамилия><Имя>Ян</Имя><Имя>Яков</Имя><Класс>5Б</Класс></Ученик>
    <Ученик><Ид>10</Ид><Фамилия>Верный</Фамилия><Имя>Ученик</Имя><Класс>5Б</Класс></Ученик>
  </Ученики>
</Контингент>
"#;

#[tokio::test]
async fn ten_planted_errors_are_all_reported_with_their_lines_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), "b.db").await;
    let path = dir.path().join("contingent-with-errors.xml");
    std::fs::write(&path, TEN_ERRORS).unwrap();
    let err = kiasuo::import(store.as_ref(), &import_options(&path, false)).await.unwrap_err();
    let KiasuoError::Invalid { problems, .. } = &err else { panic!("not a validation error: {err}") };
    let got: Vec<(usize, ProblemCode)> = problems
        .iter()
        .map(|p| match &p.location {
            Location::Xml { line, .. } => (*line, p.code),
            other => panic!("an XML problem without a line: {other:?}"),
        })
        .collect();
    let want = vec![
        (6, ProblemCode::DuplicateClass),
        (9, ProblemCode::BadDate),
        (10, ProblemCode::UnknownClass),
        (12, ProblemCode::DuplicateStudent),
        (13, ProblemCode::MissingField),
        (14, ProblemCode::BadValue),
        (15, ProblemCode::OutsideYear),
        (16, ProblemCode::UnknownField),
        (17, ProblemCode::Inconsistent),
        (18, ProblemCode::Structure),
    ];
    assert_eq!(got, want, "{err}");
    let text = err.to_string();
    assert!(text.contains("10 problem(s); nothing was written"), "{text}");
    assert!(text.contains("line 9, <ДатаРождения>: <ДатаРождения>: «31.02.2014» is not a date"), "{text}");
    assert!(text.contains("«9Я»") && text.contains("<Отчесво>"), "{text}");
    assert_eq!(change_count(store.as_ref()).await, 0);
    assert!(store.runs(10).await.unwrap().is_empty());
    // A dry run reports the same.
    let dry = kiasuo::import(store.as_ref(), &import_options(&path, true)).await.unwrap_err();
    assert_eq!(dry.to_string(), text);
}

#[tokio::test]
async fn final_mark_errors_in_xlsx_name_sheet_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled_store(dir.path()).await;
    let b = open_store(dir.path(), "b.db").await;
    let contingent = dir.path().join("contingent.xlsx");
    export(a.as_ref(), SOURCE_A, ExchangeKind::Contingent, contingent.clone()).await;
    kiasuo::import(b.as_ref(), &import_options(&contingent, false)).await.unwrap();

    // Take the real export and break three rows: an unknown pupil, an unknown mark value,
    // a period outside the academic year.
    let layout = exchange::Layout::default_layout();
    let good = export(a.as_ref(), SOURCE_A, ExchangeKind::FinalMarks, dir.path().join("marks.xml")).await;
    let marks = exchange::Marks::load(None).unwrap();
    let raw = exchange::read_raw(&good, Format::Xml, &layout).0.unwrap();
    let mut file = exchange::typed::from_raw(
        &raw,
        &layout,
        &exchange::Known {
            classes: raw
                .section("marks")
                .iter()
                .filter_map(|r| r.cell("class").map(|c| (c.value.clone(), String::new())))
                .collect(),
            pupils: raw
                .section("marks")
                .iter()
                .map(|r| {
                    (
                        r.cell("pupil_id").unwrap().value.clone(),
                        (
                            r.cell("last_name").unwrap().value.clone(),
                            r.cell("first_name").unwrap().value.clone(),
                            r.cell("middle_name").map(|c| c.value.clone()),
                        ),
                    )
                })
                .collect(),
        },
        &marks,
    )
    .unwrap();
    let exchange::ExchangeFile::FinalMarks(f) = &mut file else { unreachable!() };
    f.rows[0].pupil_id = "999".into();
    f.rows[1].mark = "6".into();
    let quarter = f.rows.iter().position(|r| matches!(r.period, exchange::PeriodRef::Period { .. })).unwrap();
    let quarter = quarter.max(2);
    if let exchange::PeriodRef::Period { id, name, .. } = f.rows[quarter].period.clone() {
        // Every row of that period must agree, or the file also has period conflicts.
        for r in f.rows.iter_mut() {
            if matches!(&r.period, exchange::PeriodRef::Period { id: i, .. } if *i == id) {
                r.period = exchange::PeriodRef::Period {
                    id: id.clone(),
                    name: name.clone(),
                    start: d(2026, 9, 1),
                    end: d(2026, 10, 31),
                };
            }
        }
    }
    let bytes = exchange::write(&file, &layout, Format::Xlsx).unwrap();
    let path = dir.path().join("marks-with-errors.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let before = change_count(b.as_ref()).await;
    let err = kiasuo::import(b.as_ref(), &import_options(&path, false)).await.unwrap_err();
    let KiasuoError::Invalid { problems, .. } = &err else { panic!("{err}") };
    let find =
        |code: ProblemCode| problems.iter().find(|p| p.code == code).unwrap_or_else(|| panic!("no {code:?} in {err}"));
    assert_eq!(
        find(ProblemCode::UnknownPupil).location,
        Location::Xlsx {
            sheet: "Итоговые отметки".into(), row: 2, column: Some("A «Ид ученика»".into())
        }
    );
    assert_eq!(
        find(ProblemCode::UnknownMark).location,
        Location::Xlsx {
            sheet: "Итоговые отметки".into(), row: 3, column: Some("L «Отметка»".into())
        }
    );
    let outside = find(ProblemCode::OutsideYear);
    assert!(
        matches!(&outside.location, Location::Xlsx { column: Some(c), .. } if c == "J «Начало периода»"),
        "{outside}"
    );
    assert!(problems.iter().all(|p| matches!(p.location, Location::Xlsx { .. })), "{err}");
    assert_eq!(change_count(b.as_ref()).await, before);
}

#[tokio::test]
async fn broken_xml_wrong_encodings_and_a_wrong_root_are_refused_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path(), "b.db").await;
    let good = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Контингент УчебныйГод=\"2025/2026\">\n<Классы>\n<Класс><Ид>1</Ид><Наименование>5А</Наименование></Класс>\n</Классы>\n</Контингент>\n";
    let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(good);
    let no_declaration = good.replacen("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", "\n", 1);
    let (cp1251_undeclared, _, _) = encoding_rs::WINDOWS_1251.encode(&no_declaration);
    let cases: Vec<(&str, Vec<u8>, ProblemCode, usize, &str)> = vec![
        (
            "unclosed.xml",
            good.replace("</Наименование></Класс>", "</Класс>").into_bytes(),
            ProblemCode::Malformed,
            4,
            "not well-formed",
        ),
        (
            "cut.xml",
            good.as_bytes()[..good.find("</Классы>").unwrap()].to_vec(),
            ProblemCode::Malformed,
            3,
            "ends inside <Классы>",
        ),
        ("lying.xml", cp1251.into_owned(), ProblemCode::Encoding, 2, "declares UTF-8 but is written in Windows-1251"),
        ("undeclared.xml", cp1251_undeclared.into_owned(), ProblemCode::Encoding, 2, "declares no encoding"),
        (
            "root.xml",
            good.replace("Контингент", "Ученики").into_bytes(),
            ProblemCode::WrongRoot,
            2,
            "expected one of <Контингент>",
        ),
    ];
    for (name, bytes, code, line, text) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = kiasuo::import(store.as_ref(), &import_options(&path, false)).await.unwrap_err();
        let KiasuoError::Invalid { problems, .. } = &err else { panic!("{name}: {err}") };
        assert_eq!(problems.len(), 1, "{name}: {err}");
        assert_eq!(problems[0].code, code, "{name}: {err}");
        assert!(matches!(&problems[0].location, Location::Xml { line: l, .. } if *l == line), "{name}: {err}");
        assert!(err.to_string().contains(text), "{name}: {err}");
    }
    // Windows-1251 that says so is read.
    let declared = good.replace("encoding=\"UTF-8\"", "encoding=\"windows-1251\"");
    let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode(&declared);
    let path = dir.path().join("cp1251.xml");
    std::fs::write(&path, bytes).unwrap();
    let report = kiasuo::import(store.as_ref(), &import_options(&path, true)).await.unwrap();
    assert_eq!(report.changes[&EntityKind::Class].inserted, 1);
    assert_eq!(change_count(store.as_ref()).await, 0);
}

#[tokio::test]
async fn the_xlsx_opens_in_openpyxl() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled_store(dir.path()).await;
    let path = dir.path().join("contingent.xlsx");
    export(a.as_ref(), SOURCE_A, ExchangeKind::Contingent, path.clone()).await;
    let script = "import sys, openpyxl\n\
wb = openpyxl.load_workbook(sys.argv[1])\n\
print('|'.join(wb.sheetnames))\n\
ws = wb['Ученики']\n\
print('|'.join(str(c.value) for c in ws[1]))\n\
print(ws.max_row)\n\
print(wb['Сведения']['B2'].value)\n";
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("python3 is needed to check the XLSX with openpyxl (pip install openpyxl): {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openpyxl could not open the export{}:\n{stderr}",
        if stderr.contains("No module named") { " (openpyxl is missing: pip install openpyxl)" } else { "" }
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "Сведения|Классы|Ученики");
    assert!(lines[1].starts_with("Ид ученика|Фамилия|Имя|Отчество|Пол|Дата рождения|Класс"), "{stdout}");
    assert!(lines[2].parse::<u32>().unwrap() > 50, "{stdout}");
    assert_eq!(lines[3], "2025/2026");
}

#[test]
fn the_cli_imports_with_a_dry_run_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ejgate.toml"), "[store]\nurl = \"sqlite://ejgate.db\"\n").unwrap();
    let file = dir.path().join("c.xml");
    let ten = TEN_ERRORS.lines().filter(|l| !l.contains("<Ученик>") || l.contains("<Ид>10</Ид>")).collect::<Vec<_>>();
    let fixed = ten.join("\n").replace("<Ид>103</Ид><Наименование>5А", "<Ид>103</Ид><Наименование>6А").replace(
        "<Класс>5Б</Класс></Ученик>",
        "<Класс>5Б</Класс><ДатаЗачисленияВКласс>01.09.2025</ДатаЗачисленияВКласс></Ученик>",
    );
    std::fs::write(&file, fixed).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ejgate"))
            .current_dir(dir.path())
            .args(["--config", "ejgate.toml", "kiasuo"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["import", "c.xml", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("dry run") && stdout.contains("would write 5 change(s)"), "{stdout}");
    let out = run(&["import", "c.xml"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 5 change(s)"));
    let out = run(&["export", "--what", "contingent", "--out", "out.xlsx"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(dir.path().join("out.xlsx")).unwrap().starts_with(b"PK"));
    let out = run(&["import", "missing.xml"]);
    assert!(!out.status.success());
}

/// A pupil id a spreadsheet rounded into exponent form (`1.75E+18`) had been imported as a
/// new pupil and enrolment; now the file is refused at the id's line with what to do, and
/// nothing is written.
#[tokio::test]
async fn an_id_in_exponent_form_is_refused_with_its_line_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled_store(dir.path()).await;
    let b = open_store(dir.path(), "b.db").await;
    let good = export(a.as_ref(), SOURCE_A, ExchangeKind::Contingent, dir.path().join("contingent.xml")).await;
    let layout = exchange::Layout::default_layout();
    let raw = exchange::read_raw(&good, Format::Xml, &layout).0.unwrap();
    let id = raw.section("pupils")[0].cell("pupil_id").unwrap().value.clone();
    let text = String::from_utf8(good).unwrap();
    assert_eq!(text.matches(&format!(">{id}<")).count(), 1, "the pupil's id occurs once");
    let bad = dir.path().join("rounded.xml");
    std::fs::write(&bad, text.replacen(&format!(">{id}<"), ">1.75E+18<", 1)).unwrap();

    let err = kiasuo::import(b.as_ref(), &import_options(&bad, false)).await.unwrap_err();
    let KiasuoError::Invalid { problems, .. } = &err else { panic!("{err}") };
    let p = problems.iter().find(|p| p.code == ProblemCode::BadValue).unwrap_or_else(|| panic!("{err}"));
    assert!(matches!(p.location, Location::Xml { line, .. } if line > 1), "{p}");
    assert!(p.message.contains("1.75E+18") && p.message.contains("format the column as text"), "{p}");
    assert_eq!(change_count(b.as_ref()).await, 0);
}

/// Two imports into one source at once had both diffed against the store before either
/// wrote, and inserted 2,305 records twice. An import holds the source's lease: while
/// another process holds it, the import is refused with who holds it, and nothing is written.
#[tokio::test]
async fn an_import_into_a_source_another_process_writes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = filled_store(dir.path()).await;
    let b = open_store(dir.path(), "b.db").await;
    let file = dir.path().join("contingent.xml");
    export(a.as_ref(), SOURCE_A, ExchangeKind::Contingent, file.clone()).await;

    let name = ejgate::lease::source_lease(kiasuo::DEFAULT_SOURCE);
    let other = ejgate::store::LeaseRequest {
        name: &name,
        host: "secretary-pc",
        pid: 4242,
        ttl: std::time::Duration::from_secs(3600),
        replace: None,
    };
    let ejgate::store::LeaseOutcome::Acquired { lease, .. } = b.acquire_lease(&other).await.unwrap() else {
        panic!("the lease is free")
    };
    let err = kiasuo::import(b.as_ref(), &import_options(&file, false)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, KiasuoError::Store(ejgate::store::StoreError::LeaseHeld(_))), "{text}");
    assert!(text.contains("pid 4242") && text.contains("«secretary-pc»"), "{text}");
    assert_eq!(change_count(b.as_ref()).await, 0);
    // A dry run writes nothing and needs no lease.
    assert!(kiasuo::import(b.as_ref(), &import_options(&file, true)).await.unwrap().total() > 0);

    b.release_lease(&lease.name, lease.token).await.unwrap();
    let report = kiasuo::import(b.as_ref(), &import_options(&file, false)).await.unwrap();
    assert!(report.total() > 0);
    assert!(b.leases().await.unwrap().is_empty(), "the import gave its lease up");
}
