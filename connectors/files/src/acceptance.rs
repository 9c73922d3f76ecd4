//! The files connector's stand-in as the acceptance kit drives it (`ejgate_sdk::acceptance`;
//! the runner is `ejgate::acceptance`): the synthetic school exported in the default layout
//! (XLSX reference lists, Windows-1251 CSV rosters, XML journal) into a temporary directory,
//! and exported again whenever the school advances — what the school's system would do
//! before each run.
//!
//! There is no HTTP here, so no tokens, request counts or limits: the failures are a file
//! that is not what its extension says, a file cut off, and a file in the wrong encoding.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use ejgate_sdk::acceptance::{EmulatedSystem, Failure, FailureCase};
use ejgate_sdk::connector::Connector;
use ejgate_sdk::synth::{SystemTruth, World};

use crate::export::{export_world, export_world_with, ExportOptions, Layout, Plant};
use crate::{truth, FilesConfig, FilesConnector};

/// The source instance the kit's connector is configured as.
pub const INSTANCE: &str = "files-test";

/// The synthetic school as an export directory in the default layout.
pub struct FilesSystem {
    world: Mutex<World>,
    export: tempfile::TempDir,
}

impl FilesSystem {
    /// The export directory.
    pub fn dir(&self) -> &Path {
        self.export.path()
    }

    /// The world the export was written from.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the export of the world as it is now (a clean one).
    pub fn reexport(&self) {
        export_world(&self.world(), self.dir(), Layout::Default).expect("the export is written");
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

#[async_trait]
impl EmulatedSystem for FilesSystem {
    async fn start(world: World) -> std::io::Result<Self> {
        let export = tempfile::tempdir()?;
        export_world(&world, export.path(), Layout::Default).map_err(std::io::Error::other)?;
        Ok(FilesSystem { world: Mutex::new(world), export })
    }

    fn system(&self) -> &'static str {
        "files"
    }

    fn instance(&self) -> &str {
        INSTANCE
    }

    fn base_url(&self) -> String {
        self.dir().display().to_string()
    }

    fn connector(&self) -> Result<Arc<dyn Connector>, String> {
        let config = FilesConfig::with_default_layout(INSTANCE, self.dir());
        Ok(Arc::new(FilesConnector::new(config).map_err(|e| e.to_string())?))
    }

    fn read_world(&self, f: &mut dyn FnMut(&World)) {
        f(&self.world())
    }

    fn advance(&self, days: u32) {
        self.world().advance(days);
        self.reexport();
    }

    fn truth(&self) -> &'static SystemTruth {
        &truth::TRUTH
    }

    fn failures(&self) -> Vec<FailureCase> {
        vec![
            // An HTML error page saved under the workbook's name (a download that failed).
            FailureCase::at_start(Failure::MalformedFile, "school.xlsx", &["not readable as an XLSX workbook"]),
            // Where the cut falls decides the message: «cut off» inside an element, «not
            // well-formed XML» inside a tag; both name the file and line.
            FailureCase::at_start(Failure::TruncatedFile, "journal.xml, line ", &["nothing was written"]),
            // Windows-1251 bytes behind a UTF-8 byte-order mark.
            FailureCase::at_start(
                Failure::WrongEncoding,
                "staff.csv",
                &["starts with a UTF-8 BOM but is not valid UTF-8"],
            ),
        ]
    }

    fn inject(&self, failure: Failure) {
        match failure {
            Failure::MalformedFile => std::fs::write(
                self.file("school.xlsx"),
                "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
            )
            .expect("the export is writable"),
            Failure::TruncatedFile => {
                let options = ExportOptions { csv: None, plant: vec![Plant::TruncateXml] };
                export_world_with(&self.world(), self.dir(), &Layout::Default.mapping(), &options)
                    .expect("the export is written");
            }
            Failure::WrongEncoding => {
                let path = self.file("staff.csv");
                let bytes = std::fs::read(&path).expect("the export has staff.csv");
                assert!(std::str::from_utf8(&bytes).is_err(), "the default layout writes staff.csv in Windows-1251");
                let mut with_bom = vec![0xEF, 0xBB, 0xBF];
                with_bom.extend(bytes);
                std::fs::write(&path, with_bom).expect("the export is writable");
            }
            other => panic!("an export directory cannot show {other:?}"),
        }
    }

    fn clear(&self) {
        self.reexport();
    }

    fn requests(&self) -> u64 {
        0
    }

    fn limited(&self) -> u64 {
        0
    }

    fn secrets(&self) -> Vec<String> {
        Vec::new()
    }
}
