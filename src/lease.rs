//! One writer at a time: leases in the store.
//!
//! A sync of a source and an import into it hold the lease `source:<name>` for the whole
//! run ([`source_lease`]); a second process (or a second run in the same process) asking
//! for it is refused with who holds it and since when ([`crate::store::StoreError::LeaseHeld`]).
//! Two syncs of one source at once had each diffed against the store before the other
//! wrote, and inserted every record twice into the change log.
//!
//! The holder renews its lease every third of its time to live from a task of its own (the
//! heartbeat), so a holder that is killed stops renewing and its lease expires: the next run
//! after [`SOURCE_LEASE_TTL`] takes it over, and at once when the holder was a process of
//! this host that no longer runs. The daemon's job leases use the same table and type:
//! a lease is only a name, a holder (host, pid) and an expiry.
//!
//! What a lease does not do: fence a holder that was paused for longer than its time to live
//! (stopped with SIGSTOP, a VM frozen) and then wakes up while another holds the lease. Its
//! heartbeat then finds the lease gone and [`Lease::lost`] stops the run at its next write;
//! a batch already being written when it wakes still commits.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{LeaseInfo, LeaseOutcome, LeaseRequest, Store, StoreError, StoreResult};

/// How long a source's lease lasts without a renewal: a killed sync blocks the next one
/// (from another host) at most this long.
pub const SOURCE_LEASE_TTL: Duration = Duration::from_secs(30);

/// The name of a source's lease.
pub fn source_lease(source: &str) -> String {
    format!("source:{source}")
}

/// This host's name, as leases record their holders.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether a process of this host runs. Without `/proc` (not Linux) it is taken to run, and
/// its lease is waited out.
fn process_runs(pid: u32) -> bool {
    if !std::path::Path::new("/proc/self").exists() {
        return true;
    }
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// A lease this process holds, renewed by its heartbeat until [`Lease::release`] (or the
/// value is dropped: then it is no longer renewed and expires).
pub struct Lease {
    info: LeaseInfo,
    store: Arc<dyn Store>,
    heartbeat: tokio::task::JoinHandle<()>,
    lost: Arc<Mutex<Option<String>>>,
}

impl Lease {
    /// Takes the lease `name` or tells who holds it ([`StoreError::LeaseHeld`]). A lease of
    /// a process of this host that no longer runs is taken over at once; an expired one is
    /// taken over with a warning naming its holder.
    pub async fn acquire(store: &dyn Store, name: &str, ttl: Duration) -> StoreResult<Lease> {
        let host = host_name();
        let pid = std::process::id();
        let mut request = LeaseRequest { name, host: &host, pid, ttl, replace: None };
        let mut outcome = store.acquire_lease(&request).await?;
        if let LeaseOutcome::Held(held) = &outcome {
            if held.host == host && held.pid != pid && !process_runs(held.pid) {
                request.replace = Some(held.token);
                outcome = store.acquire_lease(&request).await?;
            }
        }
        let (info, took_over) = match outcome {
            LeaseOutcome::Held(held) => return Err(StoreError::LeaseHeld(held)),
            LeaseOutcome::Acquired { lease, took_over } => (lease, took_over),
        };
        if let Some(old) = took_over {
            tracing::warn!(
                "took over «{name}» from pid {} on host «{}» (held since {}, last renewed {}): that process \
                 stopped without giving it up",
                old.pid,
                old.host,
                old.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"),
                old.renewed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            );
        }
        let lost = Arc::new(Mutex::new(None));
        let heartbeat = tokio::spawn(heartbeat(store.shared(), info.name.clone(), info.token, ttl, lost.clone()));
        Ok(Lease { info, store: store.shared(), heartbeat, lost })
    }

    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }

    /// Why the lease is no longer held, if it is not: the holder must stop writing.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().map(|l| l.clone()).unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Stops the heartbeat and gives the lease up.
    pub async fn release(self) {
        self.heartbeat.abort();
        if let Err(e) = self.store.release_lease(&self.info.name, self.info.token).await {
            // It expires by itself.
            tracing::warn!("could not give up the lease «{}»: {e}", self.info.name);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Renews the lease every third of its time to live. A renewal that finds the lease taken
/// over, or renewals failing for longer than the time to live, mark it lost.
async fn heartbeat(
    store: Arc<dyn Store>,
    name: String,
    token: uuid::Uuid,
    ttl: Duration,
    lost: Arc<Mutex<Option<String>>>,
) {
    let every = (ttl / 3).max(Duration::from_millis(10));
    let mut renewed = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let why = match store.renew_lease(&name, token, ttl).await {
            Ok(true) => {
                renewed = Instant::now();
                continue;
            }
            Ok(false) => format!(
                "the lease «{name}» expired and another process took it over (this one did not renew it for \
                 {} s: was it paused?); this run stopped writing",
                ttl.as_secs()
            ),
            Err(e) if renewed.elapsed() >= ttl => {
                format!(
                    "the lease «{name}» could not be renewed for {} s ({e}); this run stopped writing",
                    ttl.as_secs()
                )
            }
            Err(e) => {
                tracing::warn!("could not renew the lease «{name}» (tries again in {} s): {e}", every.as_secs());
                continue;
            }
        };
        if let Ok(mut l) = lost.lock() {
            *l = Some(why);
        }
        return;
    }
}
