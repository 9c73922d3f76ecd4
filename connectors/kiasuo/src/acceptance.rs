//! The КИАСУО emulator as the acceptance kit drives it (`ejgate_sdk::acceptance`; the runner
//! is `ejgate::acceptance`). The connector reads its refresh token from a file, which it
//! rewrites on every rotation: the system keeps that file in a temporary directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ejgate_sdk::acceptance::{fast_retries, EmulatedSystem, Failure, FailureCase};
use ejgate_sdk::connector::Connector;
use ejgate_sdk::synth::{SystemTruth, World};

use crate::emulator::{self, EmulatorHandle, EmulatorOptions, FailureMode};
use crate::{truth, KiasuoConfig, KiasuoConnector};

/// The first refresh token the emulator accepts (what a sign-in gave the operator).
pub const REFRESH: &str = "0f3c5a9e1b7d4c2a8e6f0b1d3c5a7e9f";
/// The source instance the kit's connector is configured as.
pub const INSTANCE: &str = "kiasuo-test";

/// The КИАСУО emulator on loopback, and the refresh-token file the connector keeps.
pub struct KiasuoSystem {
    pub emulator: EmulatorHandle,
    dir: tempfile::TempDir,
}

impl KiasuoSystem {
    /// Serves `world` with these emulator options (the refresh token is [`REFRESH`]).
    pub async fn start_with(world: World, tweak: impl FnOnce(&mut EmulatorOptions)) -> std::io::Result<Self> {
        let mut options = EmulatorOptions::new(REFRESH);
        tweak(&mut options);
        let emulator = emulator::start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("kiasuo.refresh"), format!("{REFRESH}\n"))?;
        Ok(KiasuoSystem { emulator, dir })
    }

    /// The file the connector reads and rewrites the refresh token in.
    pub fn refresh_file(&self) -> PathBuf {
        self.dir.path().join("kiasuo.refresh")
    }

    /// The refresh token the file holds now.
    pub fn persisted_refresh(&self) -> String {
        std::fs::read_to_string(self.refresh_file()).unwrap_or_default().trim().to_string()
    }

    /// The connector's configuration (fast retries), for tests that change it further.
    pub fn config(&self) -> KiasuoConfig {
        let mut c = KiasuoConfig::new(
            INSTANCE,
            self.emulator.base_url().parse().expect("the emulator's URL"),
            self.refresh_file(),
        );
        c.retry = fast_retries();
        c
    }
}

#[async_trait]
impl EmulatedSystem for KiasuoSystem {
    async fn start(world: World) -> std::io::Result<Self> {
        KiasuoSystem::start_with(world, |_| {}).await
    }

    fn system(&self) -> &'static str {
        "kiasuo"
    }

    fn instance(&self) -> &str {
        INSTANCE
    }

    fn base_url(&self) -> String {
        self.emulator.base_url()
    }

    fn connector(&self) -> Result<Arc<dyn Connector>, String> {
        Ok(Arc::new(KiasuoConnector::new(self.config()).map_err(|e| e.to_string())?))
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
        let plan = "GET diary/api/user";
        vec![
            FailureCase::at_start(Failure::MalformedJson, plan, &["JSON"]),
            FailureCase::at_start(Failure::Html502, plan, &["HTML page (HTTP 502)"]),
            FailureCase::at_start(Failure::TruncatedBody, plan, &["cut off"]),
            // The session ends: dead until a person signs in through Госуслуги again and
            // puts the new refresh token in the file.
            FailureCase::at_start(
                Failure::Unauthorized,
                plan,
                &["refresh token was refused", "Госуслуги", "kiasuo.refresh"],
            )
            .needing_the_operator(),
            // Planning reads a week of every pupil (to learn the groups): the failure comes
            // after it and after the first classes' chunks.
            FailureCase::mid_run(Failure::Html502, 400, &["GET diary/api/"], &["HTML page (HTTP 502)"]),
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
            Failure::RequestLimit(rps) => return state.set_request_limit(Some(rps)),
            other => panic!("the КИАСУО emulator cannot show {other:?}"),
        };
        state.set_failure(Some(mode), None);
    }

    fn clear(&self) {
        self.emulator.state().set_failure(None, None);
        self.emulator.state().set_request_limit(None);
    }

    fn operator_renews(&self) {
        let fresh = self.emulator.state().login();
        std::fs::write(self.refresh_file(), fresh).expect("the refresh-token file is writable");
    }

    /// Data requests and token refreshes alike (the run counts both).
    fn requests(&self) -> u64 {
        let s = self.emulator.stats();
        s.requests + s.refresh_requests
    }

    fn limited(&self) -> u64 {
        self.emulator.stats().limited
    }

    fn secrets(&self) -> Vec<String> {
        let mut out = vec![REFRESH.to_string(), self.persisted_refresh()];
        out.extend(self.emulator.state().current_refresh_token());
        out.retain(|s| !s.is_empty());
        out
    }
}
