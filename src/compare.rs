//! Сверка источников: whether two sources hold the same canonical data for what both expose.
//!
//! Canonical ids are per source instance (UUIDv5 over instance, kind and source id), and
//! references inside a record are such ids, so two sources that brought the same mark hold
//! it under different ids pointing at different (but equal) students and lessons. The
//! comparison therefore compares records by their *portable form*: the content with every
//! reference replaced by the portable form of the record it points at (recursively, as a
//! hash), and with the fields one of the two systems does not expose left out. Two records
//! are the same entity with the same data exactly when their portable forms are equal.
//!
//! Used by `ejgate compare` (a school moving from one system to another, or one school in
//! two systems) and by the test that all five connectors bring identical data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use ejgate_sdk::model::EntityKind;

use crate::store::{Store, StoreResult};

/// A field of a kind, by its name in the content.
pub type Field = (EntityKind, &'static str);

/// Fields that keep the source's own code as it wrote it (`Pass`, `УП`, `ControlWork`): they
/// differ between systems by design; the canonical field beside each (`status`, `kind`)
/// is what is compared.
pub const SOURCE_CODES: &[Field] = &[(EntityKind::Work, "source_type"), (EntityKind::Attendance, "source_status")];

/// What a comparison forgives because one of the two systems cannot say it.
#[derive(Debug, Clone, Default)]
pub struct Tolerances {
    /// Fields one system does not fill: left out on both sides.
    pub left_out: Vec<Field>,
    /// Date-times one system gives to the minute only (ЭПОС.Школа's `dd.MM.yyyy HH:mm`):
    /// compared to the minute on both sides.
    pub to_the_minute: Vec<Field>,
}

/// The records of one source, every kind, by canonical id: (kind, source id, content).
pub(crate) struct SourceRecords {
    records: HashMap<Uuid, (EntityKind, String, Value)>,
}

impl SourceRecords {
    /// Every kind: references may point outside the compared kinds (a mark's work).
    pub(crate) async fn load(store: &dyn Store, source: &str) -> StoreResult<SourceRecords> {
        let mut records = HashMap::new();
        for kind in EntityKind::ALL {
            for r in store.records(kind, Some(source), false).await? {
                records.insert(r.id, (kind, r.source_id, r.content));
            }
        }
        Ok(SourceRecords { records })
    }

    /// Records that are not in a store (the acceptance kit's expected records).
    #[cfg_attr(not(feature = "acceptance"), allow(dead_code))]
    pub(crate) fn of_records<'r>(records: impl IntoIterator<Item = &'r ejgate_sdk::Record>) -> SourceRecords {
        let records = records
            .into_iter()
            .map(|r| {
                let content = serde_json::from_slice(&r.entity.content_json()).expect("content is JSON");
                (r.id, (r.kind(), r.source_id.clone(), content))
            })
            .collect();
        SourceRecords { records }
    }

    /// Every record: (kind, source id, content).
    #[cfg_attr(not(feature = "acceptance"), allow(dead_code))]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (EntityKind, &str, &Value)> + '_ {
        self.records.values().map(|(k, s, c)| (*k, s.as_str(), c))
    }
}

/// How a portable form writes a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefForm {
    /// `kind#hash` of the portable form of the record it points at: two systems give the
    /// same record different source ids (сверка).
    Content,
    /// `kind:source_id` of the record it points at: both sides key records the same way
    /// (the acceptance kit, where source ids are the synthetic world's keys), so a reference
    /// is right when it points at the right record, whatever that record's own fields hold
    /// (those are checked on the record itself).
    #[cfg_attr(not(feature = "acceptance"), allow(dead_code))]
    SourceId,
}

/// Computes portable forms, memoizing the hash of every referenced record.
pub(crate) struct Portable<'a> {
    source: &'a SourceRecords,
    left_out: &'a BTreeSet<Field>,
    to_the_minute: &'a BTreeSet<Field>,
    refs: RefForm,
    hashes: HashMap<Uuid, String>,
}

impl<'a> Portable<'a> {
    pub(crate) fn new(
        source: &'a SourceRecords,
        left_out: &'a BTreeSet<Field>,
        to_the_minute: &'a BTreeSet<Field>,
        refs: RefForm,
    ) -> Portable<'a> {
        Portable { source, left_out, to_the_minute, refs, hashes: HashMap::new() }
    }

    /// The portable form of a record: its content without the left-out fields, references
    /// replaced by `kind#hash` of the record they point at (`?` when this source does not
    /// hold that record).
    fn form(&mut self, kind: EntityKind, content: &Value, depth: u32) -> String {
        self.form_without(kind, content, depth, None)
    }

    /// The portable form with one more top-level field left out (to find which field differs).
    fn form_without(&mut self, kind: EntityKind, content: &Value, depth: u32, skip: Option<&str>) -> String {
        // serde_json's map is ordered by key: the text is canonical.
        Value::Object(self.fields_at(kind, content, depth, skip)).to_string()
    }

    /// The fields of a record in portable form (left-out fields left out), by name: what
    /// the acceptance kit compares one by one.
    #[cfg_attr(not(feature = "acceptance"), allow(dead_code))]
    pub(crate) fn fields(&mut self, kind: EntityKind, content: &Value) -> serde_json::Map<String, Value> {
        self.fields_at(kind, content, 0, None)
    }

    fn fields_at(
        &mut self,
        kind: EntityKind,
        content: &Value,
        depth: u32,
        skip: Option<&str>,
    ) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        if let Value::Object(fields) = content {
            for (name, value) in fields {
                if self.left_out.contains(&(kind, name.as_str())) || skip == Some(name.as_str()) {
                    continue;
                }
                let value = match value {
                    // `2025-09-01T09:02:11` → `2025-09-01T09:02` (by characters: no byte
                    // slicing of text a source wrote)
                    Value::String(t) if self.to_the_minute.contains(&(kind, name.as_str())) && t.len() >= 16 => {
                        Value::String(t.chars().take(16).collect())
                    }
                    _ => self.resolve(value, depth),
                };
                out.insert(name.clone(), value);
            }
        }
        out
    }

    fn resolve(&mut self, value: &Value, depth: u32) -> Value {
        match value {
            Value::String(s) => match Uuid::parse_str(s) {
                Ok(id) if s.len() == 36 => Value::String(self.reference(id, depth)),
                _ => value.clone(),
            },
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v, depth)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.resolve(v, depth))).collect()),
            _ => value.clone(),
        }
    }

    fn reference(&mut self, id: Uuid, depth: u32) -> String {
        if let Some(h) = self.hashes.get(&id) {
            return h.clone();
        }
        // The model has no reference cycles; the bound only guards against a corrupt store.
        let hash = match self.source.records.get(&id) {
            Some((kind, source_id, _)) if self.refs == RefForm::SourceId => format!("{}:{source_id}", kind.as_str()),
            Some((kind, _, content)) if depth < 16 => {
                let form = self.form_without(*kind, content, depth + 1, None);
                format!("{}#{}", kind.as_str(), &blake3::hash(form.as_bytes()).to_hex()[..16])
            }
            _ => "?".to_string(),
        };
        self.hashes.insert(id, hash.clone());
        hash
    }
}

/// How one kind compares.
#[derive(Debug, Clone, Serialize)]
pub struct KindComparison {
    pub kind: EntityKind,
    /// Records of the first source.
    pub first: u64,
    /// Records of the second source.
    pub second: u64,
    /// Records with an identical twin on the other side.
    pub same: u64,
    /// Portable forms only the first source has (at most [`MAX_EXAMPLES`]).
    pub only_first: Vec<String>,
    /// Portable forms only the second source has (at most [`MAX_EXAMPLES`]).
    pub only_second: Vec<String>,
    /// How many records are only in the first / only in the second source.
    pub only_first_count: u64,
    pub only_second_count: u64,
    /// The fields that make the difference: for each, how many records would have a twin
    /// if that field alone were left out (a reference field counts when the records it
    /// points at differ).
    pub differing_fields: Vec<(String, u64)>,
}

/// Examples of differences kept per kind and side.
pub const MAX_EXAMPLES: usize = 5;

/// The comparison of two sources.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub first: String,
    pub second: String,
    /// The fields left out because one of the two systems does not expose them.
    pub left_out: Vec<String>,
    /// The date-times compared to the minute.
    pub to_the_minute: Vec<String>,
    pub kinds: Vec<KindComparison>,
}

impl Comparison {
    /// Whether every record of every compared kind has an identical twin on the other side.
    pub fn identical(&self) -> bool {
        self.kinds.iter().all(|k| k.only_first_count == 0 && k.only_second_count == 0)
    }

    /// Whether every record of the first source has an identical twin in the second (the
    /// second may hold more: a system that shows a parent's view sees fewer lessons).
    pub fn first_within_second(&self) -> bool {
        self.kinds.iter().all(|k| k.only_first_count == 0)
    }
}

/// Compares two sources of the same store over `kinds`, with the tolerances of the two systems.
pub async fn compare(
    store: &dyn Store,
    first: &str,
    second: &str,
    kinds: &[EntityKind],
    tolerances: &Tolerances,
) -> StoreResult<Comparison> {
    let left_out: BTreeSet<Field> = tolerances.left_out.iter().chain(SOURCE_CODES).copied().collect();
    let to_the_minute: BTreeSet<Field> = tolerances.to_the_minute.iter().copied().collect();
    let a = SourceRecords::load(store, first).await?;
    let b = SourceRecords::load(store, second).await?;
    let mut pa = Portable::new(&a, &left_out, &to_the_minute, RefForm::Content);
    let mut pb = Portable::new(&b, &left_out, &to_the_minute, RefForm::Content);
    let mut out = Vec::new();
    for &kind in kinds {
        let ra: Vec<&Value> = a.records.values().filter(|(k, _, _)| *k == kind).map(|(_, _, c)| c).collect();
        let rb: Vec<&Value> = b.records.values().filter(|(k, _, _)| *k == kind).map(|(_, _, c)| c).collect();
        let fa = multiset(ra.iter().map(|c| pa.form(kind, c, 0)));
        let fb = multiset(rb.iter().map(|c| pb.form(kind, c, 0)));
        let (same, only_a, only_b) = difference(&fa, &fb);
        let mut k = KindComparison {
            kind,
            first: ra.len() as u64,
            second: rb.len() as u64,
            same,
            only_first_count: only_a.values().sum(),
            only_second_count: only_b.values().sum(),
            only_first: only_a.keys().take(MAX_EXAMPLES).cloned().collect(),
            only_second: only_b.keys().take(MAX_EXAMPLES).cloned().collect(),
            differing_fields: Vec::new(),
        };
        if k.only_first_count + k.only_second_count > 0 {
            // Only the records without a twin, each field left out in turn.
            let unmatched = |p: &mut Portable, records: &[&Value], only: &BTreeMap<String, u64>| -> Vec<Value> {
                records.iter().filter(|c| only.contains_key(&p.form(kind, c, 0))).map(|c| (*c).clone()).collect()
            };
            let (ua, ub) = (unmatched(&mut pa, &ra, &only_a), unmatched(&mut pb, &rb, &only_b));
            let fields: BTreeSet<String> =
                ua.iter().chain(&ub).filter_map(Value::as_object).flat_map(|o| o.keys().cloned()).collect();
            for field in fields {
                let fa = multiset(ua.iter().map(|c| pa.form_without(kind, c, 0, Some(&field))));
                let fb = multiset(ub.iter().map(|c| pb.form_without(kind, c, 0, Some(&field))));
                let (twins, _, _) = difference(&fa, &fb);
                if twins > 0 {
                    k.differing_fields.push((field, twins));
                }
            }
            k.differing_fields.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        }
        out.push(k);
    }
    Ok(Comparison {
        first: first.to_string(),
        second: second.to_string(),
        left_out: left_out.iter().map(|(k, f)| format!("{}.{f}", k.as_str())).collect(),
        to_the_minute: to_the_minute.iter().map(|(k, f)| format!("{}.{f}", k.as_str())).collect(),
        kinds: out,
    })
}

fn multiset(forms: impl Iterator<Item = String>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for f in forms {
        *m.entry(f).or_default() += 1;
    }
    m
}

/// How many forms have a twin, and the surplus of each side.
fn difference(
    a: &BTreeMap<String, u64>,
    b: &BTreeMap<String, u64>,
) -> (u64, BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let surplus = |x: &BTreeMap<String, u64>, y: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
        x.iter()
            .filter_map(|(f, &n)| {
                let m = y.get(f).copied().unwrap_or(0);
                (n > m).then(|| (f.clone(), n - m))
            })
            .collect()
    };
    let same = a.iter().map(|(f, &n)| n.min(b.get(f).copied().unwrap_or(0))).sum();
    (same, surplus(a, b), surplus(b, a))
}

/// The comparison for a person.
pub fn render(c: &Comparison) -> String {
    let mut out = format!("\n  entity             {:>12} {:>12} {:>12}\n", c.first, c.second, "identical");
    for k in &c.kinds {
        let mark = if k.only_first_count + k.only_second_count == 0 { "" } else { "   <- differs" };
        out.push_str(&format!("  {:<18} {:>12} {:>12} {:>12}{mark}\n", k.kind.as_str(), k.first, k.second, k.same));
    }
    for k in &c.kinds {
        if !k.differing_fields.is_empty() {
            let fields: Vec<String> = k.differing_fields.iter().map(|(f, n)| format!("{f} ({n})")).collect();
            out.push_str(&format!("\n{}: the records differ in {}\n", k.kind.as_str(), fields.join(", ")));
        }
        for (side, forms, n) in
            [(&c.first, &k.only_first, k.only_first_count), (&c.second, &k.only_second, k.only_second_count)]
        {
            if n > 0 {
                out.push_str(&format!("\n{} {} record(s) only in {side}, for example:\n", n, k.kind.as_str()));
                for f in forms {
                    out.push_str(&format!("  {f}\n"));
                }
            }
        }
    }
    if !c.left_out.is_empty() {
        out.push_str(&format!("\nLeft out (not exposed by one of the two systems): {}\n", c.left_out.join(", ")));
    }
    if !c.to_the_minute.is_empty() {
        out.push_str(&format!(
            "Compared to the minute (one of the two systems gives no seconds): {}\n",
            c.to_the_minute.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{put, sqlite};
    use ejgate_sdk::model::{Entity, IdSpace, MarkScale, Person, Record, Role};

    fn person(ids: &IdSpace, source_id: &str, last: &str) -> Record {
        Record {
            id: ids.id(EntityKind::Person, source_id),
            source_id: source_id.into(),
            scope: "school:1".into(),
            date: None,
            source_updated_at: None,
            entity: Entity::Person(Person {
                last_name: last.into(),
                first_name: "Анна".into(),
                middle_name: None,
                sex: None,
                birth_date: None,
                roles: vec![Role::Student],
            }),
        }
    }

    fn mark(ids: &IdSpace, source_id: &str, student: &str, value: &str, weight: Option<f64>) -> Record {
        Record {
            id: ids.id(EntityKind::Mark, source_id),
            source_id: source_id.into(),
            scope: "school:1".into(),
            date: None,
            source_updated_at: None,
            entity: Entity::Mark(ejgate_sdk::model::Mark {
                comment: None,
                is_point: false,
                point_date: None,
                student: ids.id(EntityKind::Person, student),
                lesson: None,
                work: None,
                subject: None,
                value: value.into(),
                numeric: None,
                scale: MarkScale::Five,
                weight,
                entered_at: None,
                entered_by: None,
            }),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn references_are_compared_by_what_they_point_at_not_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(dir.path()).await;
        // Different source ids (so different canonical ids), the same data.
        let (a, b) = (IdSpace::new("a"), IdSpace::new("b"));
        put(
            &store,
            "a",
            vec![person(&a, "1", "Орлова"), person(&a, "2", "Белова"), mark(&a, "m", "1", "5", Some(1.0))],
        )
        .await;
        put(&store, "b", vec![person(&b, "x", "Орлова"), person(&b, "y", "Белова"), mark(&b, "n", "x", "5", None)])
            .await;
        let kinds = [EntityKind::Person, EntityKind::Mark];

        // The weight differs: the mark differs, the persons do not.
        let c = compare(&store, "a", "b", &kinds, &Tolerances::default()).await.unwrap();
        assert!(!c.identical());
        assert_eq!((c.kinds[0].same, c.kinds[1].same), (2, 0));
        assert_eq!((c.kinds[1].only_first_count, c.kinds[1].only_second_count), (1, 1));
        assert!(c.kinds[1].only_first[0].contains("\"weight\":1.0"), "{:?}", c.kinds[1].only_first);

        // Left out (one system does not expose weights): identical.
        let weights_left_out = Tolerances { left_out: vec![(EntityKind::Mark, "weight")], ..Default::default() };
        let c = compare(&store, "a", "b", &kinds, &weights_left_out).await.unwrap();
        assert!(c.identical(), "{}", render(&c));

        // The same mark given to the other student is a different mark.
        let c_ids = IdSpace::new("c");
        put(
            &store,
            "c",
            vec![person(&c_ids, "x", "Орлова"), person(&c_ids, "y", "Белова"), mark(&c_ids, "n", "y", "5", Some(1.0))],
        )
        .await;
        let c = compare(&store, "a", "c", &kinds, &Tolerances::default()).await.unwrap();
        assert_eq!((c.kinds[0].same, c.kinds[1].same), (2, 0), "{}", render(&c));
    }
}
