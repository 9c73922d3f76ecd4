//! `ejgate status`: what the store holds and how the last runs went.

use serde::Serialize;

use crate::store::{KindCount, Store, StoreResult, SyncRun};

/// The store's state as `status` shows it.
#[derive(Debug, Serialize)]
pub struct Status {
    pub backend: &'static str,
    /// Over every source.
    pub counts: Vec<KindCount>,
    /// Per configured source, in the configuration's order.
    pub sources: Vec<SourceCounts>,
    pub runs: Vec<SyncRun>,
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
    })
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
        if !r.stats.warnings.is_empty() {
            out.push_str(&format!("        {} warning(s), first: {}\n", r.stats.warnings.len(), r.stats.warnings[0]));
        }
    }
    out
}
