//! The ЭПОС.Школа emulator as the acceptance kit drives it (`ejgate_sdk::acceptance`; the
//! runner is `ejgate::acceptance`).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ejgate_sdk::acceptance::{fast_retries, EmulatedSystem, Failure, FailureCase};
use ejgate_sdk::connector::Connector;
use ejgate_sdk::synth::{SystemTruth, World};
use secrecy::SecretString;

use crate::emulator::{self, EmulatorHandle, EmulatorOptions, FailureMode};
use crate::{truth, EposConfig, EposConnector};

/// The token the emulator accepts.
pub const TOKEN: &str = "epos-session-token-3b9d7e1f0a2c";
/// The source instance the kit's connector is configured as.
pub const INSTANCE: &str = "epos-test";
/// Where the configuration says the token comes from (errors name it).
pub const TOKEN_ORIGIN: &str = "/etc/ejgate/epos.token (EJGATE_EPOS_TOKEN)";

/// The ЭПОС.Школа emulator on loopback, with a connector configuration pointed at it.
pub struct EposSystem {
    pub emulator: EmulatorHandle,
}

impl EposSystem {
    /// The connector's configuration (fast retries), for tests that change it further.
    pub fn config(&self) -> EposConfig {
        let mut c = EposConfig::new(
            INSTANCE,
            self.emulator.base_url().parse().expect("the emulator's URL"),
            SecretString::from(TOKEN),
        );
        c.token_origin = TOKEN_ORIGIN.into();
        c.retry = fast_retries();
        c
    }
}

#[async_trait]
impl EmulatedSystem for EposSystem {
    async fn start(world: World) -> std::io::Result<Self> {
        let emulator =
            emulator::start(world, EmulatorOptions::new(TOKEN), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        Ok(EposSystem { emulator })
    }

    fn system(&self) -> &'static str {
        "epos"
    }

    fn instance(&self) -> &str {
        INSTANCE
    }

    fn base_url(&self) -> String {
        self.emulator.base_url()
    }

    fn connector(&self) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(EposConnector::new(self.config()).map_err(|e| e.to_string())?))
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
        let plan = "POST lms/api/sessions";
        let lost_session = "Предыдущая сессия работы в ЭЖД завершена";
        // What to renew, where to put it, and that nothing is lost.
        let renew = ["Госуслуги", "auth_token", TOKEN_ORIGIN, "nothing already synced is lost"];
        let session =
            |status: &'static str| -> Vec<&'static str> { [status, lost_session].into_iter().chain(renew).collect() };
        vec![
            FailureCase::at_start(Failure::Unauthorized, plan, &session("HTTP 401")),
            // The platform answers an expired token with 400 and the same body.
            FailureCase::at_start(Failure::ExpiredToken, plan, &session("HTTP 400")),
            FailureCase::at_start(Failure::Html502, plan, &["HTML page (HTTP 502)", "502 Bad Gateway"]),
            FailureCase::at_start(Failure::MalformedJson, plan, &["JSON", "Nothing of this batch was written"]),
            FailureCase::at_start(Failure::TruncatedBody, plan, &["cut off"]),
            // The token expires in the middle of a run: a data endpoint refuses it.
            FailureCase::mid_run(
                Failure::ExpiredToken,
                40,
                &["GET core/api/", "GET jersey/api/", "GET reports/api/"],
                &["HTTP 400", "Госуслуги"],
            ),
            FailureCase::request_limit(40),
        ]
    }

    fn inject(&self, failure: Failure) {
        let state = self.emulator.state();
        let mode = match failure {
            Failure::MalformedJson => FailureMode::Malformed,
            Failure::Html502 => FailureMode::Html502,
            Failure::TruncatedBody => FailureMode::Truncated,
            Failure::Unauthorized => FailureMode::Unauthorized,
            Failure::ExpiredToken => FailureMode::Expired,
            Failure::RequestLimit(rps) => return state.set_request_limit(Some(rps)),
            other => panic!("the ЭПОС emulator cannot show {other:?}"),
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
