//! The expected canonical records of a synthetic world: what a complete sync of a system that
//! exposed everything must store, field by field. The acceptance kit compares every stored
//! record with its twin here (issue #14, item 7: the kit checks values, not counts).
//!
//! Written from the world alone: no connector's code, constants or code tables. Each world
//! value is turned into its canonical form by its meaning (an excused absence is
//! `Excused`, a «Контрольная работа» is `Control`); the numeric value, scale and special
//! meaning of mark values come from the SDK's own table `mappings/canonical/marks.toml`.
//!
//! Records are keyed as connectors key them (`Record::source_id` = [`super::key`]), and
//! their references are canonical ids of the given [`IdSpace`] over those keys; a comparison
//! across id spaces resolves a reference to the kind and source id of what it points at.
//!
//! Behind the SDK's `acceptance` feature: no connector's production code can use it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Deserialize;
use uuid::Uuid;

use super::state::{key, School, SynthAttendanceStatus, SynthPerson, World};
use crate::mapping::CodeTable;
use crate::model::{self as m, Entity, EntityKind, IdSpace, Record};

/// One row of `mappings/canonical/marks.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct CanonicalMark {
    pub scale: m::MarkScale,
    #[serde(default)]
    pub numeric: Option<f64>,
    #[serde(default)]
    pub special: Option<m::SpecialFinal>,
}

/// The SDK's own reading of the world's mark values.
pub fn canonical_marks() -> CodeTable<CanonicalMark> {
    CodeTable::from_toml(
        "canonical/marks",
        "built-in mappings/canonical/marks.toml",
        include_str!("../../../../mappings/canonical/marks.toml"),
    )
    .expect("the canonical mark table parses")
}

/// The expected records of a world, by kind and source id.
#[derive(Debug, Clone, Default)]
pub struct ExpectedRecords {
    pub records: BTreeMap<(EntityKind, String), Record>,
}

impl ExpectedRecords {
    /// Every live record of every school of `world`, with references in `ids`.
    pub fn of(world: &World, ids: &IdSpace) -> ExpectedRecords {
        let marks = canonical_marks();
        let mut out = ExpectedRecords::default();
        for school in &world.schools {
            Builder { ids, school, marks: &marks, out: &mut out }.school();
        }
        out
    }

    /// The expected record of a kind with a source id.
    pub fn get(&self, kind: EntityKind, source_id: &str) -> Option<&Record> {
        self.records.get(&(kind, source_id.to_string()))
    }

    /// The expected records of a kind.
    pub fn of_kind(&self, kind: EntityKind) -> impl Iterator<Item = &Record> + '_ {
        self.records.range((kind, String::new())..).take_while(move |((k, _), _)| *k == kind).map(|(_, r)| r)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

struct Builder<'a> {
    ids: &'a IdSpace,
    school: &'a School,
    marks: &'a CodeTable<CanonicalMark>,
    out: &'a mut ExpectedRecords,
}

impl Builder<'_> {
    fn id(&self, kind: EntityKind, raw: u64) -> Uuid {
        self.ids.id(kind, &key::id(raw))
    }

    fn put(&mut self, source_id: String, date: Option<NaiveDate>, entity: Entity) {
        let kind = entity.kind();
        let record = Record {
            id: self.ids.id(kind, &source_id),
            source_id: source_id.clone(),
            scope: String::new(),
            date,
            source_updated_at: None,
            entity,
        };
        self.out.records.insert((kind, source_id), record);
    }

    fn person(&mut self, p: &SynthPerson, role: m::Role) {
        let entity = Entity::Person(m::Person {
            last_name: p.last_name.clone(),
            first_name: p.first_name.clone(),
            middle_name: (!p.middle_name.is_empty()).then(|| p.middle_name.clone()),
            sex: Some(p.sex),
            birth_date: Some(p.birth_date),
            roles: vec![role],
        });
        self.put(key::id(p.id), None, entity);
    }

    fn school(mut self) {
        let s = self.school;
        let org = Some(self.id(EntityKind::Organization, s.id));
        let year = Some(self.id(EntityKind::AcademicYear, s.year.id));
        self.put(
            key::id(s.id),
            None,
            Entity::Organization(m::Organization {
                kind: m::OrganizationKind::School,
                name: s.name.clone(),
                full_name: Some(s.full_name.clone()),
                municipality: Some(s.municipality.clone()),
                time_zone: Some(s.time_zone.clone()),
                regulation_profile: None,
            }),
        );
        self.put(
            key::id(s.year.id),
            None,
            Entity::AcademicYear(m::AcademicYear {
                organization: org,
                name: s.year.name.clone(),
                start: s.year.start,
                end: s.year.end,
            }),
        );
        for p in &s.periods {
            let entity = Entity::StudyPeriod(m::StudyPeriod {
                organization: org,
                academic_year: year,
                kind: p.kind,
                number: p.number,
                name: p.name.clone(),
                start: p.start,
                end: p.end,
            });
            self.put(key::id(p.id), None, entity);
        }
        for h in &s.holidays {
            let entity =
                Entity::Holiday(m::Holiday { organization: org, name: h.name.clone(), start: h.start, end: h.end });
            self.put(key::id(h.id), None, entity);
        }
        for x in &s.subjects {
            let entity = Entity::Subject(m::Subject {
                organization: org,
                name: x.name.clone(),
                normalized_name: m::normalize_name(&x.name),
                knowledge_area: Some(x.knowledge_area.clone()),
            });
            self.put(key::id(x.id), None, entity);
        }
        for p in &s.teachers {
            self.person(p, m::Role::Staff);
        }
        for p in &s.students {
            self.person(p, m::Role::Student);
        }
        for p in &s.guardians {
            self.person(p, m::Role::Guardian);
        }
        for &(g, st) in &s.guardianships {
            let entity = Entity::Guardianship(m::Guardianship {
                guardian: self.id(EntityKind::Person, g),
                student: self.id(EntityKind::Person, st),
            });
            self.put(key::guardianship(g, st), None, entity);
        }
        for c in &s.classes {
            let entity = Entity::Class(m::Class {
                organization: org,
                academic_year: year,
                name: c.name.clone(),
                grade: Some(c.grade),
                homeroom_teacher: c.homeroom_teacher.map(|t| self.id(EntityKind::Person, t)),
            });
            self.put(key::id(c.id), None, entity);
        }
        for g in &s.groups {
            let entity = Entity::Group(m::Group {
                organization: org,
                class: Some(self.id(EntityKind::Class, g.class_id)),
                kind: g.kind,
                name: g.name.clone(),
                subject: g.subject_id.map(|x| self.id(EntityKind::Subject, x)),
            });
            self.put(key::id(g.id), None, entity);
        }
        // A unit is a class or a group: its reference is to the record of that kind.
        let classes: HashMap<u64, ()> = s.classes.iter().map(|c| (c.id, ())).collect();
        let unit = |b: &Builder, u: u64| {
            if classes.contains_key(&u) {
                b.id(EntityKind::Class, u)
            } else {
                b.id(EntityKind::Group, u)
            }
        };
        for e in &s.enrollments {
            let entity = Entity::Enrollment(m::Enrollment {
                student: self.id(EntityKind::Person, e.student),
                unit: unit(&self, e.unit),
                status: if e.active { m::EnrollmentStatus::Active } else { m::EnrollmentStatus::Archived },
                from: Some(e.from),
                to: e.to,
                order: None,
            });
            self.put(key::enrollment(e.unit, e.student), None, entity);
        }
        for l in &s.loads {
            let entity = Entity::TeachingLoad(m::TeachingLoad {
                teacher: self.id(EntityKind::Person, l.teacher),
                subject: self.id(EntityKind::Subject, l.subject),
                unit: unit(&self, l.unit),
                hours_per_week: l.hours_per_week as f64,
            });
            self.put(key::teaching_load(l.teacher, l.subject, l.unit), None, entity);
        }
        for l in s.lessons.values() {
            let entity = Entity::Lesson(m::Lesson {
                unit: unit(&self, l.unit),
                subject: Some(self.id(EntityKind::Subject, l.subject)),
                date: l.date,
                number: Some(l.number),
                teacher: Some(self.id(EntityKind::Person, l.teacher)),
                substitute: l.substitute.map(|t| self.id(EntityKind::Person, t)),
                topic: l.topic.clone(),
                section: l.section.clone(),
                status: if l.cancelled { m::LessonStatus::Cancelled } else { m::LessonStatus::Held },
            });
            self.put(key::id(l.id), Some(l.date), entity);
        }
        let work_types: HashMap<u64, &super::SynthWorkType> = s.work_types.iter().map(|t| (t.id, t)).collect();
        for w in s.works.values() {
            let date = s.lessons.get(&w.lesson).map(|l| l.date);
            let lesson = Some(self.id(EntityKind::Lesson, w.lesson));
            let wt = work_types.get(&w.work_type);
            let entity = if w.is_homework {
                Entity::Homework(m::Homework {
                    lesson,
                    text: w.text.clone(),
                    entered_at: Some(w.created_at),
                    due_date: Some(w.target_date),
                    attachments: w
                        .attachments
                        .iter()
                        .map(|a| m::Attachment { name: a.name.clone(), url: Some(a.url.clone()) })
                        .collect(),
                })
            } else {
                Entity::Work(m::Work {
                    lesson,
                    kind: wt.map(|t| work_kind(&t.code)).unwrap_or(m::WorkKind::Other),
                    source_type: wt.map(|t| t.title.clone()).unwrap_or_default(),
                    title: Some(w.text.clone()),
                    weight: wt.map(|t| t.weight as f64),
                })
            };
            self.put(key::id(w.id), date, entity);
        }
        for mk in s.marks.values() {
            let lesson = s.lessons.get(&mk.lesson);
            let weight = s.works.get(&mk.work).and_then(|w| work_types.get(&w.work_type)).map(|t| t.weight as f64);
            let reading = self.marks.get(&mk.value);
            let entity = Entity::Mark(m::Mark {
                student: self.id(EntityKind::Person, mk.student),
                lesson: Some(self.id(EntityKind::Lesson, mk.lesson)),
                work: Some(self.id(EntityKind::Work, mk.work)),
                subject: lesson.map(|l| self.id(EntityKind::Subject, l.subject)),
                value: mk.value.clone(),
                numeric: reading.and_then(|r| r.numeric),
                scale: reading.map(|r| r.scale).unwrap_or(m::MarkScale::Other),
                weight,
                entered_at: Some(mk.entered_at),
                entered_by: Some(self.id(EntityKind::Person, mk.entered_by)),
                comment: mk.comment.clone(),
                is_point: mk.is_point,
                point_date: mk.point_date,
            });
            self.put(key::id(mk.id), lesson.map(|l| l.date), entity);
        }
        for (&(student, subject, period), f) in &s.final_marks {
            let reading = self.marks.get(&f.value);
            let special = reading.and_then(|r| r.special);
            let entity = Entity::FinalMark(m::FinalMark {
                student: self.id(EntityKind::Person, student),
                subject: self.id(EntityKind::Subject, subject),
                period: period.map(|p| self.id(EntityKind::StudyPeriod, p)),
                value: f.value.clone(),
                // A special final (осв, н/а, зачёт) counts in no average: no numeric value.
                numeric: if special.is_some() { None } else { reading.and_then(|r| r.numeric) },
                special,
                entered_at: Some(f.entered_at),
            });
            self.put(key::final_mark(student, subject, period), None, entity);
        }
        for (&(lesson, student), a) in &s.attendance {
            let (status, reason, code) = match a.status {
                SynthAttendanceStatus::AbsentUnexcused => {
                    (m::AttendanceStatus::Absent, Some(m::AbsenceReason::Unexcused), "НП")
                }
                SynthAttendanceStatus::AbsentExcused => {
                    (m::AttendanceStatus::Absent, Some(m::AbsenceReason::Excused), "УП")
                }
                SynthAttendanceStatus::Ill => (m::AttendanceStatus::Absent, Some(m::AbsenceReason::Illness), "Б"),
                SynthAttendanceStatus::Late => (m::AttendanceStatus::Late, None, "ОП"),
            };
            let entity = Entity::Attendance(m::Attendance {
                student: self.id(EntityKind::Person, student),
                lesson: self.id(EntityKind::Lesson, lesson),
                status,
                reason,
                source_status: code.to_string(),
                comment: a.comment.clone(),
                entered_at: Some(a.entered_at),
            });
            self.put(key::attendance(lesson, student), s.lessons.get(&lesson).map(|l| l.date), entity);
        }
    }
}

/// The canonical kind of a world work type (its stable code, see `SynthWorkType::code`).
fn work_kind(code: &str) -> m::WorkKind {
    match code {
        "lesson" => m::WorkKind::Oral,
        "written" => m::WorkKind::Written,
        "control" => m::WorkKind::Control,
        "test" => m::WorkKind::Test,
        "internal_control" => m::WorkKind::InternalControl,
        "independent" => m::WorkKind::Independent,
        "practical" => m::WorkKind::Practical,
        _ => m::WorkKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::SynthConfig;

    /// One expected record per live record of the world, and values as the world has them.
    #[test]
    fn every_live_record_has_its_expected_twin() {
        let world = World::generate(SynthConfig::small(3));
        let ids = IdSpace::new("x");
        let exp = ExpectedRecords::of(&world, &ids);
        for (kind, n) in world.counts() {
            assert_eq!(exp.of_kind(kind).count() as u64, n, "{kind}");
        }
        let s = &world.schools[0];
        // A «4+» reads 4.25 on the five-point scale (the canonical table, not a connector's).
        let mk = s.marks.values().find(|m| m.value == "4+").expect("a 4+ in the school");
        let Entity::Mark(e) = &exp.get(EntityKind::Mark, &mk.id.to_string()).unwrap().entity else { panic!() };
        assert_eq!((e.value.as_str(), e.numeric, e.scale), ("4+", Some(4.25), m::MarkScale::Five));
        assert_eq!(e.student, ids.id(EntityKind::Person, &mk.student.to_string()));
        // A control work weighs 3.
        let ctl = s.works.values().find(|w| w.text.starts_with("Контрольная работа по теме")).expect("a control");
        let Entity::Work(w) = &exp.get(EntityKind::Work, &ctl.id.to_string()).unwrap().entity else { panic!() };
        assert_eq!((w.kind, w.weight), (m::WorkKind::Control, Some(3.0)));
        // An illness is an absence for illness.
        let (k, _) = s.attendance.iter().find(|(_, a)| a.status == SynthAttendanceStatus::Ill).expect("an illness");
        let Entity::Attendance(a) = &exp.get(EntityKind::Attendance, &key::attendance(k.0, k.1)).unwrap().entity else {
            panic!()
        };
        assert_eq!((a.status, a.reason), (m::AttendanceStatus::Absent, Some(m::AbsenceReason::Illness)));
    }

    /// The world carries the fields the model gained: sections, attachments, comments,
    /// «точки» (each on some records, not all), deterministically.
    #[test]
    fn the_world_fills_the_new_fields_on_some_records() {
        let world = World::generate(SynthConfig::small(3));
        let s = &world.schools[0];
        assert!(s.lessons.values().all(|l| l.section.is_some()));
        assert!(s.lessons.values().any(|l| l.topic.is_none() && l.section.is_some()), "a section without a topic");
        let homework: Vec<_> = s.works.values().filter(|w| w.is_homework).collect();
        let with_files = homework.iter().filter(|w| !w.attachments.is_empty()).count();
        assert!(with_files > 0 && with_files < homework.len() / 4, "{with_files} of {}", homework.len());
        assert!(s.works.values().filter(|w| !w.is_homework).all(|w| w.attachments.is_empty()));
        let commented = s.marks.values().filter(|m| m.comment.is_some()).count();
        assert!(commented > 0 && commented < s.marks.len() / 8, "{commented} of {}", s.marks.len());
        let points: Vec<_> = s.marks.values().filter(|m| m.is_point).collect();
        assert!(!points.is_empty());
        for p in &points {
            let date = s.lessons[&p.lesson].date;
            let due = p.point_date.expect("a point has a date");
            assert!(due > date && due <= date + chrono::Days::new(14), "{due} for a lesson on {date}");
        }
        assert!(s.marks.values().all(|m| m.is_point == m.point_date.is_some()));
        let again = World::generate(SynthConfig::small(3));
        assert_eq!(again.schools[0].marks, s.marks);
        assert_eq!(again.schools[0].works, s.works);
    }
}
