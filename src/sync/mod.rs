//! The sync engine: plan → fetch (bounded concurrency) → diff by canonical id and content
//! hash → one store transaction per group of fetched batches (up to `GROUP_RECORDS`
//! records), with the batches' cursors in the same transaction. The engine is the only
//! writer of source data.
//!
//! A run that fails (a source error, a store error) is marked failed with the error's text
//! and its kind ([`RunErrorKind`]: what a person should do); what was committed before stays,
//! the failing batch's cursor does not move, and the next run picks up from the committed
//! cursors.
//!
//! A run never succeeds with data missing: a connector that panics (in `plan` or in a
//! chunk's `fetch`) fails the run naming the chunk, the chunks written must be the chunks
//! planned, and a stream whose records could not be read (`Batch::skipped`) in more than the
//! allowed share fails it too (see [`SkipLimit`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use uuid::Uuid;

use ejgate_sdk::connector::{Batch, Chunk, Connector, PlanContext, SyncMode};
use ejgate_sdk::model::{EntityKind, Record};
use ejgate_sdk::read::Skipped;
use ejgate_sdk::year::SchoolYear;

use crate::lease::{source_lease, Lease, SOURCE_LEASE_TTL};
pub use crate::store::RunError;
use crate::store::{
    ChangeOp, ChangeSet, CursorUpdate, Existing, RunErrorKind, RunId, RunStats, RunStatus, Store, Upsert,
};

/// At most this many distinct warnings are kept with a run.
const MAX_WARNINGS: usize = 200;

/// Fetched chunks that have arrived by the time the writer is free are written together,
/// in one transaction, up to this many records. One commit per chunk rewrote the pages of
/// the id index (canonical ids are random, so a chunk's records are spread over the whole
/// index) once per chunk; a group rewrites them once per group. A source slower than the
/// store still gets a commit per chunk, as soon as it arrives.
const GROUP_RECORDS: usize = 25_000;

/// Records fetched and not yet written (waiting, or in the group being written): memory is
/// bounded by this many records plus the chunks in flight. Twice a group, so that the
/// next group fills while one is written. The bound is in records, not in batches: a run
/// whose chunks are small (the journal of a subgroup: a few dozen records) still fills
/// whole groups. With a bound of 16 batches, the second half of a large school's first
/// sync was written in commits of about 1,000 records, at half the rate of the first.
const WAITING_RECORDS: usize = 2 * GROUP_RECORDS;

/// Fetched batches waiting for the writer, at most (empty batches hold no records, so the
/// record bound alone would not bound them).
const WAITING_BATCHES: usize = 1024;

/// Ids a run tracks in memory to spare the store lookups of ids it cannot hold (see
/// [`KnownIds`]); a source larger than this is looked up id by id as any other.
const TRACKED_IDS: usize = 2_000_000;

/// What a sync run reports to whoever shows progress (the CLI's bars, the daemon's log).
pub trait Progress: Send + Sync {
    /// What the run will take, said before it fetches: the requests it plans (planning's
    /// included) and, at `requests_per_second`, how long they take; and what it leaves
    /// for a later run to stay within its budget.
    fn estimated(&self, _estimate: &Estimate) {}
    fn planned(&self, _chunks: &[Chunk]) {}
    fn chunk_written(&self, _chunk: &Chunk, _records: usize, _changes: usize) {}
}

/// No progress display.
pub struct Quiet;
impl Progress for Quiet {}

/// When the records a connector could not read fail the run. A stream fails the run when,
/// over the whole run, it left out more than `max_share` of its records (skipped ÷ (records
/// read + skipped)) **and** at least `min_count` of them: one bad record of three is a
/// warning, a source whose shape we do not read is a failed run, never an empty school.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SkipLimit {
    /// The share of a stream's records that may be left out (`max_skipped_share`).
    pub max_share: f64,
    /// Fewer skipped records than this never fail a run, whatever their share.
    pub min_count: u64,
}

impl SkipLimit {
    /// `max_skipped_share`'s default: one record in twenty.
    pub const DEFAULT_SHARE: f64 = 0.05;
    /// Five: a stream with a handful of records (the school, its study periods) can fail the
    /// run only when at least five of them are unreadable.
    pub const MIN_COUNT: u64 = 5;

    /// Whether `skipped` of `skipped + read` passes the limit.
    pub fn exceeded(&self, read: u64, skipped: u64) -> bool {
        let total = read + skipped;
        skipped >= self.min_count && total > 0 && skipped as f64 / total as f64 > self.max_share
    }
}

impl Default for SkipLimit {
    fn default() -> Self {
        SkipLimit { max_share: SkipLimit::DEFAULT_SHARE, min_count: SkipLimit::MIN_COUNT }
    }
}

/// Options of one run.
#[derive(Clone)]
pub struct SyncOptions {
    pub mode: SyncMode,
    /// Chunks fetched at once (the source's rate limit still applies).
    pub concurrency: usize,
    pub progress: Arc<dyn Progress>,
    pub skip_limit: SkipLimit,
    /// The school year to read; `None`: the one the source calls current. A run asked for a
    /// year reads it whole (its mode is `full`, whatever `mode` says).
    pub year: Option<SchoolYear>,
    /// How many of a kind's records a run may turn into tombstones without a person's
    /// confirmation (see [`DeleteLimit`]).
    pub deletes: DeleteLimit,
    /// Asked, the run lets the group being written commit, stops fetching and ends as
    /// `interrupted` with its statistics (`crate::stop`).
    pub stop: crate::stop::Stop,
    /// The most requests the run may make (`max_requests` of the source): a plan that needs
    /// more keeps the reference lists and the most recent journal and leaves the rest for
    /// a later run, saying which ([`fit_budget`]).
    pub max_requests: Option<u64>,
    /// The source's request limit, for the up-front estimate of the run's duration.
    pub requests_per_second: Option<std::num::NonZeroU32>,
}

/// What a run will take, said before it fetches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Estimate {
    /// Requests planning made.
    pub planning: u64,
    /// Requests the chunks kept will take (estimated by the connector).
    pub fetching: u64,
    /// At the source's request limit, how long they take.
    pub duration: Option<Duration>,
    /// The budget, when one was given.
    pub budget: Option<u64>,
    /// What the plan leaves for a later run: (stream, chunks, estimated requests, the
    /// latest date of them when they are dated).
    pub deferred: Vec<(String, u64, u64, Option<chrono::NaiveDate>)>,
}

impl Estimate {
    pub fn requests(&self) -> u64 {
        self.planning + self.fetching
    }

    /// One line for a person: `the plan takes about 313 requests (5 of them planning), 0 h 01
    /// min at the source's request limit; budget …; left for a later run …`.
    pub fn describe(&self) -> String {
        let mut text =
            format!("the plan takes about {} requests ({} of them planning)", self.requests(), self.planning);
        if let Some(d) = self.duration {
            let secs = d.as_secs();
            text.push_str(&format!(", {} h {:02} min at the source's request limit", secs / 3600, secs % 3600 / 60));
        }
        if let Some(budget) = self.budget {
            text.push_str(&format!("; budget {budget} requests"));
        }
        if !self.deferred.is_empty() {
            let parts: Vec<String> = self
                .deferred
                .iter()
                .map(|(stream, chunks, requests, to)| {
                    format!(
                        "{stream}: {chunks} chunk(s), about {requests} requests{}",
                        to.map(|d| format!(", dated up to {d}")).unwrap_or_default()
                    )
                })
                .collect();
            text.push_str(&format!(
                "; left for a later run (a larger budget: the weekly full run reads them): {}",
                parts.join("; ")
            ));
        }
        text
    }
}

/// Chunks with the requests each is estimated to take.
pub type Estimated = Vec<(Chunk, u64)>;

/// Fits a plan into `budget` requests (planning's already spent): the chunks are taken in
/// the order reference lists first (chunks without a date cursor), then the dated ones
/// from the most recent (their cursor's date) back, while their estimates fit; the rest is
/// left. The kept chunks stay in the plan's order. Returns (kept, left), each chunk with
/// its estimate.
pub fn fit_budget(chunks: Estimated, budget: u64) -> (Estimated, Estimated) {
    let date = |c: &Chunk| c.cursor_after.as_deref().and_then(ejgate_sdk::time::parse_date);
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.sort_by_key(|i| (date(&chunks[*i].0).is_some(), std::cmp::Reverse(date(&chunks[*i].0))));
    let mut keep = vec![false; chunks.len()];
    let mut spent = 0u64;
    for i in order {
        let cost = chunks[i].1;
        if spent + cost > budget {
            break;
        }
        spent += cost;
        keep[i] = true;
    }
    let (mut kept, mut left) = (Vec::new(), Vec::new());
    for (chunk, k) in chunks.into_iter().zip(keep) {
        if k {
            kept.push(chunk);
        } else {
            left.push(chunk);
        }
    }
    (kept, left)
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            mode: SyncMode::Incremental,
            concurrency: 4,
            progress: Arc::new(Quiet),
            skip_limit: SkipLimit::default(),
            year: None,
            deletes: DeleteLimit::default(),
            stop: crate::stop::Stop::default(),
            max_requests: None,
            requests_per_second: None,
        }
    }
}

/// Mass deletes need a reason. A run that would turn more than `max_percent` of a kind's
/// live records of the source into tombstones stops before it writes them and fails with the
/// kind and the counts; a person who knows the records are really gone confirms with
/// `ejgate sync --allow-deletes` (`allowed`). An export cut short (a `students.csv` with
/// only its header row), a school missing from a token's view or a source's bad day look to
/// the reconciliation exactly like records deleted at the source, and had tombstoned a
/// school's whole roster without a word.
///
/// The share is counted per kind over the whole run: the deletes the run has written plus
/// the ones it is about to write, against the kind's live records of the source plus the
/// ones the run has deleted. A group whose deletes would pass the share is not written; the
/// run's earlier groups stay (their deletes were within it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeleteLimit {
    /// Default 20: a nightly run sees classes, pupils or a month of marks come and go in a
    /// few percent; a fifth of a kind at once is an event a person should look at.
    pub max_percent: f64,
    pub allowed: bool,
}

impl Default for DeleteLimit {
    fn default() -> Self {
        DeleteLimit { max_percent: DEFAULT_MAX_DELETE_PERCENT, allowed: false }
    }
}

/// See [`DeleteLimit::max_percent`].
pub const DEFAULT_MAX_DELETE_PERCENT: f64 = 20.0;

/// What a run has deleted so far, per kind, and the kinds' live counts when it first deleted.
#[derive(Default)]
struct DeleteTally {
    /// Live records per kind of the source when the run first wrote a delete, plus the ones
    /// the run had deleted by then (none): the denominator of the share.
    base: Option<HashMap<EntityKind, u64>>,
    deleted: HashMap<EntityKind, u64>,
}

impl DeleteTally {
    /// Refuses a group's deletes that would take a kind past the limit.
    async fn check(
        &mut self,
        store: &dyn Store,
        source: &str,
        limit: &DeleteLimit,
        deletes: &[(Uuid, EntityKind)],
    ) -> Result<(), RunError> {
        if deletes.is_empty() || limit.allowed {
            return Ok(());
        }
        if self.base.is_none() {
            let counts = store.counts(Some(source)).await?;
            self.base = Some(counts.into_iter().map(|c| (c.kind, c.live)).collect());
        }
        let base = self.base.as_ref().expect("filled above");
        let mut by_kind: HashMap<EntityKind, u64> = HashMap::new();
        for (_, kind) in deletes {
            *by_kind.entry(*kind).or_default() += 1;
        }
        let mut kinds: Vec<_> = by_kind.into_iter().collect();
        kinds.sort();
        for (kind, now) in kinds {
            let live = base.get(&kind).copied().unwrap_or(0);
            let total = self.deleted.get(&kind).copied().unwrap_or(0) + now;
            if total as f64 > live as f64 * limit.max_percent / 100.0 {
                return Err(RunError::new(
                    RunErrorKind::Deletes,
                    format!(
                    "the reconciliation would delete {total} of the {live} live {kind} records of source «{source}» \
                     ({:.0} %, more than the {} % a run may delete without confirmation, max_delete_percent): \
                     nothing of it was written. If the source really no longer has them, confirm with \
                     `ejgate sync --source {source} --allow-deletes`; if not (an export cut short, an empty \
                     file, a school the token no longer sees), correct the source and sync again",
                    total as f64 * 100.0 / live.max(1) as f64,
                    limit.max_percent,
                    ),
                ));
            }
        }
        Ok(())
    }

    /// After a group is committed.
    fn wrote(&mut self, deletes: &[(Uuid, EntityKind)]) {
        for (_, kind) in deletes {
            *self.deleted.entry(*kind).or_default() += 1;
        }
    }
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The outcome of one run.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub run: RunId,
    pub source: String,
    pub status: RunStatus,
    pub error: Option<String>,
    /// The kind of `error`: what to do about it.
    pub error_kind: Option<RunErrorKind>,
    pub stats: RunStats,
    pub elapsed: Duration,
    /// Time spent inside store transactions (diff reads and applies).
    pub store_time: Duration,
}

/// Runs one sync of one source into the store. A failed run is reported in the returned
/// report (status `failed`, the error's text); `Err` only when the store itself cannot
/// even record the run.
pub async fn run_sync(
    store: &dyn Store,
    connector: Arc<dyn Connector>,
    options: &SyncOptions,
) -> Result<SyncReport, crate::store::StoreError> {
    let started = Instant::now();
    let source = connector.instance().to_string();
    // One writer per source: a second run is refused here, before it opens a run (which
    // would close the first one's as interrupted) or reads anything to diff against.
    let lease = Lease::acquire(store, &source_lease(&source), SOURCE_LEASE_TTL).await?;
    let report = run_holding(store, connector, options, &lease, started).await;
    lease.release().await;
    report
}

/// [`run_sync`] once the source's lease is held.
async fn run_holding(
    store: &dyn Store,
    connector: Arc<dyn Connector>,
    options: &SyncOptions,
    lease: &Lease,
    started: Instant,
) -> Result<SyncReport, crate::store::StoreError> {
    let source = connector.instance().to_string();
    let mode = if options.year.is_some() { SyncMode::Full } else { options.mode };
    let run = store.begin_run(&source, &mode.to_string()).await?;
    tracing::info!(%source, run, %mode, year = ?options.year.map(|y| y.to_string()), "sync started");
    let mut stats = RunStats::default();
    let mut store_time = Duration::ZERO;
    let sent_before = connector.requests_sent();
    let limits_before = LimitCounters::of(connector.as_ref());
    let outcome = drive(store, connector.clone(), options, mode, run, &mut stats, &mut store_time, lease).await;
    // Every request of the run, planning and retries included, where the connector counts
    // them; else what the batches said.
    if let (Some(before), Some(after)) = (sent_before, connector.requests_sent()) {
        stats.requests = after.saturating_sub(before);
    }
    LimitCounters::of(connector.as_ref()).since(&limits_before, &mut stats);
    let (status, failure) = match outcome {
        // What was written before the stop is committed with its cursors; the next run goes
        // on from there.
        _ if options.stop.observed() => (
            RunStatus::Interrupted,
            Some(RunError::new(
                RunErrorKind::Stopped,
                format!(
                    "stopped by {} before it finished; what it wrote is kept, and the next run goes on from there",
                    options.stop.requested().unwrap_or("a stop request")
                ),
            )),
        ),
        Ok(()) => (RunStatus::Succeeded, None),
        Err(e) => (RunStatus::Failed, Some(e)),
    };
    if let Some(e) = &failure {
        // Info, not error: the report carries the error, and whoever runs the sync shows it
        // once (the CLI printed it twice, as a log line and as its own line).
        tracing::info!(%source, run, kind = %e.kind, "sync failed: {e}");
    } else {
        tracing::info!(%source, run, inserted = stats.inserted, updated = stats.updated, deleted = stats.deleted, "sync finished");
    }
    store.finish_run(run, status, failure.as_ref(), &stats).await?;
    let (error, error_kind) = failure.map(|e| (e.message, e.kind)).unzip();
    Ok(SyncReport { run, source, status, error, error_kind, stats, elapsed: started.elapsed(), store_time })
}

/// The request-limit counters of a connector's clients, summed: a run keeps their growth.
struct LimitCounters {
    refused: u64,
    waits: u64,
    wait_micros: u64,
}

impl LimitCounters {
    fn of(connector: &dyn Connector) -> LimitCounters {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = connector.client_stats();
        LimitCounters {
            refused: stats.iter().map(|s| s.rate_limited.load(Relaxed)).sum(),
            waits: stats.iter().map(|s| s.rate_limit_waits.load(Relaxed)).sum(),
            wait_micros: stats.iter().map(|s| s.rate_limit_wait_micros.load(Relaxed)).sum(),
        }
    }

    fn since(&self, before: &LimitCounters, stats: &mut RunStats) {
        stats.rate_limited = self.refused.saturating_sub(before.refused);
        stats.limit_waits = self.waits.saturating_sub(before.waits);
        stats.limit_wait_ms = self.wait_micros.saturating_sub(before.wait_micros) / 1000;
    }
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    store: &dyn Store,
    connector: Arc<dyn Connector>,
    options: &SyncOptions,
    mode: SyncMode,
    run: RunId,
    stats: &mut RunStats,
    store_time: &mut Duration,
    lease: &Lease,
) -> Result<(), RunError> {
    let source = connector.instance().to_string();
    let cursors = store.cursors(&source).await?;
    let mut deletes = DeleteTally::default();
    let mut known = KnownIds::at_start(store.holds_source(&source).await?);
    let ctx = PlanContext { mode, cursors, year: options.year };
    let sent_at_start = connector.requests_sent();
    let planned = tokio::select! {
        planned = AssertUnwindSafe(connector.plan(&ctx)).catch_unwind() => planned,
        () = options.stop.wait() => {
            options.stop.observe();
            return Ok(());
        }
    };
    let plan = match planned {
        Ok(plan) => plan?,
        Err(panic) => {
            return Err(RunError::new(
                RunErrorKind::Internal,
                format!("source «{source}»: the connector panicked while planning the run: {}", panic_text(&*panic)),
            ))
        }
    };
    let mut plan = plan;
    let planning = match (sent_at_start, connector.requests_sent()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    };
    let estimated: Vec<(Chunk, u64)> = std::mem::take(&mut plan.chunks)
        .into_iter()
        .map(|c| {
            let n = connector.estimate_requests(&c);
            (c, n)
        })
        .collect();
    let (kept, left) = match options.max_requests {
        Some(max) if planning + estimated.iter().map(|(_, n)| n).sum::<u64>() > max => {
            fit_budget(estimated, max.saturating_sub(planning))
        }
        _ => (estimated, Vec::new()),
    };
    let mut estimate = Estimate {
        planning,
        fetching: kept.iter().map(|(_, n)| n).sum(),
        budget: options.max_requests,
        ..Estimate::default()
    };
    for (chunk, n) in &left {
        let date = chunk.cursor_after.as_deref().and_then(ejgate_sdk::time::parse_date);
        match estimate.deferred.iter_mut().find(|d| d.0 == chunk.stream) {
            Some(d) => {
                d.1 += 1;
                d.2 += n;
                d.3 = d.3.max(date);
            }
            None => estimate.deferred.push((chunk.stream.clone(), 1, *n, date)),
        }
    }
    estimate.duration = options
        .requests_per_second
        .map(|rps| Duration::from_secs_f64(estimate.requests() as f64 / f64::from(rps.get())));
    stats.planned_requests = estimate.requests();
    stats.deferred_chunks = left.len() as u64;
    tracing::info!(%source, requests = estimate.requests(), deferred = left.len(), "{}", estimate.describe());
    if !left.is_empty() {
        warn(stats, &source, &format!("over the request budget: {}", estimate.describe()));
    }
    options.progress.estimated(&estimate);
    plan.chunks = kept.into_iter().map(|(c, _)| c).collect();
    options.progress.planned(&plan.chunks);
    let planned = plan.chunks.len() as u64;

    // Fetching runs ahead of writing in its own task, at most `concurrency` chunks in
    // flight and `WAITING_RECORDS` records fetched and not yet written (each waiting batch
    // holds permits for its records until its group is written): memory stays bounded by
    // that.
    let concurrency = options.concurrency.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Fetched>(WAITING_BATCHES);
    let room = Arc::new(tokio::sync::Semaphore::new(WAITING_RECORDS));
    let fetcher = {
        let connector = connector.clone();
        let room = room.clone();
        let source = source.clone();
        tokio::spawn(async move {
            let mut fetched = futures::stream::iter(plan.chunks)
                .map(|chunk| {
                    let connector = connector.clone();
                    let source = source.clone();
                    async move {
                        // Canonical JSON and hashes are computed here, beside the writer,
                        // not on its path: the writer only diffs and writes. A panic of the
                        // connector (or of the model's code) becomes this chunk's failure.
                        let fetch = AssertUnwindSafe(async { connector.fetch(&chunk).await.map(Canonical::of) });
                        let result = match fetch.catch_unwind().await {
                            Ok(Ok(batch)) => Ok(batch),
                            Ok(Err(e)) => Err(RunError::from(e)),
                            Err(panic) => Err(RunError::new(
                                RunErrorKind::Internal,
                                format!(
                                    "source «{source}»: the connector panicked fetching {} {}: {}; nothing of that \
                                     chunk was written",
                                    chunk.stream,
                                    chunk.scope,
                                    panic_text(&*panic)
                                ),
                            )),
                        };
                        (chunk, result)
                    }
                })
                .buffered(concurrency);
            while let Some((chunk, result)) = fetched.next().await {
                let failed = result.is_err();
                // A batch larger than the whole bound waits until nothing else does.
                let records = result.as_ref().map_or(0, |b| b.upserts.len()).min(WAITING_RECORDS);
                let Ok(permit) = room.clone().acquire_many_owned(records as u32).await else { break };
                if tx.send(Fetched { chunk, result, room: permit }).await.is_err() || failed {
                    break;
                }
            }
        })
    };

    let mut result = Ok(());
    let mut failure = None;
    // Per stream: records read, and the first record left out (for the error).
    let mut read_by_stream: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_skipped: BTreeMap<String, Skipped> = BTreeMap::new();
    while failure.is_none() {
        // Wait for one chunk, then take whatever else has already arrived. A stop asked for
        // meanwhile ends the run here, between groups: the last group is committed.
        let next = tokio::select! {
            biased;
            () = options.stop.wait() => {
                options.stop.observe();
                None
            }
            next = rx.recv() => next,
        };
        let Some(first) = next else { break };
        let mut group: Vec<(Chunk, Canonical)> = Vec::new();
        // The group's permits: the room they hold is given back once the group is written.
        let mut held = Vec::new();
        let mut records = 0;
        let mut next = Some(first);
        while let Some(Fetched { chunk, result, room }) = next.take() {
            held.push(room);
            match result {
                Ok(batch) => {
                    records += batch.upserts.len();
                    group.push((chunk, batch));
                }
                // What arrived before the failure is still written.
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if records < GROUP_RECORDS {
                next = rx.try_recv().ok();
            }
        }
        if group.is_empty() {
            break;
        }
        for (chunk, batch) in &mut group {
            stats.chunks += 1;
            stats.requests += batch.requests as u64;
            stats.records_read += batch.upserts.len() as u64;
            *read_by_stream.entry(chunk.stream.clone()).or_default() += batch.upserts.len() as u64;
            for w in &batch.warnings {
                warn(stats, &source, w);
            }
            for skipped in batch.skipped.drain(..) {
                stats.skipped += 1;
                *stats.skipped_by_stream.entry(chunk.stream.clone()).or_default() += 1;
                warn(stats, &source, &skipped.to_string());
                first_skipped.entry(chunk.stream.clone()).or_insert(skipped);
            }
        }
        // Writing takes the records out of the group; progress reports each chunk's size.
        let sizes: Vec<usize> = group.iter().map(|(_, batch)| batch.upserts.len()).collect();
        if let Some(lost) = lease.lost() {
            result = Err(RunError::new(RunErrorKind::Internal, lost));
            break;
        }
        let t = Instant::now();
        let written = write_group(store, run, &source, &mut group, &mut known, (&options.deletes, &mut deletes)).await;
        *store_time += t.elapsed();
        drop(held);
        match written {
            Ok(changes) => {
                stats.inserted += changes.iter().filter(|op| **op == ChangeOp::Insert).count() as u64;
                stats.updated +=
                    changes.iter().filter(|op| matches!(op, ChangeOp::Update | ChangeOp::KeyChange)).count() as u64;
                stats.deleted += changes.iter().filter(|op| **op == ChangeOp::Delete).count() as u64;
                for (i, ((chunk, _), size)) in group.iter().zip(sizes).enumerate() {
                    // The group's changes are reported with its last chunk.
                    let n = if i + 1 == group.len() { changes.len() } else { 0 };
                    options.progress.chunk_written(chunk, size, n);
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let (Ok(()), Some(e)) = (&result, failure) {
        result = Err(e);
    }
    drop(rx);
    if result.is_err() || options.stop.observed() {
        // The fetcher may wait for room the writer will not give back, or, after a stop,
        // for answers nobody will write: it is not waited for.
        fetcher.abort();
        return result;
    }
    // Every fetched chunk was written and the channel is closed: the fetcher has ended.
    // How it ended is checked, not assumed.
    if let Err(e) = fetcher.await {
        let how = if e.is_panic() { format!("panicked: {}", panic_text(&*e.into_panic())) } else { e.to_string() };
        return Err(RunError::new(RunErrorKind::Internal, format!("source «{source}»: fetching ended early: {how}")));
    }
    if stats.chunks != planned {
        return Err(RunError::new(
            RunErrorKind::Internal,
            format!(
                "source «{source}»: {} of {planned} planned chunks were written; the run cannot be complete",
                stats.chunks
            ),
        ));
    }
    for (stream, skipped) in &stats.skipped_by_stream {
        let read = read_by_stream.get(stream).copied().unwrap_or(0);
        if options.skip_limit.exceeded(read, *skipped) {
            let share = *skipped as f64 / (read + skipped) as f64;
            let first = first_skipped.get(stream).map(|s| format!("; the first: {s}")).unwrap_or_default();
            return Err(RunError::new(
                RunErrorKind::Malformed,
                format!(
                    "source «{source}»: stream «{stream}»: {skipped} of {} records ({:.1} %) could not be read, more \
                     than the {:.1} % allowed (max_skipped_share){first}",
                    read + skipped,
                    share * 100.0,
                    options.skip_limit.max_share * 100.0,
                ),
            ));
        }
    }
    Ok(())
}

/// Keeps a warning with the run (at most [`MAX_WARNINGS`] distinct ones) and logs it.
fn warn(stats: &mut RunStats, source: &str, w: &str) {
    if stats.warnings.len() < MAX_WARNINGS && !stats.warnings.iter().any(|k| k == w) {
        tracing::warn!(%source, "{w}");
        stats.warnings.push(w.to_string());
    }
}

/// Which of a batch's ids the store may already hold, so that the diff's read asks only for
/// those. When the run starts on a source the store holds nothing of (its first sync), the
/// only records of the source the store can hold are the ones this run writes: the run
/// keeps their ids, and a batch's lookup by id asks for the ids among them (a record brought
/// twice, by two chunks) instead of every id of the batch — in a first sync that is a
/// lookup of 25,000 ids that cannot be there, per group, in an index that grows to the size
/// of the school. The coverage part of the read is asked as always. Otherwise (the source
/// had records, or more than [`TRACKED_IDS`] are written) every id is asked for.
///
/// This relies on a source being synced by one run at a time: the run holds the source's
/// lease ([`crate::lease`]).
struct KnownIds {
    /// `None`: every id may be in the store.
    written: Option<HashSet<Uuid>>,
    /// At most this many ids are tracked.
    limit: usize,
}

impl KnownIds {
    fn at_start(source_has_records: bool) -> KnownIds {
        KnownIds { written: (!source_has_records).then(HashSet::new), limit: TRACKED_IDS }
    }

    /// The ids of `ids` to look up.
    fn to_look_up(&self, ids: &[Uuid]) -> Vec<Uuid> {
        let mut out: Vec<Uuid> = match &self.written {
            None => ids.to_vec(),
            Some(written) => ids.iter().filter(|id| written.contains(id)).copied().collect(),
        };
        // In index order: neighbouring lookups touch neighbouring pages.
        out.sort_unstable();
        out
    }

    /// After a batch is committed: its upserts are in the store now.
    fn wrote(&mut self, ids: impl Iterator<Item = Uuid>) {
        if let Some(written) = &mut self.written {
            written.extend(ids);
            if written.len() > self.limit {
                self.written = None;
            }
        }
    }
}

/// A fetched chunk on its way to the writer, with the room its records take.
struct Fetched {
    chunk: Chunk,
    result: Result<Canonical, RunError>,
    /// Given back when the group the chunk is written in has been written.
    room: tokio::sync::OwnedSemaphorePermit,
}

/// Diffs fetched chunks against the store and applies them, with their cursors, in one
/// transaction. Returns the operations written.
async fn write_group(
    store: &dyn Store,
    run: RunId,
    source: &str,
    group: &mut [(Chunk, Canonical)],
    known: &mut KnownIds,
    (limit, tally): (&DeleteLimit, &mut DeleteTally),
) -> Result<Vec<ChangeOp>, RunError> {
    let mut upserts = Vec::with_capacity(group.iter().map(|(_, b)| b.upserts.len()).sum());
    let mut coverages = Vec::new();
    let mut cursors = Vec::new();
    for (chunk, batch) in group.iter_mut() {
        upserts.append(&mut batch.upserts);
        coverages.extend(batch.coverage.iter().map(|c| (c.kinds.clone(), c.scope.clone(), c.range)));
        if let Some(value) = &chunk.cursor_after {
            cursors.push(CursorUpdate {
                stream: chunk.stream.clone(),
                scope: chunk.scope.clone(),
                value: value.clone(),
            });
        }
    }
    let read = upserts.len();
    let ids: Vec<Uuid> = upserts.iter().map(|r| r.id).collect();
    let read_started = Instant::now();
    let asked = known.to_look_up(&ids);
    let existing = store.existing(source, &asked, &coverages).await?;
    let read_time = read_started.elapsed();
    let changes = diff(upserts, &existing);
    tally.check(store, source, limit, &changes.deletes).await?;
    let ops: Vec<ChangeOp> =
        changes.upserts.iter().map(|u| u.op).chain(changes.deletes.iter().map(|_| ChangeOp::Delete)).collect();
    let apply_started = Instant::now();
    store.apply(run, source, &changes, &cursors).await?;
    known.wrote(changes.upserts.iter().map(|u| u.id));
    tally.wrote(&changes.deletes);
    tracing::debug!(
        chunks = group.len(),
        first_stream = %group[0].0.stream,
        first_scope = %group[0].0.scope,
        records = read,
        looked_up = asked.len(),
        changes = ops.len(),
        read_ms = read_time.as_millis() as u64,
        apply_ms = apply_started.elapsed().as_millis() as u64,
        "chunks written"
    );
    Ok(ops)
}

/// The content hash of a record: BLAKE3 over the entity's JSON.
pub fn content_hash(content: &[u8]) -> [u8; 32] {
    *blake3::hash(content).as_bytes()
}

/// A fetched batch in the form the store keeps: every record's canonical JSON, content hash
/// and natural key, computed once in the fetch stage.
pub struct Canonical {
    /// One per record, in the source's order; `op` is decided by [`diff`].
    pub upserts: Vec<Upsert>,
    pub coverage: Vec<ejgate_sdk::model::Coverage>,
    pub warnings: Vec<String>,
    pub requests: u32,
    /// Source records the connector could not read.
    pub skipped: Vec<Skipped>,
}

impl Canonical {
    pub fn of(batch: Batch) -> Canonical {
        Canonical {
            upserts: batch.records.into_iter().map(canonical).collect(),
            coverage: batch.coverage,
            warnings: batch.warnings,
            requests: batch.requests,
            skipped: batch.skipped,
        }
    }
}

/// A record as the store keeps it. Its `op` is a placeholder until [`diff`] decides it.
pub fn canonical(record: Record) -> Upsert {
    let content = record.entity.content_json();
    Upsert {
        op: ChangeOp::Insert,
        id: record.id,
        kind: record.kind(),
        content_hash: content_hash(&content),
        natural_key: record.entity.natural_key(),
        content,
        source_id: record.source_id,
        scope: record.scope,
        date: record.date,
        source_updated_at: record.source_updated_at,
    }
}

/// Compares a fresh read (see [`canonical`]) with what the store has. `existing` holds the
/// store's records with the batch's ids and every record inside the batch's coverage: one
/// of those the batch did not bring has been deleted at the source. A record brought twice
/// counts once (the last one wins).
pub fn diff(records: Vec<Upsert>, existing: &HashMap<Uuid, Existing>) -> ChangeSet {
    let mut changes = ChangeSet::default();
    let mut brought = HashSet::with_capacity(records.len());
    let mut deduped: Vec<Upsert> = Vec::with_capacity(records.len());
    let mut position: HashMap<Uuid, usize> = HashMap::with_capacity(records.len());
    for record in records {
        match position.get(&record.id) {
            Some(&i) => deduped[i] = record,
            None => {
                position.insert(record.id, deduped.len());
                deduped.push(record);
            }
        }
    }
    for mut record in deduped {
        brought.insert(record.id);
        record.op = match existing.get(&record.id) {
            None => ChangeOp::Insert,
            Some(old) if old.deleted => ChangeOp::Insert,
            Some(old) if old.content_hash == record.content_hash => {
                changes.seen.push(record.id);
                continue;
            }
            Some(old) if old.natural_key != record.natural_key => ChangeOp::KeyChange,
            Some(_) => ChangeOp::Update,
        };
        changes.upserts.push(record);
    }
    let mut gone: Vec<(Uuid, _)> = existing
        .iter()
        .filter(|(id, old)| !old.deleted && !brought.contains(id))
        .map(|(id, old)| (*id, old.kind))
        .collect();
    gone.sort();
    changes.deletes = gone;
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use ejgate_sdk::model::{Entity, EntityKind, IdSpace, Subject};

    fn subject(ids: &IdSpace, source_id: &str, name: &str) -> Record {
        Record {
            id: ids.id(EntityKind::Subject, source_id),
            source_id: source_id.into(),
            scope: "school:1".into(),
            date: None,
            source_updated_at: None,
            entity: Entity::Subject(Subject {
                organization: None,
                name: name.into(),
                normalized_name: ejgate_sdk::model::normalize_name(name),
                knowledge_area: None,
            }),
        }
    }

    fn existing_of(r: &Record, deleted: bool) -> Existing {
        Existing {
            kind: r.kind(),
            natural_key: r.entity.natural_key(),
            content_hash: content_hash(&r.entity.content_json()),
            deleted,
        }
    }

    #[test]
    fn unchanged_records_write_nothing_and_changes_are_classified() {
        let ids = IdSpace::new("t");
        let same = subject(&ids, "1", "Алгебра");
        let renamed_old = subject(&ids, "2", "Физика");
        let renamed_new = subject(&ids, "2", "Физика и астрономия");
        let gone = subject(&ids, "3", "Черчение");
        let revived = subject(&ids, "4", "Астрономия");
        let new = subject(&ids, "5", "Химия");
        let existing: HashMap<Uuid, Existing> = [
            (same.id, existing_of(&same, false)),
            (renamed_old.id, existing_of(&renamed_old, false)),
            (gone.id, existing_of(&gone, false)),
            (revived.id, existing_of(&revived, true)),
        ]
        .into_iter()
        .collect();
        let changes = diff(
            [same.clone(), renamed_new.clone(), revived.clone(), new.clone(), new.clone()].map(canonical).into(),
            &existing,
        );
        assert_eq!(changes.seen, vec![same.id]);
        let ops: Vec<(Uuid, ChangeOp)> = changes.upserts.iter().map(|u| (u.id, u.op)).collect();
        assert_eq!(
            ops,
            vec![(renamed_new.id, ChangeOp::KeyChange), (revived.id, ChangeOp::Insert), (new.id, ChangeOp::Insert)]
        );
        assert_eq!(changes.deletes, vec![(gone.id, EntityKind::Subject)]);
    }

    #[test]
    fn a_first_sync_looks_up_only_the_ids_it_has_written() {
        let id = |n: u128| Uuid::from_u128(n);
        let batch: Vec<Uuid> = (1..=5).rev().map(id).collect();

        // A source the store already holds: every id, in index order.
        assert_eq!(KnownIds::at_start(true).to_look_up(&batch), (1..=5).map(id).collect::<Vec<_>>());

        // A source the store holds nothing of: only what the run has written.
        let mut known = KnownIds::at_start(false);
        assert!(known.to_look_up(&batch).is_empty());
        known.wrote([id(4), id(2), id(9)].into_iter());
        assert_eq!(known.to_look_up(&batch), vec![id(2), id(4)]);

        // Past the limit the run stops tracking and looks up every id again.
        known.limit = 4;
        known.wrote([id(10), id(11)].into_iter());
        assert!(known.written.is_none());
        assert_eq!(known.to_look_up(&batch).len(), 5);
    }

    #[test]
    fn a_tombstone_not_brought_again_is_not_deleted_twice() {
        let ids = IdSpace::new("t");
        let dead = subject(&ids, "9", "Черчение");
        let existing: HashMap<Uuid, Existing> = [(dead.id, existing_of(&dead, true))].into_iter().collect();
        assert_eq!(diff(vec![], &existing).change_count(), 0);
    }
}

#[cfg(test)]
mod loud_tests;
