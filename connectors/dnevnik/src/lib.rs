//! Dnevnik.ru REST v2 connector (also the old Школьный портал МО white-label at
//! `api.school.mosreg.ru`), and, behind the `emulator` feature, an emulator of the API that
//! serves the synthetic school. API.md is the contract between the two.

// `SourceError` carries the source, endpoint, detail and hint as text: it is built once per
// failed run, so its size on the (cold) error path is not worth a box per field.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod connector;
pub mod truth;

pub use connector::{DnevnikConfig, DnevnikConnector};

#[cfg(feature = "emulator")]
pub mod emulator;

#[cfg(feature = "acceptance")]
pub mod acceptance;
