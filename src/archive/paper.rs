//! Бумажные копии журнала (REGULATIONS A1, A2, P4): `ejgate archive paper`.
//!
//! - `--period P`: per class, the copy of the class journal for the period (A1): the class
//!   list, per subject the marks grid and the lessons' topics and homework, attendance, the
//!   period marks, and the certification «Копия верна» with the director's signature, its
//!   transcription and the date;
//! - `--year Y`: per class the year-end book (A2): a title page with the contents and the
//!   number of sheets and the director's signature and seal, then every period of the year
//!   as above and the year marks; and per class the сводная ведомость итоговых отметок of
//!   the year (P4, kept 25 years, A3).
//!
//! All of it is laid out for two-sided printing (mirrored margins, a sheet is two pages,
//! a new part starts on a recto) and written as PDF/A-2u by [`crate::documents`], with the
//! texts of the school's template.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use ejgate_sdk::model::{
    AbsenceReason, AttendanceStatus, Class, Enrollment, EntityKind, FinalMark, Group, Lesson, LessonStatus, Mark,
    PeriodKind, Person, StudyPeriod, Subject, Work,
};
use ejgate_sdk::year::SchoolYear;
use uuid::Uuid;

use super::slug;
use crate::documents::layout::{Align, Column, Layout, Table};
use crate::documents::template::{fill, Template, MM};
use crate::report::load;
use crate::store::Store;

/// What is asked for: a period's copies or the year's books and сводные ведомости.
#[derive(Debug, Clone)]
pub enum PaperSpan {
    /// A study period by its number («2») or its name («2 четверть»), in `year` or the
    /// latest year that has it.
    Period {
        period: String,
        year: Option<SchoolYear>,
    },
    Year(SchoolYear),
}

/// One PDF written.
#[derive(Debug, Clone)]
pub struct PaperFile {
    pub path: PathBuf,
    pub class: String,
    /// «Копия журнала», «Книга», «Сводная ведомость»
    pub kind: PaperKind,
    pub pages: usize,
    pub sheets: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaperKind {
    /// Копия классного журнала за период
    JournalCopy,
    /// Книга (журнал за год, сшитый)
    YearBook,
    /// Сводная ведомость итоговых отметок
    Summary,
}

impl PaperKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaperKind::JournalCopy => "копия журнала",
            PaperKind::YearBook => "книга за год",
            PaperKind::Summary => "сводная ведомость",
        }
    }
}

/// The school's journal as the paper copies read it: one source's records, loaded once.
pub struct Journal {
    pub school: String,
    classes: Vec<(Uuid, Class)>,
    groups: Vec<(Uuid, Group)>,
    people: HashMap<Uuid, Person>,
    enrollments: Vec<Enrollment>,
    subjects: HashMap<Uuid, Subject>,
    lessons: Vec<(Uuid, Lesson)>,
    homework: HashMap<Uuid, Vec<String>>,
    /// Marks by their lesson (through the work when the mark names none).
    marks: HashMap<Uuid, Vec<Mark>>,
    attendance: HashMap<Uuid, Vec<ejgate_sdk::model::Attendance>>,
    finals: Vec<FinalMark>,
    pub periods: Vec<(Uuid, StudyPeriod)>,
}

impl Journal {
    /// Reads the journal source's records (one query per kind).
    pub async fn load(store: &dyn Store, school: &str, source: &str) -> anyhow::Result<Journal> {
        let classes: Vec<(Uuid, Class)> = load(store, EntityKind::Class, Some(source)).await?;
        let groups: Vec<(Uuid, Group)> = load(store, EntityKind::Group, Some(source)).await?;
        let people: Vec<(Uuid, Person)> = load(store, EntityKind::Person, Some(source)).await?;
        let enrollments: Vec<(Uuid, Enrollment)> = load(store, EntityKind::Enrollment, Some(source)).await?;
        let subjects: Vec<(Uuid, Subject)> = load(store, EntityKind::Subject, Some(source)).await?;
        let lessons: Vec<(Uuid, Lesson)> = load(store, EntityKind::Lesson, Some(source)).await?;
        let homework: Vec<(Uuid, ejgate_sdk::model::Homework)> =
            load(store, EntityKind::Homework, Some(source)).await?;
        let works: HashMap<Uuid, Work> = load(store, EntityKind::Work, Some(source)).await?.into_iter().collect();
        let marks: Vec<(Uuid, Mark)> = load(store, EntityKind::Mark, Some(source)).await?;
        let attendance: Vec<(Uuid, ejgate_sdk::model::Attendance)> =
            load(store, EntityKind::Attendance, Some(source)).await?;
        let finals: Vec<(Uuid, FinalMark)> = load(store, EntityKind::FinalMark, Some(source)).await?;
        let periods: Vec<(Uuid, StudyPeriod)> = load(store, EntityKind::StudyPeriod, Some(source)).await?;
        let mut by_lesson: HashMap<Uuid, Vec<String>> = HashMap::new();
        for (_, h) in homework {
            if let Some(l) = h.lesson {
                by_lesson.entry(l).or_default().push(h.text);
            }
        }
        let mut marks_by: HashMap<Uuid, Vec<Mark>> = HashMap::new();
        for (_, m) in marks {
            if let Some(l) = m.lesson.or_else(|| m.work.and_then(|w| works.get(&w)).and_then(|w| w.lesson)) {
                marks_by.entry(l).or_default().push(m);
            }
        }
        for marks in marks_by.values_mut() {
            marks.sort_by(|a, b| a.entered_at.cmp(&b.entered_at).then_with(|| a.value.cmp(&b.value)));
        }
        let mut attendance_by: HashMap<Uuid, Vec<_>> = HashMap::new();
        for (_, a) in attendance {
            attendance_by.entry(a.lesson).or_default().push(a);
        }
        let mut classes = classes;
        classes.sort_by(|a, b| (a.1.grade, &a.1.name).cmp(&(b.1.grade, &b.1.name)));
        let mut periods = periods;
        periods.sort_by_key(|(_, p)| (p.start, p.number));
        Ok(Journal {
            school: school.to_string(),
            classes,
            groups,
            people: people.into_iter().collect(),
            enrollments: enrollments.into_iter().map(|(_, e)| e).collect(),
            subjects: subjects.into_iter().collect(),
            lessons,
            homework: by_lesson,
            marks: marks_by,
            attendance: attendance_by,
            finals: finals.into_iter().map(|(_, f)| f).collect(),
            periods,
        })
    }

    /// The study periods (not the year) inside `range`, in order.
    fn periods_in(&self, range: (NaiveDate, NaiveDate)) -> Vec<&(Uuid, StudyPeriod)> {
        self.periods
            .iter()
            .filter(|(_, p)| p.kind != PeriodKind::Year && p.start >= range.0 && p.end <= range.1)
            .collect()
    }

    /// The period `--period` names.
    pub fn find_period(&self, name: &str, year: Option<SchoolYear>) -> anyhow::Result<(Uuid, StudyPeriod)> {
        let matches = |p: &StudyPeriod| {
            p.kind != PeriodKind::Year
                && (p.number.to_string() == name.trim() || p.name.trim().eq_ignore_ascii_case(name.trim()))
                && year.is_none_or(|y| p.start >= y.start() && p.end <= y.end())
        };
        self.periods.iter().filter(|(_, p)| matches(p)).max_by_key(|(_, p)| p.start).cloned().ok_or_else(|| {
            let known: Vec<String> =
                self.periods.iter().filter(|(_, p)| p.kind != PeriodKind::Year).map(|(_, p)| p.name.clone()).collect();
            anyhow::anyhow!(
                "no study period «{name}»{} in the journal of {} (periods: {})",
                year.map(|y| format!(" in {y}")).unwrap_or_default(),
                self.school,
                known.join(", ")
            )
        })
    }

    fn short_name(&self, id: &Uuid) -> String {
        self.people.get(id).map(|p| format!("{} {}", p.last_name, p.first_name)).unwrap_or_default()
    }

    fn full_name(&self, id: &Uuid) -> String {
        self.people.get(id).map(crate::report::full_name).unwrap_or_default()
    }

    /// The class's pupils enrolled at some time in `range`, by name, with the dates they
    /// came or left inside it.
    fn pupils(&self, class: Uuid, range: (NaiveDate, NaiveDate)) -> Vec<Pupil> {
        let mut pupils: BTreeMap<Uuid, Pupil> = BTreeMap::new();
        for e in self.enrollments.iter().filter(|e| e.unit == class) {
            let from = e.from.unwrap_or(range.0);
            let to = e.to.unwrap_or(range.1);
            if from > range.1 || to < range.0 {
                continue;
            }
            let p = pupils.entry(e.student).or_insert_with(|| Pupil { id: e.student, joined: None, left: None });
            if e.from.is_some_and(|d| d > range.0) {
                p.joined = e.from;
            }
            if e.to.is_some_and(|d| d < range.1) {
                p.left = e.to;
            }
        }
        let mut out: Vec<Pupil> = pupils.into_values().collect();
        out.sort_by_key(|p| {
            let person = self.people.get(&p.id);
            (
                person.map(|p| p.last_name.clone()),
                person.map(|p| p.first_name.clone()),
                person.and_then(|p| p.middle_name.clone()),
            )
        });
        out
    }

    /// The class and its groups (подгруппы): the units whose lessons are the class's.
    fn units(&self, class: Uuid) -> HashSet<Uuid> {
        let mut units: HashSet<Uuid> =
            self.groups.iter().filter(|(_, g)| g.class == Some(class)).map(|(id, _)| *id).collect();
        units.insert(class);
        units
    }

    /// The class's lessons in `range` (not the cancelled ones), by subject, in time order.
    fn lessons_by_subject(&self, class: Uuid, range: (NaiveDate, NaiveDate)) -> BTreeMap<String, SubjectLessons<'_>> {
        let units = self.units(class);
        let mut out: BTreeMap<String, SubjectLessons<'_>> = BTreeMap::new();
        for (id, l) in &self.lessons {
            let Some(subject) = l.subject else { continue };
            if !units.contains(&l.unit) || l.date < range.0 || l.date > range.1 || l.status == LessonStatus::Cancelled {
                continue;
            }
            let name = self.subjects.get(&subject).map(|s| s.name.clone()).unwrap_or_default();
            out.entry(name).or_insert_with(|| (subject, Vec::new())).1.push((*id, l));
        }
        for (_, lessons) in out.values_mut() {
            lessons.sort_by_key(|(_, l)| (l.date, l.number));
        }
        out
    }
}

/// A subject's id and its lessons (id, lesson), by the subject's name.
type SubjectLessons<'a> = (Uuid, Vec<(Uuid, &'a Lesson)>);

struct Pupil {
    id: Uuid,
    joined: Option<NaiveDate>,
    left: Option<NaiveDate>,
}

fn date(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// Lays out one document of a class.
struct Writer<'a> {
    journal: &'a Journal,
    template: &'a Template,
    class: (Uuid, &'a Class),
}

impl Writer<'_> {
    fn values<'v>(&self, extra: &[(&'v str, &'v str)]) -> Vec<(&'v str, String)> {
        let mut v: Vec<(&str, String)> = vec![
            ("school", self.journal.school.clone()),
            ("class", self.class.1.name.clone()),
            ("director", self.template.texts.director.clone()),
            ("teacher", self.class.1.homeroom_teacher.map(|t| self.journal.full_name(&t)).unwrap_or_default()),
        ];
        v.extend(extra.iter().map(|(k, val)| (*k, val.to_string())));
        v
    }

    fn fill(&self, text: &str, extra: &[(&str, &str)]) -> String {
        let values = self.values(extra);
        let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        fill(text, &pairs)
    }

    fn class_list(&self, doc: &mut Layout, pupils: &[Pupil]) {
        let t = &self.template.texts;
        let p = &self.template.page;
        doc.heading(&t.class_list, 1);
        let columns = Table::fit(
            vec![
                Column::mm(p.number_column_mm, Align::Center),
                Column { width: 0.0, align: Align::Left },
                Column::mm(24.0, Align::Center),
                Column::mm(34.0, Align::Left),
            ],
            doc.width(),
        );
        let rows = pupils
            .iter()
            .enumerate()
            .map(|(i, pupil)| {
                let person = self.journal.people.get(&pupil.id);
                let mut note = Vec::new();
                if let Some(d) = pupil.joined {
                    note.push(fill(&t.joined_on, &[("date", date(d).as_str())]));
                }
                if let Some(d) = pupil.left {
                    note.push(fill(&t.left_on, &[("date", date(d).as_str())]));
                }
                vec![
                    (i + 1).to_string(),
                    self.journal.full_name(&pupil.id),
                    person.and_then(|p| p.birth_date).map(date).unwrap_or_default(),
                    note.join("; "),
                ]
            })
            .collect();
        doc.table(&Table { columns, header: t.class_list_columns.clone(), rows });
    }

    /// A table of `fixed` columns and `many` columns of `width` mm, split into as many
    /// tables as the page's width needs; `cells(row, column)` gives a value.
    fn wide_table(
        &self,
        doc: &mut Layout,
        pupils: &[Pupil],
        headings: &[String],
        width_mm: f32,
        cells: &dyn Fn(&Pupil, usize) -> String,
    ) {
        let p = &self.template.page;
        let t = &self.template.texts;
        let fixed = (p.number_column_mm + p.name_column_mm) * MM;
        let per = (((doc.width() - fixed) / (width_mm * MM)).floor() as usize).max(1);
        let chunks: Vec<Vec<usize>> = if headings.is_empty() {
            vec![Vec::new()]
        } else {
            (0..headings.len()).collect::<Vec<_>>().chunks(per).map(<[usize]>::to_vec).collect()
        };
        for chunk in chunks {
            let mut columns =
                vec![Column::mm(p.number_column_mm, Align::Center), Column::mm(p.name_column_mm, Align::Left)];
            columns.extend(chunk.iter().map(|_| Column::mm(width_mm, Align::Center)));
            let mut header: Vec<String> = t.marks_grid_first_columns.clone();
            header.extend(chunk.iter().map(|&c| headings[c].clone()));
            let rows = pupils
                .iter()
                .enumerate()
                .map(|(i, pupil)| {
                    let mut row = vec![(i + 1).to_string(), self.journal.short_name(&pupil.id)];
                    row.extend(chunk.iter().map(|&c| cells(pupil, c)));
                    row
                })
                .collect();
            doc.table(&Table { columns, header, rows });
        }
    }

    /// One period of the journal: per subject the marks grid and the lessons, attendance,
    /// the period marks.
    fn period(
        &self,
        doc: &mut Layout,
        pupils: &[Pupil],
        range: (NaiveDate, NaiveDate),
        period: Option<(Uuid, &StudyPeriod)>,
    ) {
        let t = &self.template.texts;
        let p = &self.template.page;
        let j = self.journal;
        let subjects = j.lessons_by_subject(self.class.0, range);
        if subjects.is_empty() {
            doc.paragraph(&t.no_lessons);
        }
        for (name, (_, lessons)) in &subjects {
            doc.heading(&fill(&t.subject, &[("subject", name.as_str())]), 1);
            let mut teachers: BTreeMap<Uuid, usize> = BTreeMap::new();
            for (_, l) in lessons {
                if let Some(teacher) = l.teacher {
                    *teachers.entry(teacher).or_default() += 1;
                }
            }
            if let Some((teacher, _)) = teachers.iter().max_by_key(|(_, n)| **n) {
                doc.paragraph(&fill(&t.subject_teacher, &[("teacher", j.full_name(teacher).as_str())]));
            }
            // The marks grid: a column per day with lessons.
            let days: Vec<NaiveDate> =
                lessons.iter().map(|(_, l)| l.date).collect::<BTreeSet<_>>().into_iter().collect();
            let mut cell: HashMap<(Uuid, NaiveDate), Vec<&str>> = HashMap::new();
            for (id, l) in lessons {
                for m in j.marks.get(id).into_iter().flatten() {
                    cell.entry((m.student, l.date)).or_default().push(&m.value);
                }
            }
            doc.heading(&fill(&t.marks_grid, &[("subject", name.as_str())]), 2);
            // The day over the month («02.» / «09»): «02.09» on one line is wider than a
            // day's column at the table's type size and broke inside the date.
            let headings: Vec<String> = days.iter().map(|d| d.format("%d.\n%m").to_string()).collect();
            self.wide_table(doc, pupils, &headings, p.date_column_mm, &|pupil, c| {
                cell.get(&(pupil.id, days[c])).map(|v| v.join("/")).unwrap_or_default()
            });
            doc.heading(&fill(&t.lessons, &[("subject", name.as_str())]), 2);
            let columns = Table::fit(
                vec![
                    Column::mm(16.0, Align::Center),
                    Column::mm(9.0, Align::Center),
                    Column { width: 0.0, align: Align::Left },
                    Column { width: 0.0, align: Align::Left },
                ],
                doc.width(),
            );
            let rows = lessons
                .iter()
                .map(|(id, l)| {
                    let homework = j.homework.get(id).map(|h| h.join("; ")).unwrap_or_default();
                    vec![
                        date(l.date),
                        l.number.map(|n| n.to_string()).unwrap_or_default(),
                        l.topic.clone().unwrap_or_default(),
                        homework,
                    ]
                })
                .collect();
            doc.table(&Table { columns, header: t.lessons_columns.clone(), rows });
        }
        // Attendance over every lesson of the class in the range.
        doc.heading(&t.attendance, 1);
        let mut counts: HashMap<Uuid, [u32; 6]> = HashMap::new();
        for (_, lessons) in subjects.values() {
            for (id, _) in lessons {
                for a in j.attendance.get(id).into_iter().flatten() {
                    let c = counts.entry(a.student).or_default();
                    match a.status {
                        AttendanceStatus::Late => c[5] += 1,
                        AttendanceStatus::Absent => {
                            c[0] += 1;
                            match a.reason {
                                Some(AbsenceReason::Illness) => c[1] += 1,
                                Some(AbsenceReason::Excused) => c[2] += 1,
                                Some(AbsenceReason::Unexcused) => c[3] += 1,
                                None => c[4] += 1,
                            }
                        }
                    }
                }
            }
        }
        let mut columns =
            vec![Column::mm(p.number_column_mm, Align::Center), Column::mm(p.name_column_mm, Align::Left)];
        columns.extend((0..6).map(|_| Column { width: 0.0, align: Align::Center }));
        let columns = Table::fit(columns, doc.width());
        let rows = pupils
            .iter()
            .enumerate()
            .map(|(i, pupil)| {
                let c = counts.get(&pupil.id).copied().unwrap_or_default();
                let mut row = vec![(i + 1).to_string(), j.short_name(&pupil.id)];
                row.extend(c.iter().map(|n| if *n == 0 { String::new() } else { n.to_string() }));
                row
            })
            .collect();
        doc.table(&Table { columns, header: t.attendance_columns.clone(), rows });
        if let Some((id, period)) = period {
            doc.heading(&fill(&t.period_marks, &[("period", period.name.as_str())]), 1);
            self.finals(doc, pupils, Some(id));
        }
    }

    /// The final marks of a period (or of the year, `None`): pupils by subjects.
    fn finals(&self, doc: &mut Layout, pupils: &[Pupil], period: Option<Uuid>) {
        let j = self.journal;
        let ids: HashSet<Uuid> = pupils.iter().map(|p| p.id).collect();
        let mut values: HashMap<(Uuid, Uuid), &str> = HashMap::new();
        let mut subjects: BTreeMap<String, Uuid> = BTreeMap::new();
        for f in j.finals.iter().filter(|f| f.period == period && ids.contains(&f.student)) {
            values.insert((f.student, f.subject), &f.value);
            subjects.insert(j.subjects.get(&f.subject).map(|s| s.name.clone()).unwrap_or_default(), f.subject);
        }
        let subjects: Vec<(String, Uuid)> = subjects.into_iter().collect();
        let headings: Vec<String> = subjects.iter().map(|(n, _)| n.clone()).collect();
        let none = self.template.texts.no_mark.clone();
        self.wide_table(doc, pupils, &headings, self.template.page.subject_column_mm, &|pupil, c| {
            values.get(&(pupil.id, subjects[c].1)).map(|v| v.to_string()).unwrap_or_else(|| none.clone())
        });
    }

    fn signature(&self, doc: &mut Layout, lines: &[String], extra: &[(&str, &str)]) {
        doc.gap(6.0);
        for line in lines {
            doc.paragraph(&self.fill(line, extra));
            doc.gap(2.0);
        }
    }
}

/// A class's copy of the journal for a period (A1).
pub fn journal_copy(
    journal: &Journal,
    template: &Template,
    class: (Uuid, &Class),
    period: (Uuid, &StudyPeriod),
) -> anyhow::Result<(Vec<u8>, usize)> {
    let w = Writer { journal, template, class };
    let t = &template.texts;
    let range = (period.1.start, period.1.end);
    let (from, to) = (date(range.0), date(range.1));
    let extra = [("period", period.1.name.as_str()), ("from", from.as_str()), ("to", to.as_str())];
    let pupils = journal.pupils(class.0, range);
    let mut doc = Layout::new(&template.page);
    doc.set_header(&w.fill(&t.running_header, &extra));
    doc.title(&w.fill(&t.journal_title, &extra));
    doc.paragraph(&w.fill(&t.journal_subtitle, &extra));
    w.class_list(&mut doc, &pupils);
    w.period(&mut doc, &pupils, range, Some(period));
    let title = w.fill(&t.journal_title, &extra);
    let certify = |doc: &mut Layout, pages: usize| {
        let sheets = pages.div_ceil(2).to_string();
        let pages = pages.to_string();
        let values = [("pages", pages.as_str()), ("sheets", sheets.as_str()), ("period", period.1.name.as_str())];
        w.signature(doc, &t.certification, &values);
    };
    // The certification names the number of pages, its own included: laid out on a copy
    // first to count them.
    let mut counted = doc.clone();
    certify(&mut counted, doc.page_count());
    certify(&mut doc, counted.page_count());
    let pages = doc.page_count();
    let pdf = doc.finish(&title, &t.footer, period.1.end)?;
    Ok((pdf, pages))
}

/// A class's year-end book (A2): the title page with the contents and the number of
/// sheets and the signature and seal, its blank back, then the class list, every period
/// and the year marks.
pub fn year_book(
    journal: &Journal,
    template: &Template,
    class: (Uuid, &Class),
    year: SchoolYear,
) -> anyhow::Result<(Vec<u8>, usize)> {
    let w = Writer { journal, template, class };
    let t = &template.texts;
    let year_text = year.to_string();
    let range = (year.start(), year.end());
    let pupils = journal.pupils(class.0, range);
    let base = [("period", year_text.as_str()), ("year", year_text.as_str())];
    // The contents first, as if after two title pages (the title page and its blank back).
    const TITLE_PAGES: usize = 2;
    let mut body = Layout::new(&template.page);
    body.set_header(&w.fill(&t.running_header, &base));
    let mut contents: Vec<(String, usize)> = vec![(t.class_list.clone(), body.current_page() + TITLE_PAGES)];
    w.class_list(&mut body, &pupils);
    for (id, period) in journal.periods_in(range) {
        body.recto_break();
        let extra = [("period", period.name.as_str()), ("year", year_text.as_str())];
        body.set_header(&w.fill(&t.running_header, &extra));
        contents.push((period.name.clone(), body.current_page() + TITLE_PAGES));
        body.title(&period.name);
        w.period(&mut body, &pupils, (period.start, period.end), Some((*id, period)));
    }
    body.recto_break();
    body.set_header(&w.fill(&t.running_header, &base));
    contents.push((t.year_marks.clone(), body.current_page() + TITLE_PAGES));
    body.heading(&t.year_marks, 1);
    w.finals(&mut body, &pupils, None);
    let pages = body.page_count() + TITLE_PAGES;
    let sheets = pages.div_ceil(2).to_string();
    let mut book = Layout::new(&template.page);
    book.gap(20.0);
    book.title(&w.fill(&t.book_title, &base));
    book.paragraph(&journal.school);
    book.paragraph(&w.fill(&t.book_subtitle, &base));
    book.heading(&t.book_contents, 1);
    let columns =
        Table::fit(vec![Column { width: 0.0, align: Align::Left }, Column::mm(22.0, Align::Center)], book.width());
    let rows = contents.iter().map(|(name, page)| vec![name.clone(), page.to_string()]).collect();
    book.table(&Table { columns, header: t.book_contents_columns.clone(), rows });
    book.paragraph(&w.fill(&t.book_sheets, &[("sheets", sheets.as_str())]));
    w.signature(&mut book, &t.book_signature, &base);
    anyhow::ensure!(
        book.page_count() == 1,
        "the title page of the book does not fit one page: shorten the template's texts"
    );
    // The back of the title page, then the contents from page 3 (a recto).
    book.page_break();
    book.paragraph(&t.book_blank);
    book.append(body);
    let pages = book.page_count();
    let title = format!("{} {} · {}", w.fill(&t.book_title, &base), class.1.name, year_text);
    let pdf = book.finish(&title, &t.footer, year.end())?;
    Ok((pdf, pages))
}

/// A class's сводная ведомость итоговых отметок of the year (P4): the marks of every
/// period and the year marks, pupils by subjects, and the signatures.
pub fn summary(
    journal: &Journal,
    template: &Template,
    class: (Uuid, &Class),
    year: SchoolYear,
) -> anyhow::Result<(Vec<u8>, usize)> {
    let w = Writer { journal, template, class };
    let t = &template.texts;
    let year_text = year.to_string();
    let base = [("period", t.summary_title.as_str()), ("year", year_text.as_str())];
    let range = (year.start(), year.end());
    let pupils = journal.pupils(class.0, range);
    let mut doc = Layout::new(&template.page);
    doc.set_header(&w.fill(&t.running_header, &base));
    doc.title(&t.summary_title);
    doc.paragraph(&w.fill(&t.summary_subtitle, &base));
    for (id, period) in journal.periods_in(range) {
        doc.heading(&fill(&t.summary_period, &[("period", period.name.as_str())]), 1);
        w.finals(&mut doc, &pupils, Some(*id));
    }
    doc.heading(&t.summary_year, 1);
    w.finals(&mut doc, &pupils, None);
    w.signature(&mut doc, &t.summary_signature, &base);
    let pages = doc.page_count();
    let pdf = doc.finish(&format!("{} {} {}", t.summary_title, class.1.name, year_text), &t.footer, year.end())?;
    Ok((pdf, pages))
}

/// What `archive paper` wrote.
#[derive(Debug, Clone, Default)]
pub struct PaperReport {
    pub dir: PathBuf,
    pub files: Vec<PaperFile>,
}

impl PaperReport {
    pub fn pages(&self) -> usize {
        self.files.iter().map(|f| f.pages).sum()
    }

    pub fn render(&self) -> String {
        let mut out = format!("{}: {} PDF files, {} pages\n", self.dir.display(), self.files.len(), self.pages());
        for f in &self.files {
            out.push_str(&format!(
                "  {} ({}, {} класс): {} pages, {} sheets\n",
                f.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
                f.kind.as_str(),
                f.class,
                f.pages,
                f.sheets
            ));
        }
        out
    }
}

/// Writes the paper copies of `span` for every class of the journal into `out` (created),
/// each file under a temporary name first.
pub fn write(journal: &Journal, template: &Template, span: &PaperSpan, out: &Path) -> anyhow::Result<PaperReport> {
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    let mut files = Vec::new();
    let mut put = |name: String, class: &Class, kind: PaperKind, made: (Vec<u8>, usize)| -> anyhow::Result<()> {
        let path = out.join(name);
        let part = path.with_extension("pdf.part");
        std::fs::write(&part, &made.0).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", part.display()))?;
        std::fs::rename(&part, &path)?;
        files.push(PaperFile { path, class: class.name.clone(), kind, pages: made.1, sheets: made.1.div_ceil(2) });
        Ok(())
    };
    match span {
        PaperSpan::Period { period, year } => {
            let (id, period) = journal.find_period(period, *year)?;
            for (cid, class) in &journal.classes {
                let made = journal_copy(journal, template, (*cid, class), (id, &period))?;
                let name = format!("{}-журнал-{}.pdf", slug(&class.name), slug(&period.name));
                put(name, class, PaperKind::JournalCopy, made)?;
            }
        }
        PaperSpan::Year(year) => {
            let y = slug(&year.to_string());
            for (cid, class) in &journal.classes {
                let made = year_book(journal, template, (*cid, class), *year)?;
                put(format!("{}-книга-{y}.pdf", slug(&class.name)), class, PaperKind::YearBook, made)?;
                let made = summary(journal, template, (*cid, class), *year)?;
                put(format!("{}-сводная-ведомость-{y}.pdf", slug(&class.name)), class, PaperKind::Summary, made)?;
            }
        }
    }
    Ok(PaperReport { dir: out.to_path_buf(), files })
}

/// The template of a school: its `[[school]] paper_template`, else `[archive]
/// paper_template`, laid over the default.
pub fn school_template(config: &crate::config::Config, school: &str) -> anyhow::Result<Template> {
    let path = config
        .schools
        .iter()
        .find(|s| s.name == school)
        .and_then(|s| s.paper_template.clone())
        .or_else(|| config.archive.as_ref().and_then(|a| a.paper_template.clone()));
    Template::load(path.map(|p| config.resolve(&p)).as_deref())
}

/// The journal source of `--school` (a `[[school]]`, or a source by name).
pub fn journal_source(config: &crate::config::Config, school: &str) -> anyhow::Result<String> {
    match config.schools.iter().find(|s| s.name == school) {
        Some(s) => Ok(s.journal_source().to_string()),
        None if config.source(school).is_some() => Ok(school.to_string()),
        None => anyhow::bail!("no [[school]] and no source named «{school}» in the configuration"),
    }
}

/// `ejgate archive paper`: the copies of a school's period or year, into `out` (default
/// `archive/paper/SCHOOL/`).
pub async fn command(
    config: &crate::config::Config,
    store: &dyn Store,
    school: &str,
    span: &PaperSpan,
    out: Option<PathBuf>,
) -> anyhow::Result<PaperReport> {
    let source = journal_source(config, school)?;
    let template = school_template(config, school)?;
    let journal = Journal::load(store, school, &source).await?;
    let out = out.unwrap_or_else(|| super::archive_dir(config).join("paper").join(slug(school)));
    tokio::task::block_in_place(|| write(&journal, &template, span, &out))
}

/// What a `paper` job of `ejgate serve` does for a school: the copies of the study period
/// that ended last before `today` (the quarterly copies of A1).
pub async fn last_period_job(
    config: &crate::config::Config,
    store: &dyn Store,
    school: &str,
    today: NaiveDate,
) -> anyhow::Result<PaperReport> {
    let source = journal_source(config, school)?;
    let template = school_template(config, school)?;
    let journal = Journal::load(store, school, &source).await?;
    let (_, period) = journal
        .periods
        .iter()
        .filter(|(_, p)| p.kind != PeriodKind::Year && p.end < today)
        .max_by_key(|(_, p)| p.end)
        .ok_or_else(|| anyhow::anyhow!("no study period of {school} has ended before {today}: nothing to copy yet"))?;
    let span = PaperSpan::Period { period: period.name.clone(), year: Some(SchoolYear::containing(period.start)) };
    let out = super::archive_dir(config).join("paper").join(slug(school));
    tokio::task::block_in_place(|| write(&journal, &template, &span, &out))
}
