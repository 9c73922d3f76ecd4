//! Connector for any journal system's exports: XLSX, CSV (UTF-8 or Windows-1251) and XML
//! files in a directory, read as a mapping file says (README.md documents the format). For
//! schools that cannot get API access. Behind the `emulator` feature, a writer that exports
//! the synthetic school as such files (the stand-in the other connectors serve over HTTP).

// `SourceError` carries the source, endpoint, detail and hint as text: it is built once per
// failed run, so its size on the (cold) error path is not worth a box per field.
#![allow(clippy::result_large_err)]

pub mod build;
pub mod connector;
pub mod mapping;
pub mod read;
pub mod truth;

pub use connector::{read_export, FilesConfig, FilesConnector};
pub use mapping::{Mapping, MappingError};
pub use read::FileError;

#[cfg(feature = "acceptance")]
pub mod acceptance;
#[cfg(feature = "emulator")]
pub mod export;
#[cfg(feature = "emulator")]
pub use export::{export_world, export_world_with, ExportOptions, Layout, Plant};
