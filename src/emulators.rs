//! The emulators of the source systems behind one type, for `ejgate demo` and
//! `ejgate emulate`: which system, how to start it, its ground truth.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context;

use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::World;

use crate::config::System;

/// A running emulator of any system.
pub enum Emulator {
    Dnevnik(ejgate_dnevnik::emulator::EmulatorHandle),
    Epos(ejgate_epos::emulator::EmulatorHandle),
    Kiasuo(ejgate_kiasuo::emulator::EmulatorHandle),
    Mosreg(ejgate_mosreg::emulator::EmulatorHandle),
}

impl Emulator {
    /// Serves `world` on `addr`. `token` is what the emulator accepts (for КИАСУО, the
    /// first refresh token); `request_limit` is per token and second.
    pub async fn start(
        system: System,
        world: World,
        token: &str,
        request_limit: Option<u32>,
        addr: SocketAddr,
    ) -> anyhow::Result<Emulator> {
        let context = || format!("cannot start the {} emulator on {addr}", system.as_str());
        Ok(match system {
            System::Dnevnik => {
                let mut options = ejgate_dnevnik::emulator::EmulatorOptions::new(token);
                options.request_limit = request_limit;
                Emulator::Dnevnik(ejgate_dnevnik::emulator::start(world, options, addr).await.with_context(context)?)
            }
            System::Epos => {
                let mut options = ejgate_epos::emulator::EmulatorOptions::new(token);
                options.request_limit = request_limit;
                Emulator::Epos(ejgate_epos::emulator::start(world, options, addr).await.with_context(context)?)
            }
            System::Kiasuo => {
                let mut options = ejgate_kiasuo::emulator::EmulatorOptions::new(token);
                options.request_limit = request_limit;
                Emulator::Kiasuo(ejgate_kiasuo::emulator::start(world, options, addr).await.with_context(context)?)
            }
            System::Mosreg => {
                let mut options = ejgate_mosreg::emulator::EmulatorOptions::new(token);
                options.request_limit = request_limit;
                Emulator::Mosreg(ejgate_mosreg::emulator::start(world, options, addr).await.with_context(context)?)
            }
        })
    }

    pub fn base_url(&self) -> String {
        match self {
            Emulator::Dnevnik(h) => h.base_url(),
            Emulator::Epos(h) => h.base_url(),
            Emulator::Kiasuo(h) => h.base_url(),
            Emulator::Mosreg(h) => h.base_url(),
        }
    }

    pub async fn shutdown(self) {
        match self {
            Emulator::Dnevnik(h) => h.shutdown().await,
            Emulator::Epos(h) => h.shutdown().await,
            Emulator::Kiasuo(h) => h.shutdown().await,
            Emulator::Mosreg(h) => h.shutdown().await,
        }
    }
}

/// The ground truth of what a system exposes.
pub fn expected_counts(system: System, world: &World) -> BTreeMap<EntityKind, u64> {
    match system {
        System::Dnevnik => ejgate_dnevnik::truth::expected_counts(world),
        System::Epos => ejgate_epos::truth::expected_counts(world),
        System::Kiasuo => ejgate_kiasuo::truth::expected_counts(world),
        System::Mosreg => ejgate_mosreg::truth::expected_counts(world),
    }
}
