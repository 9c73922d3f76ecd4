//! Who is asking, and what they may see: the staff token sees every school; a parent's
//! token sees their children, a pupil's themselves (SOURCES.md: `users/me/context` with
//! `roles[]` and `children[]`, the person-scoped calls). Also the answers about the
//! caller and about persons: `users/me`, `users/me/context`, `schools/person-schools`,
//! `persons/{p}`, `persons/{p}/edu-groups`.
//!
//! **Assumptions** (API.md): a family token may read its schools' profiles, subjects,
//! teachers, work types and reporting periods, and the lessons of its pupils' classes and
//! groups; school-wide lists (all classes, class lists, a group's marks, attendance and
//! final marks) answer 403 `authorizationNotOwner`; lists of a lesson's marks and
//! attendance keep the pupils' own rows.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use ejgate_sdk::synth::SynthPerson;
use serde_json::json;

use super::index::{Served, UnitRef};
use super::wire::{self, ApiError, IdStr};
use super::{Account, Forms};

/// The administrator behind the staff token (**assumption**: the world has no such
/// person; the ids sit just below the world's first id, still above 2^53).
const ADMIN: (u64, u64) = (wire::ADMIN_USER_ID, wire::ADMIN_PERSON_ID);

/// What one caller may see.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub account: Account,
    /// The caller's own person id (the administrator's for the staff token).
    pub me: u64,
    /// The pupils a family token reads (a parent's children, or the pupil); empty for staff.
    pub pupils: Vec<u64>,
    /// Classes and groups of those pupils (ever enrolled).
    pub units: BTreeSet<u64>,
    /// Indexes of their schools.
    pub schools: BTreeSet<usize>,
}

pub(crate) fn forbidden() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "authorizationNotOwner", "Access denied")
}

impl View {
    pub fn of(s: &Served, account: Account) -> View {
        let (me, pupils) = match account {
            Account::Staff => (ADMIN.1, Vec::new()),
            Account::Parent(guardian) => {
                let children = s
                    .world
                    .schools
                    .iter()
                    .flat_map(|school| &school.guardianships)
                    .filter(|(g, _)| *g == guardian)
                    .map(|(_, child)| *child)
                    .collect();
                (guardian, children)
            }
            Account::Pupil(student) => (student, vec![student]),
        };
        let mut units = BTreeSet::new();
        let mut schools = BTreeSet::new();
        for p in &pupils {
            units.extend(s.index.student_units.get(p).into_iter().flatten().map(|(u, _)| *u));
            schools.extend(s.index.people.get(p).map(|(si, _)| *si));
        }
        View { account, me, pupils, units, schools }
    }

    pub fn staff(&self) -> bool {
        self.account == Account::Staff
    }

    /// School-wide lists: staff only.
    pub fn school_wide(&self) -> Result<(), ApiError> {
        if self.staff() {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    pub fn person(&self, p: u64) -> Result<(), ApiError> {
        if self.staff() || self.me == p || self.pupils.contains(&p) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    pub fn unit(&self, g: u64) -> Result<(), ApiError> {
        if self.staff() || self.units.contains(&g) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    pub fn school(&self, s: &Served, school: u64) -> Result<(), ApiError> {
        if self.staff() || s.index.schools.get(&school).is_some_and(|si| self.schools.contains(si)) {
            Ok(())
        } else {
            Err(forbidden())
        }
    }

    pub fn lesson(&self, s: &Served, lesson: u64) -> Result<(), ApiError> {
        if self.staff() {
            return Ok(());
        }
        let (_, _, l) = s.lesson(lesson).ok_or_else(|| ApiError::unavailable("lesson", lesson))?;
        self.unit(l.unit)
    }

    /// The pupils whose rows a family token sees in a shared list; `None`: all (staff).
    pub fn only(&self) -> Option<&[u64]> {
        (!self.staff()).then_some(self.pupils.as_slice())
    }
}

fn find_person(s: &Served, id: u64) -> Option<&SynthPerson> {
    let &(si, _) = s.index.people.get(&id)?;
    let school = &s.world.schools[si];
    school.students.iter().chain(&school.teachers).chain(&school.guardians).find(|p| p.id == id)
}

/// The user id of a person (**assumption**: a family account without a user id in the
/// world signs in with the person id as its user id).
fn user_of(p: &SynthPerson) -> u64 {
    p.user_id.unwrap_or(p.id)
}

/// Classes (no subgroups, as SOURCES.md says of the context's `groupIds`) a pupil is in now.
fn classes_of(s: &Served, pupil: u64) -> Vec<u64> {
    s.index
        .student_units
        .get(&pupil)
        .into_iter()
        .flatten()
        .filter(|(u, active)| *active && s.unit(*u).is_some_and(|(x, _)| matches!(x.unit, UnitRef::Class(_))))
        .map(|(u, _)| *u)
        .collect()
}

fn names(p: &SynthPerson) -> serde_json::Value {
    json!({
        "firstName": p.first_name, "lastName": p.last_name, "middleName": p.middle_name,
        "shortName": wire::short_name(p),
    })
}

/// `users/me/context` for each kind of account.
pub fn context(s: &Served, view: &View) -> Vec<u8> {
    if view.staff() {
        return wire::context(s);
    }
    let school_ids: Vec<u64> = view.schools.iter().map(|&si| s.world.schools[si].id).collect();
    let schools: Vec<_> = view
        .schools
        .iter()
        .map(|&si| {
            let school = &s.world.schools[si];
            let groups: BTreeSet<u64> = view
                .pupils
                .iter()
                .filter(|p| s.index.people.get(p).is_some_and(|(x, _)| *x == si))
                .flat_map(|p| classes_of(s, *p))
                .collect();
            json!({"id": school.id, "id_str": IdStr(school.id), "name": school.name, "type": "School", "groupIds": groups})
        })
        .collect();
    let me = find_person(s, view.me);
    let mut out = json!({
        "userId": me.map(user_of), "userId_str": me.map(|p| IdStr(user_of(p))),
        "personId": view.me, "personId_str": IdStr(view.me),
        "schools": schools, "schoolIds": school_ids,
    });
    if let Some(p) = me {
        merge(&mut out, names(p));
    }
    match view.account {
        Account::Pupil(student) => {
            let classes = classes_of(s, student);
            let edu_groups: Vec<_> = classes
                .iter()
                .filter_map(|g| s.unit(*g))
                .map(|(u, school)| {
                    let (class, _) = Served::class_of(school, u.unit);
                    let c = class.expect("a class");
                    json!({"id": c.id, "id_str": IdStr(c.id), "name": c.name})
                })
                .collect();
            merge(
                &mut out,
                json!({"roles": ["EduStudent"], "eduGroups": edu_groups, "groupIds": classes, "children": []}),
            );
        }
        _ => {
            let children: Vec<_> = view
                .pupils
                .iter()
                .filter_map(|&c| {
                    let p = find_person(s, c)?;
                    let si = s.index.people.get(&c)?.0;
                    let mut child = json!({
                        "personId": c, "personId_str": IdStr(c),
                        "userId": p.user_id, "userId_str": p.user_id.map(IdStr),
                        "schoolIds": [s.world.schools[si].id], "groupIds": classes_of(s, c),
                    });
                    merge(&mut child, names(p));
                    Some(child)
                })
                .collect();
            merge(&mut out, json!({"roles": ["EduParent"], "eduGroups": [], "groupIds": [], "children": children}));
        }
    }
    serde_json::to_vec(&out).expect("serializing into memory cannot fail")
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// `users/me` (**assumption**: the user object of the typed clients, reduced to the ids,
/// names, sex and roles).
pub fn me(s: &Served, view: &View) -> Vec<u8> {
    let mut out = match find_person(s, view.me) {
        Some(p) => {
            let mut v = json!({
                "id": user_of(p), "id_str": IdStr(user_of(p)),
                "personId": p.id, "personId_str": IdStr(p.id),
                "sex": match p.sex { ejgate_sdk::model::Sex::Male => "Male", ejgate_sdk::model::Sex::Female => "Female" },
            });
            merge(&mut v, names(p));
            v
        }
        None => json!({
            "id": ADMIN.0, "id_str": IdStr(ADMIN.0), "personId": ADMIN.1, "personId_str": IdStr(ADMIN.1),
            "firstName": "Ирина", "lastName": "Соколова", "middleName": "Викторовна",
            "shortName": "Соколова И. В.", "sex": "Female",
        }),
    };
    let roles = match view.account {
        Account::Staff => json!(["EduSchoolAdministrator", "OrganizationStaff"]),
        Account::Parent(_) => json!(["EduParent"]),
        Account::Pupil(_) => json!(["EduStudent"]),
    };
    merge(&mut out, json!({"roles": roles}));
    serde_json::to_vec(&out).expect("serializing into memory cannot fail")
}

/// `schools/person-schools`: the caller's schools, `{id, id_str, name, educationType,
/// tsoCityId, tsoRegionTreePath}` (SOURCES.md; **assumption**: the two `tso…` values).
pub fn person_schools(s: &Served, view: &View) -> Vec<u8> {
    let indexes: Vec<usize> =
        if view.staff() { (0..s.world.schools.len()).collect() } else { view.schools.iter().copied().collect() };
    let list: Vec<_> = indexes
        .into_iter()
        .map(|si| {
            let school = &s.world.schools[si];
            json!({"id": school.id, "id_str": IdStr(school.id), "name": school.name,
                   "educationType": "Regular", "tsoCityId": null, "tsoRegionTreePath": null})
        })
        .collect();
    serde_json::to_vec(&list).expect("serializing into memory cannot fail")
}

/// `persons/{p}`: the person object of the class lists.
pub fn person(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let p = find_person(s, id).ok_or_else(|| ApiError::unavailable("person", id))?;
    Ok(serde_json::to_vec(&wire::person_json(p)).expect("serializing into memory cannot fail"))
}

/// `persons/{p}/edu-groups`: the classes and groups a pupil is in now, subgroups included.
pub fn person_edu_groups(s: &Served, id: u64, forms: Forms) -> Result<Vec<u8>, ApiError> {
    find_person(s, id).ok_or_else(|| ApiError::unavailable("person", id))?;
    let units: Vec<u64> =
        s.index.student_units.get(&id).into_iter().flatten().filter(|(_, active)| *active).map(|(u, _)| *u).collect();
    Ok(wire::edu_groups_many(s, &units, forms))
}
