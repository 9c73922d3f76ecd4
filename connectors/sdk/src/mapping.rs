//! Code tables: how a source's codes (mark values, attendance statuses, work types, group
//! kinds) become canonical values. They live as TOML in `mappings/<system>/`, are compiled
//! into the binary as defaults, and a directory named in the configuration can replace
//! them. A code the table does not know is reported, never dropped: the record is written
//! with an `Other` value and the run carries a warning.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

/// A table from a source code to a canonical value `V`.
#[derive(Debug, Clone)]
pub struct CodeTable<V> {
    /// The table's name, for messages (`dnevnik/attendance`).
    pub name: String,
    codes: BTreeMap<String, V>,
    case_insensitive: bool,
}

#[derive(Deserialize)]
struct TableFile<V> {
    #[serde(default)]
    case_insensitive: bool,
    codes: BTreeMap<String, V>,
}

/// A code table that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("code table {name} ({origin}): {detail}")]
pub struct MappingError {
    pub name: String,
    pub origin: String,
    pub detail: String,
}

impl<V: DeserializeOwned> CodeTable<V> {
    /// Parses a table from TOML: `case_insensitive = bool` (optional) and a `[codes]` table.
    pub fn from_toml(name: &str, origin: &str, text: &str) -> Result<Self, MappingError> {
        let file: TableFile<V> = toml::from_str(text).map_err(|e| MappingError {
            name: name.into(),
            origin: origin.into(),
            detail: e.to_string(),
        })?;
        let codes = if file.case_insensitive {
            file.codes.into_iter().map(|(k, v)| (k.to_lowercase(), v)).collect()
        } else {
            file.codes
        };
        Ok(CodeTable { name: name.into(), codes, case_insensitive: file.case_insensitive })
    }

    /// The table `<dir>/<file>` when a directory is given and holds it, else the compiled-in default.
    pub fn load(name: &str, dir: Option<&Path>, file: &str, default: &str) -> Result<Self, MappingError> {
        if let Some(dir) = dir {
            let path = dir.join(file);
            if path.exists() {
                let text = std::fs::read_to_string(&path).map_err(|e| MappingError {
                    name: name.into(),
                    origin: path.display().to_string(),
                    detail: e.to_string(),
                })?;
                return Self::from_toml(name, &path.display().to_string(), &text);
            }
        }
        Self::from_toml(name, "built-in", default)
    }
}

impl<V> CodeTable<V> {
    /// The canonical value of a code, or `None` when the table does not know it.
    pub fn get(&self, code: &str) -> Option<&V> {
        if self.case_insensitive {
            self.codes.get(&code.to_lowercase())
        } else {
            self.codes.get(code)
        }
    }

    /// Like [`get`](Self::get), but an unknown code becomes a warning for the run.
    pub fn lookup(&self, code: &str, warnings: &mut Vec<String>) -> Option<&V> {
        let found = self.get(code);
        if found.is_none() {
            let warning = format!("code table {}: unknown code «{code}»; kept as written", self.name);
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        found
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Att {
        status: String,
    }

    #[test]
    fn unknown_codes_are_reported_once() {
        let t: CodeTable<Att> = CodeTable::from_toml(
            "x/att",
            "test",
            "case_insensitive = true\n[codes]\nAbsent = { status = \"absent\" }\n",
        )
        .unwrap();
        assert_eq!(t.get("absent").unwrap().status, "absent");
        let mut w = Vec::new();
        assert!(t.lookup("Teleported", &mut w).is_none());
        assert!(t.lookup("Teleported", &mut w).is_none());
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("Teleported") && w[0].contains("x/att"));
    }

    #[test]
    fn a_broken_table_names_itself() {
        let e = CodeTable::<Att>::from_toml("x/att", "mappings/x/att.toml", "[codes\n").unwrap_err();
        assert!(e.to_string().contains("mappings/x/att.toml"));
    }
}
