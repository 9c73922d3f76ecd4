//! Monitoring of the journal against the school's regulation (мониторинг ведения журнала):
//! the regulation profiles of `regulations/` and the checks they configure.

pub mod profile;
