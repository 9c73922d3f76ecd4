//! КИАСУО (Krasnoyarsk krai) diary API connector, and, behind the `emulator` feature, an
//! emulator of the API that serves the synthetic school. API.md is the contract between the
//! two; README.md says what the API does not expose. The secretary's exchange files
//! (contingent, movement, final marks as XML or XLSX) are read and written by [`exchange`]
//! (EXCHANGE.md); the workflow that puts them into the store is ejgate's `kiasuo` module.

// `SourceError` carries the source, endpoint, detail and hint as text: it is built once per
// failed run, so its size on the (cold) error path is not worth a box per field.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod connector;
pub mod exchange;
pub mod truth;

pub use connector::{KiasuoConfig, KiasuoConnector};

#[cfg(feature = "emulator")]
pub mod emulator;

#[cfg(feature = "acceptance")]
pub mod acceptance;
