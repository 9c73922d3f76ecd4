//! The connector acceptance kit's contract (issue #3, item 8): what every emulated system
//! offers so that one kit can check every connector the same way.
//!
//! The kit is split in two, because its checks need the store and the sync engine, which
//! live in the `ejgate` package, and the SDK cannot depend on it:
//!
//! - **here, in the SDK** — the contract: [`EmulatedSystem`], implemented once per connector
//!   crate (behind its `emulator` and `acceptance` features) over its emulator or stand-in:
//!   the synthetic school it serves, a connector pointed at it with fast retries, advancing
//!   the school, the ground truth of what the system exposes (the connector's
//!   `truth::TRUTH`, a [`SystemTruth`]; its README lists what the API does not
//!   expose), and the failures it can be made to show ([`FailureCase`]);
//! - **in `ejgate::acceptance`** (feature `acceptance` of the `ejgate` package) — the runner
//!   that takes `&dyn EmulatedSystem`, syncs it into fresh SQLite stores and asserts:
//!   (a) a sync into an empty store reproduces the ground truth for every exposed kind;
//!   (b) a re-sync without change writes nothing; (c) after the school advances N days the
//!   change log holds exactly the generator's net changes; (d) every declared failure fails
//!   the run with an error naming the source and the endpoint (or file), without a secret,
//!   records the run as failed, loses nothing committed, and the next run completes; a
//!   request limit is absorbed.
//!
//! Everything here is behind the SDK's `acceptance` feature: production builds do not
//! carry it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::client::RetryPolicy;
use crate::connector::Connector;
use crate::model::EntityKind;
use crate::synth::{SystemTruth, World};

/// A failure an emulated system can be switched into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// HTTP 200 with a body that is not the JSON it should be.
    MalformedJson,
    /// HTTP 502 with the front proxy's HTML error page.
    Html502,
    /// The body ends before its `Content-Length` (connection cut).
    TruncatedBody,
    /// HTTP 401: the token is refused (revoked).
    Unauthorized,
    /// The token has expired (however the system says so: 400, 401, a refused refresh).
    ExpiredToken,
    /// The system's per-token request limit, in requests per second. Not a failure of the
    /// run: the connector must absorb it (back off and complete).
    RequestLimit(u32),
    /// An export file that is not what its extension says (an HTML page saved as `.xlsx`).
    MalformedFile,
    /// An export file cut off in the middle (an interrupted export or copy).
    TruncatedFile,
    /// An export file whose bytes are not in the encoding it declares.
    WrongEncoding,
}

impl Failure {
    /// Whether the run must fail (every failure but the request limit).
    pub fn fails_the_run(self) -> bool {
        !matches!(self, Failure::RequestLimit(_))
    }
}

/// One failure a system declares, and what the kit must see when it is switched on.
#[derive(Debug, Clone)]
pub struct FailureCase {
    pub failure: Failure,
    /// 0: every answer fails from the first request of the run (the plan fails, so nothing
    /// of the run is written). N > 0: the failure is switched on after the run's N-th request,
    /// in a full sync into an empty store with one chunk at a time: the batches committed
    /// before it must stay, with their change-log rows.
    pub after_requests: u64,
    /// The endpoint (`GET users/me/context`) or file (`journal.xml`) the error must name;
    /// one of these (several when the failure may hit any of a few data endpoints).
    pub endpoints: Vec<String>,
    /// Further text the error must contain (what went wrong, what the operator should do).
    pub expect: Vec<String>,
    /// After the switch is off, the source still refuses until the operator acts (signs in
    /// again): the kit checks that one more run fails, then calls
    /// [`EmulatedSystem::operator_renews`].
    pub needs_operator: bool,
}

impl FailureCase {
    /// A failure from the first request, whose error names `endpoint` and contains `expect`.
    pub fn at_start(failure: Failure, endpoint: &str, expect: &[&str]) -> FailureCase {
        FailureCase {
            failure,
            after_requests: 0,
            endpoints: vec![endpoint.to_string()],
            expect: expect.iter().map(|s| s.to_string()).collect(),
            needs_operator: false,
        }
    }

    /// The failure switched on after `requests` requests of a full sync into an empty store;
    /// the error names one of `endpoints`.
    pub fn mid_run(failure: Failure, requests: u64, endpoints: &[&str], expect: &[&str]) -> FailureCase {
        FailureCase {
            failure,
            after_requests: requests,
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            expect: expect.iter().map(|s| s.to_string()).collect(),
            needs_operator: false,
        }
    }

    /// The request limit: a full sync with it on must complete.
    pub fn request_limit(per_second: u32) -> FailureCase {
        FailureCase {
            failure: Failure::RequestLimit(per_second),
            after_requests: 0,
            endpoints: Vec::new(),
            expect: Vec::new(),
            needs_operator: false,
        }
    }

    /// The source keeps refusing after the switch is off, until the operator signs in again.
    pub fn needing_the_operator(mut self) -> FailureCase {
        self.needs_operator = true;
        self
    }
}

/// An emulated journal system serving a synthetic school, as the acceptance kit drives it.
///
/// One implementation per connector crate. The methods take `&self`: implementations keep
/// their mutable parts (the world, failure switches) behind the emulator's own locks.
#[async_trait]
pub trait EmulatedSystem: Send + Sync {
    /// Starts serving `world` (on loopback for an HTTP system; as an export directory for
    /// the files connector).
    async fn start(world: World) -> std::io::Result<Self>
    where
        Self: Sized;

    /// The system's name as connectors report it (`dnevnik`).
    fn system(&self) -> &'static str;

    /// The source instance name the connector is configured with.
    fn instance(&self) -> &str;

    /// Where the connector reads: the emulator's base URL, or the export directory.
    fn base_url(&self) -> String;

    /// A new connector pointed at the system, with fast retries ([`fast_retries`]).
    fn connector(&self) -> Result<Arc<dyn Connector>, String>;

    /// Runs `f` over the world as the system serves it now.
    fn read_world(&self, f: &mut dyn FnMut(&World));

    /// The school lives `days` more days (and, for files, is exported again).
    fn advance(&self, days: u32);

    /// What the connector exposes and the ground truth of a complete sync: its
    /// `truth::TRUTH`.
    fn truth(&self) -> &'static SystemTruth;

    /// The failures this system can show, with what the kit must see for each.
    fn failures(&self) -> Vec<FailureCase>;

    /// Switches `failure` on (for a request limit: the limit).
    fn inject(&self, failure: Failure);

    /// Switches every failure off.
    fn clear(&self);

    /// The operator signs in again and puts the new token where the configuration says
    /// (only called for cases [`FailureCase::needs_operator`]).
    fn operator_renews(&self) {}

    /// API requests the system has answered so far (0 for a system without requests).
    fn requests(&self) -> u64;

    /// Requests refused for the request limit so far.
    fn limited(&self) -> u64;

    /// Whether the run's first report may carry warnings (a code table not knowing a code
    /// the system uses); `false` for every system today.
    fn warnings_expected(&self) -> bool {
        false
    }

    /// Text that must never appear in an error: the tokens in force now.
    fn secrets(&self) -> Vec<String>;
}

impl dyn EmulatedSystem + '_ {
    /// The ground truth of the world as served now.
    pub fn expected_now(&self) -> BTreeMap<EntityKind, u64> {
        let mut out = BTreeMap::new();
        self.read_world(&mut |w| out = self.truth().expected_counts(w));
        out
    }

    /// The sequence number of the world's last change.
    pub fn last_seq(&self) -> u64 {
        let mut out = 0;
        self.read_world(&mut |w| out = w.last_seq());
        out
    }

    /// The net changes after `seq` of records the connector reads: (kind, source id, op).
    pub fn exposed_changes_since(&self, seq: u64) -> Vec<(EntityKind, String, crate::synth::NetOp)> {
        let mut out = Vec::new();
        self.read_world(&mut |w| {
            out = w
                .net_changes_since(seq)
                .into_iter()
                .filter(|c| self.truth().is_exposed(w, c.kind, &c.key))
                .map(|c| (c.kind, c.key, c.op))
                .collect()
        });
        out
    }
}

/// The retry policy of connectors under test: a few quick attempts (tests must not wait out
/// production backoffs), and patience with the request limit.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        max_rate_limited_attempts: 50,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(200),
    }
}
