//! Alerting the person responsible (оповещение ответственного): the configured sources that
//! need someone — one without a successful sync for longer than its `stale_after_hours`
//! (or never synced), one whose last run failed — the daemon's jobs whose last run
//! failed or ran out of time, and the backup targets the newest backup run did not write.
//!
//! [`check_alerts`] reads them from the store, so every view agrees: `ejgate status` shows
//! them, `/metrics` exports them (`ejgate_source_stale`, `ejgate_source_last_run_failed`),
//! and `ejgate serve` checks every minute ([`watch`]) and logs each at error level, naming
//! the source and what to do. The log line is written when an alert appears or changes
//! (another failed run), again every [`REPEAT`] while it lasts, and an info line when it
//! clears: a journal read the next morning shows the alert without a line a minute.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::store::{JobRunStatus, RunErrorKind, RunId, RunStatus, Store, StoreResult};

/// How often [`watch`] checks.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// How often an alert that lasts is logged again.
pub const REPEAT: Duration = Duration::from_secs(6 * 3600);

/// Why a source needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// No successful sync for longer than the source's `stale_after_hours`, or never.
    Stale,
    /// The newest finished run of the source failed.
    LastRunFailed,
    /// The newest run of a job of the daemon failed or ran out of time (retries spent).
    JobFailed,
    /// The newest backup run did not write a backup target: the backups are in fewer
    /// places than configured (REGULATIONS A7) until a run writes it again.
    BackupTargetDown,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Stale => "stale",
            AlertKind::LastRunFailed => "last_run_failed",
            AlertKind::JobFailed => "job_failed",
            AlertKind::BackupTargetDown => "backup_target_down",
        }
    }
}

/// One alert (оповещение).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// The source (empty for a job's alert).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The job, for `job_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The backup target, for `backup_target_down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub kind: AlertKind,
    /// When the source last synced successfully; `None`: never.
    pub last_success: Option<DateTime<Utc>>,
    /// The threshold of a stale source.
    pub stale_after_hours: i64,
    /// The failed run (`last_run_failed`).
    pub run: Option<RunId>,
    pub error_kind: Option<RunErrorKind>,
    /// One line for a person: the source, what is wrong, what to do.
    pub message: String,
}

/// The alerts of the configured sources now.
pub async fn check_alerts(store: &dyn Store, config: &Config) -> StoreResult<Vec<Alert>> {
    check_alerts_at(store, config, Utc::now()).await
}

/// [`check_alerts`] at a given time (tests move the clock instead of waiting).
pub async fn check_alerts_at(store: &dyn Store, config: &Config, now: DateTime<Utc>) -> StoreResult<Vec<Alert>> {
    let mut last_success: HashMap<String, DateTime<Utc>> = HashMap::new();
    for t in store.run_totals().await? {
        if t.status == RunStatus::Succeeded {
            if let Some(at) = t.last_finished_at {
                let newest = last_success.entry(t.source).or_insert(at);
                *newest = (*newest).max(at);
            }
        }
    }
    let last_runs: HashMap<String, _> =
        store.last_finished_runs().await?.into_iter().map(|r| (r.source.clone(), r)).collect();
    let mut alerts = Vec::new();
    for source in &config.sources {
        let name = &source.name;
        let limit = source.stale_after(config);
        let hours = limit.num_hours();
        let success = last_success.get(name).copied();
        let stale = success.is_none_or(|at| now.signed_duration_since(at) > limit);
        if stale {
            let message = match success {
                None => format!(
                    "source «{name}» has never synced successfully: run `ejgate sync --source {name} --full`, or \
                     check that `ejgate serve` runs a sync job for it (`ejgate jobs`); `ejgate status` shows the \
                     errors of its runs"
                ),
                Some(at) => format!(
                    "source «{name}» has not synced successfully for {} h (last success {}; the limit is {hours} h): \
                     see `ejgate status` for the errors of its runs, and check that `ejgate serve` runs and has a \
                     sync job for it (`ejgate jobs`)",
                    now.signed_duration_since(at).num_hours(),
                    at.format("%Y-%m-%d %H:%M UTC"),
                ),
            };
            alerts.push(Alert {
                source: name.clone(),
                job: None,
                target: None,
                kind: AlertKind::Stale,
                last_success: success,
                stale_after_hours: hours,
                run: None,
                error_kind: None,
                message,
            });
        }
        if let Some(run) = last_runs.get(name).filter(|r| r.status == RunStatus::Failed) {
            let what = run.error_kind.map(|k| k.what_to_do()).unwrap_or("read the error and run the sync again");
            let message = format!(
                "source «{name}»: its last run #{} ({}, {}) failed{}: {}. What to do: {what}",
                run.id,
                run.mode,
                run.started_at.format("%Y-%m-%d %H:%M UTC"),
                run.error_kind.map(|k| format!(" ({k})")).unwrap_or_default(),
                run.error.as_deref().unwrap_or("no error recorded"),
            );
            alerts.push(Alert {
                source: name.clone(),
                job: None,
                target: None,
                kind: AlertKind::LastRunFailed,
                last_success: success,
                stale_after_hours: hours,
                run: Some(run.id),
                error_kind: run.error_kind,
                message,
            });
        }
    }
    // The daemon's jobs: the newest run of each (a run of it going on now hides the
    // failure before it until it ends).
    for run in store.last_job_runs().await? {
        if !matches!(run.status, JobRunStatus::Failed | JobRunStatus::TimedOut) {
            continue;
        }
        let what = run.error_kind.map(|k| k.what_to_do()).unwrap_or("read the error in `ejgate jobs`");
        let message = format!(
            "job «{}»: its run of {} {} after {} attempt(s){}: {}. What to do: {what}; `ejgate jobs run {}` runs it \
             again now",
            run.job,
            run.scheduled_at.format("%Y-%m-%d %H:%M UTC"),
            if run.status == JobRunStatus::TimedOut { "ran out of time" } else { "failed" },
            run.attempt,
            run.error_kind.map(|k| format!(" ({k})")).unwrap_or_default(),
            run.error.as_deref().unwrap_or("no error recorded"),
            run.job,
        );
        alerts.push(Alert {
            source: String::new(),
            job: Some(run.job.clone()),
            target: None,
            kind: AlertKind::JobFailed,
            last_success: None,
            stale_after_hours: 0,
            run: Some(run.id),
            error_kind: run.error_kind,
            message,
        });
    }
    // The backup targets the newest run did not write (those still configured).
    let configured: Option<Vec<&str>> =
        config.backup.as_ref().map(|b| b.targets.iter().map(|t| t.name.get_ref().as_str()).collect());
    for t in store.backup_targets().await? {
        let Some(error) = &t.last_error else { continue };
        if configured.as_ref().is_some_and(|names| !names.contains(&t.target.as_str())) {
            continue;
        }
        let message = format!(
            "backup target «{}» was not written by backup {} ({}): {error}. Its last backup written: {}. What to do: \
             bring the target back (mount the drive, start the server, check the network and credentials) and run \
             `ejgate backup`: it copies the missing backups there",
            t.target,
            t.last_backup_id,
            t.last_attempt_at.format("%Y-%m-%d %H:%M UTC"),
            t.last_success_at.map_or("never".to_string(), |at| at.format("%Y-%m-%d %H:%M UTC").to_string()),
        );
        alerts.push(Alert {
            source: String::new(),
            job: None,
            target: Some(t.target.clone()),
            kind: AlertKind::BackupTargetDown,
            last_success: t.last_success_at,
            stale_after_hours: 0,
            run: None,
            error_kind: None,
            message,
        });
    }
    Ok(alerts)
}

/// What has been logged, so that an alert is logged when it appears or changes, every
/// [`REPEAT`] while it lasts, and once more (at info) when it clears.
#[derive(Debug, Default)]
pub struct AlertLog {
    logged: HashMap<(String, AlertKind), (Option<RunId>, tokio::time::Instant)>,
}

impl AlertLog {
    /// Logs what is due of `alerts` (the whole list of the moment).
    pub fn log(&mut self, alerts: &[Alert]) {
        let now = tokio::time::Instant::now();
        let mut current = std::collections::HashSet::new();
        for a in alerts {
            let key = (a.job.clone().or_else(|| a.target.clone()).unwrap_or_else(|| a.source.clone()), a.kind);
            current.insert(key.clone());
            let due = match self.logged.get(&key) {
                None => true,
                Some((run, at)) => *run != a.run || now.duration_since(*at) >= REPEAT,
            };
            if due {
                tracing::error!(alert = a.kind.as_str(), "{}", a.message);
                self.logged.insert(key, (a.run, now));
            }
        }
        self.logged.retain(|key, _| {
            let lasts = current.contains(key);
            if !lasts {
                tracing::info!(alert = key.1.as_str(), "«{}»: the alert cleared", key.0);
            }
            lasts
        });
    }
}

/// Checks the alerts every [`CHECK_EVERY`] and logs them ([`AlertLog`]) until `stop`
/// completes. A store that cannot be read is a warning, and the next check tries again.
pub async fn watch(store: Arc<dyn Store>, config: Arc<Config>, stop: impl Future<Output = ()>) {
    let mut log = AlertLog::default();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        match check_alerts(store.as_ref(), &config).await {
            Ok(alerts) => log.log(&alerts),
            Err(e) => tracing::warn!("cannot check the sources' alerts (tries again in a minute): {e}"),
        }
    }
}

/// The alerts as text for a person (`ejgate status`).
pub fn render(alerts: &[Alert]) -> String {
    if alerts.is_empty() {
        return String::new();
    }
    let mut out = format!("Alerts ({}):\n", alerts.len());
    for a in alerts {
        out.push_str(&format!("  ! {}\n", a.message));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{testing, RunError, RunStats};

    fn config(extra: &str) -> Config {
        let text = format!(
            "[store]\nurl = \"sqlite://x.db\"\n{extra}\n[[source]]\nname = \"a\"\nsystem = \"dnevnik\"\n\
             base_url = \"http://x/\"\ntoken_env = \"T\"\n[[source]]\nname = \"b\"\nsystem = \"dnevnik\"\n\
             base_url = \"http://x/\"\ntoken_env = \"T\"\nstale_after_hours = 2\n"
        );
        Config::parse(&text, std::path::Path::new("e.toml")).unwrap()
    }

    #[tokio::test]
    async fn stale_and_failed_sources_are_alerts_by_the_store_and_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await;
        let config = config("[alerts]\nstale_after_hours = 10\n");
        // Nothing synced yet: both sources are stale, never synced.
        let alerts = check_alerts(&store, &config).await.unwrap();
        assert_eq!(
            alerts.iter().map(|a| (a.source.as_str(), a.kind)).collect::<Vec<_>>(),
            [("a", AlertKind::Stale), ("b", AlertKind::Stale)]
        );
        assert!(alerts[0].message.contains("never synced") && alerts[0].last_success.is_none(), "{alerts:?}");

        for source in ["a", "b"] {
            let run = store.begin_run(source, "full").await.unwrap();
            store.finish_run(run, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();
        }
        // The later of the two successes (b's).
        let synced = store.run_totals().await.unwrap().iter().filter_map(|t| t.last_finished_at).max().unwrap();
        assert!(check_alerts_at(&store, &config, synced).await.unwrap().is_empty());
        // Three hours later b (2 h) is stale, a (10 h) is not; eleven hours later both.
        let later = check_alerts_at(&store, &config, synced + chrono::TimeDelta::hours(3)).await.unwrap();
        assert_eq!(later.len(), 1, "{later:?}");
        assert_eq!((later[0].source.as_str(), later[0].kind, later[0].stale_after_hours), ("b", AlertKind::Stale, 2));
        assert!(later[0].message.contains("for 3 h") && later[0].message.contains("the limit is 2 h"), "{later:?}");
        assert_eq!(check_alerts_at(&store, &config, synced + chrono::TimeDelta::hours(11)).await.unwrap().len(), 2);

        // a's next run fails: an alert with its kind and what to do, though a is not stale.
        let run = store.begin_run("a", "incremental").await.unwrap();
        let failure = RunError::new(RunErrorKind::Unauthorized, "source «a» (dnevnik): GET users/me: HTTP 401");
        store.finish_run(run, RunStatus::Failed, Some(&failure), &RunStats::default()).await.unwrap();
        let alerts = check_alerts_at(&store, &config, synced).await.unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(
            (alerts[0].kind, alerts[0].run, alerts[0].error_kind),
            (AlertKind::LastRunFailed, Some(run), Some(RunErrorKind::Unauthorized))
        );
        assert!(alerts[0].message.contains("HTTP 401") && alerts[0].message.contains("renew the token"), "{alerts:?}");
        // A run still going does not hide the failure; a later success clears it.
        let going = store.begin_run("a", "incremental").await.unwrap();
        assert_eq!(check_alerts_at(&store, &config, synced).await.unwrap().len(), 1);
        store.finish_run(going, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();
        assert!(check_alerts_at(&store, &config, synced).await.unwrap().is_empty());
    }
}
