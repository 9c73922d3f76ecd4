//! The daemon's clock (часы демона): the system's, or, for tests, one started at a given
//! instant.
//!
//! A test of "fires every minute" cannot wait for real minutes nor move the system clock.
//! `EJGATE_TEST_CLOCK_START=2026-12-07T10:00:58Z` starts the daemon's clock at that instant
//! when the process starts; it then runs at the real pace, so the slot of 10:01 comes two
//! real seconds later. Everything the scheduler decides goes by this clock: due slots,
//! missed slots after a restart (a test restarts with a later instant to "have been down"),
//! and the times of job runs in the store. Leases keep the store's own clock: they are
//! about processes, not slots. A warning says when the variable is set.

use chrono::{DateTime, TimeDelta, Utc};

/// The environment variable that starts the clock at an instant (RFC 3339).
pub const TEST_CLOCK_VAR: &str = "EJGATE_TEST_CLOCK_START";

/// Now, possibly shifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    offset: TimeDelta,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that reads `start` now and runs on from there.
    pub fn starting_at(start: DateTime<Utc>) -> Clock {
        Clock { offset: start - Utc::now() }
    }

    /// The system clock, or the one [`TEST_CLOCK_VAR`] asks for.
    pub fn from_env() -> Result<Clock, String> {
        match std::env::var(TEST_CLOCK_VAR) {
            Err(_) => Ok(Clock::system()),
            Ok(text) => {
                let start = DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
                    format!("{TEST_CLOCK_VAR}=«{text}» is not an RFC 3339 time (2026-12-07T10:00:58Z): {e}")
                })?;
                tracing::warn!(
                    "{TEST_CLOCK_VAR} is set: the daemon's clock starts at {start} instead of the system's (for tests \
                     only)"
                );
                Ok(Clock::starting_at(start.with_timezone(&Utc)))
            }
        }
    }

    /// Now by this clock, in whole microseconds (the store's precision).
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now() + self.offset;
        DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
    }

    /// How long until `at` by this clock (zero if it has passed).
    pub fn until(&self, at: DateTime<Utc>) -> std::time::Duration {
        (at - self.now()).to_std().unwrap_or_default()
    }
}
