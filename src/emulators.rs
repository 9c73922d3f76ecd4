//! The emulators of the source systems behind one type, for `ejgate demo` and
//! `ejgate emulate`: which system, how to start it, its ground truth. The stand-in of a
//! files source is not a server but an export: the synthetic school written as the files
//! of the default layout into a directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use ejgate_sdk::synth::World;

use crate::config::System;

/// A running emulator of any system.
pub enum Emulator {
    Dnevnik(ejgate_dnevnik::emulator::EmulatorHandle),
    Epos(ejgate_epos::emulator::EmulatorHandle),
    Kiasuo(ejgate_kiasuo::emulator::EmulatorHandle),
    Mosreg(ejgate_mosreg::emulator::EmulatorHandle),
    /// The school exported into this directory (default layout).
    Files(PathBuf),
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
            System::Files => anyhow::bail!(
                "a files source is not served over HTTP: its stand-in is an export written to a directory"
            ),
        })
    }

    /// Writes `world` as the files of the default layout into `dir` (the stand-in of a
    /// files source: what a school's system would export).
    pub fn export_files(world: &World, dir: &Path) -> anyhow::Result<Emulator> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        ejgate_files::export_world(world, dir, ejgate_files::Layout::Default)
            .with_context(|| format!("cannot write the export into {}", dir.display()))?;
        Ok(Emulator::Files(dir.to_path_buf()))
    }

    pub fn base_url(&self) -> String {
        match self {
            Emulator::Dnevnik(h) => h.base_url(),
            Emulator::Epos(h) => h.base_url(),
            Emulator::Kiasuo(h) => h.base_url(),
            Emulator::Mosreg(h) => h.base_url(),
            Emulator::Files(dir) => dir.display().to_string(),
        }
    }

    pub async fn shutdown(self) {
        match self {
            Emulator::Dnevnik(h) => h.shutdown().await,
            Emulator::Epos(h) => h.shutdown().await,
            Emulator::Kiasuo(h) => h.shutdown().await,
            Emulator::Mosreg(h) => h.shutdown().await,
            Emulator::Files(_) => {}
        }
    }
}
