//! ejgate: the gateway between schools and the regional electronic journal systems.

pub mod store;
