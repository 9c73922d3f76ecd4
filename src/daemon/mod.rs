//! `ejgate serve`, the daemon: its HTTP side (`http`: health, metrics, the JSON API), the
//! metrics it exports (`metrics`) and the API's bearer tokens (`tokens`).

pub mod http;
pub mod metrics;
pub mod tokens;
