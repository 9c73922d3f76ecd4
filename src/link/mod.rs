//! Связывание людей между источниками: one school served by several sources (КИАСУО for
//! the contingent, another system for the journal) holds each pupil and teacher once per
//! source, under different ids. This links them by configurable match rules and reports
//! every ambiguous case instead of guessing.
//!
//! Rules (`[[school]] match` in ejgate.toml) are tried in order, strictest first. A rule
//! compares two persons only when both have every field it names; names compare folded
//! (lower case, «ё» as «е», spaces folded). A later, looser rule may only pair two persons
//! that no earlier rule could compare: two pupils whose birth dates are both known and
//! differ are never linked by their names alone. The persons must share a role (a pupil is
//! not linked to a teacher of the same name).
//!
//! The first source of the school is the reference; every person of every other source is
//! linked to at most one reference person. A person with two or more candidates under the
//! deciding rule, or two persons of one source claiming the same reference person, are
//! ambiguous: reported with the candidates, never linked. Links are computed from the
//! store on demand (the store stays one record per source and person; nothing is merged).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use ejgate_sdk::model::{normalize_name, Entity, EntityKind, Person};

use crate::store::{Store, StoreError, StoreResult};

/// A field a match rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchField {
    /// Фамилия
    LastName,
    /// Имя
    FirstName,
    /// Отчество
    MiddleName,
    /// Дата рождения
    BirthDate,
    /// Пол
    Sex,
}

impl MatchField {
    /// The field's name as the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchField::LastName => "last_name",
            MatchField::FirstName => "first_name",
            MatchField::MiddleName => "middle_name",
            MatchField::BirthDate => "birth_date",
            MatchField::Sex => "sex",
        }
    }
}

/// The rules used when a school does not give its own: full name and birth date, then the
/// full name alone (for a system that does not expose birth dates).
pub fn default_rules() -> Vec<Vec<MatchField>> {
    use MatchField::*;
    vec![vec![LastName, FirstName, MiddleName, BirthDate], vec![LastName, FirstName, MiddleName]]
}

/// A person as the linker sees it.
#[derive(Debug, Clone)]
struct Candidate {
    id: Uuid,
    source_id: String,
    person: Person,
}

impl Candidate {
    /// The folded value of a field, `None` when the source left it empty.
    fn field(&self, f: MatchField) -> Option<String> {
        let p = &self.person;
        let folded = |s: &str| Some(normalize_name(s)).filter(|s| !s.is_empty());
        match f {
            MatchField::LastName => folded(&p.last_name),
            MatchField::FirstName => folded(&p.first_name),
            MatchField::MiddleName => p.middle_name.as_deref().and_then(folded),
            MatchField::BirthDate => p.birth_date.map(|d| d.to_string()),
            MatchField::Sex => p.sex.map(|s| format!("{s:?}")),
        }
    }

    /// The rule's key, when the person has every field of it.
    fn key(&self, rule: &[MatchField]) -> Option<Vec<String>> {
        rule.iter().map(|f| self.field(*f)).collect()
    }

    fn label(&self) -> String {
        let p = &self.person;
        let mut s = format!("{} {}", p.last_name, p.first_name);
        if let Some(m) = &p.middle_name {
            s.push(' ');
            s.push_str(m);
        }
        if let Some(d) = p.birth_date {
            s.push_str(&format!(", {}", d.format("%d.%m.%Y")));
        }
        s
    }

    fn shares_a_role(&self, other: &Candidate) -> bool {
        self.person.roles.iter().any(|r| other.person.roles.contains(r))
    }
}

/// One linked person.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub source: String,
    pub person: Uuid,
    pub source_id: String,
    pub reference_source: String,
    pub reference_person: Uuid,
    pub reference_source_id: String,
    /// The rule that linked them (1-based, in the order of the configuration)
    pub rule: usize,
    pub name: String,
}

/// A person that could not be linked without guessing.
#[derive(Debug, Clone, Serialize)]
pub struct Ambiguity {
    pub source: String,
    pub person: Uuid,
    pub source_id: String,
    pub name: String,
    /// Why: several candidates in the reference, or several persons claiming one candidate
    pub reason: String,
    /// The candidates, as «source id: name»
    pub candidates: Vec<String>,
}

/// Per source: how many persons were linked, ambiguous, left without a match.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceSummary {
    pub persons: u64,
    pub linked: u64,
    pub ambiguous: u64,
    pub unmatched: u64,
}

/// The links of one school.
#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    pub school: String,
    pub reference_source: String,
    pub rules: Vec<Vec<MatchField>>,
    pub summary: BTreeMap<String, SourceSummary>,
    pub links: Vec<Link>,
    pub ambiguous: Vec<Ambiguity>,
}

async fn persons(store: &dyn Store, source: &str) -> StoreResult<Vec<Candidate>> {
    let mut out = Vec::new();
    for r in store.records(EntityKind::Person, Some(source), false).await? {
        let json = serde_json::to_vec(&r.content).map_err(|e| StoreError::Invalid(e.to_string()))?;
        match Entity::from_content(EntityKind::Person, &json) {
            Ok(Entity::Person(person)) => out.push(Candidate { id: r.id, source_id: r.source_id, person }),
            _ => {
                return Err(StoreError::Invalid(format!(
                    "person {} of source «{source}» has content the model cannot read",
                    r.source_id
                )))
            }
        }
    }
    Ok(out)
}

/// What the rules decide for one person: the reference candidates of the deciding rule.
enum Decision {
    Candidates { rule: usize, found: Vec<usize> },
    NoMatch,
}

/// Applies the rules to `p` against the reference persons (indexed per rule).
fn decide(
    p: &Candidate,
    reference: &[Candidate],
    index: &[HashMap<Vec<String>, Vec<usize>>],
    rules: &[Vec<MatchField>],
) -> Decision {
    for (r, rule) in rules.iter().enumerate() {
        let Some(key) = p.key(rule) else { continue };
        let found: Vec<usize> = index[r]
            .get(&key)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&q| reference[q].shares_a_role(p))
            // Only persons no stricter rule could compare with `p`.
            .filter(|&q| {
                rules[..r].iter().all(|earlier| p.key(earlier).is_none() || reference[q].key(earlier).is_none())
            })
            .collect();
        if !found.is_empty() {
            return Decision::Candidates { rule: r + 1, found };
        }
    }
    Decision::NoMatch
}

/// Links the persons of every source of a school to its first (reference) source.
pub async fn link_school(
    store: &dyn Store,
    school: &str,
    sources: &[String],
    rules: &[Vec<MatchField>],
) -> StoreResult<LinkReport> {
    let (reference_source, others) =
        sources.split_first().ok_or_else(|| StoreError::Invalid(format!("school «{school}» names no source")))?;
    let reference = persons(store, reference_source).await?;
    let index: Vec<HashMap<Vec<String>, Vec<usize>>> = rules
        .iter()
        .map(|rule| {
            let mut m: HashMap<Vec<String>, Vec<usize>> = HashMap::new();
            for (i, q) in reference.iter().enumerate() {
                if let Some(k) = q.key(rule) {
                    m.entry(k).or_default().push(i);
                }
            }
            m
        })
        .collect();
    let mut report = LinkReport {
        school: school.to_string(),
        reference_source: reference_source.clone(),
        rules: rules.to_vec(),
        summary: BTreeMap::new(),
        links: Vec::new(),
        ambiguous: Vec::new(),
    };
    let describe = |q: &Candidate| format!("{reference_source} {}: {}", q.source_id, q.label());
    for source in others {
        let mine = persons(store, source).await?;
        let mut summary = SourceSummary { persons: mine.len() as u64, ..Default::default() };
        // reference person → the persons of this source whose only candidate it is
        let mut claims: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
        for (i, p) in mine.iter().enumerate() {
            match decide(p, &reference, &index, rules) {
                Decision::NoMatch => summary.unmatched += 1,
                Decision::Candidates { rule, found } if found.len() == 1 => {
                    claims.entry(found[0]).or_default().push((i, rule))
                }
                Decision::Candidates { rule, found } => {
                    summary.ambiguous += 1;
                    report.ambiguous.push(Ambiguity {
                        source: source.clone(),
                        person: p.id,
                        source_id: p.source_id.clone(),
                        name: p.label(),
                        reason: format!("{} persons of «{reference_source}» fit rule {rule}", found.len()),
                        candidates: found.iter().map(|&q| describe(&reference[q])).collect(),
                    });
                }
            }
        }
        for (q, claimants) in claims {
            if let [(i, rule)] = claimants[..] {
                summary.linked += 1;
                let (p, r) = (&mine[i], &reference[q]);
                report.links.push(Link {
                    source: source.clone(),
                    person: p.id,
                    source_id: p.source_id.clone(),
                    reference_source: reference_source.clone(),
                    reference_person: r.id,
                    reference_source_id: r.source_id.clone(),
                    rule,
                    name: p.label(),
                });
                continue;
            }
            for &(i, rule) in &claimants {
                summary.ambiguous += 1;
                let p = &mine[i];
                report.ambiguous.push(Ambiguity {
                    source: source.clone(),
                    person: p.id,
                    source_id: p.source_id.clone(),
                    name: p.label(),
                    reason: format!(
                        "{} persons of «{source}» fit the same person of «{reference_source}» by rule {rule}",
                        claimants.len()
                    ),
                    candidates: vec![describe(&reference[q])],
                });
            }
        }
        report.summary.insert(source.clone(), summary);
    }
    // The reference's own line: how many of its persons some other source linked to.
    let linked: std::collections::HashSet<Uuid> = report.links.iter().map(|l| l.reference_person).collect();
    report.summary.insert(
        reference_source.clone(),
        SourceSummary {
            persons: reference.len() as u64,
            linked: linked.len() as u64,
            unmatched: (reference.len() - linked.len()) as u64,
            ambiguous: 0,
        },
    );
    Ok(report)
}

/// The report for a person.
pub fn render(r: &LinkReport) -> String {
    let rules: Vec<String> = r
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let fields: Vec<&str> = rule.iter().map(|f| f.as_str()).collect();
            format!("{}. {}", i + 1, fields.join(" + "))
        })
        .collect();
    let mut out = format!(
        "\nSchool «{}»: persons linked to «{}» by the rules\n  {}\n\n  source             persons     linked  ambiguous  unmatched\n",
        r.school,
        r.reference_source,
        rules.join("\n  ")
    );
    for (source, s) in &r.summary {
        out.push_str(&format!(
            "  {:<16} {:>9} {:>10} {:>10} {:>10}\n",
            source, s.persons, s.linked, s.ambiguous, s.unmatched
        ));
    }
    if !r.ambiguous.is_empty() {
        out.push_str(&format!("\n{} ambiguous (not linked; check them by hand):\n", r.ambiguous.len()));
        for a in &r.ambiguous {
            out.push_str(&format!("  {} {}: {} — {}\n", a.source, a.source_id, a.name, a.reason));
            for c in &a.candidates {
                out.push_str(&format!("      {c}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{put, sqlite};
    use chrono::NaiveDate;
    use ejgate_sdk::model::{IdSpace, Record, Role};

    fn person(source: &str, id: &str, name: &str, birth: Option<(i32, u32, u32)>, role: Role) -> Record {
        let mut parts = name.split(' ');
        Record {
            id: IdSpace::new(source).id(EntityKind::Person, id),
            source_id: id.into(),
            scope: "school:1".into(),
            date: None,
            source_updated_at: None,
            entity: Entity::Person(Person {
                last_name: parts.next().unwrap().into(),
                first_name: parts.next().unwrap().into(),
                middle_name: parts.next().map(Into::into),
                sex: None,
                birth_date: birth.map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap()),
                roles: vec![role],
            }),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn links_by_the_strictest_rule_and_reports_what_it_cannot_decide() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(dir.path()).await;
        use Role::*;
        put(
            &store,
            "contingent",
            vec![
                person("contingent", "1", "Орлова Анна Петровна", Some((2012, 3, 1)), Student),
                person("contingent", "2", "Сидоров Иван Ильич", Some((2011, 5, 9)), Student),
                // Namesakes born the same day: nobody can tell them apart by these fields.
                person("contingent", "3", "Ким Олег Сергеевич", Some((2013, 1, 2)), Student),
                person("contingent", "4", "Ким Олег Сергеевич", Some((2013, 1, 2)), Student),
                person("contingent", "5", "Фёдорова Юлия Андреевна", Some((2012, 7, 7)), Student),
                person("contingent", "6", "Белов Пётр Олегович", None, Student),
                person("contingent", "7", "Орлов Павел Ильич", Some((1980, 1, 1)), Staff),
            ],
        )
        .await;
        put(
            &store,
            "journal",
            vec![
                // Same birth date: rule 1.
                person("journal", "a", "ОРЛОВА Анна Петровна", Some((2012, 3, 1)), Student),
                // No birth date in this system: rule 2 (names alone).
                person("journal", "b", "Сидоров Иван Ильич", None, Student),
                person("journal", "c", "Ким Олег Сергеевич", Some((2013, 1, 2)), Student),
                // Birth dates known on both sides and different: never linked by name.
                person("journal", "d", "Федорова Юлия Андреевна", Some((2012, 7, 8)), Student),
                // The reference has no birth date for him, and this system has two of him.
                person("journal", "e", "Белов Пётр Олегович", Some((2010, 2, 2)), Student),
                person("journal", "f", "Белов Петр Олегович", Some((2010, 4, 4)), Student),
                // A pupil of a teacher's name is not that teacher.
                person("journal", "g", "Орлов Павел Ильич", Some((1980, 1, 1)), Student),
            ],
        )
        .await;
        let sources = vec!["contingent".to_string(), "journal".to_string()];
        let r = link_school(&store, "school", &sources, &default_rules()).await.unwrap();

        let linked: BTreeMap<&str, (&str, usize)> =
            r.links.iter().map(|l| (l.source_id.as_str(), (l.reference_source_id.as_str(), l.rule))).collect();
        assert_eq!(linked, BTreeMap::from([("a", ("1", 1)), ("b", ("2", 2))]), "{}", render(&r));

        let ambiguous: BTreeMap<&str, usize> =
            r.ambiguous.iter().map(|a| (a.source_id.as_str(), a.candidates.len())).collect();
        assert_eq!(ambiguous, BTreeMap::from([("c", 2), ("e", 1), ("f", 1)]), "{}", render(&r));
        let s = &r.summary["journal"];
        assert_eq!((s.persons, s.linked, s.ambiguous, s.unmatched), (7, 2, 3, 2));
        assert_eq!(r.summary["contingent"].linked, 2);
        let text = render(&r);
        assert!(text.contains("Ким Олег Сергеевич") && text.contains("contingent 4"), "{text}");

        // A school that trusts names alone links Фёдорова too (her only candidate).
        let names_only = vec![vec![MatchField::LastName, MatchField::FirstName, MatchField::MiddleName]];
        let r = link_school(&store, "school", &sources, &names_only).await.unwrap();
        assert!(r.links.iter().any(|l| l.source_id == "d" && l.reference_source_id == "5"), "{}", render(&r));
    }
}
