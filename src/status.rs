//! `ejgate status`: what the store holds and how the last runs went.

use serde::Serialize;

use crate::store::{KindCount, LeaseInfo, Store, StoreResult, SyncRun};

/// A run as `status` shows it: the stored run, and what to do about its error.
#[derive(Debug, Serialize)]
pub struct RunView {
    #[serde(flatten)]
    pub run: SyncRun,
    /// What to do, in plain words (from the error's kind); `null` when the run has no error
    /// or its kind was not recorded.
    pub what_to_do: Option<&'static str>,
}

impl From<SyncRun> for RunView {
    fn from(run: SyncRun) -> RunView {
        RunView { what_to_do: run.error_kind.map(|k| k.what_to_do()), run }
    }
}

/// The store's state as `status` shows it.
#[derive(Debug, Serialize)]
pub struct Status {
    pub backend: &'static str,
    /// Over every source.
    pub counts: Vec<KindCount>,
    /// Per configured source, in the configuration's order.
    pub sources: Vec<SourceCounts>,
    pub runs: Vec<RunView>,
    /// Leases held (or left behind by a process that stopped): who is writing which source.
    pub leases: Vec<LeaseInfo>,
    /// Sources that need a person (stale, or their last run failed): see
    /// [`crate::alerts`]; filled by [`Status::with_alerts`].
    pub alerts: Vec<crate::alerts::Alert>,
}

impl Status {
    /// The status with the alerts of the configuration's sources.
    pub async fn with_alerts(mut self, store: &dyn Store, config: &crate::config::Config) -> StoreResult<Status> {
        self.alerts = crate::alerts::check_alerts(store, config).await?;
        Ok(self)
    }
}

/// What one source instance brought.
#[derive(Debug, Serialize)]
pub struct SourceCounts {
    pub source: String,
    pub counts: Vec<KindCount>,
}

pub async fn status(store: &dyn Store, sources: &[String], runs: u32) -> StoreResult<Status> {
    let mut per_source = Vec::with_capacity(sources.len());
    for source in sources {
        per_source.push(SourceCounts { source: source.clone(), counts: store.counts(Some(source)).await? });
    }
    Ok(Status {
        backend: store.backend(),
        counts: store.counts(None).await?,
        sources: per_source,
        runs: store.runs(runs).await?.into_iter().map(RunView::from).collect(),
        leases: store.leases().await?,
        alerts: Vec::new(),
    })
}

/// What a `running` run is: one whose process holds the source's lease is going on; one
/// without a live lease was left by a process that stopped (the next run of the source
/// closes it as interrupted).
fn running_note(status: &Status, run: &SyncRun) -> String {
    let name = crate::lease::source_lease(&run.source);
    let now = chrono::Utc::now();
    match status.leases.iter().find(|l| l.name == name && l.expires_at > now) {
        Some(l) => format!(
            "        in progress: pid {} on host «{}» holds the source since {}\n",
            l.pid,
            l.host,
            l.acquired_at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        None => "        its process stopped before it finished (no live lease); the next run of the source \
                 closes it as interrupted\n"
            .to_string(),
    }
}

/// The status as text for a person.
pub fn render(status: &Status) -> String {
    let mut out = crate::alerts::render(&status.alerts);
    out.push_str(&format!("Store: {}\n\nRecords (live / deleted at the source):\n", status.backend));
    if status.counts.is_empty() {
        out.push_str("  none yet: run `ejgate sync`\n");
    }
    for c in &status.counts {
        out.push_str(&format!("  {:<16} {:>9} / {}\n", c.kind.as_str(), c.live, c.tombstones));
    }
    if status.sources.len() > 1 {
        for s in &status.sources {
            let live: u64 = s.counts.iter().map(|c| c.live).sum();
            let tombstones: u64 = s.counts.iter().map(|c| c.tombstones).sum();
            out.push_str(&format!("  from {:<20} {:>9} / {}\n", s.source, live, tombstones));
        }
    }
    out.push_str("\nLast runs:\n");
    if status.runs.is_empty() {
        out.push_str("  none\n");
    }
    for RunView { run: r, what_to_do } in &status.runs {
        out.push_str(&format!(
            "  #{:<4} {:<12} {:<11} {:<11} {} +{} ~{} -{}{}\n",
            r.id,
            r.source,
            r.mode,
            r.status.as_str(),
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.stats.inserted,
            r.stats.updated,
            r.stats.deleted,
            r.error.as_ref().map(|e| format!("\n        error: {e}")).unwrap_or_default()
        ));
        if let (Some(kind), Some(what)) = (r.error_kind, what_to_do) {
            out.push_str(&format!("        kind: {kind} — what to do: {what}\n"));
        }
        if r.stats.skipped > 0 {
            let streams: Vec<String> = r.stats.skipped_by_stream.iter().map(|(s, n)| format!("{s} {n}")).collect();
            out.push_str(&format!(
                "        {} source record(s) could not be read and were left out ({})\n",
                r.stats.skipped,
                streams.join(", ")
            ));
        }
        if r.status == crate::store::RunStatus::Running {
            out.push_str(&running_note(status, r));
        }
        if !r.stats.warnings.is_empty() {
            out.push_str(&format!("        {} warning(s), first: {}\n", r.stats.warnings.len(), r.stats.warnings[0]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{testing, RunError, RunErrorKind, RunStats, RunStatus};

    #[tokio::test]
    async fn a_failed_run_shows_its_kind_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await;
        let run = store.begin_run("dnevnik", "incremental").await.unwrap();
        let failure = RunError::new(RunErrorKind::Unauthorized, "source «dnevnik» (dnevnik): GET users/me: HTTP 401");
        let stats = RunStats {
            skipped: 3,
            skipped_by_stream: [("marks".to_string(), 3)].into_iter().collect(),
            ..RunStats::default()
        };
        store.finish_run(run, RunStatus::Failed, Some(&failure), &stats).await.unwrap();
        let ok = store.begin_run("epos", "full").await.unwrap();
        store.finish_run(ok, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();

        let st = status(&store, &["dnevnik".into(), "epos".into()], 10).await.unwrap();
        let text = render(&st);
        assert!(text.contains("error: source «dnevnik» (dnevnik): GET users/me: HTTP 401"), "{text}");
        assert!(text.contains("kind: unauthorized — what to do: renew the token"), "{text}");
        assert!(text.contains("3 source record(s) could not be read and were left out (marks 3)"), "{text}");
        assert_eq!(text.matches("kind:").count(), 1, "the succeeded run has no kind: {text}");

        let json = serde_json::to_value(&st).unwrap();
        let failed = &json["runs"][1];
        assert_eq!(failed["id"], serde_json::json!(run));
        assert_eq!(failed["error_kind"], "unauthorized");
        assert!(failed["what_to_do"].as_str().unwrap().starts_with("renew the token"));
        assert_eq!(json["runs"][0]["error_kind"], serde_json::Value::Null);
        assert_eq!(json["runs"][0]["what_to_do"], serde_json::Value::Null);
    }
}
