//! Request date ranges: what one request asks for, decided by what the source accepts and
//! not by the size of a write batch.
//!
//! No public material states the longest date range a source takes in one request, so a
//! connector starts from its system's default (its README) or the source's configured
//! `request_days`, and when the source **refuses** a range (a 4xx that is not about the
//! token or the request limit: [`ErrorKind::Client`]) it asks again for each half, down to
//! single days. The shortest range refused is kept for the rest of the run, so later
//! requests are cut to fit at once instead of being refused one by one.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::client::{ErrorKind, SourceError};
use crate::model::DateRange;

/// The longest range a source has accepted so far in this run (shared by a connector's
/// chunks).
#[derive(Debug)]
pub struct RangeLimit {
    /// Days per request: the configured length until a longer one is refused.
    days: AtomicU32,
}

impl RangeLimit {
    pub fn new(days: u32) -> Self {
        RangeLimit { days: AtomicU32::new(days.max(1)) }
    }

    /// Days one request asks for now.
    pub fn days(&self) -> u32 {
        self.days.load(Ordering::Relaxed)
    }

    /// Reads a dated list over `range` with `read`, one request per piece of at most
    /// [`RangeLimit::days`] days; a piece the source refuses is read again as two halves
    /// (and the limit lowered to the halves' length), until a single day is refused: that
    /// error is returned. The pieces' items are returned in date order.
    pub async fn read<T, F, Fut>(&self, range: DateRange, mut read: F) -> Result<Vec<T>, SourceError>
    where
        F: FnMut(DateRange) -> Fut,
        Fut: Future<Output = Result<Vec<T>, SourceError>>,
    {
        let mut out = Vec::new();
        // Pieces still to read, the next one last.
        let mut todo: Vec<DateRange> = range.pieces(self.days());
        todo.reverse();
        while let Some(piece) = todo.pop() {
            let days = (piece.to - piece.from).num_days() as u32 + 1;
            if days > self.days() {
                // Lowered meanwhile (another chunk was refused): cut to fit.
                let mut parts = piece.pieces(self.days());
                parts.reverse();
                todo.extend(parts);
                continue;
            }
            match read(piece).await {
                Ok(items) => out.extend(items),
                Err(e) if e.kind == ErrorKind::Client && days > 1 => {
                    let half = days.div_ceil(2);
                    self.days.fetch_min(half, Ordering::Relaxed);
                    tracing::warn!(
                        source = %e.instance,
                        endpoint = %e.endpoint,
                        days,
                        "the source refused a range of {days} days ({}); asking for ranges of {half} days",
                        e.detail
                    );
                    let mut parts = piece.pieces(half);
                    parts.reverse();
                    todo.extend(parts);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn day(s: &str) -> chrono::NaiveDate {
        s.parse().unwrap()
    }

    fn refused(detail: &str) -> SourceError {
        SourceError {
            instance: "src".into(),
            system: "dnevnik".into(),
            method: "GET".into(),
            endpoint: "edu-groups/{g}/lessons".into(),
            kind: ErrorKind::Client,
            detail: detail.into(),
            hint: None,
        }
    }

    #[tokio::test]
    async fn a_refused_range_is_halved_until_the_source_takes_it_and_the_limit_is_kept() {
        // The source takes at most 40 days: the year (268 days) is asked whole, then in
        // halves of 134, 67 and 34 days.
        let limit = RangeLimit::new(366);
        let asked = Mutex::new(Vec::new());
        let year = DateRange::new(day("2025-09-01"), day("2026-05-26"));
        let days = |r: DateRange| (r.to - r.from).num_days() + 1;
        let items = limit
            .read(year, |r| {
                asked.lock().unwrap().push(r);
                async move {
                    if days(r) > 40 {
                        Err(refused("parameterInvalid"))
                    } else {
                        Ok((0..days(r)).map(|i| r.from + chrono::Days::new(i as u64)).collect::<Vec<_>>())
                    }
                }
            })
            .await
            .unwrap();
        // Every day once, in order.
        assert_eq!(items.len() as i64, days(year));
        assert!(items.windows(2).all(|w| w[1] == w[0] + chrono::Days::new(1)));
        assert_eq!(limit.days(), 34);
        let accepted: Vec<i64> = asked.lock().unwrap().iter().map(|r| days(*r)).filter(|d| *d <= 40).collect();
        assert!(accepted.iter().all(|d| *d <= 34), "{accepted:?}");
        // The next read starts at the kept limit: no request is refused.
        asked.lock().unwrap().clear();
        limit
            .read(year, |r| {
                asked.lock().unwrap().push(r);
                async move {
                    if days(r) > 40 {
                        Err(refused("x"))
                    } else {
                        Ok(vec![()])
                    }
                }
            })
            .await
            .unwrap();
        assert!(asked.lock().unwrap().iter().all(|r| days(*r) <= 34));
        assert_eq!(asked.lock().unwrap().len() as u64, (days(year) as u64).div_ceil(34));
    }

    #[tokio::test]
    async fn other_errors_and_a_refused_single_day_are_returned() {
        let limit = RangeLimit::new(31);
        let r = DateRange::new(day("2025-09-01"), day("2025-09-30"));
        let e = limit.read::<(), _, _>(r, |_| async { Err(refused("always")) }).await.unwrap_err();
        assert_eq!(e.detail, "always");
        assert_eq!(limit.days(), 1);
        let limit = RangeLimit::new(31);
        let e = limit
            .read::<(), _, _>(r, |_| async { Err(SourceError { kind: ErrorKind::Server, ..refused("502") }) })
            .await
            .unwrap_err();
        assert_eq!((e.kind, limit.days()), (ErrorKind::Server, 31));
    }
}
