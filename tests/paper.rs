//! The paper copies (REGULATIONS A1, A2, P4, K7, A4), with outside tools as judges: `qpdf
//! --check` passes every PDF, poppler's `pdffonts` shows every font embedded, `pdfinfo
//! -meta` shows PDF/A-2u (pdfaid part 2, conformance U), and `pdftotext` finds every pupil's
//! Cyrillic name and a sampled pupil's exact marks in the journal copy. Every expected
//! value comes from the synthetic generator's world, never from the document code.
//!
//! The school is written straight into the store (the records a full sync brings,
//! `report::synthetic`), so no emulator runs.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ejgate, output_text, tool};
use ejgate_sdk::model::PeriodKind;
use ejgate_sdk::synth::{School, SynthConfig, SynthPeriod, World};

const SOURCE: &str = "school-1";
const SCHOOL: &str = "МБОУ СОШ № 7";

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    world: World,
}

impl Setup {
    fn school(&self) -> &School {
        &self.world.schools[0]
    }

    fn run(&self, args: &[&str]) -> String {
        let out = ejgate().arg("--config").arg(&self.config).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", output_text(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

/// A small school in the store, a configuration naming it with a template of its own (one
/// text and the binding margin changed) and a minisign key for the bag.
async fn setup(seed: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let db = p.join("ejgate.db");
    let store = ejgate::store::SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
    let world = World::generate(SynthConfig::small(seed));
    ejgate::report::synthetic::store_world(&store, SOURCE, &world).await.unwrap();
    store.close().await;
    std::fs::write(p.join("token"), "unused").unwrap();
    std::fs::set_permissions(p.join("token"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    std::fs::write(p.join("archive.key"), pair.sk.to_box(None).unwrap().to_string()).unwrap();
    std::fs::write(p.join("archive.pub"), pair.pk.to_box().unwrap().to_string()).unwrap();
    std::fs::write(
        p.join("school-template.toml"),
        "[page]\ninner_mm = 28.0\n[texts]\nclass_list = \"Список учащихся класса\"\ndirector = \"И. П. Сидорова\"\n",
    )
    .unwrap();
    let config = p.join("ejgate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n\n[[source]]\nname = \"{SOURCE}\"\nsystem = \"dnevnik\"\n\
             base_url = \"http://127.0.0.1:9\"\ntoken_file = \"token\"\n\n[archive]\ndir = \"archive\"\n\
             minisign_secret_key = \"archive.key\"\nminisign_public_key = \"archive.pub\"\n\n\
             [[school]]\nname = \"{SCHOOL}\"\nsources = [\"{SOURCE}\"]\npaper_template = \"school-template.toml\"\n",
            db.display()
        ),
    )
    .unwrap();
    Setup { dir, config, world }
}

/// The outside judges of one PDF: qpdf's structure check, every font embedded, PDF/A-2u.
/// Returns the number of pages.
fn judge(pdf: &Path) -> usize {
    let check = tool("qpdf", &["--check"], pdf);
    assert!(check.contains("No syntax or stream encoding errors found"), "{}: {check}", pdf.display());
    let fonts = tool("pdffonts", &[], pdf);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{}: no fonts", pdf.display());
    for row in &rows {
        // name type encoding emb sub uni object ID: «emb» and «uni» are yes
        let cols: Vec<&str> = row.split_whitespace().collect();
        let n = cols.len();
        assert_eq!(&cols[n - 5..n - 2], ["yes", "yes", "yes"], "{}: {row}", pdf.display());
    }
    let meta = tool("pdfinfo", &["-meta"], pdf);
    let part = meta.contains("pdfaid:part=\"2\"") || meta.contains("<pdfaid:part>2</pdfaid:part>");
    let conformance =
        meta.contains("pdfaid:conformance=\"U\"") || meta.contains("<pdfaid:conformance>U</pdfaid:conformance>");
    assert!(part && conformance, "{}: not PDF/A-2u:\n{meta}", pdf.display());
    let info = tool("pdfinfo", &[], pdf);
    let pages = info.lines().find_map(|l| l.strip_prefix("Pages:")).expect("pdfinfo names the pages");
    let size = info.lines().find(|l| l.starts_with("Page size:")).unwrap();
    assert!(size.contains("(A4)") || size.contains("841.89 x 595.276"), "{}: not A4: {size}", pdf.display());
    pages.trim().parse().unwrap()
}

fn pdf_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    files.sort();
    files
}

fn quarter(school: &School, number: u8) -> &SynthPeriod {
    school.periods.iter().find(|p| p.kind == PeriodKind::Quarter && p.number == number).unwrap()
}

/// The class's pupils enrolled at some time in the period, as the world has them.
fn pupils(school: &School, class: u64, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Vec<u64> {
    school
        .enrollments
        .iter()
        .filter(|e| e.unit == class && e.from <= to && e.to.is_none_or(|t| t >= from))
        .map(|e| e.student)
        .collect()
}

/// A pupil's marks in a subject in a period, from the world: per day with lessons of the
/// subject (in date order), the day's marks (sorted).
fn marks_of(school: &School, student: u64, subject: u64, period: &SynthPeriod) -> Vec<Vec<String>> {
    let mut days: BTreeMap<chrono::NaiveDate, Vec<String>> = BTreeMap::new();
    for m in school.marks.values().filter(|m| m.student == student) {
        let lesson = &school.lessons[&m.lesson];
        if lesson.subject == subject && !lesson.cancelled && lesson.date >= period.start && lesson.date <= period.end {
            days.entry(lesson.date).or_default().push(m.value.clone());
        }
    }
    days.into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect()
}

/// The lines (trimmed) of the marks grid of a subject, as `pdftotext -layout` reads them:
/// those between «Отметки: SUBJECT» and the next heading.
fn grid_lines<'t>(text: &'t str, subject: &str) -> Vec<&'t str> {
    let heading = format!("Отметки: {subject}");
    let mut lines = text.lines().map(str::trim).skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "no marks grid «{heading}»");
    lines.take_while(|l| !l.starts_with("Темы уроков") && !l.starts_with("Посещаемость")).collect()
}

/// The cells of a pupil's rows in the marks grid of a subject: the grid's lines whose words
/// begin with the pupil's number, surname and first name; what follows are the day cells
/// («5/4» a cell of two marks), each sorted.
fn grid_cells(text: &str, subject: &str, last: &str, first: &str) -> Vec<Vec<String>> {
    let mut cells = Vec::new();
    for line in grid_lines(text, subject) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() >= 3 && words[0].parse::<u32>().is_ok() && words[1] == last && words[2] == first {
            for w in &words[3..] {
                let mut v: Vec<String> = w.split('/').map(str::to_string).collect();
                v.sort();
                cells.push(v);
            }
        }
    }
    cells
}

/// The day headings («02.») of the marks grid of a subject: its words of two digits and a dot.
fn grid_days(text: &str, subject: &str) -> Vec<String> {
    grid_lines(text, subject)
        .into_iter()
        .flat_map(str::split_whitespace)
        .filter(|w| w.len() == 3 && w.ends_with('.') && w[..2].bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copies_of_a_period_pass_the_pdf_judges_and_hold_every_name_and_the_exact_marks() {
    let s = setup(61).await;
    let out = s.dir.path().join("paper");
    let printed = s.run(&["archive", "paper", "--school", SCHOOL, "--period", "2", "--out", out.to_str().unwrap()]);
    let school = s.school();
    let q2 = quarter(school, 2);
    let files = pdf_files(&out);
    assert_eq!(files.len(), school.classes.len(), "one copy per class: {printed}");
    for f in &files {
        judge(f);
    }
    // The pupil sampled: the one with the most marks in Q2, in the subject where they have
    // the most (a name unique in the class).
    let mut count: HashMap<(u64, u64), usize> = HashMap::new();
    for m in school.marks.values() {
        let l = &school.lessons[&m.lesson];
        if l.date >= q2.start && l.date <= q2.end && !l.cancelled {
            *count.entry((m.student, l.subject)).or_default() += 1;
        }
    }
    let person = |id: u64| school.students.iter().find(|p| p.id == id).unwrap();
    let mut sampled = None;
    for class in &school.classes {
        let file = files
            .iter()
            .find(|f| f.file_name().unwrap().to_string_lossy().starts_with(&format!("{}-журнал-", class.name)))
            .unwrap_or_else(|| panic!("no copy for class {}", class.name));
        let text = tool("pdftotext", &[], file);
        let layout = tool("pdftotext", &["-layout"], file);
        let ids = pupils(school, class.id, q2.start, q2.end);
        assert!(!ids.is_empty());
        for id in &ids {
            let p = person(*id);
            let name = format!("{} {} {}", p.last_name, p.first_name, p.middle_name).trim_end().to_string();
            assert!(text.contains(&name), "{}: «{name}» missing", class.name);
        }
        // The school's template is used: its own heading, its director.
        assert!(text.contains("Список учащихся класса") && text.contains("И. П. Сидорова"), "{}", class.name);
        assert!(text.contains("Копия верна"), "{}", class.name);
        let unique = |id: &u64| {
            let p = person(*id);
            ids.iter()
                .filter(|o| person(**o).last_name == p.last_name && person(**o).first_name == p.first_name)
                .count()
                == 1
        };
        for id in ids.iter().filter(|id| unique(id)) {
            for ((student, subject), n) in &count {
                if student == id && sampled.as_ref().is_none_or(|(_, _, _, best, _)| n > best) {
                    sampled = Some((*id, *subject, class.id, *n, layout.clone()));
                }
            }
        }
    }
    let (student, subject, _, n, layout) = sampled.expect("a pupil with marks in Q2");
    assert!(n >= 3, "the sampled pupil has {n} marks");
    let p = person(student);
    let subject_name = &school.subjects.iter().find(|x| x.id == subject).unwrap().name;
    let expected = marks_of(school, student, subject, q2);
    let found = grid_cells(&layout, subject_name, &p.last_name, &p.first_name);
    assert_eq!(found, expected, "{} {}, {subject_name}", p.last_name, p.first_name);
    // The grid's column headings are whole days («02.» over «09»), never a date broken
    // inside («02.0» over «9»): every day the pupil has a mark on is a heading of the grid.
    let headings = grid_days(&layout, subject_name);
    let mut mark_days: Vec<String> = school
        .marks
        .values()
        .filter(|m| m.student == student)
        .map(|m| &school.lessons[&m.lesson])
        .filter(|l| l.subject == subject && !l.cancelled && l.date >= q2.start && l.date <= q2.end)
        .map(|l| l.date.format("%d.").to_string())
        .collect();
    mark_days.dedup();
    for day in &mark_days {
        assert!(headings.contains(day), "{day} is no heading of the grid: {headings:?}");
    }

    // An unknown period is refused with the periods there are.
    let out = ejgate()
        .arg("--config")
        .arg(&s.config)
        .args(["archive", "paper", "--school", SCHOOL, "--period", "7"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no study period «7»"), "{}", output_text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_year_book_counts_its_sheets_and_the_svodnaya_vedomost_holds_the_final_marks() {
    let s = setup(62).await;
    let out = s.dir.path().join("year");
    s.run(&["archive", "paper", "--school", SCHOOL, "--year", "2025/2026", "--out", out.to_str().unwrap()]);
    let school = s.school();
    let files = pdf_files(&out);
    assert_eq!(files.len(), 2 * school.classes.len());
    let q1 = quarter(school, 1);
    let mut checked = 0;
    for class in &school.classes {
        let book = out.join(format!("{}-книга-2025-2026.pdf", class.name));
        let pages = judge(&book);
        let text = tool("pdftotext", &[], &book);
        // The title page: contents, the number of sheets (two pages a sheet) and the
        // director's signature.
        let title = text.split('\u{c}').next().unwrap();
        assert!(title.contains("Содержание") && title.contains("М. П."), "{title}");
        assert!(
            title.contains(&format!("листов: {}.", pages.div_ceil(2))),
            "{}: {pages} pages, the title page says:\n{title}",
            class.name
        );
        for period in school.periods.iter().filter(|p| p.kind == PeriodKind::Quarter) {
            assert!(title.contains(&period.name), "{}: {} not in the contents", class.name, period.name);
        }
        // The сводная ведомость: a pupil's Q1 final marks are the world's.
        let summary = out.join(format!("{}-сводная-ведомость-2025-2026.pdf", class.name));
        judge(&summary);
        let layout = tool("pdftotext", &["-layout"], &summary);
        let ids = pupils(school, class.id, school.year.start, school.year.end);
        let q1_finals = |id: u64| {
            let mut v: Vec<String> = school
                .final_marks
                .iter()
                .filter(|((student, _, period), _)| *student == id && *period == Some(q1.id))
                .map(|(_, f)| f.value.clone())
                .collect();
            v.sort();
            v
        };
        // (first grades get no marks)
        let Some(&id) = ids.iter().find(|id| !q1_finals(**id).is_empty()) else { continue };
        checked += 1;
        let expected = q1_finals(id);
        let p = school.students.iter().find(|x| x.id == id).unwrap();
        // The section of Q1: from its heading to the next period's.
        let mut inside = false;
        let mut section = String::new();
        for line in layout.lines() {
            let t = line.trim();
            if t == q1.name {
                inside = true;
            } else if t == quarter(school, 2).name {
                break;
            } else if inside {
                section.push_str(line);
                section.push('\n');
            }
        }
        assert!(inside, "{}: no section «{}»", class.name, q1.name);
        let mut found: Vec<String> = Vec::new();
        for line in section.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() >= 3 && words[1] == p.last_name && words[2] == p.first_name {
                found.extend(words[3..].iter().map(|w| w.to_string()));
            }
        }
        found.sort();
        assert_eq!(found, expected, "{}: {} {}", class.name, p.last_name, p.first_name);
    }
    assert!(checked >= 5, "final marks checked in {checked} classes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_year_end_bag_holds_the_pdfs_and_passes_bagit_py() {
    let s = setup(63).await;
    s.run(&["archive", "snapshot", "--school", SCHOOL, "--year", "2025/2026"]);
    let bag = s.dir.path().join("archive/ejgate-МБОУ-СОШ-7-2025-2026");
    let pdfs = pdf_files(&bag.join("data/paper"));
    assert_eq!(pdfs.len(), 2 * s.school().classes.len());
    let manifest = std::fs::read_to_string(bag.join("manifest-sha512.txt")).unwrap();
    for pdf in &pdfs {
        let name = pdf.file_name().unwrap().to_string_lossy().to_string();
        assert!(manifest.contains(&format!("  data/paper/{name}\n")), "{name} not in the manifest");
    }
    judge(&pdfs[0]);
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    assert!(info.contains(&format!("Ejgate-Paper-Copies: {} PDF/A-2u files", pdfs.len())), "{info}");
    let out = Command::new("bagit.py").arg("--validate").arg(&bag).output().expect("bagit.py runs (pip install bagit)");
    assert!(out.status.success(), "bagit.py: {}", output_text(&out));
    s.run(&["archive", "verify", bag.to_str().unwrap()]);
    // A changed byte of a PDF is named.
    let mut bytes = std::fs::read(&pdfs[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&pdfs[0], bytes).unwrap();
    let out =
        ejgate().arg("--config").arg(&s.config).args(["archive", "verify", bag.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let name = pdfs[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("data/paper/{name}: its sha512 differs")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_numbers_copies_records_the_hand_over_and_exports_as_pdf() {
    let s = setup(64).await;
    let add = |class: &str, sheets: &str| {
        s.run(&[
            "archive",
            "register",
            "add",
            "--school",
            SCHOOL,
            "--class",
            class,
            "--year",
            "2025/2026",
            "--title",
            "копия журнала, 2 четверть",
            "--sheets",
            sheets,
            "--signed-by",
            "И. П. Сидорова",
            "--kept-at",
            "архив, шкаф 2",
            "--who",
            "Завуч",
        ])
    };
    assert_eq!(add("5А", "14").trim(), "1");
    assert_eq!(add("5Б", "12").trim(), "2");
    s.run(&[
        "archive",
        "register",
        "set",
        "--school",
        SCHOOL,
        "2",
        "--handed-on",
        "2026-01-12",
        "--handed-to",
        "О. В. Петрова",
    ]);
    let list: serde_json::Value = serde_json::from_str(&s.run(&["archive", "register", "list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["handed_on"], "2026-01-12");
    assert_eq!(list[1]["handed_to"], "О. В. Петрова");
    assert_eq!(list[0]["handed_on"], serde_json::Value::Null);
    assert_eq!(list[0]["sheets"], 14);
    let text = s.run(&["archive", "register", "list"]);
    assert!(
        text.contains("№ 1") && text.contains("не передан") && text.contains("12.01.2026 (О. В. Петрова)"),
        "{text}"
    );
    // A number the register does not have is refused.
    let out = ejgate()
        .arg("--config")
        .arg(&s.config)
        .args(["archive", "register", "set", "--school", SCHOOL, "9", "--kept-at", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success() && output_text(&out).contains("no entry № 9"), "{}", output_text(&out));
    // Exported as CSV and as PDF (the reports' Sheets → PDF writer).
    let csv = s.dir.path().join("register.csv");
    s.run(&["archive", "register", "export", "--format", "csv", "--out", csv.to_str().unwrap()]);
    let rows: Vec<Vec<String>> = csv::Reader::from_path(&csv)
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[1][1].as_str(), rows[1][2].as_str(), rows[1][8].as_str()), ("2", "5Б", "2026-01-12"));
    let pdf = s.dir.path().join("register.pdf");
    s.run(&["archive", "register", "export", "--format", "pdf", "--out", pdf.to_str().unwrap()]);
    judge(&pdf);
    let text = tool("pdftotext", &[], &pdf);
    for expected in ["Реестр бумажных копий", "О. В. Петрова", "архив, шкаф 2", "12.01.2026"]
    {
        assert!(text.contains(expected), "{expected}: {text}");
    }
}
