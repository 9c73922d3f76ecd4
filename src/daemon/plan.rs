//! Which slots of a job to record (планирование): the slots since the last one recorded,
//! and what the job's `catch_up` policy makes of those that passed while no worker ran.
//!
//! The store keeps, per job, the newest slot recorded (or, before the first, the time the
//! daemon first saw the job: a new job owes nothing from before it was written). When the
//! clock passes slots after it:
//! - the newest of them, if it is at most [`GRACE`] old, is on time: it is recorded `due`
//!   and runs. Slots before it were missed; `once` counts them caught up by this run,
//!   `skip` counts them skipped; the run's note says how many and which.
//! - if even the newest is older than [`GRACE`], every one was missed: `once` records the
//!   newest as a catch-up run, `skip` records it `skipped` (so that the gap shows in
//!   `ejgate jobs` and the API, never silently), with a note of how many and which.
//!
//! Either way one row at most per pass, at the newest slot: its (job, slot) key makes two
//! workers, or a restart, record it once.

use chrono::{DateTime, TimeDelta, Utc};

use crate::schedule::{CatchUp, Job};
use crate::store::{JobRunStatus, JobTrigger};

/// How late a slot may be seen and still count as on time: the scheduler wakes at each
/// slot, so only a start (or a process paused) sees a slot late. Under a minute, so that
/// an every-minute job's missed slots are told from its current one.
pub const GRACE: TimeDelta = TimeDelta::seconds(30);

/// At most this many slots are walked per pass (a `* * * * *` job down for two years);
/// more are counted as «more than».
const MAX_WALK: usize = 1_100_000;

/// A job run to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub slot: DateTime<Utc>,
    pub trigger: JobTrigger,
    pub status: JobRunStatus,
    pub note: Option<String>,
}

/// The row to record for `job` now, if a slot has come since `anchor`, and the new anchor.
pub fn plan(job: &Job, anchor: DateTime<Utc>, now: DateTime<Utc>) -> (Option<Planned>, DateTime<Utc>) {
    let mut count = 0usize;
    let mut first = None;
    let mut previous = None;
    let mut latest = None;
    let mut at = anchor;
    while let Some(slot) = job.next_after(at).map(|t| t.with_timezone(&Utc)) {
        if slot > now || count >= MAX_WALK {
            break;
        }
        count += 1;
        first.get_or_insert(slot);
        previous = latest.replace(slot);
        at = slot;
    }
    let (Some(first), Some(latest)) = (first, latest) else {
        return (None, anchor);
    };
    let more = if count >= MAX_WALK { "more than " } else { "" };
    let local = |t: DateTime<Utc>| t.with_timezone(&job.time_zone).format("%Y-%m-%d %H:%M %Z").to_string();
    let span = |n: usize, last: DateTime<Utc>| {
        if n == 1 {
            format!("1 slot missed while no worker ran ({})", local(first))
        } else {
            format!("{more}{n} slots missed while no worker ran ({} to {})", local(first), local(last))
        }
    };
    let on_time = now - latest <= GRACE;
    let planned = if on_time {
        let missed = count - 1;
        let note = previous.filter(|_| missed > 0).map(|last_missed| {
            let what = match job.catch_up {
                CatchUp::Once => "caught up by this run (catch_up = \"once\")",
                CatchUp::Skip => "skipped (catch_up = \"skip\")",
            };
            format!("{}; {what}", span(missed, last_missed))
        });
        Planned { slot: latest, trigger: JobTrigger::Schedule, status: JobRunStatus::Due, note }
    } else {
        let (status, what) = match job.catch_up {
            CatchUp::Once => (JobRunStatus::Due, "run once now (catch_up = \"once\")"),
            CatchUp::Skip => (JobRunStatus::Skipped, "skipped (catch_up = \"skip\"); the job runs at its next slot"),
        };
        Planned {
            slot: latest,
            trigger: JobTrigger::CatchUp,
            status,
            note: Some(format!("{}; {what}", span(count, latest))),
        }
    };
    (Some(planned), latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;

    fn job(zone: &str, cron: &str, catch_up: &str) -> Job {
        let config = Config::parse(
            "[store]\nurl = \"sqlite://x.db\"\n[[source]]\nname = \"dn\"\nsystem = \"dnevnik\"\n\
             base_url = \"http://127.0.0.1:9/\"\ntoken_file = \"t\"\n",
            std::path::Path::new("/tmp/ejgate.toml"),
        )
        .unwrap();
        let text = format!(
            "time_zone = \"{zone}\"\n[[job]]\nname = \"j\"\nkind = \"sync\"\ntarget = \"dn\"\ncron = \"{cron}\"\n\
             catch_up = \"{catch_up}\"\ntime_limit_minutes = 10\n"
        );
        crate::schedule::parse_file(&text, std::path::Path::new("s.toml"), &config).unwrap().remove(0)
    }

    fn utc(h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, h, mi, s).unwrap()
    }

    #[test]
    fn nothing_before_the_first_slot() {
        let j = job("UTC", "* * * * *", "once");
        assert_eq!(plan(&j, utc(10, 0, 58), utc(10, 0, 59)), (None, utc(10, 0, 58)));
    }

    #[test]
    fn a_slot_seen_in_time_is_due_on_schedule() {
        let j = job("UTC", "* * * * *", "skip");
        let (planned, anchor) = plan(&j, utc(10, 0, 58), utc(10, 1, 0));
        assert_eq!(
            planned,
            Some(Planned { slot: utc(10, 1, 0), trigger: JobTrigger::Schedule, status: JobRunStatus::Due, note: None })
        );
        assert_eq!(anchor, utc(10, 1, 0));
        // The same pass again records nothing.
        assert_eq!(plan(&j, anchor, utc(10, 1, 20)).0, None);
    }

    #[test]
    fn missed_slots_run_once_or_are_skipped_as_the_policy_says() {
        // Down from after 10:01 until 10:04:40: 10:02, 10:03 and 10:04 were missed.
        let once = job("UTC", "* * * * *", "once");
        let (planned, anchor) = plan(&once, utc(10, 1, 0), utc(10, 4, 40));
        let p = planned.unwrap();
        assert_eq!((p.slot, p.trigger, p.status), (utc(10, 4, 0), JobTrigger::CatchUp, JobRunStatus::Due));
        assert!(
            p.note
                .as_deref()
                .unwrap()
                .starts_with("3 slots missed while no worker ran (2026-12-07 10:02 UTC to 2026-12-07 10:04 UTC)"),
            "{p:?}"
        );
        assert_eq!(anchor, utc(10, 4, 0));

        let skip = job("UTC", "* * * * *", "skip");
        let p = plan(&skip, utc(10, 1, 0), utc(10, 4, 40)).0.unwrap();
        assert_eq!((p.slot, p.trigger, p.status), (utc(10, 4, 0), JobTrigger::CatchUp, JobRunStatus::Skipped));

        // Back at 10:04:20: 10:04 is on time and runs; 10:02 and 10:03 were missed.
        let p = plan(&skip, utc(10, 1, 0), utc(10, 4, 20)).0.unwrap();
        assert_eq!((p.slot, p.trigger, p.status), (utc(10, 4, 0), JobTrigger::Schedule, JobRunStatus::Due));
        assert!(
            p.note.as_deref().unwrap().contains("2 slots missed") && p.note.as_deref().unwrap().contains("skipped")
        );
    }

    /// 02:00 in Krasnoyarsk (UTC+7, no daylight saving time) is 19:00 UTC the day before.
    #[test]
    fn two_at_night_in_krasnoyarsk_is_due_at_nineteen_utc() {
        let j = job("Asia/Krasnoyarsk", "0 2 * * *", "once");
        let day_before = |h, mi, s| Utc.with_ymd_and_hms(2026, 12, 6, h, mi, s).unwrap();
        assert_eq!(plan(&j, day_before(12, 0, 0), day_before(18, 59, 59)).0, None);
        let p = plan(&j, day_before(12, 0, 0), day_before(19, 0, 1)).0.unwrap();
        assert_eq!((p.slot, p.trigger), (day_before(19, 0, 0), JobTrigger::Schedule));
    }

    /// Daylight saving time, as `crate::schedule` documents it: 02:30 in Berlin falls into
    /// the skipped hour on 2027-03-28 and runs at 03:00 CEST (01:00 UTC); on 2027-10-31 it
    /// comes twice and runs once, at its first pass (00:30 UTC).
    #[test]
    fn a_skipped_hour_runs_after_the_gap_and_a_repeated_hour_once() {
        let j = job("Europe/Berlin", "30 2 * * *", "skip");
        let t = |mo, d, h, mi, s| Utc.with_ymd_and_hms(2027, mo, d, h, mi, s).unwrap();
        assert_eq!(plan(&j, t(3, 27, 12, 0, 0), t(3, 28, 0, 59, 59)).0, None);
        let p = plan(&j, t(3, 27, 12, 0, 0), t(3, 28, 1, 0, 5)).0.unwrap();
        assert_eq!((p.slot, p.trigger, p.status), (t(3, 28, 1, 0, 0), JobTrigger::Schedule, JobRunStatus::Due));

        let (first, anchor) = plan(&j, t(10, 30, 12, 0, 0), t(10, 31, 0, 30, 5));
        assert_eq!(first.unwrap().slot, t(10, 31, 0, 30, 0));
        assert_eq!(plan(&j, anchor, t(10, 31, 1, 30, 5)).0, None, "the second 02:30 does not run");
        assert_eq!(plan(&j, anchor, t(11, 1, 1, 30, 5)).0.unwrap().slot, t(11, 1, 1, 30, 0), "02:30 CET next day");
    }

    #[test]
    fn a_long_outage_of_an_every_minute_job_is_counted() {
        let j = job("UTC", "* * * * *", "skip");
        // 00:01 to 23:00, every one more than the grace old at 23:00:40.
        let p = plan(&j, utc(0, 0, 0), utc(23, 0, 40)).0.unwrap();
        assert_eq!((p.slot, p.status), (utc(23, 0, 0), JobRunStatus::Skipped));
        assert!(p.note.unwrap().starts_with("1380 slots missed"));
    }
}
