//! ejgate: the gateway between schools and the regional electronic journal systems.
//!
//! The library does the work; `main.rs` only parses the command line. One folder or file
//! per workflow (`store`, `sync`, `demo`, `status`), each depending on the store and the
//! SDK's model, not on each other.

#[cfg(feature = "acceptance")]
pub mod acceptance;
pub mod alerts;
pub mod archive;
pub mod backup;
pub mod compare;
pub mod config;
pub mod daemon;
#[cfg(feature = "emulators")]
pub mod demo;
pub mod documents;
#[cfg(feature = "emulators")]
pub mod emulators;
pub mod kiasuo;
pub mod lease;
pub mod link;
pub mod monitor;
pub mod progress;
pub mod report;
pub mod schedule;
pub mod sources;
pub mod status;
pub mod stop;
pub mod store;
pub mod sync;
