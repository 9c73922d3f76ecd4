//! The contract between a connector and the sync engine.
//!
//! A connector only knows its source: it plans the chunks a run needs, and fetches one
//! chunk into canonical records. It never touches the store. The engine owns the rest:
//! concurrency, diffing, transactions, cursors and the run log (ARCHITECTURE.md, data flow).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::client::SourceError;
use crate::model::{Coverage, DateRange, Record};
use crate::year::SchoolYear;

/// How much of the source a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Reference lists in full, dated lists over a sliding window of recent dates
    /// (from the stream's cursor minus the window up to the source's "now").
    #[default]
    Incremental,
    /// Everything of the academic year (the reconciliation run).
    Full,
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SyncMode::Incremental => "incremental",
            SyncMode::Full => "full",
        })
    }
}

/// What the engine tells a connector when it asks for a plan.
#[derive(Debug, Clone)]
pub struct PlanContext {
    pub mode: SyncMode,
    /// The committed cursors of this source instance: (stream, scope) → value.
    pub cursors: HashMap<(String, String), String>,
    /// The school year asked for (`ejgate sync --year`, `year` in the configuration); `None`
    /// reads the year the source calls current. A connector reads the year asked for where
    /// its source serves it, and otherwise fails with [`SchoolYear::not_served`] (kind
    /// `config`) — never reads another year in its place. A run asked for a year is a full run.
    pub year: Option<SchoolYear>,
}

impl PlanContext {
    pub fn cursor(&self, stream: &str, scope: &str) -> Option<&str> {
        self.cursors.get(&(stream.to_string(), scope.to_string())).map(String::as_str)
    }

    /// The date pieces a run reads of a dated stream up to `end`: from `year_from` in a full
    /// run (or without a cursor), in pieces of `chunk_days` (one store transaction each); from
    /// the stream's cursor (a `YYYY-MM-DD` date) less `window_days` in an incremental run, in
    /// one piece while that range is at most a week longer than the window (a window of 35
    /// days spans 36, and pieces of 31 made every nightly read twice per group), else again
    /// in pieces of `chunk_days`.
    pub fn dated_pieces(
        &self,
        stream: &str,
        scope: &str,
        year_from: NaiveDate,
        end: NaiveDate,
        window_days: u32,
        chunk_days: u32,
    ) -> Vec<DateRange> {
        let cursor = match self.mode {
            SyncMode::Incremental => self.cursor(stream, scope).and_then(crate::time::parse_date),
            SyncMode::Full => None,
        };
        let Some(cursor) = cursor else { return DateRange::new(year_from, end).pieces(chunk_days) };
        let from = (cursor.min(end) - chrono::Days::new(window_days as u64)).max(year_from);
        if from > end {
            return Vec::new();
        }
        let range = DateRange::new(from, end);
        if (end - from).num_days() < window_days as i64 + 8 {
            vec![range]
        } else {
            range.pieces(chunk_days)
        }
    }
}

/// One unit of fetching: what one batch (one store transaction) will hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// The stream (`lessons`, `marks`, …): the name progress and cursors are kept under.
    pub stream: String,
    /// The scope of the stream (`group:1000012`, `school:1000001`).
    pub scope: String,
    /// Connector-specific parameters of the request(s) (dates, ids), opaque to the engine.
    pub params: serde_json::Value,
    /// The cursor value to commit for (stream, scope) once this chunk's batch is written.
    pub cursor_after: Option<String>,
}

/// What a connector plans for one run.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The source's own clock at planning time (from the HTTP `Date` header): windows are
    /// measured in the source's time, not ours.
    pub source_now: Option<NaiveDateTime>,
    pub chunks: Vec<Chunk>,
}

/// The records of one chunk and what they cover.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub records: Vec<Record>,
    /// What this batch read completely (see [`Coverage`]). The engine tombstones the
    /// store's records inside a coverage that the batch did not bring.
    pub coverage: Vec<Coverage>,
    /// Values the code tables did not know, and other things a person should see. They
    /// are kept with the run; the records are still written (with `Other` values).
    pub warnings: Vec<String>,
    /// How many HTTP requests the fetch made (for the run statistics).
    pub requests: u32,
    /// Source records that could not be read and were left out, each with the endpoint,
    /// field and an excerpt. The engine shows them as warnings, counts them per stream, and
    /// fails the run when a stream's skipped share passes its threshold.
    pub skipped: Vec<crate::read::Skipped>,
}

/// A source system connector.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The source instance name from the configuration (`dnevnik`, `school-16-mosreg`).
    fn instance(&self) -> &str;

    /// The system (`dnevnik`, `mosreg`, `epos`, `kiasuo`, `files`).
    fn system(&self) -> &'static str;

    /// Decide what to read in this run. May call the source to discover schools and groups.
    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError>;

    /// Fetch one planned chunk and normalize it into canonical records.
    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError>;

    /// How many HTTP requests this connector has sent since it was made: every attempt,
    /// planning's and the fetches', retries, refused ones and credential refreshes. The
    /// engine counts a run's requests as the growth of this number over the run; `None`
    /// (a connector without HTTP) leaves them to the batches' [`Batch::requests`].
    ///
    /// By default the requests its clients ([`Connector::client_stats`]) counted; a
    /// connector that also sends requests outside them (a token refresh of its own) adds
    /// those.
    fn requests_sent(&self) -> Option<u64> {
        let stats = self.client_stats();
        (!stats.is_empty()).then(|| stats.iter().map(|s| s.requests.load(std::sync::atomic::Ordering::Relaxed)).sum())
    }

    /// About how many requests fetching `chunk` takes (pages and the source's refusals are
    /// not known before): the engine adds them up to say before a run how many requests it
    /// plans and how long they take, and to fit a run into a request budget. By default
    /// one.
    fn estimate_requests(&self, _chunk: &Chunk) -> u64 {
        1
    }

    /// The counters of the connector's HTTP clients (request-limit refusals and waits),
    /// which the engine keeps with each run as it keeps [`Connector::requests_sent`]; none
    /// for a connector without HTTP.
    fn client_stats(&self) -> Vec<std::sync::Arc<crate::client::ClientStats>> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_nightly_window_is_one_piece_and_a_full_run_is_cut_by_chunk_days() {
        let mut ctx = PlanContext { mode: SyncMode::Incremental, cursors: HashMap::new(), year: None };
        let (year_from, end) = (day("2025-09-01"), day("2026-03-06"));
        ctx.cursors.insert(("journal".into(), "group:1".into()), "2026-03-05".into());
        // 35 days back from the cursor to today: 36 days, one request range.
        assert_eq!(
            ctx.dated_pieces("journal", "group:1", year_from, end, 35, 31),
            vec![DateRange::new(day("2026-01-29"), end)]
        );
        // Without a cursor, and in a full run: the year in pieces of 31 days.
        let pieces = ctx.dated_pieces("journal", "group:2", year_from, end, 35, 31);
        assert_eq!(pieces.len(), 7);
        assert_eq!(pieces[0], DateRange::new(year_from, day("2025-10-01")));
        ctx.mode = SyncMode::Full;
        assert_eq!(ctx.dated_pieces("journal", "group:1", year_from, end, 35, 31), pieces);
        // A cursor months old: back to pieces.
        ctx.mode = SyncMode::Incremental;
        ctx.cursors.insert(("journal".into(), "group:1".into()), "2025-12-01".into());
        assert_eq!(ctx.dated_pieces("journal", "group:1", year_from, end, 35, 31).len(), 5);
    }
}
