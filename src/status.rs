//! `ejgate status`: what the store holds and how the last runs went.

use serde::Serialize;

use crate::store::{KindCount, LeaseInfo, Store, StoreResult, SyncRun};

/// The store's state as `status` shows it.
#[derive(Debug, Serialize)]
pub struct Status {
    pub backend: &'static str,
    /// Over every source.
    pub counts: Vec<KindCount>,
    /// Per configured source, in the configuration's order.
    pub sources: Vec<SourceCounts>,
    pub runs: Vec<SyncRun>,
    /// Leases held (or left behind by a process that stopped): who is writing which source.
    pub leases: Vec<LeaseInfo>,
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
        runs: store.runs(runs).await?,
        leases: store.leases().await?,
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
    let mut out = String::new();
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
    for r in &status.runs {
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
        if r.status == crate::store::RunStatus::Running {
            out.push_str(&running_note(status, r));
        }
        if !r.stats.warnings.is_empty() {
            out.push_str(&format!("        {} warning(s), first: {}\n", r.stats.warnings.len(), r.stats.warnings[0]));
        }
    }
    out
}
