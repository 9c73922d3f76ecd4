use super::*;

use chrono::TimeZone;

const SCHOOL: &str = include_str!("../../schedules/school.toml");
const DISTRICT: &str = include_str!("../../schedules/district.toml");

/// A district's configuration with the names `schedules/district.toml` uses.
const DISTRICT_CONFIG: &str = r#"
[store]
url = "sqlite://ejgate.db"

[[source]]
name = "kiasuo"
system = "kiasuo"
base_url = "https://diary.kiasuo.ru/"
token_file = "secrets/kiasuo.token"

[[source]]
name = "lyceum-exports"
system = "files"
dir = "exports"
schools = ["1000042"]

[[school]]
name = "МБОУ СОШ № 1"
sources = ["kiasuo", "lyceum-exports"]
"#;

fn example_config() -> Config {
    Config::parse(crate::config::EXAMPLE, Path::new("ejgate.toml")).unwrap()
}

fn district_config() -> Config {
    Config::parse(DISTRICT_CONFIG, Path::new("ejgate.toml")).unwrap()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// One job, valid, in a file of its own; tests replace one of its lines.
const ONE_JOB: &str = "\
time_zone = \"Europe/Moscow\"

[[job]]
name = \"nightly\"
kind = \"sync\"
target = \"all\"
cron = \"0 2 * * *\"
catch_up = \"once\"
time_limit_minutes = 120
retry = { attempts = 2, delay_minutes = 15 }
";

fn one_job(from: &str, to: &str) -> String {
    assert!(ONE_JOB.contains(from), "{from}");
    ONE_JOB.replacen(from, to, 1)
}

fn refusals(text: &str, config: &Config) -> Vec<Refusal> {
    match parse_file(text, Path::new("schedules/bad.toml"), config) {
        Ok(jobs) => panic!("accepted {} jobs", jobs.len()),
        Err(refusals) => refusals,
    }
}

/// The single refusal of a text: its line and reason.
fn refusal(text: &str) -> (Option<usize>, String) {
    let all = refusals(text, &example_config());
    assert_eq!(all.len(), 1, "{all:?}");
    (all[0].line, all[0].reason.clone())
}

fn job<'a>(jobs: &'a [Job], name: &str) -> &'a Job {
    jobs.iter().find(|j| j.name == name).unwrap()
}

#[test]
fn the_school_example_loads() {
    let jobs = parse_file(SCHOOL, Path::new("schedules/school.toml"), &example_config()).unwrap();
    assert_eq!(jobs.len(), 7);
    let nightly = job(&jobs, "nightly-sync");
    assert_eq!(nightly.kind, JobKind::Sync);
    assert_eq!(nightly.target, Target::All);
    assert_eq!(nightly.cron_line, "0 2 * * 1-6");
    assert_eq!(nightly.time_zone, chrono_tz::Europe::Moscow);
    assert_eq!(nightly.catch_up, CatchUp::Once);
    assert_eq!(nightly.time_limit, Duration::from_secs(7200));
    assert_eq!(nightly.retry, Retry { attempts: 2, delay: Duration::from_secs(900) });
    assert_eq!(nightly.line, 12);
    let full = job(&jobs, "sunday-reconciliation");
    assert_eq!(full.kind, JobKind::FullSync);
    assert_eq!(full.time_limit, Duration::from_secs(21600));
    // Backups at least monthly (A6); the year-end archive before 30 June (A2, K7).
    let backup = job(&jobs, "monthly-backup");
    assert_eq!((backup.kind, backup.cron_line.as_str()), (JobKind::Backup, "30 3 1 * *"));
    let year_end = job(&jobs, "year-end-archive");
    assert_eq!(year_end.kind, JobKind::Snapshot);
    let next = year_end.next_after(utc(2026, 12, 5, 10, 0)).unwrap();
    assert_eq!(next.format("%Y-%m-%d %H:%M %Z").to_string(), "2027-06-25 05:00 MSK");
    // Paper copies every quarter (A1): after each quarter's end, four times a year.
    let paper = job(&jobs, "quarterly-paper-copies");
    assert_eq!(paper.kind, JobKind::Paper);
    let mut at = utc(2026, 9, 1, 0, 0);
    let mut runs = Vec::new();
    for _ in 0..4 {
        at = paper.next_after(at).unwrap().with_timezone(&Utc);
        runs.push(at.format("%m-%d").to_string());
    }
    assert_eq!(runs, ["11-05", "01-05", "04-05", "06-05"]);
}

#[test]
fn the_district_example_loads() {
    let jobs = parse_file(DISTRICT, Path::new("schedules/district.toml"), &district_config()).unwrap();
    let names: Vec<&str> = jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["district-nightly", "kiasuo-reconciliation", "school-1-reconciliation", "district-backup"]);
    assert_eq!(job(&jobs, "kiasuo-reconciliation").target, Target::Source("kiasuo".into()));
    assert_eq!(job(&jobs, "kiasuo-reconciliation").catch_up, CatchUp::Skip);
    assert_eq!(job(&jobs, "kiasuo-reconciliation").retry, Retry { attempts: 0, delay: Duration::ZERO });
    assert_eq!(job(&jobs, "school-1-reconciliation").target, Target::School("МБОУ СОШ № 1".into()));
    let backup = job(&jobs, "district-backup");
    assert_eq!(backup.kind, JobKind::Backup);
    assert!(backup.kind.is_available());
    assert!(jobs.iter().all(|j| j.time_zone == chrono_tz::Asia::Krasnoyarsk));
}

#[test]
fn the_repository_schedules_directory_loads_with_the_district_names() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules");
    let jobs = load_dir(&dir, &district_config()).unwrap();
    // school.toml's seven jobs (the quarterly paper copies, the morning monitoring and the
    // monthly reports among them) and district.toml's four.
    assert_eq!(jobs.len(), 11);
    assert_eq!(job(&jobs, "quarterly-paper-copies").kind, JobKind::Paper);
    assert_eq!(job(&jobs, "morning-monitoring").kind, JobKind::Monitor);
    let reports = job(&jobs, "monthly-reports");
    assert_eq!(reports.kind, JobKind::Report);
    let next = reports.next_after(utc(2026, 12, 5, 10, 0)).unwrap();
    assert_eq!(next.format("%Y-%m-%d %H:%M %Z").to_string(), "2027-01-01 07:00 MSK");
}

#[test]
fn a_school_id_of_a_source_is_a_school_target() {
    let jobs =
        parse_file(&one_job("target = \"all\"", "target = \"1000042\""), Path::new("x.toml"), &district_config())
            .unwrap();
    assert_eq!(jobs[0].target, Target::School("1000042".into()));
}

#[test]
fn malformed_toml_is_refused_with_its_line() {
    let (line, reason) = refusal(&one_job("cron = \"0 2 * * *\"", "cron = \"0 2 * * *"));
    assert_eq!(line, Some(7));
    assert!(reason.contains("string"), "{reason}");
}

#[test]
fn an_unknown_key_is_refused_with_its_line() {
    let (line, reason) = refusal(&one_job("catch_up = \"once\"", "catch_up = \"once\"\nenabled = true"));
    assert_eq!(line, Some(9));
    assert!(reason.contains("unknown field `enabled`"), "{reason}");
    let (line, reason) = refusal(&one_job("delay_minutes = 15", "delay = 15"));
    assert_eq!(line, Some(10));
    assert!(reason.contains("unknown field `delay`"), "{reason}");
    let (line, _) = refusal(&format!("timezone = \"Europe/Moscow\"\n{ONE_JOB}"));
    assert_eq!(line, Some(1));
}

#[test]
fn an_unknown_kind_is_refused_with_its_line() {
    let (line, reason) = refusal(&one_job("kind = \"sync\"", "kind = \"sync --fast\""));
    assert_eq!(line, Some(5));
    assert!(reason.contains("unknown variant `sync --fast`"), "{reason}");
    assert!(reason.contains("`sync --full`"), "{reason}");
}

#[test]
fn every_kind_is_accepted_and_available() {
    assert_eq!(JobKind::Paper.as_str(), "paper");
    assert!(JobKind::Sync.is_available() && JobKind::FullSync.is_available());
    for (text, kind) in [
        ("paper", JobKind::Paper),
        ("monitor", JobKind::Monitor),
        ("backup", JobKind::Backup),
        ("snapshot", JobKind::Snapshot),
        ("report", JobKind::Report),
    ] {
        let jobs =
            parse_file(&one_job("\"sync\"", &format!("\"{text}\"")), Path::new("x.toml"), &example_config()).unwrap();
        assert!(jobs[0].kind == kind && kind.is_available(), "{text}");
    }
}

#[test]
fn an_unknown_target_is_refused_with_its_line() {
    let (line, reason) = refusal(&one_job("target = \"all\"", "target = \"epos\""));
    assert_eq!(line, Some(6));
    assert_eq!(
        reason,
        "unknown target «epos»: give `all`, a source (dnevnik) or a school (a [[school]] name or an id in a source's \
         `schools`)"
    );
}

#[test]
fn an_invalid_cron_line_is_refused_with_its_line() {
    let (line, reason) = refusal(&one_job("\"0 2 * * *\"", "\"0 25 * * *\""));
    assert_eq!(line, Some(7));
    assert!(reason.starts_with("cron «0 25 * * *» is not valid"), "{reason}");
    let (line, reason) = refusal(&one_job("\"0 2 * * *\"", "\"0 0 2 * * *\""));
    assert_eq!(line, Some(7));
    assert!(reason.contains("must have five fields"), "{reason}");
    let (line, _) = refusal(&one_job("\"0 2 * * *\"", "\"every night\""));
    assert_eq!(line, Some(7));
}

#[test]
fn an_unknown_time_zone_is_refused_with_its_line() {
    let (line, reason) = refusal(&one_job("Europe/Moscow", "Europe/Moskva"));
    assert_eq!(line, Some(1));
    assert!(reason.starts_with("unknown time zone «Europe/Moskva»"), "{reason}");
    let (line, _) = refusal(&one_job("catch_up", "time_zone = \"MSK+4\"\ncatch_up"));
    assert_eq!(line, Some(8));
    let (line, reason) = refusal(&one_job("time_zone = \"Europe/Moscow\"\n", ""));
    assert_eq!(line, Some(3));
    assert!(reason.contains("has no time_zone"), "{reason}");
}

#[test]
fn out_of_range_limits_are_refused_with_their_line() {
    let (line, _) = refusal(&one_job("= 120", "= 0"));
    assert_eq!(line, Some(9));
    let (line, _) = refusal(&one_job("attempts = 2", "attempts = 11"));
    assert_eq!(line, Some(10));
    let (line, _) = refusal(&one_job("delay_minutes = 15", "delay_minutes = 0"));
    assert_eq!(line, Some(10));
}

#[test]
fn every_refusal_of_a_file_is_given_at_once() {
    let text = one_job("target = \"all\"", "target = \"nobody\"").replace("0 2 * * *", "0 2 * *");
    let lines: Vec<Option<usize>> = refusals(&text, &example_config()).iter().map(|r| r.line).collect();
    assert_eq!(lines, [Some(6), Some(7)]);
}

#[test]
fn a_job_name_used_twice_is_refused_with_both_places() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), ONE_JOB).unwrap();
    std::fs::write(dir.path().join("b.toml"), format!("\n\n{ONE_JOB}")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a schedule").unwrap();
    let refused = load_dir(dir.path(), &example_config()).unwrap_err();
    assert_eq!(refused.0.len(), 1);
    assert_eq!(
        refused.0[0].to_string(),
        format!(
            "{}:6: a job named «nightly» is already in {}:4: job names must be unique",
            dir.path().join("b.toml").display(),
            dir.path().join("a.toml").display()
        )
    );
    assert!(load_dir(&dir.path().join("absent"), &example_config()).unwrap().is_empty());
}

#[test]
fn next_times_in_moscow() {
    let jobs = parse_file(SCHOOL, Path::new("school.toml"), &example_config()).unwrap();
    // Saturday 5 December 2026, 13:00 in Moscow.
    let now = utc(2026, 12, 5, 10, 0);
    // Monday to Saturday at 02:00 MSK (UTC+3): Monday the 7th, 23:00 UTC on Sunday.
    assert_eq!(job(&jobs, "nightly-sync").next_after(now).unwrap().with_timezone(&Utc), utc(2026, 12, 6, 23, 0));
    // Sunday 02:00 MSK.
    let full = job(&jobs, "sunday-reconciliation").next_after(now).unwrap();
    assert_eq!(full.with_timezone(&Utc), utc(2026, 12, 5, 23, 0));
    assert_eq!(full.format("%Y-%m-%d %H:%M %Z").to_string(), "2026-12-06 02:00 MSK");
    // From the slot itself, the next one: a week later.
    let after = job(&jobs, "sunday-reconciliation").next_after(full.with_timezone(&Utc)).unwrap();
    assert_eq!(after.with_timezone(&Utc), utc(2026, 12, 12, 23, 0));
}

#[test]
fn two_at_night_in_krasnoyarsk_is_nineteen_utc() {
    let text = one_job("Europe/Moscow", "Asia/Krasnoyarsk");
    let jobs = parse_file(&text, Path::new("x.toml"), &example_config()).unwrap();
    assert_eq!(jobs[0].next_after(utc(2026, 12, 5, 10, 0)).unwrap().with_timezone(&Utc), utc(2026, 12, 5, 19, 0));
}

#[test]
fn next_times_across_the_berlin_changes_of_clock() {
    let zoned = |cron: &str| {
        let text = one_job("Europe/Moscow", "Europe/Berlin").replace("0 2 * * *", cron);
        parse_file(&text, Path::new("x.toml"), &example_config()).unwrap().remove(0)
    };
    // 28 March 2027: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day. A fixed
    // time in the gap runs at the first minute after it, 03:00 CEST.
    let half_past_two = zoned("30 2 * * *");
    let gap = half_past_two.next_after(utc(2027, 3, 27, 12, 0)).unwrap();
    assert_eq!(gap.with_timezone(&Utc), utc(2027, 3, 28, 1, 0));
    assert_eq!(gap.format("%Y-%m-%d %H:%M %Z").to_string(), "2027-03-28 03:00 CEST");
    assert_eq!(half_past_two.next_after(gap.with_timezone(&Utc)).unwrap().with_timezone(&Utc), utc(2027, 3, 29, 0, 30));
    // The day before, still CET (UTC+1).
    assert_eq!(half_past_two.next_after(utc(2027, 3, 26, 12, 0)).unwrap().with_timezone(&Utc), utc(2027, 3, 27, 1, 30));
    // 31 October 2027: 03:00 CEST becomes 02:00 CET; 02:30 comes twice. A fixed time runs
    // once, at its first pass (CEST), and next on 1 November (CET).
    let repeated = half_past_two.next_after(utc(2027, 10, 30, 12, 0)).unwrap();
    assert_eq!(repeated.with_timezone(&Utc), utc(2027, 10, 31, 0, 30));
    assert_eq!(
        half_past_two.next_after(repeated.with_timezone(&Utc)).unwrap().with_timezone(&Utc),
        utc(2027, 11, 1, 1, 30)
    );
    // An hourly job runs at both passes of the repeated hour and skips the missing one.
    let hourly = zoned("30 * * * *");
    let first = hourly.next_after(utc(2027, 10, 31, 0, 0)).unwrap();
    assert_eq!(first.with_timezone(&Utc), utc(2027, 10, 31, 0, 30));
    let second = hourly.next_after(first.with_timezone(&Utc)).unwrap();
    assert_eq!(second.with_timezone(&Utc), utc(2027, 10, 31, 1, 30));
    assert_eq!(second.format("%H:%M %Z").to_string(), "02:30 CET");
    assert_eq!(hourly.next_after(utc(2027, 3, 28, 0, 45)).unwrap().with_timezone(&Utc), utc(2027, 3, 28, 1, 30));
}

#[test]
fn the_listing_shows_both_zones_and_marks_reserved_kinds() {
    let jobs = parse_file(DISTRICT, Path::new("district.toml"), &district_config()).unwrap();
    let never = HashMap::new();
    let table = render(&jobs, utc(2026, 12, 5, 10, 0), Some(&never));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(lines[1].contains("2026-12-06 01:30 +07  2026-12-05 18:30  —"), "{table}");
    assert!(lines[4].contains(" backup ") && !table.contains("not yet available"), "{table}");
    let paper = parse_file(&one_job("\"sync\"", "\"paper\""), Path::new("x.toml"), &example_config()).unwrap();
    let listed = render(&paper, utc(2026, 12, 5, 10, 0), Some(&never));
    assert!(listed.contains(" paper ") && !listed.contains("not yet available"), "{listed}");

    // The last run: its slot in the job's zone (18:30 UTC is 01:30 in Krasnoyarsk, the next
    // day) and its outcome; `?` when the store could not be read.
    let run = crate::store::JobRun {
        id: 7,
        job: "district-nightly".into(),
        scheduled_at: utc(2026, 12, 4, 18, 30),
        trigger: crate::store::JobTrigger::Schedule,
        status: crate::store::JobRunStatus::Failed,
        due_at: utc(2026, 12, 4, 18, 30),
        attempt: 4,
        resumed: 0,
        claim: None,
        host: None,
        pid: None,
        started_at: None,
        finished_at: None,
        error: None,
        error_kind: None,
        sync_runs: vec![],
        note: None,
    };
    let last: HashMap<String, crate::store::JobRun> = [("district-nightly".to_string(), run)].into_iter().collect();
    let table = render(&jobs, utc(2026, 12, 5, 10, 0), Some(&last));
    assert!(table.lines().nth(1).unwrap().ends_with("2026-12-05 18:30  2026-12-05 01:30 +07 failed"), "{table}");
    assert!(table.lines().nth(2).unwrap().ends_with('—'), "{table}");
    let table = render(&jobs, utc(2026, 12, 5, 10, 0), None);
    assert!(table.lines().nth(1).unwrap().ends_with('?'), "{table}");
}
