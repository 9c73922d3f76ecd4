//! Dnevnik.ru REST v2 connector (also the old Школьный портал МО white-label at
//! `api.school.mosreg.ru`), and, behind the `emulator` feature, an emulator of the API that
//! serves the synthetic school. API.md is the contract between the two.

pub mod api;
pub mod connector;
pub mod truth;

pub use connector::{DnevnikConfig, DnevnikConnector};

#[cfg(feature = "emulator")]
pub mod emulator;
