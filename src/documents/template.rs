//! Шаблон бумажных копий: the layout parameters and the fixed Russian texts, read from TOML.
//! The default is `templates/paper.toml`, compiled in; a school's file (named in its
//! `[[school]]` or in `[archive]`) is laid over it key by key, so that a school's copy may
//! keep only what it changes.

use std::path::Path;

use serde::Deserialize;

/// The default template, as shipped in `templates/paper.toml`.
pub const DEFAULT: &str = include_str!("../../templates/paper.toml");

/// Millimetres in points.
pub const MM: f32 = 72.0 / 25.4;

/// `[page]`: the page and its type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageStyle {
    pub width_mm: f32,
    pub height_mm: f32,
    pub top_mm: f32,
    pub bottom_mm: f32,
    /// The binding edge (внутреннее поле): left on odd pages, right on even ones.
    pub inner_mm: f32,
    pub outer_mm: f32,
    pub font_size: f32,
    pub title_size: f32,
    pub heading_size: f32,
    pub subheading_size: f32,
    pub table_font_size: f32,
    pub small_size: f32,
    pub line_spacing: f32,
    pub cell_padding_mm: f32,
    pub number_column_mm: f32,
    pub name_column_mm: f32,
    pub date_column_mm: f32,
    pub subject_column_mm: f32,
}

/// `[texts]`: every fixed text of the documents, in Russian.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    pub running_header: String,
    pub footer: String,
    pub journal_title: String,
    pub journal_subtitle: String,
    pub class_list: String,
    pub class_list_columns: Vec<String>,
    pub left_on: String,
    pub joined_on: String,
    pub subject: String,
    pub subject_teacher: String,
    pub marks_grid: String,
    pub marks_grid_first_columns: Vec<String>,
    pub lessons: String,
    pub lessons_columns: Vec<String>,
    pub lesson_cancelled: String,
    pub no_lessons: String,
    pub attendance: String,
    pub attendance_columns: Vec<String>,
    pub period_marks: String,
    pub year_marks: String,
    pub no_mark: String,
    pub certification: Vec<String>,
    pub book_title: String,
    pub book_subtitle: String,
    pub book_contents: String,
    pub book_contents_columns: Vec<String>,
    pub book_sheets: String,
    pub book_signature: Vec<String>,
    pub book_blank: String,
    pub summary_title: String,
    pub summary_subtitle: String,
    pub summary_period: String,
    pub summary_year: String,
    pub summary_signature: Vec<String>,
    pub director: String,
}

/// A whole template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub page: PageStyle,
    pub texts: Texts,
}

/// Lays `over` on `base`, table by table, key by key.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Template {
    /// The default template.
    pub fn builtin() -> Template {
        toml::from_str(DEFAULT).expect("templates/paper.toml is a valid template")
    }

    /// The default with a school's file laid over it.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Template> {
        let Some(path) = path else { return Ok(Template::builtin()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the paper template {}: {e}", path.display()))?;
        Template::over_default(&text).map_err(|e| anyhow::anyhow!("the paper template {}: {e}", path.display()))
    }

    /// The default with `text` (a template's TOML) laid over it.
    pub fn over_default(text: &str) -> anyhow::Result<Template> {
        let mut base: toml::Table = toml::from_str(DEFAULT).expect("templates/paper.toml is valid TOML");
        let over: toml::Table = toml::from_str(text)?;
        merge(&mut base, over);
        toml::Value::Table(base).try_into().map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// `text` with each `{name}` replaced by its value.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_school_file_overrides_only_its_keys() {
        let t = Template::over_default("[page]\ninner_mm = 30.0\n[texts]\nclass_list = \"Список учащихся\"\n").unwrap();
        assert_eq!(t.page.inner_mm, 30.0);
        assert_eq!(t.texts.class_list, "Список учащихся");
        let d = Template::builtin();
        assert_eq!(t.page.outer_mm, d.page.outer_mm);
        assert_eq!(t.texts.attendance, d.texts.attendance);
        assert!(Template::over_default("[texts]\nunknown_key = \"x\"\n").is_err());
        assert_eq!(fill("{class} класс, {class}", &[("class", "5А")]), "5А класс, 5А");
    }
}
