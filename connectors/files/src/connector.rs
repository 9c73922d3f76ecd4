//! The files connector: a directory of export files + a mapping file → canonical records.
//!
//! Plan, then fetch: `plan` reads and checks **every** file the mapping names (all errors
//! of all files, not only the first) and fails the run before anything is written if one
//! is wrong; otherwise it plans one chunk per file, and `fetch` hands out that file's
//! records. Reading everything first is also what lets a mark's row refer to a lesson in
//! another file, and a lesson to a class or group listed elsewhere.
//!
//! Deletions: every chunk covers its file (`scope = file:<path>`, the kinds its blocks
//! read, no date range). A row that was in the previous export of the same file and is
//! missing from the new one becomes a tombstone. A file that is missing altogether covers
//! nothing: its records stay (a partial export is not evidence of deletion).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use ejgate_sdk::client::{ErrorKind, SourceError};
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext};
use ejgate_sdk::model::{Coverage, EntityKind, IdSpace};

use crate::build::{self, Context};
use crate::mapping::{Block, Mapping};
use crate::read::{self, BlockRows, FileError};

const SYSTEM: &str = "files";

/// At most this many file errors are spelled out in a run's error (the rest are counted).
const MAX_LISTED: usize = 60;

/// The settings of one files source instance.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The source instance name: part of every canonical id.
    pub instance: String,
    /// The directory the school's system exports into.
    pub dir: PathBuf,
    /// The mapping file (`mappings/files/default.toml` or a school's own); `None` = the
    /// built-in default layout.
    pub mapping: Option<PathBuf>,
}

impl FilesConfig {
    /// A source reading the exports in `dir` with the mapping file at `mapping_path`.
    pub fn new(instance: &str, dir: impl Into<PathBuf>, mapping_path: impl Into<PathBuf>) -> Self {
        FilesConfig { instance: instance.into(), dir: dir.into(), mapping: Some(mapping_path.into()) }
    }

    /// A source reading the exports in `dir` in the built-in default layout.
    pub fn with_default_layout(instance: &str, dir: impl Into<PathBuf>) -> Self {
        FilesConfig { instance: instance.into(), dir: dir.into(), mapping: None }
    }
}

/// The files connector.
pub struct FilesConnector {
    config: FilesConfig,
    mapping: Arc<Mapping>,
    ids: IdSpace,
    /// The batches `plan` read, taken by `fetch` (file → batch).
    planned: Mutex<HashMap<String, Batch>>,
}

/// Everything read from an export directory: one batch per file.
pub type ReadResult = Result<BTreeMap<String, Batch>, Vec<FileError>>;

/// The files a block's glob matches, relative to `dir`, sorted.
fn matching(dir: &Path, block: &Block) -> Result<Vec<String>, String> {
    let pattern = dir.join(&block.file);
    let pattern = pattern.to_string_lossy().to_string();
    let paths = glob::glob(&pattern).map_err(|e| format!("bad glob «{}»: {e}", block.file))?;
    let mut out = Vec::new();
    for p in paths {
        let p = p.map_err(|e| e.to_string())?;
        if p.is_file() {
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and checks every file the mapping names in `dir`. Pure of any store: the library
/// entry point for a dry run (`Ok` = what a sync would write, per file).
pub fn read_export(ids: &IdSpace, mapping: &Mapping, dir: &Path) -> ReadResult {
    let mut errors = Vec::new();
    // file → the blocks reading it
    let mut files: BTreeMap<String, Vec<(usize, &Block)>> = BTreeMap::new();
    for (i, block) in mapping.blocks.iter().enumerate() {
        match matching(dir, block) {
            Ok(list) if list.is_empty() && !block.optional => errors.push(FileError {
                file: block.file.clone(),
                sheet: None,
                line: None,
                line_word: "line",
                column: None,
                message: format!(
                    "no file matches it in {} (mapping {}, [[entity]] #{} on line {}, kind {}); export it, or mark the block `optional = true`",
                    dir.display(),
                    mapping.origin,
                    block.index,
                    block.line,
                    block.kind
                ),
            }),
            Ok(list) => {
                for f in list {
                    files.entry(f).or_default().push((i, block));
                }
            }
            Err(e) => errors.push(FileError {
                file: block.file.clone(),
                sheet: None,
                line: None,
                line_word: "line",
                column: None,
                message: e,
            }),
        }
    }
    let mut read: Vec<(String, BlockRows)> = Vec::new();
    for (rel, blocks) in &files {
        let formats: BTreeSet<_> = blocks.iter().map(|(_, b)| format!("{:?}", b.format)).collect();
        if formats.len() > 1 {
            errors.push(FileError {
                file: rel.clone(),
                sheet: None,
                line: None,
                line_word: "line",
                column: None,
                message: "several blocks read this file as different formats".into(),
            });
            continue;
        }
        let (rows, mut errs) = read::read_file(&dir.join(rel), rel, blocks);
        errors.append(&mut errs);
        read.extend(rows.into_iter().map(|r| (rel.clone(), r)));
    }
    // Build what others refer to first.
    read.sort_by_key(|(rel, r)| (build::rank(mapping.blocks[r.block].kind), r.block, rel.clone()));
    let mut ctx = Context::default();
    let mut batches: BTreeMap<String, Batch> = BTreeMap::new();
    for (rel, rows) in &read {
        let scope = format!("file:{rel}");
        let batch = batches.entry(rel.clone()).or_default();
        build::build(ids, mapping, &mut ctx, rel, rows, &scope, &mut batch.records, &mut errors, &mut batch.warnings);
        let kind = mapping.blocks[rows.block].kind;
        match batch.coverage.first_mut() {
            Some(c) if !c.kinds.contains(&kind) => c.kinds.push(kind),
            Some(_) => {}
            None => batch.coverage.push(Coverage { kinds: vec![kind], scope, range: None }),
        }
    }
    if errors.is_empty() {
        Ok(batches)
    } else {
        Err(errors)
    }
}

/// The text of a run's error for file errors: a count, then each error on its own line.
pub fn describe(errors: &[FileError]) -> String {
    let files: BTreeSet<&str> = errors.iter().map(|e| e.file.as_str()).collect();
    let mut s = format!("{} problem(s) in {} export file(s); nothing was written:", errors.len(), files.len());
    for e in errors.iter().take(MAX_LISTED) {
        s.push_str("\n  ");
        s.push_str(&e.to_string());
    }
    if errors.len() > MAX_LISTED {
        s.push_str(&format!("\n  … and {} more", errors.len() - MAX_LISTED));
    }
    s
}

impl FilesConnector {
    pub fn new(config: FilesConfig) -> Result<Self, SourceError> {
        let mapping = match &config.mapping {
            Some(path) => Mapping::load(path),
            None => Ok(Mapping::default_layout()),
        }
        .map_err(|e| SourceError::config(&config.instance, SYSTEM, e.to_string()))?;
        Ok(FilesConnector {
            ids: IdSpace::new(config.instance.clone()),
            config,
            mapping: Arc::new(mapping),
            planned: Mutex::new(HashMap::new()),
        })
    }

    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    fn error(&self, kind: ErrorKind, detail: String, hint: Option<String>) -> SourceError {
        SourceError {
            instance: self.config.instance.clone(),
            system: SYSTEM.into(),
            method: "READ".into(),
            endpoint: self.config.dir.display().to_string(),
            kind,
            detail,
            hint,
        }
    }

    /// Reads the whole export (on a blocking thread: calamine, csv and quick-xml are sync).
    async fn read_all(&self) -> Result<BTreeMap<String, Batch>, SourceError> {
        if !self.config.dir.is_dir() {
            return Err(self.error(
                ErrorKind::Config,
                "the export directory does not exist".into(),
                Some("check the source's `dir` setting".into()),
            ));
        }
        let (ids, mapping, dir) = (self.ids.clone(), self.mapping.clone(), self.config.dir.clone());
        let result = tokio::task::spawn_blocking(move || read_export(&ids, &mapping, &dir))
            .await
            .map_err(|e| self.error(ErrorKind::Transport, format!("the reader stopped: {e}"), None))?;
        result.map_err(|errors| {
            self.error(
                ErrorKind::Malformed,
                describe(&errors),
                Some(format!("Fix the files (or the mapping {}) and run the sync again", self.mapping.origin)),
            )
        })
    }
}

#[async_trait]
impl Connector for FilesConnector {
    fn instance(&self) -> &str {
        &self.config.instance
    }

    fn system(&self) -> &'static str {
        SYSTEM
    }

    async fn plan(&self, _ctx: &PlanContext) -> Result<Plan, SourceError> {
        // Full and incremental runs are the same here: an export is a snapshot, read whole.
        let batches = self.read_all().await?;
        let chunks = batches
            .keys()
            .map(|rel| Chunk {
                stream: "file".into(),
                scope: format!("file:{rel}"),
                params: serde_json::json!({ "file": rel }),
                cursor_after: None,
            })
            .collect();
        *self.planned.lock().expect("planned batches") = batches.into_iter().collect();
        Ok(Plan { source_now: None, chunks })
    }

    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError> {
        let Some(rel) = chunk.params.get("file").and_then(|f| f.as_str()) else {
            return Err(SourceError::config(&self.config.instance, SYSTEM, format!("bad chunk {}", chunk.scope)));
        };
        let taken = self.planned.lock().expect("planned batches").remove(rel);
        match taken {
            Some(b) => Ok(b),
            // Not planned by this connector (a chunk from elsewhere): read again.
            None => self.read_all().await?.remove(rel).ok_or_else(|| {
                self.error(ErrorKind::Malformed, format!("{rel}: the file is gone since the run was planned"), None)
            }),
        }
    }
}

/// The kinds a mapping reads.
pub fn kinds_of(mapping: &Mapping) -> BTreeSet<EntityKind> {
    mapping.blocks.iter().map(|b| b.kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ejgate_sdk::model::Entity;

    const MAPPING: &str = r#"
date_formats = ["%d.%m.%Y"]
[[entity]]
kind = "class"
file = "classes.csv"
[entity.fields]
source_id = "Код"
name = "Класс"

[[entity]]
kind = "lesson"
file = "journal.xml"
element = "Журнал/Уроки/Урок"
[entity.fields]
source_id = "@id"
unit = "Класс"
date = "Дата"
topic = "Тема"

[[entity]]
kind = "attendance"
file = "journal.xml"
element = "Журнал/Пропуски/Пропуск"
[entity.fields]
student = "@ученик"
lesson = "@урок"
code = "Код"
"#;

    fn setup(classes: &str, journal: &str) -> (tempfile::TempDir, Mapping) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("classes.csv"), encoding_rs::WINDOWS_1251.encode(classes).0).unwrap();
        std::fs::write(dir.path().join("journal.xml"), journal).unwrap();
        let mapping = Mapping::parse("test.toml", MAPPING, Path::new(".")).unwrap();
        (dir, mapping)
    }

    #[test]
    fn a_good_export_becomes_records_with_the_api_connectors_source_ids() {
        let (dir, mapping) = setup(
            "Код;Класс\n10;5А\n\n11;5Б\n",
            "<?xml version=\"1.0\"?>\n<Журнал>\n<Уроки>\n<Урок id=\"7\"><Класс>10</Класс><Дата>01.09.2025</Дата><Тема>Дроби &amp; &#1095;исла</Тема></Урок>\n</Уроки>\n<Пропуски><Пропуск ученик=\"3\" урок=\"7\"><Код>Б</Код></Пропуск></Пропуски>\n</Журнал>\n",
        );
        let ids = IdSpace::new("t");
        let batches = read_export(&ids, &mapping, dir.path()).unwrap();
        let classes = &batches["classes.csv"];
        assert_eq!(classes.records.len(), 2, "the blank line is skipped");
        assert_eq!(
            classes.coverage,
            vec![Coverage { kinds: vec![EntityKind::Class], scope: "file:classes.csv".into(), range: None }]
        );
        let journal = &batches["journal.xml"];
        let lesson = journal.records.iter().find(|r| r.kind() == EntityKind::Lesson).unwrap();
        let Entity::Lesson(l) = &lesson.entity else { unreachable!() };
        assert_eq!(l.unit, ids.id(EntityKind::Class, "10"));
        assert_eq!(l.topic.as_deref(), Some("Дроби & числа"));
        let att = journal.records.iter().find(|r| r.kind() == EntityKind::Attendance).unwrap();
        assert_eq!(att.source_id, "7:3");
        assert_eq!(journal.coverage[0].kinds, vec![EntityKind::Lesson, EntityKind::Attendance]);
    }

    #[test]
    fn every_bad_cell_of_every_file_is_reported_with_its_place() {
        let (dir, mapping) = setup(
            "Код;Класс\n10;5А\n;5Б\n",
            "<?xml version=\"1.0\"?>\n<Журнал>\n<Уроки>\n<Урок id=\"7\"><Класс>10</Класс><Дата>1 сентября</Дата></Урок>\n<Урок id=\"8\"><Класс>99</Класс><Дата>02.09.2025</Дата></Урок>\n</Уроки>\n<Пропуски><Пропуск ученик=\"3\" урок=\"7\"><Код>ХЗ</Код></Пропуск></Пропуски>\n</Журнал>\n",
        );
        let errors = read_export(&IdSpace::new("t"), &mapping, dir.path()).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 4, "{text:#?}");
        assert!(
            text.iter().any(|e| e.starts_with("classes.csv, line 3, column «Код» (column 1): the cell is empty")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|e| e.starts_with(
                "journal.xml, line 4, column <Дата>: date: «1 сентября» is not a date; expected «01.09.2025»"
            )),
            "{text:#?}"
        );
        assert!(
            text.iter().any(
                |e| e.starts_with("journal.xml, line 5, column <Класс>: unit: «99» is neither a class nor a group")
            ),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|e| e.starts_with("journal.xml, line 7, column <Код>: code: unknown code «ХЗ»")),
            "{text:#?}"
        );
    }

    #[test]
    fn a_cut_off_xml_and_a_missing_column_are_reported() {
        let (dir, mapping) = setup(
            "Код;Название\n10;5А\n",
            "<?xml version=\"1.0\"?>\n<Журнал>\n<Уроки>\n<Урок id=\"7\"><Класс>10</Класс><Да",
        );
        let errors = read_export(&IdSpace::new("t"), &mapping, dir.path()).unwrap_err();
        let text = describe(&errors);
        assert!(
            text.contains("classes.csv, line 1: no column «Класс» in the header (it has: Код, Название)"),
            "{text}"
        );
        assert!(text.contains("journal.xml, line 4"), "{text}");
    }

    #[test]
    fn a_missing_file_is_an_error_unless_optional() {
        let dir = tempfile::tempdir().unwrap();
        let mapping = Mapping::parse("test.toml", MAPPING, Path::new(".")).unwrap();
        let errors = read_export(&IdSpace::new("t"), &mapping, dir.path()).unwrap_err();
        assert!(errors.iter().any(|e| e.file == "classes.csv" && e.message.contains("no file matches")));
        let optional = MAPPING.replace("file = \"classes.csv\"", "file = \"classes.csv\"\noptional = true");
        let mapping = Mapping::parse("test.toml", &optional, Path::new(".")).unwrap();
        let errors = read_export(&IdSpace::new("t"), &mapping, dir.path()).unwrap_err();
        assert!(!errors.iter().any(|e| e.file == "classes.csv"));
    }
}
