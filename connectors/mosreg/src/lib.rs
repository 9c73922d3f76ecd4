//! «Моя школа» (Школьный портал Московской области today: `authedu.mosreg.ru`,
//! `api.myschool.mosreg.ru`, `myschool.mosreg.ru`; the МЭШ platform) connector and, behind
//! the `emulator` feature, an emulator of the API that serves the synthetic school. API.md
//! is the contract between the two; README.md says what the connector reads, what the API
//! does not expose and which behaviours are assumptions.

// `SourceError` carries the source, endpoint, detail and hint as text: it is built once per
// failed run, so its size on the (cold) error path is not worth a box per field.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod connector;
pub mod truth;

pub use connector::{MosregBaseUrls, MosregConfig, MosregConnector};

#[cfg(feature = "emulator")]
pub mod emulator;

#[cfg(feature = "acceptance")]
pub mod acceptance;
