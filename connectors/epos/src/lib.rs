//! ЭПОС.Школа (Perm krai, `school.permkrai.ru`) connector and, behind the `emulator`
//! feature, an emulator of the API that serves the synthetic school. API.md is the contract
//! between the two; README.md says what the connector reads and what the API does not expose.

// `SourceError` carries the source, endpoint, detail and hint as text: it is built once per
// failed run, so its size on the (cold) error path is not worth a box per field.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod connector;
pub mod truth;

pub use connector::{EposConfig, EposConnector};

#[cfg(feature = "emulator")]
pub mod emulator;

#[cfg(feature = "acceptance")]
pub mod acceptance;
