//! The Dnevnik emulator as the acceptance kit drives it (`ejgate_sdk::acceptance`; the
//! runner is `ejgate::acceptance`).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ejgate_sdk::acceptance::{fast_retries, EmulatedSystem, Failure, FailureCase};
use ejgate_sdk::connector::Connector;
use ejgate_sdk::synth::{SystemTruth, World};
use secrecy::SecretString;

use crate::emulator::{self, EmulatorHandle, EmulatorOptions, FailureMode};
use crate::{truth, DnevnikConfig, DnevnikConnector};

/// The token the emulator accepts.
pub const TOKEN: &str = "test-token-5f0c1e9a7d2b4c68a1e3";
/// The source instance the kit's connector is configured as.
pub const INSTANCE: &str = "dnevnik-test";

/// The Dnevnik emulator on loopback, with a connector configuration pointed at it.
pub struct DnevnikSystem {
    pub emulator: EmulatorHandle,
}

impl DnevnikSystem {
    /// The connector's configuration (fast retries), for tests that change it further.
    pub fn config(&self) -> DnevnikConfig {
        let mut c = DnevnikConfig::new(
            INSTANCE,
            self.emulator.base_url().parse().expect("the emulator's URL"),
            SecretString::from(TOKEN),
        );
        c.retry = fast_retries();
        c
    }
}

#[async_trait]
impl EmulatedSystem for DnevnikSystem {
    async fn start(world: World) -> std::io::Result<Self> {
        let emulator =
            emulator::start(world, EmulatorOptions::new(TOKEN), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        Ok(DnevnikSystem { emulator })
    }

    fn system(&self) -> &'static str {
        "dnevnik"
    }

    fn instance(&self) -> &str {
        INSTANCE
    }

    fn base_url(&self) -> String {
        self.emulator.base_url()
    }

    fn connector(&self) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(DnevnikConnector::new(self.config()).map_err(|e| e.to_string())?))
    }

    fn read_world(&self, f: &mut dyn FnMut(&World)) {
        self.emulator.world().read(|w| f(w))
    }

    fn advance(&self, days: u32) {
        self.emulator.world().advance(days);
    }

    fn truth(&self) -> &'static SystemTruth {
        &truth::TRUTH
    }

    fn failures(&self) -> Vec<FailureCase> {
        let plan = "GET users/me/context";
        vec![
            FailureCase::at_start(Failure::MalformedJson, plan, &["not the JSON"]),
            FailureCase::at_start(Failure::Html502, plan, &["HTML page (HTTP 502)"]),
            FailureCase::at_start(Failure::TruncatedBody, plan, &["cut off"]),
            // What to renew: the token comes from a sign-in through Госуслуги.
            FailureCase::at_start(Failure::Unauthorized, plan, &["invalidToken", "Госуслуги"]),
            FailureCase::mid_run(Failure::Html502, 80, &["GET "], &["HTML page (HTTP 502)"]),
            FailureCase::request_limit(60),
        ]
    }

    fn inject(&self, failure: Failure) {
        let state = self.emulator.state();
        let mode = match failure {
            Failure::MalformedJson => FailureMode::Malformed,
            Failure::Html502 => FailureMode::Html502,
            Failure::TruncatedBody => FailureMode::Truncated,
            Failure::Unauthorized => FailureMode::Unauthorized,
            Failure::RequestLimit(rps) => return state.set_request_limit(Some(rps)),
            other => panic!("the Dnevnik emulator cannot show {other:?}"),
        };
        state.set_failure(Some(mode), None);
    }

    fn clear(&self) {
        self.emulator.state().set_failure(None, None);
        self.emulator.state().set_request_limit(None);
    }

    fn requests(&self) -> u64 {
        self.emulator.stats().requests
    }

    fn limited(&self) -> u64 {
        self.emulator.stats().limited
    }

    fn secrets(&self) -> Vec<String> {
        vec![TOKEN.to_string()]
    }
}
