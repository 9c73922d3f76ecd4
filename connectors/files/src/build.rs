//! Cells → canonical records. Every record gets the source id the API connectors give the
//! same real-world record (the world's `key` functions: plain ids, `unit:student` for
//! enrollments, `lesson:student` for attendance, `student:subject:period|year` for final
//! marks …), so ids, natural keys and content agree whichever way a school's data came in.
//!
//! A cell that does not hold what its field expects is an error naming the file, sheet,
//! row or line and column and what was expected; the row is left out, and because the
//! connector refuses a run with any error, nothing of it is written.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use uuid::Uuid;

use ejgate_sdk::model::{self as m, Entity, EntityKind, IdSpace, Record};

use crate::mapping::{Block, Mapping, Table, Ty, UnknownCodes};
use crate::read::{BlockRows, Cell, FileError, Place, RawRow, Value};

/// What the blocks read before others need (classes and groups to tell units apart, the
/// school and year to fill unmapped references, lessons for marks' subjects and dates).
#[derive(Default)]
pub struct Context {
    classes: HashSet<String>,
    groups: HashSet<String>,
    organizations: Vec<Uuid>,
    years: Vec<Uuid>,
    /// lesson source id → (subject, date)
    lessons: HashMap<String, (Option<Uuid>, NaiveDate)>,
    /// The people of the export's roster (every person block), once one was read.
    roster: Option<HashSet<String>>,
    /// Enrolments of the block being built whose pupil the roster does not hold: (line, id).
    absent: Vec<(usize, String)>,
}

/// How many lines a warning about enrolments of absent pupils lists.
const ABSENT_LISTED: usize = 10;

/// The order kinds are built in: what others refer to first.
pub fn rank(kind: EntityKind) -> usize {
    use EntityKind as K;
    match kind {
        K::Organization => 0,
        K::AcademicYear => 1,
        K::Class => 2,
        K::Group => 3,
        K::Lesson => 4,
        // People before the enrolments that name them.
        K::Person => 5,
        _ => 6,
    }
}

/// Builds the records of one block's rows; errors and warnings are appended.
#[allow(clippy::too_many_arguments)]
pub fn build(
    ids: &IdSpace,
    mapping: &Mapping,
    ctx: &mut Context,
    rel: &str,
    rows: &BlockRows,
    scope: &str,
    records: &mut Vec<Record>,
    errors: &mut Vec<FileError>,
    warnings: &mut Vec<String>,
) {
    let block = &mapping.blocks[rows.block];
    let line_word = if rows.sheet.is_some() { "row" } else { "line" };
    let place = Place { file: rel, sheet: rows.sheet.as_deref(), line_word };
    if block.kind == EntityKind::Person {
        ctx.roster.get_or_insert_with(HashSet::new);
    }
    for raw in &rows.rows {
        let mut r = Row { block, raw, place: &place, mapping, errors, warnings, failed: false };
        let built = build_row(ids, ctx, &mut r);
        if r.failed {
            continue;
        }
        if let Some((entity, source_id, date)) = built {
            records.push(Record {
                id: ids.id(entity.kind(), &source_id),
                source_id,
                scope: scope.to_string(),
                date,
                source_updated_at: None,
                entity,
            });
        }
    }
    // Enrolments of pupils the roster does not hold: kept (the enrolment file is what the
    // school's system says; the roster may have been exported at another time), and told.
    // They had been accepted without a word.
    if !ctx.absent.is_empty() {
        let absent = std::mem::take(&mut ctx.absent);
        let listed: Vec<String> =
            absent.iter().take(ABSENT_LISTED).map(|(line, id)| format!("{line_word} {line} (pupil «{id}»)")).collect();
        let more = absent.len().saturating_sub(ABSENT_LISTED);
        warnings.push(format!(
            "{}: {} enrolment(s) of pupils the export's roster does not hold: {}{}; export the roster and the \
             enrolments together",
            match &rows.sheet {
                Some(sheet) => format!("{rel}, sheet «{sheet}»"),
                None => rel.to_string(),
            },
            absent.len(),
            listed.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
}

struct Row<'a> {
    block: &'a Block,
    raw: &'a RawRow,
    place: &'a Place<'a>,
    mapping: &'a Mapping,
    errors: &'a mut Vec<FileError>,
    warnings: &'a mut Vec<String>,
    failed: bool,
}

fn what(ty: Ty) -> &'static str {
    match ty {
        Ty::Id | Ty::Ref(_) | Ty::Unit => "an id",
        Ty::Text => "a text",
        Ty::Date => "a date",
        Ty::DateTime => "a date and time",
        Ty::Int => "a whole number",
        Ty::Float => "a number",
        Ty::Bool => "да/нет (yes/no, 1/0)",
        Ty::Code(_) => "a code",
        Ty::Role => "a role (student/ученик, staff/сотрудник, guardian/родитель)",
        Ty::Sex => "м/ж (male/female)",
    }
}

fn example(formats: &[String], dt: bool) -> String {
    let sample = NaiveDate::from_ymd_opt(2025, 9, 1).expect("date").and_hms_opt(8, 30, 0).expect("time");
    formats
        .iter()
        .map(|f| format!("«{}» ({f})", if dt { sample.format(f) } else { sample.date().format(f) }))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Empty => None,
        Value::Text(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 => Some(format!("{}", *x as i64)),
        Value::Number(x) => Some(x.to_string()),
        Value::Bool(b) => Some(if *b { "да" } else { "нет" }.into()),
        Value::DateTime(d) => Some(d.to_string()),
    }
}

impl Row<'_> {
    fn cell(&self, name: &str) -> Option<(&Cell, Ty, bool)> {
        let i = self.block.fields.iter().position(|(d, _)| d.name == name)?;
        let (def, _) = &self.block.fields[i];
        Some((&self.raw.cells[i], def.ty, def.required))
    }

    fn fail(&mut self, column: &str, message: String) {
        self.failed = true;
        self.errors.push(self.place.error(Some(self.raw.line), Some(column), message));
    }

    /// The field's value parsed by `parse`; `None` when unmapped or empty (an error when the
    /// field is required) or wrong (an error).
    fn get<T>(&mut self, name: &str, parse: impl FnOnce(&Self, &Value) -> Result<T, String>) -> Option<T> {
        let (cell, ty, required) = self.cell(name)?;
        let column = cell.column.clone();
        if cell.value == Value::Empty {
            if required {
                self.fail(&column, format!("the cell is empty; expected {} ({name})", what(ty)));
            }
            return None;
        }
        let value = cell.value.clone();
        match parse(self, &value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(&column, format!("{name}: {e}"));
                None
            }
        }
    }

    fn text(&mut self, name: &str) -> Option<String> {
        self.get(name, |_, v| Ok(as_text(v).unwrap_or_default()))
    }

    fn id(&mut self, name: &str) -> Option<String> {
        // Ids are text: a long id a spreadsheet stored as a number has been rounded
        // (`1.75E+18`), and taken as it is it would be a new pupil.
        self.get(name, |_, v| match v {
            Value::Text(s) => ejgate_sdk::limits::check_id_text(s).map(|()| s.clone()),
            Value::Int(n) => Ok(n.to_string()),
            Value::Number(x) => ejgate_sdk::limits::id_from_number(*x),
            other => Err(format!("expected an id, found {other:?}")),
        })
    }

    fn reference(&mut self, ids: &IdSpace, name: &str, kind: EntityKind) -> Option<Uuid> {
        self.id(name).map(|s| ids.id(kind, &s))
    }

    fn date(&mut self, name: &str) -> Option<NaiveDate> {
        let formats = self.block.date_formats.clone();
        self.get(name, |_, v| match v {
            Value::DateTime(d) => Ok(d.date()),
            Value::Text(s) => formats
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
                .ok_or_else(|| format!("«{s}» is not a date; expected {}", example(&formats, false))),
            other => Err(format!("expected a date like {}, found {other:?}", example(&formats, false))),
        })
    }

    fn datetime(&mut self, name: &str) -> Option<NaiveDateTime> {
        let formats = self.block.datetime_formats.clone();
        let dates = self.block.date_formats.clone();
        self.get(name, |_, v| match v {
            Value::DateTime(d) => Ok(*d),
            Value::Text(s) => formats
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .or_else(|| {
                    dates.iter().find_map(|f| NaiveDate::parse_from_str(s, f).ok()).map(|d| d.and_time(NaiveTime::MIN))
                })
                .ok_or_else(|| format!("«{s}» is not a date and time; expected {}", example(&formats, true))),
            other => Err(format!("expected a date and time like {}, found {other:?}", example(&formats, true))),
        })
    }

    fn number(&mut self, name: &str) -> Option<f64> {
        self.get(name, |_, v| match v {
            Value::Int(n) => Ok(*n as f64),
            Value::Number(x) => Ok(*x),
            Value::Text(s) => s.replace(',', ".").parse::<f64>().map_err(|_| format!("«{s}» is not a number")),
            other => Err(format!("expected a number, found {other:?}")),
        })
    }

    fn small(&mut self, name: &str) -> Option<u8> {
        self.get(name, |_, v| {
            let n = match v {
                Value::Int(n) => Some(*n),
                Value::Number(x) if x.fract() == 0.0 => Some(*x as i64),
                Value::Text(s) => s.parse::<i64>().ok(),
                _ => None,
            };
            n.and_then(|n| u8::try_from(n).ok()).ok_or_else(|| format!("expected a whole number 0–255, found {v:?}"))
        })
    }

    fn boolean(&mut self, name: &str) -> Option<bool> {
        self.get(name, |_, v| match v {
            Value::Bool(b) => Ok(*b),
            Value::Int(1) => Ok(true),
            Value::Int(0) => Ok(false),
            Value::Number(x) if *x == 1.0 => Ok(true),
            Value::Number(x) if *x == 0.0 => Ok(false),
            Value::Text(s) => match s.to_lowercase().as_str() {
                "да" | "д" | "true" | "yes" | "y" | "1" | "+" | "истина" => Ok(true),
                "нет" | "н" | "false" | "no" | "n" | "0" | "-" | "ложь" => Ok(false),
                _ => Err(format!("«{s}» is not да/нет (yes/no, 1/0)")),
            },
            other => Err(format!("expected да/нет, found {other:?}")),
        })
    }

    /// A code the table knows; an unknown one is an error or a warning (the mapping's
    /// `unknown_codes`). Returns the code as written and whether the table knows it.
    fn code(&mut self, name: &str, table: Table) -> Option<(String, bool)> {
        let code = self.text(name)?;
        let tables = &self.mapping.tables;
        if tables.get(table, &code) {
            return Some((code, true));
        }
        let message =
            format!("unknown code «{code}» (code table {}): add it to the table or fix the file", tables.name(table));
        match self.mapping.unknown_codes {
            UnknownCodes::Error => {
                let column = self.cell(name).map(|(c, _, _)| c.column.clone()).unwrap_or_default();
                self.fail(&column, format!("{name}: {message}"));
                None
            }
            UnknownCodes::Warn => {
                let w = format!("{}: {message}; kept as written", self.place.file);
                if !self.warnings.contains(&w) {
                    self.warnings.push(w);
                }
                Some((code, false))
            }
        }
    }
}

fn role(s: &str) -> Option<m::Role> {
    match s.trim().to_lowercase().as_str() {
        "student" | "ученик" | "учащийся" | "обучающийся" => Some(m::Role::Student),
        "staff" | "teacher" | "сотрудник" | "учитель" | "педагог" => Some(m::Role::Staff),
        "guardian" | "parent" | "родитель" | "законный представитель" | "представитель" => {
            Some(m::Role::Guardian)
        }
        _ => None,
    }
}

fn sex(s: &str) -> Option<m::Sex> {
    match s.trim().to_lowercase().as_str() {
        "м" | "муж" | "мужской" | "male" | "m" => Some(m::Sex::Male),
        "ж" | "жен" | "женский" | "female" | "f" => Some(m::Sex::Female),
        _ => None,
    }
}

fn only(list: &[Uuid]) -> Option<Uuid> {
    (list.len() == 1).then(|| list[0])
}

type Built = (Entity, String, Option<NaiveDate>);

fn build_row(ids: &IdSpace, ctx: &mut Context, r: &mut Row<'_>) -> Option<Built> {
    use EntityKind as K;
    let kind = r.block.kind;
    let org = |r: &mut Row<'_>, ctx: &Context| {
        if r.cell("organization").is_some() {
            r.reference(ids, "organization", K::Organization)
        } else {
            only(&ctx.organizations)
        }
    };
    let year = |r: &mut Row<'_>, ctx: &Context| {
        if r.cell("academic_year").is_some() {
            r.reference(ids, "academic_year", K::AcademicYear)
        } else {
            only(&ctx.years)
        }
    };
    let unit = |r: &mut Row<'_>, ctx: &Context| {
        let id = r.id("unit")?;
        if ctx.classes.contains(&id) {
            Some(ids.id(K::Class, &id))
        } else if ctx.groups.contains(&id) {
            Some(ids.id(K::Group, &id))
        } else {
            let column = r.cell("unit").map(|(c, _, _)| c.column.clone()).unwrap_or_default();
            r.fail(&column, format!("unit: «{id}» is neither a class nor a group of the export"));
            None
        }
    };
    Some(match kind {
        K::Organization => {
            let id = r.id("source_id");
            let e = m::Organization {
                kind: m::OrganizationKind::School,
                name: r.text("name").unwrap_or_default(),
                full_name: r.text("full_name"),
                municipality: r.text("municipality"),
                time_zone: r.text("time_zone"),
                regulation_profile: None,
            };
            let id = id?;
            if !r.failed {
                ctx.organizations.push(ids.id(K::Organization, &id));
            }
            (Entity::Organization(e), id, None)
        }
        K::AcademicYear => {
            let id = r.id("source_id");
            let (organization, name) = (org(r, ctx), r.text("name").unwrap_or_default());
            let (start, end) = (r.date("start"), r.date("end"));
            let e = m::AcademicYear { organization, name, start: start?, end: end? };
            let id = id?;
            if !r.failed {
                ctx.years.push(ids.id(K::AcademicYear, &id));
            }
            (Entity::AcademicYear(e), id, None)
        }
        K::StudyPeriod => {
            let id = r.id("source_id");
            let organization = org(r, ctx);
            let academic_year = year(r, ctx);
            let kind = r
                .code("kind", Table::PeriodTypes)
                .map(|(c, _)| r.mapping.tables.period_types.get(&c).copied().unwrap_or(m::PeriodKind::Other));
            let (number, name) = (r.small("number").unwrap_or(0), r.text("name").unwrap_or_default());
            let (start, end) = (r.date("start"), r.date("end"));
            let e = m::StudyPeriod {
                organization,
                academic_year,
                kind: kind.unwrap_or(m::PeriodKind::Other),
                number,
                name,
                start: start?,
                end: end?,
            };
            (Entity::StudyPeriod(e), id?, None)
        }
        K::Holiday => {
            let id = r.id("source_id");
            let (organization, name) = (org(r, ctx), r.text("name").unwrap_or_default());
            let (start, end) = (r.date("start"), r.date("end"));
            let e = m::Holiday { organization, name, start: start?, end: end? };
            (Entity::Holiday(e), id?, None)
        }
        K::Class => {
            let id = r.id("source_id");
            let e = m::Class {
                organization: org(r, ctx),
                academic_year: year(r, ctx),
                name: r.text("name").unwrap_or_default(),
                grade: r.small("grade"),
                homeroom_teacher: r.reference(ids, "homeroom_teacher", K::Person),
            };
            let id = id?;
            ctx.classes.insert(id.clone());
            (Entity::Class(e), id, None)
        }
        K::Group => {
            let id = r.id("source_id");
            let organization = org(r, ctx);
            let class = r.reference(ids, "class", K::Class);
            let kind = r.code("kind", Table::Groups).and_then(|(c, _)| r.mapping.tables.groups.get(&c).copied());
            let e = m::Group {
                organization,
                class,
                kind: kind.unwrap_or(m::GroupKind::Subgroup),
                name: r.text("name").unwrap_or_default(),
                subject: r.reference(ids, "subject", K::Subject),
            };
            let id = id?;
            ctx.groups.insert(id.clone());
            (Entity::Group(e), id, None)
        }
        K::Person => {
            let id = r.id("source_id");
            let role = r.get("role", |_, v| {
                let s = as_text(v).unwrap_or_default();
                role(&s)
                    .ok_or_else(|| format!("«{s}» is not a role (student/ученик, staff/сотрудник, guardian/родитель)"))
            });
            let e = m::Person {
                last_name: r.text("last_name").unwrap_or_default(),
                first_name: r.text("first_name").unwrap_or_default(),
                middle_name: r.text("middle_name"),
                sex: r.get("sex", |_, v| {
                    let s = as_text(v).unwrap_or_default();
                    sex(&s).ok_or_else(|| format!("«{s}» is not м/ж (male/female)"))
                }),
                birth_date: r.date("birth_date"),
                roles: role.into_iter().collect(),
            };
            let id = id?;
            ctx.roster.get_or_insert_with(HashSet::new).insert(id.clone());
            (Entity::Person(e), id, None)
        }
        K::Guardianship => {
            let (g, s) = (r.id("guardian"), r.id("student"));
            let (g, s) = (g?, s?);
            let e = m::Guardianship { guardian: ids.id(K::Person, &g), student: ids.id(K::Person, &s) };
            (Entity::Guardianship(e), format!("{g}:{s}"), None)
        }
        K::Enrollment => {
            let student = r.id("student");
            let unit_id = r.id("unit");
            let unit_uuid = unit(r, ctx);
            if let (Some(roster), Some(id)) = (&ctx.roster, &student) {
                if !roster.contains(id) {
                    ctx.absent.push((r.raw.line, id.clone()));
                }
            }
            let active = r.boolean("active").unwrap_or(true);
            let (from, to, order) = (r.date("from"), r.date("to"), r.text("order"));
            let e = m::Enrollment {
                student: ids.id(K::Person, student.as_deref().unwrap_or_default()),
                unit: unit_uuid?,
                status: if active { m::EnrollmentStatus::Active } else { m::EnrollmentStatus::Archived },
                from,
                to,
                order,
            };
            (Entity::Enrollment(e), format!("{}:{}", unit_id?, student?), None)
        }
        K::Subject => {
            let id = r.id("source_id");
            let name = r.text("name").unwrap_or_default();
            let e = m::Subject {
                organization: org(r, ctx),
                normalized_name: m::normalize_name(&name),
                name,
                knowledge_area: r.text("knowledge_area"),
            };
            (Entity::Subject(e), id?, None)
        }
        K::TeachingLoad => {
            let (teacher, subject) = (r.id("teacher"), r.id("subject"));
            let unit_id = r.id("unit");
            let unit_uuid = unit(r, ctx);
            let hours = r.number("hours_per_week");
            let (teacher, subject, unit_id) = (teacher?, subject?, unit_id?);
            let e = m::TeachingLoad {
                teacher: ids.id(K::Person, &teacher),
                subject: ids.id(K::Subject, &subject),
                unit: unit_uuid?,
                hours_per_week: hours?,
            };
            (Entity::TeachingLoad(e), format!("{teacher}:{subject}:{unit_id}"), None)
        }
        K::Lesson => {
            let id = r.id("source_id");
            let unit = unit(r, ctx);
            let subject = r.reference(ids, "subject", K::Subject);
            let date = r.date("date");
            let number = r.small("number");
            let teacher = r.reference(ids, "teacher", K::Person);
            let substitute = r.reference(ids, "substitute", K::Person);
            let topic = r.text("topic");
            let section = r.text("section");
            let cancelled = r.boolean("cancelled").unwrap_or(false);
            let e = m::Lesson {
                section,
                unit: unit?,
                subject,
                date: date?,
                number,
                teacher,
                substitute,
                topic,
                status: if cancelled { m::LessonStatus::Cancelled } else { m::LessonStatus::Held },
            };
            let id = id?;
            if !r.failed {
                ctx.lessons.insert(id.clone(), (e.subject, e.date));
            }
            (Entity::Lesson(e), id, date)
        }
        K::Homework => {
            let id = r.id("source_id");
            let lesson = r.id("lesson");
            let date = lesson.as_ref().and_then(|l| ctx.lessons.get(l)).map(|x| x.1);
            let e = m::Homework {
                attachments: Vec::new(),
                lesson: lesson.map(|l| ids.id(K::Lesson, &l)),
                text: r.text("text").unwrap_or_default(),
                entered_at: r.datetime("entered_at"),
                due_date: r.date("due_date"),
            };
            (Entity::Homework(e), id?, date)
        }
        K::Work => {
            let id = r.id("source_id");
            let lesson = r.id("lesson");
            let date = lesson.as_ref().and_then(|l| ctx.lessons.get(l)).map(|x| x.1);
            let (source_type, kind) = match r.code("type", Table::WorkTypes) {
                Some((c, _)) => {
                    let k = r.mapping.tables.work_types.get(&c).copied().unwrap_or(m::WorkKind::Other);
                    (c, k)
                }
                None => (String::new(), m::WorkKind::Other),
            };
            let e = m::Work {
                lesson: lesson.map(|l| ids.id(K::Lesson, &l)),
                kind,
                source_type,
                title: r.text("title"),
                weight: r.number("weight"),
            };
            (Entity::Work(e), id?, date)
        }
        K::Mark => {
            let id = r.id("source_id");
            let student = r.reference(ids, "student", K::Person);
            let lesson = r.id("lesson");
            let value = r.text("value");
            let scale_code = if r.cell("scale").is_some() { r.code("scale", Table::Marks) } else { None };
            let scale_name = scale_code.map(|(c, _)| c).unwrap_or_else(|| "five".into());
            let table = r.mapping.tables.marks.get(&scale_name).cloned();
            let numeric = match (&table, &value) {
                (Some(t), Some(v)) => {
                    let n = t.values.get(&v.to_lowercase()).copied();
                    if n.is_none() {
                        let message = format!("«{v}» is not a value of the mark scale «{scale_name}»");
                        match r.mapping.unknown_codes {
                            UnknownCodes::Error => {
                                let column = r.cell("value").map(|(c, _, _)| c.column.clone()).unwrap_or_default();
                                r.fail(&column, format!("value: {message}"));
                            }
                            UnknownCodes::Warn => {
                                let w = format!("{}: {message}", r.place.file);
                                if !r.warnings.contains(&w) {
                                    r.warnings.push(w);
                                }
                            }
                        }
                    }
                    n
                }
                _ => None,
            };
            let subject = if r.cell("subject").is_some() {
                r.reference(ids, "subject", K::Subject)
            } else {
                lesson.as_ref().and_then(|l| ctx.lessons.get(l)).and_then(|x| x.0)
            };
            let entered_at = r.datetime("entered_at");
            let work = r.reference(ids, "work", K::Work);
            let weight = r.number("weight");
            let entered_by = r.reference(ids, "entered_by", K::Person);
            let comment = r.text("comment");
            let is_point = r.boolean("is_point").unwrap_or(false);
            let point_date = r.date("point_date");
            let e = m::Mark {
                comment,
                is_point,
                point_date,
                student: student?,
                lesson: lesson.map(|l| ids.id(K::Lesson, &l)),
                work,
                subject,
                value: value?,
                numeric,
                scale: table.map(|t| t.scale).unwrap_or(m::MarkScale::Other),
                weight,
                entered_at,
                entered_by,
            };
            (Entity::Mark(e), id?, entered_at.map(|d| d.date()))
        }
        K::FinalMark => {
            let (student, subject, period) = (r.id("student"), r.id("subject"), r.id("period"));
            let value = r.text("value");
            let (student, subject, value) = (student?, subject?, value?);
            let five = r.mapping.tables.marks.get("five");
            let lower = value.to_lowercase();
            let special = five.and_then(|t| t.special.get(&lower).copied());
            let e = m::FinalMark {
                student: ids.id(K::Person, &student),
                subject: ids.id(K::Subject, &subject),
                period: period.as_ref().map(|p| ids.id(K::StudyPeriod, p)),
                // A special final (осв, н/а, зачёт) has no numeric value, as from every API.
                numeric: if special.is_some() { None } else { five.and_then(|t| t.values.get(&lower).copied()) },
                special,
                entered_at: r.datetime("entered_at"),
                value,
            };
            let key = format!("{student}:{subject}:{}", period.as_deref().unwrap_or("year"));
            (Entity::FinalMark(e), key, None)
        }
        K::Attendance => {
            let (student, lesson) = (r.id("student"), r.id("lesson"));
            let code = r.code("code", Table::Attendance);
            let comment = r.text("comment");
            let entered_at = r.datetime("entered_at");
            let (student, lesson, (code, _)) = (student?, lesson?, code?);
            let (status, reason) = match r.mapping.tables.attendance.get(&code) {
                Some(c) if c.status == "present" => return None,
                Some(c) if c.status == "late" => (m::AttendanceStatus::Late, None),
                Some(c) => (m::AttendanceStatus::Absent, c.reason),
                None => (m::AttendanceStatus::Absent, None),
            };
            let e = m::Attendance {
                student: ids.id(K::Person, &student),
                lesson: ids.id(K::Lesson, &lesson),
                status,
                reason,
                source_status: code,
                comment,
                entered_at,
            };
            (Entity::Attendance(e), format!("{lesson}:{student}"), None)
        }
        _ => return None,
    })
}
