//! Выгрузка (REGULATIONS P11, S4 deputy 15): every record of one canonical kind as a table,
//! for analysis in a spreadsheet or another tool. One row per live record: its canonical id,
//! source and source id, then the entity's fields in the model's order (references are
//! canonical ids; lists and nested values as JSON text).

use ejgate_sdk::model::{Entity, EntityKind};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::table::{Cell, Sheet};
use crate::store::Store;

type Fields = Vec<(String, Value)>;

/// A JSON object's fields in the order they were written (serde_json's own map sorts them).
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an entity's JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    fields.push((k, v));
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(V)
    }
}

fn cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::Empty,
        Value::Bool(b) => Cell::text(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => n.as_f64().map(Cell::Num).unwrap_or(Cell::Empty),
        },
        Value::String(s) => Cell::text(s),
        other => Cell::text(other.to_string()),
    }
}

/// The live records of `kind` (from `source`, or every source) as one sheet named after the
/// kind.
pub async fn entity(store: &dyn Store, kind: EntityKind, source: Option<&str>) -> anyhow::Result<Sheet> {
    let records = store.records(kind, source, false).await?;
    let mut columns: Vec<String> = Vec::new();
    // (the id, source and source id cells; the fields in the model's order) per record
    let mut rows: Vec<(Vec<Cell>, Fields)> = Vec::with_capacity(records.len());
    for r in records {
        // Through the model, so that the fields come in its declaration order.
        let entity = Entity::from_content(kind, &serde_json::to_vec(&r.content)?)
            .map_err(|e| anyhow::anyhow!("{kind} {} of source «{}» cannot be read: {e}", r.source_id, r.source))?;
        let Ordered(fields) = serde_json::from_slice(&entity.content_json())?;
        for (k, _) in &fields {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
        rows.push((vec![Cell::text(r.id.to_string()), Cell::text(&r.source), Cell::text(&r.source_id)], fields));
    }
    let mut headings = vec!["id".to_string(), "source".to_string(), "source_id".to_string()];
    headings.extend(columns.iter().cloned());
    let mut sheet = Sheet { name: kind.as_str().to_string(), headings, rows: Vec::new(), charts: Vec::new() };
    for (mut row, fields) in rows {
        for c in &columns {
            row.push(fields.iter().find(|(k, _)| k == c).map(|(_, v)| cell(v)).unwrap_or(Cell::Empty));
        }
        sheet.rows.push(row);
    }
    Ok(sheet)
}
