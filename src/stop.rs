//! Clean stops. `ejgate sync` ends on Ctrl-C (SIGINT) or SIGTERM (a service manager, a
//! container stopping) without losing what it did: the first signal lets the batch being
//! written commit, stops fetching, and records the run as `interrupted` with its statistics;
//! a second signal exits at once. Before this, either signal ended the process where it
//! stood: the run stayed `running` until the next one, and its statistics were lost (+0
//! shown for 161,251 records written).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A request to stop, shared by whoever asks (the signal handler) and whoever stops (the
/// sync engine). The default is never asked.
#[derive(Clone)]
pub struct Stop {
    inner: Arc<Inner>,
}

struct Inner {
    requested: tokio::sync::watch::Sender<Option<&'static str>>,
    /// Set by the engine when it stopped because of the request.
    observed: AtomicBool,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            inner: Arc::new(Inner { requested: tokio::sync::watch::channel(None).0, observed: AtomicBool::new(false) }),
        }
    }
}

impl Stop {
    /// Asks to stop; `why` names the cause (`SIGTERM`).
    pub fn request(&self, why: &'static str) {
        self.inner.requested.send_replace(Some(why));
    }

    /// The cause, once a stop has been asked for.
    pub fn requested(&self) -> Option<&'static str> {
        *self.inner.requested.borrow()
    }

    /// Resolves when a stop is asked for (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.inner.requested.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// The engine stopped a run because of the request.
    pub fn observe(&self) {
        self.inner.observed.store(true, Ordering::SeqCst);
    }

    pub fn observed(&self) -> bool {
        self.inner.observed.load(Ordering::SeqCst)
    }
}

/// A stop asked for by SIGINT or SIGTERM. The first signal asks; a second one exits the
/// process at once (exit code 130), leaving its run `running` for the next run to close.
pub fn on_signals() -> std::io::Result<Stop> {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = Stop::default();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let asked = stop.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = interrupt.recv() => "SIGINT",
                Some(()) = terminate.recv() => "SIGTERM",
                else => return,
            };
            if asked.requested().is_some() {
                eprintln!("{name} again: stopping at once (the run is closed as interrupted by the next one)");
                std::process::exit(130);
            }
            eprintln!("{name}: the batch being written is finished, then the sync stops (again to stop at once)");
            asked.request(name);
        }
    });
    Ok(stop)
}
