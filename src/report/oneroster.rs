//! A OneRoster 1.2 CSV bundle (REGULATIONS P11): the rostering and gradebook of one source,
//! so that tools outside Russia's journal systems can read it.
//!
//! How the canonical model maps:
//! - orgs: the school (`school`) under its municipality (`district`, an id made from its name);
//! - academicSessions: the academic year (`schoolYear`) and its periods (`gradingPeriod`,
//!   parent the year); `schoolYear` is the calendar year the academic year ends in;
//! - users and roles: every person, one primary role at the school (student, teacher for
//!   staff, guardian); a student's agents are the guardians; `username` is the canonical id
//!   (the sources give no logins);
//! - courses: one per subject; classes: one per teaching load's (class or group, subject),
//!   `scheduled`, for the year;
//! - enrollments: the students enrolled (active) in the class or group of a class, and the
//!   load's teacher (primary);
//! - categories: the kinds of work (устная, письменная, контрольная…);
//! - lineItems: every work that has marks (its lesson's day, class, kind and period), and
//!   one per lesson for marks given without a work;
//! - results: every mark (`score` its numeric value, empty for a mark without one).
//!
//! Ids are the canonical UUIDs. Dates ISO 8601; `dateLastModified` is when the bundle was made.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ejgate_sdk::model::{
    AcademicYear, Class, Enrollment, EnrollmentStatus, EntityKind, Group, Guardianship, Lesson, Mark, Organization,
    OrganizationKind, PeriodKind, Person, Role, StudyPeriod, Subject, TeachingLoad, Work, WorkKind,
};
use serde::Serialize;
use uuid::Uuid;

use super::load;
use crate::store::Store;

/// The files of the bundle with their header rows, as OneRoster 1.2's CSV binding names them.
pub const FILES: [(&str, &[&str]); 10] = [
    ("orgs", &["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"]),
    (
        "academicSessions",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "type",
            "startDate",
            "endDate",
            "parentSourcedId",
            "schoolYear",
        ],
    ),
    (
        "users",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "enabledUser",
            "username",
            "userIds",
            "givenName",
            "familyName",
            "middleName",
            "identifier",
            "email",
            "sms",
            "phone",
            "agentSourcedIds",
            "grades",
            "password",
            "userMasterIdentifier",
            "resourceSourcedIds",
            "preferredGivenName",
            "preferredMiddleName",
            "preferredFamilyName",
            "primaryOrgSourcedId",
            "pronouns",
        ],
    ),
    (
        "roles",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "userSourcedId",
            "roleType",
            "role",
            "beginDate",
            "endDate",
            "orgSourcedId",
            "userProfileSourcedId",
        ],
    ),
    (
        "courses",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "schoolYearSourcedId",
            "title",
            "courseCode",
            "grades",
            "orgSourcedId",
            "subjects",
            "subjectCodes",
        ],
    ),
    (
        "classes",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "grades",
            "courseSourcedId",
            "classCode",
            "classType",
            "location",
            "schoolSourcedId",
            "termSourcedIds",
            "subjects",
            "subjectCodes",
            "periods",
        ],
    ),
    (
        "enrollments",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "classSourcedId",
            "schoolSourcedId",
            "userSourcedId",
            "role",
            "primary",
            "beginDate",
            "endDate",
        ],
    ),
    ("categories", &["sourcedId", "status", "dateLastModified", "title", "weight"]),
    (
        "lineItems",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "title",
            "description",
            "assignDate",
            "dueDate",
            "classSourcedId",
            "categorySourcedId",
            "gradingPeriodSourcedId",
            "resultValueMin",
            "resultValueMax",
        ],
    ),
    (
        "results",
        &[
            "sourcedId",
            "status",
            "dateLastModified",
            "lineItemSourcedId",
            "studentSourcedId",
            "scoreStatus",
            "score",
            "scoreDate",
            "comment",
        ],
    ),
];

/// The files OneRoster 1.2 defines that the bundle leaves out (the manifest says `absent`).
const ABSENT: [&str; 10] = [
    "classResources",
    "courseResources",
    "demographics",
    "lineItemLearningObjectiveIds",
    "lineItemScoreScales",
    "resources",
    "resultLearningObjectiveIds",
    "resultScoreScales",
    "scoreScales",
    "userProfiles",
];

/// Rows written per file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Written {
    pub rows: BTreeMap<String, usize>,
}

/// An id of ours for what the canonical model has no record of (the district, a class, a
/// category): a UUIDv5 over the source and the parts.
fn derived(source: &str, what: &str) -> Uuid {
    Uuid::new_v5(&ejgate_sdk::model::EJGATE_NAMESPACE, format!("{source}/oneroster/{what}").as_bytes())
}

fn category_title(k: WorkKind) -> &'static str {
    match k {
        WorkKind::Oral => "Работа на уроке",
        WorkKind::Written => "Письменная работа",
        WorkKind::Control => "Контрольная работа",
        WorkKind::Test => "Тест",
        WorkKind::InternalControl => "ВШК",
        WorkKind::Independent => "Самостоятельная работа",
        WorkKind::Practical => "Практическая работа",
        WorkKind::Other => "Другое",
    }
}

/// Writes the bundle of `source` into `dir` (created if missing): manifest.csv and the
/// files of [`FILES`].
pub async fn bundle(store: &dyn Store, source: &str, dir: &Path, now: DateTime<Utc>) -> anyhow::Result<Written> {
    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let orgs: Vec<(Uuid, Organization)> = load(store, EntityKind::Organization, Some(source)).await?;
    let Some((school_id, school)) = orgs.iter().find(|(_, o)| o.kind == OrganizationKind::School) else {
        anyhow::bail!("source «{source}» holds no school (organization of kind school): sync it first");
    };
    let years: Vec<(Uuid, AcademicYear)> = load(store, EntityKind::AcademicYear, Some(source)).await?;
    let periods: Vec<(Uuid, StudyPeriod)> = load(store, EntityKind::StudyPeriod, Some(source)).await?;
    let people: Vec<(Uuid, Person)> = load(store, EntityKind::Person, Some(source)).await?;
    let guardianships: Vec<(Uuid, Guardianship)> = load(store, EntityKind::Guardianship, Some(source)).await?;
    let classes: Vec<(Uuid, Class)> = load(store, EntityKind::Class, Some(source)).await?;
    let groups: Vec<(Uuid, Group)> = load(store, EntityKind::Group, Some(source)).await?;
    let enrollments: Vec<(Uuid, Enrollment)> = load(store, EntityKind::Enrollment, Some(source)).await?;
    let subjects: Vec<(Uuid, Subject)> = load(store, EntityKind::Subject, Some(source)).await?;
    let loads: Vec<(Uuid, TeachingLoad)> = load(store, EntityKind::TeachingLoad, Some(source)).await?;
    let lessons: HashMap<Uuid, Lesson> = load(store, EntityKind::Lesson, Some(source)).await?.into_iter().collect();
    let works: HashMap<Uuid, Work> = load(store, EntityKind::Work, Some(source)).await?.into_iter().collect();
    let marks: Vec<(Uuid, Mark)> = load(store, EntityKind::Mark, Some(source)).await?;

    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut files: BTreeMap<&str, csv::Writer<std::fs::File>> = BTreeMap::new();
    for (name, headers) in FILES {
        let path = dir.join(format!("{name}.csv"));
        let mut w =
            csv::Writer::from_path(&path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        w.write_record(headers)?;
        files.insert(name, w);
    }
    let mut written = Written::default();
    let mut put = |file: &str, row: Vec<String>| -> anyhow::Result<()> {
        debug_assert_eq!(row.len(), FILES.iter().find(|(n, _)| *n == file).map(|(_, h)| h.len()).unwrap_or(0));
        files.get_mut(file).expect("a file of FILES").write_record(&row)?;
        *written.rows.entry(file.to_string()).or_default() += 1;
        Ok(())
    };
    let s = |x: &str| x.to_string();
    let d = |x: NaiveDate| x.format("%Y-%m-%d").to_string();
    let school_ref = school_id.to_string();

    // orgs
    let district = school.municipality.as_deref().filter(|m| !m.is_empty());
    let district_id = district.map(|m| derived(source, &format!("district/{m}")).to_string());
    if let (Some(name), Some(id)) = (district, &district_id) {
        put(
            "orgs",
            vec![id.clone(), s("active"), stamp.clone(), s(name), s("district"), String::new(), String::new()],
        )?;
    }
    put(
        "orgs",
        vec![
            school_ref.clone(),
            s("active"),
            stamp.clone(),
            school.full_name.clone().unwrap_or_else(|| school.name.clone()),
            s("school"),
            String::new(),
            district_id.clone().unwrap_or_default(),
        ],
    )?;

    // academicSessions
    let year = years.first();
    for (id, y) in &years {
        put(
            "academicSessions",
            vec![
                id.to_string(),
                s("active"),
                stamp.clone(),
                y.name.clone(),
                s("schoolYear"),
                d(y.start),
                d(y.end),
                String::new(),
                y.end.year().to_string(),
            ],
        )?;
    }
    for (id, p) in &periods {
        let parent = p.academic_year.or(year.map(|(id, _)| *id));
        let in_year = parent.and_then(|y| years.iter().find(|(id, _)| *id == y)).map(|(_, y)| y.end.year());
        put(
            "academicSessions",
            vec![
                id.to_string(),
                s("active"),
                stamp.clone(),
                p.name.clone(),
                s(if p.kind == PeriodKind::Year { "schoolYear" } else { "gradingPeriod" }),
                d(p.start),
                d(p.end),
                parent.map(|p| p.to_string()).unwrap_or_default(),
                in_year.unwrap_or(p.end.year()).to_string(),
            ],
        )?;
    }

    // users and roles
    let unit_grade: HashMap<Uuid, u8> = classes
        .iter()
        .filter_map(|(id, c)| c.grade.map(|g| (*id, g)))
        .chain(groups.iter().filter_map(|(id, g)| {
            g.class.and_then(|c| classes.iter().find(|(x, _)| *x == c)).and_then(|(_, c)| c.grade).map(|gr| (*id, gr))
        }))
        .collect();
    let mut grade_of: HashMap<Uuid, u8> = HashMap::new();
    for (_, e) in enrollments.iter().filter(|(_, e)| e.status == EnrollmentStatus::Active) {
        if let Some(g) = unit_grade.get(&e.unit) {
            grade_of.insert(e.student, *g);
        }
    }
    let mut agents: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (_, g) in &guardianships {
        agents.entry(g.student).or_default().push(g.guardian.to_string());
    }
    for (id, p) in &people {
        let role = if p.roles.contains(&Role::Student) {
            "student"
        } else if p.roles.contains(&Role::Staff) {
            "teacher"
        } else {
            "guardian"
        };
        let mut row = vec![String::new(); 23];
        row[0] = id.to_string();
        row[1] = s("active");
        row[2] = stamp.clone();
        row[3] = s("true");
        row[4] = id.to_string();
        row[6] = p.first_name.clone();
        row[7] = p.last_name.clone();
        row[8] = p.middle_name.clone().unwrap_or_default();
        row[13] = agents.get(id).map(|a| a.join(",")).unwrap_or_default();
        row[14] = grade_of.get(id).map(|g| format!("{g:02}")).unwrap_or_default();
        row[21] = school_ref.clone();
        put("users", row)?;
        put(
            "roles",
            vec![
                derived(source, &format!("role/{id}")).to_string(),
                s("active"),
                stamp.clone(),
                id.to_string(),
                s("primary"),
                s(role),
                String::new(),
                String::new(),
                school_ref.clone(),
                String::new(),
            ],
        )?;
    }

    // courses: one per subject
    let year_ref = year.map(|(id, _)| id.to_string()).unwrap_or_default();
    let course_of = |subject: Uuid| derived(source, &format!("course/{subject}")).to_string();
    for (id, subj) in &subjects {
        put(
            "courses",
            vec![
                course_of(*id),
                s("active"),
                stamp.clone(),
                year_ref.clone(),
                subj.name.clone(),
                String::new(),
                String::new(),
                school_ref.clone(),
                subj.name.clone(),
                String::new(),
            ],
        )?;
    }

    // classes: one per (class or group, subject) of the teaching loads
    let unit_name: HashMap<Uuid, &str> = classes
        .iter()
        .map(|(id, c)| (*id, c.name.as_str()))
        .chain(groups.iter().map(|(id, g)| (*id, g.name.as_str())))
        .collect();
    let subject_name: HashMap<Uuid, &str> = subjects.iter().map(|(id, x)| (*id, x.name.as_str())).collect();
    let class_of = |unit: Uuid, subject: Uuid| derived(source, &format!("class/{unit}/{subject}")).to_string();
    let mut sections: BTreeMap<(Uuid, Uuid), Vec<Uuid>> = BTreeMap::new();
    for (_, l) in &loads {
        sections.entry((l.unit, l.subject)).or_default().push(l.teacher);
    }
    let mut students_of: HashMap<Uuid, Vec<&Enrollment>> = HashMap::new();
    for (_, e) in enrollments.iter().filter(|(_, e)| e.status == EnrollmentStatus::Active) {
        students_of.entry(e.unit).or_default().push(e);
    }
    for ((unit, subject), teachers) in &sections {
        let class = class_of(*unit, *subject);
        let subj = subject_name.get(subject).copied().unwrap_or_default();
        put(
            "classes",
            vec![
                class.clone(),
                s("active"),
                stamp.clone(),
                format!("{} {subj}", unit_name.get(unit).copied().unwrap_or_default()),
                unit_grade.get(unit).map(|g| format!("{g:02}")).unwrap_or_default(),
                course_of(*subject),
                String::new(),
                s("scheduled"),
                String::new(),
                school_ref.clone(),
                year_ref.clone(),
                s(subj),
                String::new(),
                String::new(),
            ],
        )?;
        let mut seen = HashSet::new();
        for t in teachers.iter().filter(|t| seen.insert(**t)) {
            put(
                "enrollments",
                vec![
                    derived(source, &format!("enrollment/{class}/{t}")).to_string(),
                    s("active"),
                    stamp.clone(),
                    class.clone(),
                    school_ref.clone(),
                    t.to_string(),
                    s("teacher"),
                    s("true"),
                    String::new(),
                    String::new(),
                ],
            )?;
        }
        for e in students_of.get(unit).into_iter().flatten() {
            put(
                "enrollments",
                vec![
                    derived(source, &format!("enrollment/{class}/{}", e.student)).to_string(),
                    s("active"),
                    stamp.clone(),
                    class.clone(),
                    school_ref.clone(),
                    e.student.to_string(),
                    s("student"),
                    s("false"),
                    e.from.map(d).unwrap_or_default(),
                    e.to.map(d).unwrap_or_default(),
                ],
            )?;
        }
    }

    // categories, lineItems, results
    let category_of = |k: WorkKind| derived(source, &format!("category/{k:?}")).to_string();
    let mut kinds: Vec<WorkKind> = Vec::new();
    let period_of = |day: NaiveDate| {
        periods
            .iter()
            .find(|(_, p)| p.kind != PeriodKind::Year && p.start <= day && day <= p.end)
            .map(|(id, _)| id.to_string())
            .unwrap_or_default()
    };
    // A line item per work with marks, and per lesson for marks without a work.
    let mut items: BTreeMap<String, (Option<Uuid>, Uuid)> = BTreeMap::new();
    for (_, m) in &marks {
        let Some(lesson) = m.lesson else { continue };
        match m.work.filter(|w| works.contains_key(w)) {
            Some(w) => items.entry(w.to_string()).or_insert((Some(w), lesson)),
            None => items.entry(derived(source, &format!("lineitem/{lesson}")).to_string()).or_insert((None, lesson)),
        };
    }
    for (item, (work, lesson_id)) in &items {
        let Some(lesson) = lessons.get(lesson_id) else { continue };
        let work = work.and_then(|w| works.get(&w));
        let kind = work.map(|w| w.kind).unwrap_or(WorkKind::Oral);
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
        let subject = lesson.subject.and_then(|x| subject_name.get(&x).copied()).unwrap_or_default();
        put(
            "lineItems",
            vec![
                item.clone(),
                s("active"),
                stamp.clone(),
                work.and_then(|w| w.title.clone())
                    .unwrap_or_else(|| format!("{subject}, урок {}", lesson.date.format("%d.%m.%Y"))),
                work.map(|w| w.source_type.clone()).unwrap_or_default(),
                d(lesson.date),
                d(lesson.date),
                lesson.subject.map(|x| class_of(lesson.unit, x)).unwrap_or_default(),
                category_of(kind),
                period_of(lesson.date),
                s("1"),
                s("5"),
            ],
        )?;
    }
    kinds.sort_by_key(|k| format!("{k:?}"));
    for k in &kinds {
        put("categories", vec![category_of(*k), s("active"), stamp.clone(), s(category_title(*k)), String::new()])?;
    }
    for (id, m) in &marks {
        let Some(lesson_id) = m.lesson else { continue };
        let Some(lesson) = lessons.get(&lesson_id) else { continue };
        let item = match m.work.filter(|w| works.contains_key(w)) {
            Some(w) => w.to_string(),
            None => derived(source, &format!("lineitem/{lesson_id}")).to_string(),
        };
        let score = m.numeric.map(|n| n.to_string()).unwrap_or_default();
        put(
            "results",
            vec![
                id.to_string(),
                s("active"),
                stamp.clone(),
                item,
                m.student.to_string(),
                s("fully graded"),
                score,
                d(lesson.date),
                m.comment.clone().unwrap_or_default(),
            ],
        )?;
    }
    for (name, mut w) in files {
        w.flush().map_err(|e| anyhow::anyhow!("cannot write {}/{name}.csv: {e}", dir.display()))?;
    }

    // manifest.csv
    let path = dir.join("manifest.csv");
    let mut w = csv::Writer::from_path(&path).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    w.write_record(["propertyName", "value"])?;
    w.write_record(["manifest.version", "1.0"])?;
    w.write_record(["oneroster.version", "1.2"])?;
    let mut listed: Vec<(&str, &str)> =
        FILES.iter().map(|(n, _)| (*n, "bulk")).chain(ABSENT.iter().map(|n| (*n, "absent"))).collect();
    listed.sort();
    for (name, mode) in listed {
        w.write_record([format!("file.{name}"), mode.to_string()])?;
    }
    w.write_record(["source.systemName", "ejgate"])?;
    w.write_record(["source.systemCode", source])?;
    w.flush()?;
    Ok(written)
}
