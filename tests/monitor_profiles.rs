//! The regulation profiles of `regulations/`: the shipped ones load with the numbers of their
//! clauses, and a file that cannot be used is refused with FILE:LINE: reason.

use std::path::{Path, PathBuf};

use chrono::NaiveTime;
use ejgate::monitor::profile::{self, Deadline, PeriodDeadline};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regulations")
}

#[test]
fn the_shipped_profiles_load_with_the_numbers_of_their_clauses() {
    let profiles = profile::load_dir(&shipped()).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["s0-lyubinsky", "s1-kiasuo", "s2-dubrovskaya", "s3-molodechno", "s4-korolev"]);
    let by = |name: &str| profiles.iter().find(|p| p.name == name).unwrap();
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    // S0 4.2а: «не позднее двух дней после проведения урока»
    assert_eq!(by("s0-lyubinsky").rule("M1").unwrap().params.deadline, Some(Deadline::Days { days: 2 }));
    // S1 5.5: «в день проведения урока не позднее 16.00»
    let m1 = by("s1-kiasuo").rule("M1").unwrap();
    assert_eq!(m1.params.deadline, Some(Deadline::SameDay { by: hm(16, 0) }));
    assert_eq!(m1.clause, "S1 5.5");
    // S3 3.4.2: «в день проведения урока (до 19.00)», marks and topics alike
    for id in ["M1", "M3", "M4"] {
        assert_eq!(
            by("s3-molodechno").rule(id).unwrap().params.deadline,
            Some(Deadline::SameDay { by: hm(19, 0) }),
            "{id}"
        );
    }
    // S2 3.4.6 and S4 учитель 10: written works within 7 days; S4 учитель 9: ВШК within 3
    assert_eq!(by("s2-dubrovskaya").rule("M5").unwrap().params.days, Some(7));
    assert_eq!(by("s4-korolev").rule("M5").unwrap().params.days, Some(7));
    let m6 = by("s4-korolev").rule("M6").unwrap();
    assert_eq!((m6.params.days, m6.params.kinds.clone()), (Some(3), vec!["internal_control".to_string()]));
    // S1 5.2: 3 marks at 1 h/week, 5 at 2 h/week, more than 5 above
    assert_eq!(by("s1-kiasuo").rule("M10").unwrap().params.min_marks, [3, 5, 6]);
    // S1 5.3 forbids «освобождён» and «не аттестован»; S4 2.11 allows ОСВ and Н/А
    let s1_allowed = &by("s1-kiasuo").rule("M12").unwrap().params.allowed;
    assert!(!s1_allowed.iter().any(|a| a == "exempt" || a == "not_certified"), "{s1_allowed:?}");
    let s4_allowed = &by("s4-korolev").rule("M12").unwrap().params.allowed;
    assert!(s4_allowed.iter().any(|a| a == "exempt") && s4_allowed.iter().any(|a| a == "not_certified"));
    // S2 3.4.7: 2 days after the period; S4 2.11: the period's last week
    assert_eq!(
        by("s2-dubrovskaya").rule("M11").unwrap().params.period_deadline,
        Some(PeriodDeadline::DaysAfterEnd { days: 2 })
    );
    assert_eq!(by("s4-korolev").rule("M11").unwrap().params.period_deadline, Some(PeriodDeadline::LastWeek));
    // every rule cites its seed's clause
    for p in &profiles {
        let seed = &p.name[..2].to_uppercase();
        for r in &p.rules {
            assert!(r.clause.starts_with(seed.as_str()), "{} {}: clause {}", p.name, r.id, r.clause);
            assert!(!r.text.is_empty());
        }
    }
}

/// Writes `text` as `dir/NAME.toml` and returns the refusals of the directory, as printed.
fn refusals(name: &str, text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    let refused = profile::load_dir(dir.path()).expect_err("the profile must be refused");
    let prefix = format!("{}/", dir.path().display());
    refused.0.iter().map(|r| r.to_string().replace(&prefix, "")).collect()
}

const HEAD: &str =
    "name = \"x\"\ntitle = \"Тест\"\n\n[[rule]]\nid = \"M1\"\nclause = \"X 1\"\ntext = \"в день урока\"\n";

#[test]
fn a_profile_that_cannot_be_used_is_refused_with_file_line_and_reason() {
    // HEAD is 7 lines; what follows starts at line 8
    let unknown_param = refusals("x", &format!("{HEAD}deadline = \"same_day\"\nby = \"16:00\"\nhour = 16\n"));
    assert_eq!(unknown_param.len(), 1, "{unknown_param:?}");
    assert!(unknown_param[0].starts_with("x.toml:10: rule M1: unknown parameter «hour»"), "{unknown_param:?}");

    let unknown_rule =
        refusals("x", "name = \"x\"\ntitle = \"Т\"\n[[rule]]\nid = \"M99\"\nclause = \"X\"\ntext = \"т\"\n");
    assert!(unknown_rule[0].starts_with("x.toml:4: unknown rule «M99»"), "{unknown_rule:?}");

    let malformed = refusals("x", &format!("{HEAD}deadline = same_day\n"));
    assert!(malformed[0].starts_with("x.toml:8: "), "{malformed:?}");

    let bad_time = refusals("x", &format!("{HEAD}deadline = \"same_day\"\nby = \"25:00\"\n"));
    assert!(bad_time[0].starts_with("x.toml:9: rule M1: by must be a time of day"), "{bad_time:?}");

    let both = refusals("x", &format!("{HEAD}deadline = \"same_day\"\ndays = 2\n"));
    assert!(both[0].starts_with("x.toml:8: rule M1: same_day takes by, not days"), "{both:?}");

    let bad_special = refusals(
        "x",
        "name = \"x\"\ntitle = \"Т\"\n[[rule]]\nid = \"M12\"\nclause = \"X\"\ntext = \"т\"\nallowed = [\"osv\"]\n",
    );
    assert!(bad_special[0].starts_with("x.toml:7: rule M12: allowed: unknown value «osv»"), "{bad_special:?}");

    let no_clause = refusals(
        "x",
        "name = \"x\"\ntitle = \"Т\"\n[[rule]]\nid = \"M5\"\ntext = \"т\"\ndays = 7\nkinds = [\"written\"]\n",
    );
    assert!(no_clause[0].starts_with("x.toml:4: rule M5: give its clause"), "{no_clause:?}");

    let renamed = refusals("y", &format!("{HEAD}deadline = \"days\"\ndays = 2\n"));
    assert!(renamed[0].starts_with("y.toml:1: name «x» differs from the file's name «y»"), "{renamed:?}");

    // every refusal of every file at once
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "name = \"a\"\ntitle = \"Т\"\n[[rule]]\nid = \"M0\"\nclause = \"X\"\ntext = \"т\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.toml"), "name = \"b\"\ntitle = \"Т\"\nfoo = 1\n").unwrap();
    std::fs::write(dir.path().join("c.toml"), HEAD.replace("\"x\"", "\"c\"") + "deadline = \"days\"\ndays = 1\n")
        .unwrap();
    let refused = profile::load_dir(dir.path()).unwrap_err();
    let files: Vec<String> =
        refused.0.iter().map(|r| r.file.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(files, ["a.toml", "b.toml"], "{refused}");
}

#[test]
fn a_copied_profile_with_changed_numbers_loads() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped().join("s1-kiasuo.toml")).unwrap();
    let copied =
        text.replace("name = \"s1-kiasuo\"", "name = \"school-7\"").replace("by = \"16:00\"", "by = \"17:30\"");
    std::fs::write(dir.path().join("school-7.toml"), copied).unwrap();
    let p = profile::load(dir.path(), "school-7").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.rule("M1").unwrap().params.deadline,
        Some(Deadline::SameDay { by: NaiveTime::from_hms_opt(17, 30, 0).unwrap() })
    );
}
