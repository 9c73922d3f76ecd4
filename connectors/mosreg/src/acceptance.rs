//! The «Моя школа» emulator as the acceptance kit drives it (`ejgate_sdk::acceptance`; the
//! runner is `ejgate::acceptance`).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ejgate_sdk::acceptance::{fast_retries, EmulatedSystem, Failure, FailureCase};
use ejgate_sdk::connector::Connector;
use ejgate_sdk::synth::{SystemTruth, World};
use secrecy::SecretString;

use crate::emulator::{self, EmulatorHandle, EmulatorOptions, FailureMode};
use crate::{truth, MosregBaseUrls, MosregConfig, MosregConnector};

/// The token the emulator accepts (a JWT-looking `aupd_token`).
pub const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtb3NyZWcifQ.bW9zcmVnLXNpZ25hdHVyZQ";
/// The source instance the kit's connector is configured as.
pub const INSTANCE: &str = "mosreg-test";
/// Where the configuration says the token comes from (errors name it).
pub const TOKEN_ORIGIN: &str = "/etc/ejgate/mosreg.token (EJGATE_MOSREG_TOKEN)";

/// The «Моя школа» emulator on loopback, with a connector configuration pointed at it.
pub struct MosregSystem {
    pub emulator: EmulatorHandle,
}

impl MosregSystem {
    /// The connector's configuration (fast retries), for tests that change it further.
    pub fn config(&self) -> MosregConfig {
        let base = MosregBaseUrls::single(self.emulator.base_url().parse().expect("the emulator's URL"));
        let mut c = MosregConfig::new(INSTANCE, base, SecretString::from(TOKEN));
        c.token_origin = TOKEN_ORIGIN.into();
        c.retry = fast_retries();
        c
    }
}

#[async_trait]
impl EmulatedSystem for MosregSystem {
    async fn start(world: World) -> std::io::Result<Self> {
        let emulator =
            emulator::start(world, EmulatorOptions::new(TOKEN), SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        Ok(MosregSystem { emulator })
    }

    fn system(&self) -> &'static str {
        "mosreg"
    }

    fn instance(&self) -> &str {
        INSTANCE
    }

    fn base_url(&self) -> String {
        self.emulator.base_url()
    }

    fn connector(&self) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(MosregConnector::new(self.config()).map_err(|e| e.to_string())?))
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
        let plan = "GET acl/api/users/profile_info";
        vec![
            FailureCase::at_start(Failure::Html502, plan, &["HTML page (HTTP 502)", "502 Bad Gateway"]),
            FailureCase::at_start(Failure::MalformedJson, plan, &["JSON", "Nothing of this batch was written"]),
            FailureCase::at_start(Failure::TruncatedBody, plan, &["cut off"]),
            // The session ended and the refresh is refused (HTTP 499): the error says which
            // token to renew and where; dead until the operator signs in again. (A single
            // 401 the refresh cures is not a failure: tests/mosreg_sync.rs.)
            FailureCase::at_start(
                Failure::ExpiredToken,
                plan,
                &[
                    "HTTP 401",
                    "Войдите в ЭЖД заново",
                    "HTTP 499",
                    "Something went wrong",
                    "aupd_token",
                    "Госуслуги",
                    TOKEN_ORIGIN,
                    "nothing already synced is lost",
                ],
            )
            .needing_the_operator(),
            FailureCase::mid_run(Failure::Html502, 80, &["GET api/", "GET core/api/"], &["HTML page (HTTP 502)"]),
            FailureCase::request_limit(40),
        ]
    }

    fn inject(&self, failure: Failure) {
        let state = self.emulator.state();
        let mode = match failure {
            Failure::MalformedJson => FailureMode::Malformed,
            Failure::Html502 => FailureMode::Html502,
            Failure::TruncatedBody => FailureMode::Truncated,
            Failure::ExpiredToken => {
                state.set_refresh_allowed(false);
                return state.expire_tokens();
            }
            Failure::RequestLimit(rps) => return state.set_request_limit(Some(rps)),
            other => panic!("the «Моя школа» emulator cannot show {other:?}"),
        };
        state.set_failure(Some(mode), None);
    }

    /// Switches the injected answers and the limit off; an ended session stays ended until
    /// [`EmulatedSystem::operator_renews`].
    fn clear(&self) {
        self.emulator.state().set_failure(None, None);
        self.emulator.state().set_request_limit(None);
    }

    fn operator_renews(&self) {
        self.emulator.state().set_refresh_allowed(true);
        self.emulator.state().renew_token();
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
