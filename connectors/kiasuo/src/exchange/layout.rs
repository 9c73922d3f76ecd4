//! The layout of exchange files: which XML element, sheet and column holds which field.
//! The default is `mappings/kiasuo/exchange.toml` (an assumption: see EXCHANGE.md); a file
//! given with `--mapping` replaces it. The fields themselves are fixed here: a mapping
//! renames them, it cannot add or drop one.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::ExchangeKind;

/// The built-in layout.
pub const DEFAULT: &str = include_str!("../../../../mappings/kiasuo/exchange.toml");

/// The sections and fields every layout must map, per kind.
pub fn expected(kind: ExchangeKind) -> &'static [(&'static str, &'static [&'static str])] {
    match kind {
        ExchangeKind::Contingent => &[
            ("classes", &["class_id", "class_name"]),
            (
                "pupils",
                &[
                    "pupil_id",
                    "last_name",
                    "first_name",
                    "middle_name",
                    "sex",
                    "birth_date",
                    "class",
                    "enrolled_on",
                    "order",
                ],
            ),
        ],
        ExchangeKind::Movement => &[(
            "movements",
            &[
                "pupil_id",
                "last_name",
                "first_name",
                "middle_name",
                "sex",
                "birth_date",
                "movement",
                "date",
                "from_class",
                "to_class",
                "order",
            ],
        )],
        ExchangeKind::FinalMarks => &[(
            "marks",
            &[
                "pupil_id",
                "last_name",
                "first_name",
                "middle_name",
                "class",
                "subject_id",
                "subject",
                "period_id",
                "period",
                "period_start",
                "period_end",
                "mark",
            ],
        )],
    }
}

/// Coded values as the files write them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Values {
    pub male: String,
    pub female: String,
    pub arrival: String,
    pub departure: String,
    pub transfer: String,
    pub year_period: String,
}

/// One column: a field, its XML element name and its XLSX header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub field: String,
    pub xml: String,
    pub header: String,
    /// XLSX column width (characters); a default when absent.
    pub width: Option<f64>,
}

/// One section: the rows of an XML container element, or of one sheet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub key: String,
    pub xml_container: String,
    pub xml_row: String,
    pub sheet: String,
    pub columns: Vec<Column>,
}

impl Section {
    pub fn column(&self, field: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.field == field)
    }
}

/// The layout of one kind of file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindLayout {
    pub xml_root: String,
    /// The kind as the XLSX info sheet names it.
    pub title: String,
    pub sections: Vec<Section>,
}

/// Раскладка файлов обмена
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub xml_year_attribute: String,
    pub info_sheet: String,
    pub info_kind_label: String,
    pub info_year_label: String,
    pub values: Values,
    pub contingent: KindLayout,
    pub movement: KindLayout,
    pub final_marks: KindLayout,
}

impl Layout {
    /// The built-in layout.
    pub fn default_layout() -> Layout {
        Layout::parse(DEFAULT, "built-in mappings/kiasuo/exchange.toml").expect("the built-in layout is valid")
    }

    /// Reads a mapping file.
    pub fn load(path: &Path) -> Result<Layout, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the mapping {}: {e}", path.display()))?;
        Layout::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a layout: every kind maps every field of its sections exactly once,
    /// and no two things that a reader tells apart by name share one.
    pub fn parse(text: &str, origin: &str) -> Result<Layout, String> {
        let layout: Layout = toml::from_str(text).map_err(|e| format!("mapping {origin}: {e}"))?;
        layout.check().map_err(|e| format!("mapping {origin}: {e}"))?;
        Ok(layout)
    }

    pub fn kind(&self, kind: ExchangeKind) -> &KindLayout {
        match kind {
            ExchangeKind::Contingent => &self.contingent,
            ExchangeKind::Movement => &self.movement,
            ExchangeKind::FinalMarks => &self.final_marks,
        }
    }

    /// The kind whose root element is `root`.
    pub fn kind_of_root(&self, root: &str) -> Option<ExchangeKind> {
        ExchangeKind::ALL.into_iter().find(|k| self.kind(*k).xml_root == root)
    }

    /// The kind the XLSX info sheet names.
    pub fn kind_of_title(&self, title: &str) -> Option<ExchangeKind> {
        ExchangeKind::ALL.into_iter().find(|k| self.kind(*k).title.trim() == title.trim())
    }

    fn check(&self) -> Result<(), String> {
        let mut roots = HashSet::new();
        let mut titles = HashSet::new();
        for kind in ExchangeKind::ALL {
            let k = self.kind(kind);
            if !roots.insert(k.xml_root.as_str()) {
                return Err(format!("two kinds share the root element <{}>", k.xml_root));
            }
            if !titles.insert(k.title.trim()) {
                return Err(format!("two kinds share the title «{}»", k.title));
            }
            let want = expected(kind);
            if k.sections.len() != want.len() {
                return Err(format!(
                    "{kind}: expected the sections {:?}, found {:?}",
                    want.iter().map(|w| w.0).collect::<Vec<_>>(),
                    k.sections.iter().map(|s| s.key.as_str()).collect::<Vec<_>>()
                ));
            }
            let mut sheets = HashSet::from([self.info_sheet.as_str()]);
            let mut containers = HashSet::new();
            for (section, (key, fields)) in k.sections.iter().zip(want) {
                if section.key != *key {
                    return Err(format!("{kind}: expected the section «{key}», found «{}»", section.key));
                }
                if !sheets.insert(section.sheet.as_str()) {
                    return Err(format!("{kind}: the sheet «{}» is used twice", section.sheet));
                }
                if !containers.insert(section.xml_container.as_str()) {
                    return Err(format!("{kind}: the element <{}> is used twice", section.xml_container));
                }
                if section.sheet.chars().count() > 31 {
                    return Err(format!(
                        "{kind}: the sheet name «{}» is longer than Excel's 31 characters",
                        section.sheet
                    ));
                }
                let mut xml = HashSet::new();
                let mut headers = HashSet::new();
                for c in &section.columns {
                    if !fields.contains(&c.field.as_str()) {
                        return Err(format!("{kind}/{key}: unknown field «{}» (known: {fields:?})", c.field));
                    }
                    if !xml.insert(c.xml.as_str()) || !headers.insert(c.header.trim()) {
                        return Err(format!("{kind}/{key}: the element or header of «{}» is used twice", c.field));
                    }
                }
                for f in *fields {
                    let n = section.columns.iter().filter(|c| c.field == *f).count();
                    if n != 1 {
                        return Err(format!("{kind}/{key}: the field «{f}» must be mapped once (found {n})"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_layout_is_valid_and_a_broken_one_names_its_fault() {
        let l = Layout::default_layout();
        assert_eq!(l.kind_of_root("Контингент"), Some(ExchangeKind::Contingent));
        assert_eq!(l.kind_of_title("Итоговые отметки"), Some(ExchangeKind::FinalMarks));
        let broken = DEFAULT.replace("{ field = \"sex\", xml = \"Пол\", header = \"Пол\", width = 6 },", "");
        let e = Layout::parse(&broken, "x.toml").unwrap_err();
        assert!(e.contains("«sex» must be mapped once"), "{e}");
    }
}
