//! The bag's payload of canonical records: `data/KIND.jsonl` and `data/KIND.csv` per entity
//! kind, written in one pass over the store with bounded memory, each file hashed
//! (SHA-512) as its bytes are written, never read back (issue #19: the year-end snapshot
//! of the large school is measured against `bagit.py` bagging the same payload).
//!
//! Design, per kind (every kind has its own four threads; as many kinds at a time as the
//! machine has cores, see [`super::snapshot_with`]):
//! - the store streams the kind's live rows ([`Store::each_raw_record`]) to the *reader*,
//!   which writes each JSON Lines line from the row as it is — the content is the stored
//!   JSON text, never parsed into a `serde_json::Value` and written again — into 1 MiB
//!   chunks that end at a line's end;
//! - each chunk goes, shared, to the JSON Lines *hasher* (SHA-512 of the chunk, then the
//!   chunk written to the file) and to the *CSV maker*. The chunk carries an index of its
//!   lines (the record's id, source, source id, scope and date as the store gave them, and
//!   where the content's text is), so the maker reads only the contents: every content is
//!   deserialized once, straight from its text, into its fields' raw texts, which become
//!   the row's cells; the CSV's chunks go to the CSV *hasher*.
//!
//! Channels are bounded (a few chunks), so a kind holds a few MiB whatever its size.
//!
//! The CSV's columns are `id, source, source_id, scope, date` and the kind's content fields
//! ([`Entity::content_fields`]) in byte order: known before the first row, so the header
//! is written first and the file is streamed. A field no record has (an optional field
//! left out when unset) is an empty column, as an absent value always was. A record with a
//! key the type does not list (content stored by an older version) adds it: the CSV is made
//! again from the JSON Lines file just written, with the extra columns; nothing is lost.
//!
//! What changed from the bags made before: the JSON Lines content is the text the store
//! holds — on SQLite the entity's fields in declaration order, compact (the bytes the sync
//! wrote and hashed); on PostgreSQL its JSONB as text — where it was re-serialized with the
//! keys sorted. The same JSON value either way. The CSV cells are what they were: strings
//! unescaped, `null` and absent fields empty, other values their compact JSON.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha512};

use crate::store::{RawRecord, Store};
use ejgate_sdk::model::{Entity, EntityKind};

/// Chunks of payload between the threads: large enough that hashing and `write` run over
/// long buffers, small enough that a kind in flight holds a few MiB. A chunk is shipped
/// once it holds this much; its buffer has room for twice as much, so the line that
/// passes the mark does not make it grow (a copy of the whole chunk).
const CHUNK: usize = 1 << 20;
/// Chunks queued to a consumer before the producer waits for it.
const QUEUE: usize = 3;

/// A written payload file: its path in the bag, SHA-512 (hex) and length.
pub(super) type Written = (String, String, u64);
/// A file's SHA-512 (hex) and length.
type Digested = (String, u64);
/// What the CSV maker ends with: its file's digest, and the keys no column had.
type CsvDone = (Digested, BTreeSet<String>);

/// A chunk of a payload file, and for the JSON Lines file the index of its lines. Its
/// buffers go back to the file's [`Buffers`] when the last thread is done with it.
struct Chunk {
    bytes: Vec<u8>,
    lines: Lines,
    pool: Buffers,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.bytes), std::mem::take(&mut self.lines));
    }
}

/// A file's chunk buffers, used again: a fresh megabyte costs the kernel a cleared page per
/// 4 KiB on first touch, and the allocator may hand it back to the kernel when freed
/// (perf, 2026-12-06: faults and clearing were a tenth of the store reader's time).
#[derive(Clone, Default)]
struct Buffers(Arc<std::sync::Mutex<Vec<Spare>>>);

/// A chunk's buffers, emptied, kept for the next chunk.
type Spare = (Vec<u8>, Lines);

impl Buffers {
    /// Chunks a file has at most: the one being filled, the queue, one in each consumer.
    const KEPT: usize = QUEUE + 3;

    fn take(&self) -> Spare {
        let reused = self.0.lock().ok().and_then(|mut kept| kept.pop());
        reused.unwrap_or_else(|| (Vec::with_capacity(2 * CHUNK), Lines::default()))
    }

    fn give(&self, mut bytes: Vec<u8>, mut lines: Lines) {
        if bytes.capacity() == 0 {
            return;
        }
        bytes.clear();
        lines.texts.clear();
        lines.at.clear();
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() < Self::KEPT {
                kept.push((bytes, lines));
            }
        }
    }
}

/// Where each line's parts are: its envelope's texts (id, source, source id, scope, date;
/// an absent date empty) in `texts`, its content's JSON text in the chunk's bytes.
#[derive(Default)]
struct Lines {
    texts: String,
    at: Vec<LineAt>,
}

struct LineAt {
    envelope: [Range<usize>; 5],
    content: Range<usize>,
}

impl Lines {
    fn push(&mut self, r: &RawRecord<'_>, id: &str, content: Range<usize>) {
        let mut text = |t: &str| {
            let start = self.texts.len();
            self.texts.push_str(t);
            start..self.texts.len()
        };
        let envelope = [text(id), text(r.source), text(r.source_id), text(r.scope), text(r.date.unwrap_or(""))];
        self.at.push(LineAt { envelope, content });
    }
}

/// A payload file hashed and written on a thread of its own: the bytes given to
/// [`Write`] collect into a chunk; a full chunk goes to the thread, which hashes it and
/// then writes it (the hash is of the bytes written, in one pass). `taps` get every chunk
/// too (the CSV maker reads the JSON Lines chunks).
struct HashedFile {
    buf: Vec<u8>,
    /// The index of the lines in `buf` (the JSON Lines file's; empty for the CSV).
    lines: Lines,
    pool: Buffers,
    /// Ship only at [`HashedFile::record_end`] (chunks end at a line's end), not in `write`.
    aligned: bool,
    to_hasher: Option<SyncSender<Arc<Chunk>>>,
    taps: Vec<SyncSender<Arc<Chunk>>>,
    hasher: Option<JoinHandle<io::Result<Digested>>>,
}

impl HashedFile {
    fn create(path: &Path, aligned: bool, taps: Vec<SyncSender<Arc<Chunk>>>) -> io::Result<HashedFile> {
        let mut file = std::fs::File::create(path)?;
        let (tx, rx) = sync_channel::<Arc<Chunk>>(QUEUE);
        let hasher = std::thread::Builder::new().name("bag-sha512".into()).spawn(move || {
            let mut sha = Sha512::new();
            let mut bytes = 0u64;
            for chunk in rx {
                sha.update(&chunk.bytes);
                file.write_all(&chunk.bytes)?;
                bytes += chunk.bytes.len() as u64;
            }
            Ok((hex::encode(sha.finalize()), bytes))
        })?;
        let pool = Buffers::default();
        let (buf, lines) = pool.take();
        Ok(HashedFile { buf, lines, pool, aligned, to_hasher: Some(tx), taps, hasher: Some(hasher) })
    }

    fn ship(&mut self) -> io::Result<()> {
        let (buf, lines) = self.pool.take();
        let chunk = Arc::new(Chunk {
            bytes: std::mem::replace(&mut self.buf, buf),
            lines: std::mem::replace(&mut self.lines, lines),
            pool: self.pool.clone(),
        });
        for tap in &self.taps {
            if tap.send(chunk.clone()).is_err() {
                return Err(io::Error::other("the CSV maker stopped"));
            }
        }
        let sent = self.to_hasher.as_ref().is_some_and(|tx| tx.send(chunk).is_ok());
        if sent {
            Ok(())
        } else {
            Err(self.stopped())
        }
    }

    /// The hasher's own error, once it has stopped.
    fn stopped(&mut self) -> io::Error {
        self.to_hasher = None;
        match self.hasher.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the payload file's writer stopped"),
        }
    }

    /// A record (line) ends here: a full chunk is shipped.
    fn record_end(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.ship()?;
        }
        Ok(())
    }

    /// The last chunk shipped, the taps closed, the file's hash and length.
    fn finish(mut self) -> io::Result<Digested> {
        if !self.buf.is_empty() {
            self.ship()?;
        }
        self.taps.clear();
        self.to_hasher = None;
        match self.hasher.take().map(JoinHandle::join) {
            Some(Ok(done)) => done,
            _ => Err(io::Error::other("the payload file's writer panicked")),
        }
    }
}

impl Write for HashedFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if !self.aligned {
            self.record_end()?;
        }
        Ok(data.len())
    }

    /// Chunks go out when full and at [`HashedFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One JSON Lines line of a record: `{"id":…,"source":…,"source_id":…,"scope":…,"date":…,
/// "content":…}`, the content as the store holds it; where in `out` the content is.
fn json_line(out: &mut Vec<u8>, id: &str, r: &RawRecord<'_>) -> serde_json::Result<Range<usize>> {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\",\"source\":");
    serde_json::to_writer(&mut *out, r.source)?;
    out.extend_from_slice(b",\"source_id\":");
    serde_json::to_writer(&mut *out, r.source_id)?;
    out.extend_from_slice(b",\"scope\":");
    serde_json::to_writer(&mut *out, r.scope)?;
    out.extend_from_slice(b",\"date\":");
    match r.date {
        Some(d) => serde_json::to_writer(&mut *out, d)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"content\":");
    let start = out.len();
    if r.content.contains('\n') {
        // JSON text with a line break between its tokens (no writer of the store makes
        // one): compacted, so that the line stays one line.
        serde_json::to_writer(&mut *out, &serde_json::from_str::<serde_json::Value>(r.content)?)?;
    } else {
        out.extend_from_slice(r.content.as_bytes());
    }
    let content = start..out.len();
    out.extend_from_slice(b"}\n");
    Ok(content)
}

/// A line of the JSON Lines payload as the CSV maker reads it back from the file (the
/// rare remake of [`remake_csv`]).
#[derive(Deserialize)]
struct LineIn<'a> {
    id: &'a str,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    source_id: Cow<'a, str>,
    #[serde(borrow)]
    scope: Cow<'a, str>,
    #[serde(borrow)]
    date: Option<&'a str>,
    #[serde(borrow)]
    content: &'a RawValue,
}

/// The top-level fields of a content object, each value's JSON text as it is.
struct Fields<'v, 'a>(&'v mut Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> DeserializeSeed<'de> for Fields<'_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        /// A key, borrowed unless it has escapes.
        struct Key<'a>(Cow<'a, str>);
        impl<'de> Deserialize<'de> for Key<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Key<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Borrowed(s)))
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                        Ok(Key(Cow::Owned(s.to_owned())))
                    }
                }
                d.deserialize_str(V)
            }
        }
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            self.0.push((key, value));
        }
        Ok(())
    }
}

/// A CSV cell from a value's JSON text: a string unescaped, `null` empty, any other value
/// its compact JSON (as `serde_json::Value` writes it: the cell is the same whichever
/// backend's text it came from).
fn cell(value: &RawValue) -> serde_json::Result<Cow<'_, str>> {
    let text = value.get();
    Ok(match text.as_bytes().first() {
        Some(b'"') if !text.contains('\\') => Cow::Borrowed(&text[1..text.len() - 1]),
        Some(b'"') => Cow::Owned(serde_json::from_str::<String>(text)?),
        Some(b'n') if text == "null" => Cow::Borrowed(""),
        _ => Cow::Owned(serde_json::from_str::<serde_json::Value>(text)?.to_string()),
    })
}

/// The CSV of a kind: the header, then a row per JSON Lines line of the chunks it is sent.
/// Keys not among `columns` are collected (their cells left out) for [`export_kind`] to
/// make the file again with them.
struct CsvMaker {
    csv: csv::Writer<HashedFile>,
    columns: Vec<String>,
    extra: BTreeSet<String>,
}

impl CsvMaker {
    fn create(path: &Path, columns: Vec<String>) -> anyhow::Result<CsvMaker> {
        let file = HashedFile::create(path, false, Vec::new())?;
        let mut csv = csv::WriterBuilder::new().buffer_capacity(1 << 16).from_writer(file);
        csv.write_record(
            ["id", "source", "source_id", "scope", "date"].into_iter().chain(columns.iter().map(String::as_str)),
        )?;
        Ok(CsvMaker { csv, columns, extra: BTreeSet::new() })
    }

    /// The rows of a chunk of the JSON Lines file, by its index.
    fn chunk(&mut self, chunk: &Chunk) -> anyhow::Result<()> {
        let lines = &chunk.lines;
        let mut fields = Vec::with_capacity(self.columns.len() + 1);
        for line in &lines.at {
            let envelope = line.envelope.clone().map(|r| &lines.texts[r]);
            let content = std::str::from_utf8(&chunk.bytes[line.content.clone()])
                .context("a content of the JSON Lines payload is not UTF-8")?;
            self.row(&mut fields, envelope, content)?;
        }
        Ok(())
    }

    /// The rows of JSON Lines text read back from the file.
    fn lines(&mut self, text: &[u8]) -> anyhow::Result<()> {
        let mut fields = Vec::with_capacity(self.columns.len() + 1);
        for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line: LineIn<'_> = serde_json::from_slice(line).context("a line of the JSON Lines payload")?;
            let envelope = [line.id, &*line.source, &*line.source_id, &*line.scope, line.date.unwrap_or("")];
            self.row(&mut fields, envelope, line.content.get())?;
        }
        Ok(())
    }

    /// A record's row: its envelope (id, source, source id, scope, date), then a cell per
    /// column from its content's JSON text (`fields`: room for its fields, reused).
    fn row<'a>(
        &mut self,
        fields: &mut Vec<(Cow<'a, str>, &'a RawValue)>,
        envelope: [&str; 5],
        content: &'a str,
    ) -> anyhow::Result<()> {
        fields.clear();
        let parsed = Fields(&mut *fields).deserialize(&mut serde_json::Deserializer::from_str(content));
        if parsed.is_err() {
            // Not an object (never written so): no content cells, as before.
            fields.clear();
        }
        fields.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for text in envelope {
            self.csv.write_field(text)?;
        }
        // Both sorted: one walk matches fields to columns.
        let mut next = fields.iter().peekable();
        for column in &self.columns {
            while let Some((key, _)) = next.next_if(|(key, _)| &**key < column.as_str()) {
                self.extra.insert(key.to_string());
            }
            match next.next_if(|(key, _)| &**key == column.as_str()) {
                Some((_, value)) => self.csv.write_field(cell(value)?.as_bytes())?,
                None => self.csv.write_field(b"")?,
            }
        }
        self.extra.extend(next.map(|(key, _)| key.to_string()));
        self.csv.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn finish(self) -> anyhow::Result<CsvDone> {
        let file = self.csv.into_inner().map_err(|e| anyhow::anyhow!("writing the CSV payload: {}", e.error()))?;
        Ok((file.finish()?, self.extra))
    }
}

/// A kind's columns: its content fields in byte order, and `extra` keys.
fn columns(kind: EntityKind, extra: &BTreeSet<String>) -> Vec<String> {
    let mut all: BTreeSet<&str> = Entity::content_fields(kind).iter().copied().collect();
    all.extend(extra.iter().map(String::as_str));
    all.into_iter().map(str::to_owned).collect()
}

/// A kind's two files while the store's rows come in.
struct KindFiles {
    jsonl: HashedFile,
    csv: JoinHandle<anyhow::Result<CsvDone>>,
    rows: u64,
}

impl KindFiles {
    fn create(data: &Path, kind: EntityKind) -> anyhow::Result<KindFiles> {
        let (tap, chunks) = sync_channel::<Arc<Chunk>>(QUEUE);
        let maker = CsvMaker::create(&data.join(format!("{}.csv", kind.as_str())), columns(kind, &BTreeSet::new()))?;
        let csv = std::thread::Builder::new().name("bag-csv".into()).spawn(move || make_csv(maker, chunks))?;
        let path = data.join(format!("{}.jsonl", kind.as_str()));
        let jsonl =
            HashedFile::create(&path, true, vec![tap]).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(KindFiles { jsonl, csv, rows: 0 })
    }

    fn row(&mut self, r: &RawRecord<'_>) -> anyhow::Result<()> {
        let mut id = uuid::Uuid::encode_buffer();
        let id = &*r.id.hyphenated().encode_lower(&mut id);
        let content = json_line(&mut self.jsonl.buf, id, r)?;
        self.jsonl.lines.push(r, id, content);
        self.rows += 1;
        Ok(self.jsonl.record_end()?)
    }
}

/// The CSV maker's thread: every chunk it is sent, until the JSON Lines file is finished.
fn make_csv(mut maker: CsvMaker, chunks: Receiver<Arc<Chunk>>) -> anyhow::Result<CsvDone> {
    for chunk in chunks {
        maker.chunk(&chunk)?;
    }
    maker.finish()
}

/// One kind's payload files from the store's live rows of `sources` dated in `range` (and
/// the undated): `None` when there are no such rows (no files then).
pub(super) async fn export_kind(
    store: Arc<dyn Store>,
    kind: EntityKind,
    sources: Arc<[String]>,
    range: (chrono::NaiveDate, chrono::NaiveDate),
    data: PathBuf,
) -> anyhow::Result<Option<(u64, Vec<Written>)>> {
    let mut files: Option<KindFiles> = None;
    let mut failed: Option<anyhow::Error> = None;
    for source in sources.iter() {
        let mut each = |r: RawRecord<'_>| {
            let written = match &mut files {
                Some(f) => f.row(&r),
                None => KindFiles::create(&data, kind).and_then(|f| files.insert(f).row(&r)),
            };
            match written {
                Ok(()) => std::ops::ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    std::ops::ControlFlow::Break(())
                }
            }
        };
        store.each_raw_record(kind, source, Some(range), &mut each).await?;
        if let Some(e) = failed.take() {
            // The CSV maker's own error explains a send that failed.
            if let Some(f) = files.take() {
                drop(f.jsonl);
                if let Ok(Err(csv)) = f.csv.join() {
                    return Err(csv.context(format!("writing data/{}.csv", kind.as_str())));
                }
            }
            return Err(e.context(format!("writing data/{}.jsonl", kind.as_str())));
        }
    }
    let Some(KindFiles { jsonl, csv, rows }) = files else { return Ok(None) };
    let jsonl_path = data.join(format!("{}.jsonl", kind.as_str()));
    let jsonl = jsonl.finish().with_context(|| format!("cannot write {}", jsonl_path.display()))?;
    let (mut csv, extra) = csv
        .join()
        .map_err(|_| anyhow::anyhow!("the CSV maker panicked"))?
        .context(format!("writing data/{}.csv", kind.as_str()))?;
    if !extra.is_empty() {
        // Rare, and short next to the export: on the runtime's thread, as the store's read is.
        csv = remake_csv(&data, kind, &jsonl_path, &extra)?;
    }
    Ok(Some((
        rows,
        vec![
            (format!("data/{}.jsonl", kind.as_str()), jsonl.0, jsonl.1),
            (format!("data/{}.csv", kind.as_str()), csv.0, csv.1),
        ],
    )))
}

/// The CSV made again, with the keys no column had, from the JSON Lines file (the rare case
/// of content with keys its type no longer lists).
fn remake_csv(data: &Path, kind: EntityKind, jsonl: &Path, extra: &BTreeSet<String>) -> anyhow::Result<Digested> {
    use std::io::BufRead;
    let mut maker = CsvMaker::create(&data.join(format!("{}.csv", kind.as_str())), columns(kind, extra))?;
    let mut reader = io::BufReader::with_capacity(CHUNK, std::fs::File::open(jsonl)?);
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    loop {
        let n = reader.read_until(b'\n', &mut chunk)?;
        if n == 0 || chunk.len() >= CHUNK {
            maker.lines(&chunk)?;
            chunk.clear();
        }
        if n == 0 {
            break;
        }
    }
    let (csv, still) = maker.finish()?;
    anyhow::ensure!(still.is_empty(), "the CSV of {} has keys it has no column for: {still:?}", kind.as_str());
    Ok(csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_the_values_as_the_csv_had_them() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        let cell_of = |s: &str| cell(&raw(s)).unwrap().into_owned();
        assert_eq!(cell_of(r#""4+""#), "4+");
        assert_eq!(cell_of(r#""строка \"в кавычках\"\nи перевод""#), "строка \"в кавычках\"\nи перевод");
        assert_eq!(cell_of("null"), "");
        assert_eq!(cell_of("4.25"), "4.25");
        assert_eq!(cell_of("true"), "true");
        // PostgreSQL's JSONB text (spaces, its key order) gives serde_json's compact text.
        assert_eq!(cell_of(r#"[{"url": "u", "name": "n"}]"#), r#"[{"name":"n","url":"u"}]"#);
    }
}
