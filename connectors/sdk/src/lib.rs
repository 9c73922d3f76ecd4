//! ejgate's connector SDK: the canonical model, the contract between connectors and the sync
//! engine, the rate-limited source HTTP client, code tables, secrets, and the synthetic
//! school that every emulator serves.

// `SourceError` carries the source, endpoint, detail and hint as text: it is built once per
// failed run, so its size on the (cold) error path is not worth a box per field.
#![allow(clippy::result_large_err)]

#[cfg(feature = "acceptance")]
pub mod acceptance;
pub mod cadence;
pub mod client;
pub mod connector;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod fuzz;
pub mod limits;
pub mod mapping;
pub mod model;
pub mod ranges;
pub mod read;
pub mod secret;
pub mod synth;
pub mod time;
pub mod year;

pub use connector::{Batch, Chunk, Connector, Plan, PlanContext, SyncMode};
pub use model::{Coverage, DateRange, Entity, EntityKind, IdSpace, Record};
