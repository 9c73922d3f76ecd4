//! `/metrics`: what ran and how it went, in the Prometheus text format (0.0.4), or in
//! OpenMetrics when the scraper asks for it (`Accept: application/openmetrics-text`),
//! written by the Prometheus project's Rust client (`prometheus-client`).
//!
//! **Where the numbers come from** (a choice): every value is read from the store at each
//! scrape — the runs table added up ([`Store::run_totals`]), the newest runs, the lease
//! takeovers — not counted in the process. So a counter equals what the store records,
//! stays where it was across a restart of `ejgate serve` (a counter kept in memory would
//! drop to zero), and is the same from every worker of a district sharing one PostgreSQL
//! (in-process counters would each hold one worker's share, and a sum over workers would
//! count a job that one worker took over from another twice). The cost is one grouped
//! query over the runs table per scrape: a few runs per source and night, thousands of
//! rows after years. What a run has not finished yet is not in the sums (its statistics
//! are written when it ends); `ejgate_sync_runs_running` says how many are going.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `ejgate_sync_runs_total` | counter | source, mode, status | finished sync runs (status: succeeded, failed, interrupted) |
//! | `ejgate_sync_runs_running` | gauge | source | runs going on (or left `running` by a process that died) |
//! | `ejgate_records_read_total` | counter | source | records read from the source |
//! | `ejgate_records_written_total` | counter | source, op | records written: op = inserted, updated, deleted (tombstones) |
//! | `ejgate_source_requests_total` | counter | source | HTTP requests sent to the source (retries included) |
//! | `ejgate_source_rate_limited_total` | counter | source | answers saying the source's request limit was reached |
//! | `ejgate_source_request_limit_waits_total` | counter | source | requests that waited for the request limit |
//! | `ejgate_source_request_limit_wait_seconds_total` | counter | source | how long they waited |
//! | `ejgate_source_last_success_timestamp_seconds` | gauge | source | end of the newest successful run (absent: never) |
//! | `ejgate_source_stale` | gauge | source | 1 when the source has no successful sync within its `stale_after_hours` |
//! | `ejgate_source_last_run_failed` | gauge | source | 1 when its newest finished run failed |
//! | `ejgate_job_runs_total` | counter | job, kind, outcome | job runs that ended: succeeded, failed, timed_out, skipped |
//! | `ejgate_job_runs_open` | gauge | job, kind, status | job runs due, running, or interrupted (to be taken up again) |
//! | `ejgate_job_retries_total` | counter | job | attempts beyond the first |
//! | `ejgate_job_runs_resumed_total` | counter | job | job runs taken up again after their worker died or stopped |
//! | `ejgate_job_last_success_timestamp_seconds` | gauge | job | end of the job's newest successful run (absent: never) |
//! | `ejgate_job_last_run_failed` | gauge | job | 1 when the job's newest run failed or timed out |
//! | `ejgate_backup_runs_total` | counter | outcome | backup runs: ok, degraded (a target not written), failed (none written) |
//! | `ejgate_backup_degraded` | gauge | | 1 when the newest backup run left a configured target unwritten (until a run writes it) |
//! | `ejgate_backup_target_up` | gauge | target | 1 when the newest backup run wrote and read back the target, 0 when it could not |
//! | `ejgate_backup_target_last_success_timestamp_seconds` | gauge | target | when a backup run last wrote the target (absent: never) |
//! | `ejgate_lease_takeovers_total` | counter | lease | leases taken over from a holder that stopped (`source:…`, `job:…`) |
//! | `ejgate_build_info` | gauge | version | 1 |

use std::collections::{BTreeMap, BTreeSet};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::alerts::{Alert, AlertKind};
use crate::config::Config;
use crate::schedule::Job;
use crate::store::{
    BackupOutcome, BackupTargetState, JobRunStatus, JobRunTotals, RunStatus, RunTotals, Store, StoreResult,
};

/// The text formats `/metrics` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (what a scraper gets unless it asks otherwise).
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What one scrape exports, read from the store.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The configured sources and every source the store has runs of.
    pub sources: BTreeSet<String>,
    pub totals: Vec<RunTotals>,
    pub takeovers: Vec<(String, u64)>,
    pub alerts: Vec<Alert>,
    pub job_totals: Vec<JobRunTotals>,
    /// The kind of each loaded job (`sync`, `sync --full`…), by name.
    pub job_kinds: BTreeMap<String, &'static str>,
    pub backup_totals: Vec<(BackupOutcome, u64)>,
    /// The targets backup runs tried (only those configured, when `[backup]` is there).
    pub backup_targets: Vec<BackupTargetState>,
}

impl Snapshot {
    /// `jobs`: the loaded schedules (their kinds label the job metrics).
    pub async fn read(store: &dyn Store, config: &Config, jobs: &[Job]) -> StoreResult<Snapshot> {
        let totals = store.run_totals().await?;
        let mut sources: BTreeSet<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        sources.extend(totals.iter().map(|t| t.source.clone()));
        Ok(Snapshot {
            sources,
            totals,
            takeovers: store.lease_takeovers().await?,
            alerts: crate::alerts::check_alerts(store, config).await?,
            job_totals: store.job_run_totals().await?,
            job_kinds: jobs.iter().map(|j| (j.name.clone(), j.kind.as_str())).collect(),
            backup_totals: store.backup_run_totals().await?,
            backup_targets: {
                let configured: Option<BTreeSet<&str>> =
                    config.backup.as_ref().map(|b| b.targets.iter().map(|t| t.name.get_ref().as_str()).collect());
                let mut all = store.backup_targets().await?;
                all.retain(|t| configured.as_ref().is_none_or(|c| c.contains(t.target.as_str())));
                all
            },
        })
    }

    /// The metrics in `format`.
    pub fn to_text(self, format: Format) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        let written = match format {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
        };
        // Writing into a String does not fail; the encoder's own checks (a label set twice)
        // would be a fault here.
        written.expect("the metrics encode");
        out
    }
}

/// Reads the store and writes the metrics.
pub async fn render(store: &dyn Store, config: &Config, jobs: &[Job], format: Format) -> StoreResult<String> {
    Ok(Snapshot::read(store, config, jobs).await?.to_text(format))
}

/// Per source, a value added over its totals.
fn per_source(snapshot: &Snapshot, value: impl Fn(&RunTotals) -> u64) -> BTreeMap<&str, u64> {
    let mut sums: BTreeMap<&str, u64> = snapshot.sources.iter().map(|s| (s.as_str(), 0)).collect();
    for t in &snapshot.totals {
        *sums.entry(t.source.as_str()).or_default() += value(t);
    }
    sums
}

fn counter<'a, N: prometheus_client::encoding::EncodeCounterValue + Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, N)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<'a, N: prometheus_client::encoding::EncodeGaugeValue + Copy + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, N)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in rows {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        let finished = self.totals.iter().filter(|t| t.status != RunStatus::Running);
        counter(
            e,
            "ejgate_sync_runs",
            "Finished sync runs, by source, mode and outcome.",
            finished.map(|t| {
                (vec![("source", t.source.as_str()), ("mode", t.mode.as_str()), ("status", t.status.as_str())], t.runs)
            }),
        )?;
        let running = per_source(self, |t| if t.status == RunStatus::Running { t.runs } else { 0 });
        gauge(
            e,
            "ejgate_sync_runs_running",
            "Sync runs going on (or left running by a process that stopped).",
            running.into_iter().map(|(s, n)| (vec![("source", s)], n as i64)),
        )?;
        let sums = |f: fn(&RunTotals) -> u64| per_source(self, f).into_iter().map(|(s, n)| (vec![("source", s)], n));
        counter(e, "ejgate_records_read", "Records read from the source.", sums(|t| t.records_read))?;
        let mut written = Vec::new();
        for (op, f) in [
            ("inserted", (|t: &RunTotals| t.inserted) as fn(&RunTotals) -> u64),
            ("updated", |t| t.updated),
            ("deleted", |t| t.deleted),
        ] {
            written.extend(per_source(self, f).into_iter().map(|(s, n)| (vec![("source", s), ("op", op)], n)));
        }
        counter(e, "ejgate_records_written", "Records written to the store, by operation.", written)?;
        counter(e, "ejgate_source_requests", "HTTP requests sent to the source.", sums(|t| t.requests))?;
        counter(
            e,
            "ejgate_source_rate_limited",
            "Answers of the source saying its request limit was reached.",
            sums(|t| t.rate_limited),
        )?;
        counter(
            e,
            "ejgate_source_request_limit_waits",
            "Requests that waited for the request limit before they were sent.",
            sums(|t| t.limit_waits),
        )?;
        let waited = per_source(self, |t| t.limit_wait_ms);
        counter(
            e,
            "ejgate_source_request_limit_wait_seconds",
            "Time requests waited for the request limit.",
            waited.into_iter().map(|(s, ms)| (vec![("source", s)], ms as f64 / 1000.0)),
        )?;
        let mut success: BTreeMap<&str, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
        for t in self.totals.iter().filter(|t| t.status == RunStatus::Succeeded) {
            if let Some(at) = t.last_finished_at {
                let newest = success.entry(t.source.as_str()).or_insert(at);
                *newest = (*newest).max(at);
            }
        }
        gauge(
            e,
            "ejgate_source_last_success_timestamp_seconds",
            "When the newest successful sync of the source finished (Unix time).",
            success.into_iter().map(|(s, at)| (vec![("source", s)], at.timestamp_micros() as f64 / 1e6)),
        )?;
        let flag = |kind: AlertKind| {
            self.sources.iter().map(move |s| {
                let on = self.alerts.iter().any(|a| a.kind == kind && a.source == *s);
                (vec![("source", s.as_str())], i64::from(on))
            })
        };
        gauge(
            e,
            "ejgate_source_stale",
            "1 when the source has not synced successfully within its stale_after_hours (or never).",
            flag(AlertKind::Stale),
        )?;
        gauge(e, "ejgate_source_last_run_failed", "1 when the newest finished run of the source failed.", {
            flag(AlertKind::LastRunFailed)
        })?;
        self.encode_jobs(e)?;
        self.encode_backups(e)?;
        counter(
            e,
            "ejgate_lease_takeovers",
            "Leases taken over from a holder that stopped renewing them.",
            self.takeovers.iter().map(|(name, n)| (vec![("lease", name.as_str())], *n)),
        )?;
        gauge(
            e,
            "ejgate_build_info",
            "The running ejgate's version.",
            [(vec![("version", env!("CARGO_PKG_VERSION"))], 1i64)],
        )?;
        Ok(())
    }
}

impl Snapshot {
    /// The backup families: every outcome appears, with zeros until there are runs.
    fn encode_backups(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        counter(
            e,
            "ejgate_backup_runs",
            "Backup runs, by outcome (degraded: a target was not written; failed: none was).",
            [BackupOutcome::Ok, BackupOutcome::Degraded, BackupOutcome::Failed].into_iter().map(|o| {
                let n = self.backup_totals.iter().filter(|(t, _)| *t == o).map(|(_, n)| n).sum::<u64>();
                (vec![("outcome", o.as_str())], n)
            }),
        )?;
        let down = self.backup_targets.iter().any(|t| t.last_error.is_some());
        gauge(
            e,
            "ejgate_backup_degraded",
            "1 when the newest backup run left a target unwritten (until a run writes it and fills its gap).",
            [(vec![], i64::from(down))],
        )?;
        gauge(
            e,
            "ejgate_backup_target_up",
            "1 when the newest backup run wrote and read back the target, 0 when it could not.",
            self.backup_targets
                .iter()
                .map(|t| (vec![("target", t.target.as_str())], i64::from(t.last_error.is_none()))),
        )?;
        gauge(
            e,
            "ejgate_backup_target_last_success_timestamp_seconds",
            "When a backup run last wrote the target and read it back (Unix time).",
            self.backup_targets.iter().filter_map(|t| {
                t.last_success_at.map(|at| (vec![("target", t.target.as_str())], at.timestamp_micros() as f64 / 1e6))
            }),
        )?;
        Ok(())
    }

    /// The job families: every loaded job appears, with zeros until it has runs.
    fn encode_jobs(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let kind = |job: &str| self.job_kinds.get(job).copied().unwrap_or("unknown");
        let mut jobs: BTreeSet<&str> = self.job_kinds.keys().map(String::as_str).collect();
        jobs.extend(self.job_totals.iter().map(|t| t.job.as_str()));
        let of = |job: &str, status: JobRunStatus| {
            self.job_totals.iter().filter(|t| t.job == job && t.status == status).map(|t| t.runs).sum::<u64>()
        };
        const ENDED: [JobRunStatus; 4] =
            [JobRunStatus::Succeeded, JobRunStatus::Failed, JobRunStatus::TimedOut, JobRunStatus::Skipped];
        const OPEN: [JobRunStatus; 3] = [JobRunStatus::Due, JobRunStatus::Running, JobRunStatus::Interrupted];
        let rows = |statuses: &'static [JobRunStatus], key: &'static str| {
            jobs.iter().flat_map(move |job| {
                statuses.iter().map(move |status| {
                    (vec![("job", *job), ("kind", kind(job)), (key, status.as_str())], of(job, *status))
                })
            })
        };
        counter(e, "ejgate_job_runs", "Job runs that ended, by job, kind and outcome.", rows(&ENDED, "outcome"))?;
        gauge(
            e,
            "ejgate_job_runs_open",
            "Job runs due, running, or interrupted and waiting to be taken up again.",
            rows(&OPEN, "status").map(|(labels, n)| (labels, n as i64)),
        )?;
        let sum = |f: fn(&JobRunTotals) -> u64| {
            jobs.iter().map(move |job| {
                (vec![("job", *job)], self.job_totals.iter().filter(|t| t.job == *job).map(f).sum::<u64>())
            })
        };
        counter(e, "ejgate_job_retries", "Attempts of job runs beyond the first.", sum(|t| t.retries))?;
        counter(
            e,
            "ejgate_job_runs_resumed",
            "Job runs taken up again after their worker died or stopped.",
            sum(|t| t.resumed),
        )?;
        let mut success: BTreeMap<&str, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
        for t in self.job_totals.iter().filter(|t| t.status == JobRunStatus::Succeeded) {
            if let Some(at) = t.last_finished_at {
                let newest = success.entry(t.job.as_str()).or_insert(at);
                *newest = (*newest).max(at);
            }
        }
        gauge(
            e,
            "ejgate_job_last_success_timestamp_seconds",
            "When the newest successful run of the job finished (Unix time).",
            success.into_iter().map(|(job, at)| (vec![("job", job)], at.timestamp_micros() as f64 / 1e6)),
        )?;
        gauge(
            e,
            "ejgate_job_last_run_failed",
            "1 when the newest run of the job failed or timed out.",
            jobs.iter().map(|job| {
                let on = self.alerts.iter().any(|a| a.kind == AlertKind::JobFailed && a.job.as_deref() == Some(*job));
                (vec![("job", *job)], i64::from(on))
            }),
        )?;
        Ok(())
    }
}
