//! Regulation profiles (профиль положения): one TOML file per school regulation in
//! `regulations/`, each rule with its numbers and the clause it comes from.
//!
//! ```toml
//! name = "s1-kiasuo"
//! title = "Положение об электронном журнале (школа на КИАСУО)"
//! seed = "001_6a7dd6bd85e1d5a5.txt"
//!
//! [[rule]]
//! id = "M1"
//! clause = "S1 5.5"
//! text = "Текущие отметки выставляются в день проведения урока не позднее 16.00."
//! deadline = "same_day"
//! by = "16:00"
//! ```
//!
//! A file that cannot be used — malformed TOML, an unknown rule id, an unknown parameter or
//! a bad value — is refused with the file, the line and the reason, every refusal of every
//! file at once (the same [`Refusal`] as the schedule files).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::line_of;
pub use crate::schedule::Refusal;
use crate::schedule::{parse_files, toml_files};

/// The rules ejgate knows (REGULATIONS.md M1–M22), with the parameters each one takes.
/// Every rule also takes `id`, `clause`, `text` (required) and `severity`.
const RULES: &[(&str, &[&str])] = &[
    ("M1", &["deadline", "by", "days"]),
    ("M2", &["deadline", "by", "days"]),
    ("M3", &["deadline", "by", "days", "ktp"]),
    ("M4", &["deadline", "by", "days", "hours", "reading"]),
    ("M5", &["days", "kinds"]),
    ("M6", &["days", "kinds"]),
    ("M7", &["back_dating", "corrections", "makeup_allowed", "long_checking"]),
    ("M8", &["days"]),
    ("M9", &[]),
    ("M10", &["min_marks"]),
    ("M11", &["deadline", "days"]),
    ("M12", &["allowed"]),
    ("M13", &["every_days"]),
    ("M14", &["every_days"]),
    ("M15", &[]),
    ("M16", &["days"]),
    ("M17", &["days"]),
    ("M18", &[]),
    ("M19", &["working_days"]),
    ("M20", &[]),
    ("M21", &[]),
    ("M22", &["checks"]),
];

const COMMON: &[&str] = &["id", "clause", "text", "severity"];

/// Work kinds (`WorkKind`, snake case) a written-work rule may name.
const WORK_KINDS: &[&str] =
    &["oral", "written", "control", "test", "internal_control", "independent", "practical", "other"];

/// Special final marks (`SpecialFinal`, snake case).
const SPECIAL_FINALS: &[&str] = &["exempt", "not_certified", "pass", "fail"];

/// The reference-data checks of M22.
pub const M22_CHECKS: &[&str] = &["class_teacher", "subject_teacher", "student_in_two_classes"];

/// Когда истекает срок (deadline of an entry after the lesson).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "deadline", rename_all = "snake_case")]
pub enum Deadline {
    /// The lesson's day, by `by` local time (end of the day when the clause names no hour).
    SameDay { by: NaiveTime },
    /// Within `days` days after the lesson's day, to the end of the last one.
    Days { days: u32 },
    /// Within `hours` hours after the lessons end (S4 2.10); `reading` says after which lesson.
    AfterLessons { hours: u32, reading: AfterReading },
}

/// What «после окончания занятий в данном конкретном классе» is taken to mean (S4 2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterReading {
    /// After the end of that lesson.
    Lesson,
    /// After the class's last lesson of the day.
    ClassDay,
}

/// The period marks' deadline (M11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "deadline", rename_all = "snake_case")]
pub enum PeriodDeadline {
    /// Within `days` days after the period's last day.
    DaysAfterEnd { days: u32 },
    /// During the period's last week (the 7 days that end on its last day), before the
    /// holidays: due by the end of the period's last day; an earlier one is not late.
    LastWeek,
}

/// Серьёзность нарушения.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
    /// In Russian, for the board.
    pub fn ru(self) -> &'static str {
        match self {
            Severity::Low => "низкая",
            Severity::Medium => "средняя",
            Severity::High => "высокая",
        }
    }
}

/// One rule of a profile, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// `M1` … `M22`
    pub id: String,
    /// «S1 5.5»
    pub clause: String,
    /// The clause's words, quoted from the regulation
    pub text: String,
    pub severity: Severity,
    pub params: RuleParams,
    /// The line of the rule's `id` in its file.
    pub line: usize,
}

/// The numbers of a rule (what each rule id reads from its table).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RuleParams {
    pub deadline: Option<Deadline>,
    pub period_deadline: Option<PeriodDeadline>,
    pub days: Option<u32>,
    /// Work kinds (M5, M6).
    pub kinds: Vec<String>,
    /// M10: the least number of marks at 1, 2, … hours a week; the last applies above.
    pub min_marks: Vec<u32>,
    /// M12: the special final marks the regulation allows.
    pub allowed: Vec<String>,
    /// M22: the reference-data checks.
    pub checks: Vec<String>,
    /// Other flags and numbers, as written (M3 `ktp`, M7, M13, M14, M19).
    pub other: BTreeMap<String, toml::Value>,
}

/// Профиль положения: one school's regulation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub name: String,
    pub title: String,
    /// The regulation text it was written from (`shared/seeds/…` or the school's own act).
    pub seed: Option<String>,
    pub rules: Vec<Rule>,
    #[serde(skip)]
    pub file: PathBuf,
}

impl Profile {
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// Every refusal of a regulations directory, one per line.
#[derive(Debug, thiserror::Error)]
pub struct Refused(pub Vec<Refusal>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Refusal::to_string).collect();
        write!(f, "the regulation profiles cannot be used:\n{}", lines.join("\n"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Spanned<String>,
    title: String,
    #[serde(default)]
    seed: Option<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

/// Reads one profile's text; `file` names it in refusals. The profile's name must be the
/// file's stem, so that `regulation = "s1-kiasuo"` in `ejgate.toml` finds it.
pub fn parse_profile(text: &str, file: &Path) -> Result<Profile, Vec<Refusal>> {
    let refusal = |offset: Option<usize>, reason: String| Refusal {
        file: file.to_path_buf(),
        line: offset.map(|o| line_of(text, o)),
        reason,
    };
    let raw: RawProfile = toml::from_str(text)
        .map_err(|e| vec![refusal(e.span().map(|s| s.start), e.message().trim_end().to_string())])?;
    let mut refusals = Vec::new();
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if raw.name.get_ref() != stem {
        refusals.push(refusal(
            Some(raw.name.span().start),
            format!(
                "name «{}» differs from the file's name «{stem}»: a school names its profile by the file",
                raw.name.get_ref()
            ),
        ));
    }
    let mut rules = Vec::new();
    let mut seen = BTreeSet::new();
    for table in &raw.rules {
        let first = table.values().map(|v| v.span().start).min().unwrap_or(0);
        let Some((id_key, id)) = table.iter().find(|(k, _)| k.get_ref() == "id") else {
            refusals.push(refusal(Some(first), "a [[rule]] without id: give id = \"M1\" … \"M22\"".into()));
            continue;
        };
        let _ = id_key;
        let Some(id_str) = id.get_ref().as_str() else {
            refusals.push(refusal(Some(id.span().start), "id must be a string such as \"M1\"".into()));
            continue;
        };
        let Some((_, known)) = RULES.iter().find(|(rid, _)| *rid == id_str) else {
            refusals.push(refusal(
                Some(id.span().start),
                format!("unknown rule «{id_str}»: ejgate knows M1 … M22 (see design/REGULATIONS.md)"),
            ));
            continue;
        };
        if !seen.insert(id_str.to_string()) {
            refusals.push(refusal(Some(id.span().start), format!("rule {id_str} is given twice: keep one")));
        }
        let mut rule_refusals = Vec::new();
        for (key, value) in table {
            let k = key.get_ref().as_str();
            if !COMMON.contains(&k) && !known.contains(&k) {
                rule_refusals.push(refusal(
                    Some(key.span().start),
                    format!(
                        "rule {id_str}: unknown parameter «{k}»: it takes {}",
                        known.iter().chain(COMMON.iter().skip(1)).copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let _ = value;
        }
        let get = |k: &str| table.iter().find(|(key, _)| key.get_ref() == k).map(|(_, v)| v);
        let string = |k: &str, required: bool, out: &mut Vec<Refusal>| -> Option<String> {
            match get(k) {
                None if required => {
                    out.push(refusal(Some(id.span().start), format!("rule {id_str}: give its {k}")));
                    None
                }
                None => None,
                Some(v) => match v.get_ref().as_str() {
                    Some(s) if !s.trim().is_empty() => Some(s.to_string()),
                    _ => {
                        out.push(refusal(
                            Some(v.span().start),
                            format!("rule {id_str}: {k} must be a non-empty string"),
                        ));
                        None
                    }
                },
            }
        };
        let clause = string("clause", true, &mut rule_refusals);
        let text_quote = string("text", true, &mut rule_refusals);
        let severity = match string("severity", false, &mut rule_refusals).as_deref() {
            None => Some(Severity::Medium),
            Some("low") => Some(Severity::Low),
            Some("medium") => Some(Severity::Medium),
            Some("high") => Some(Severity::High),
            Some(other) => {
                rule_refusals.push(refusal(
                    get("severity").map(|v| v.span().start),
                    format!("rule {id_str}: severity «{other}»: give low, medium or high"),
                ));
                None
            }
        };
        let number = |k: &str, out: &mut Vec<Refusal>| -> Option<u32> {
            let v = get(k)?;
            match v.get_ref().as_integer() {
                Some(n) if (0..=366).contains(&n) => Some(n as u32),
                _ => {
                    out.push(refusal(
                        Some(v.span().start),
                        format!("rule {id_str}: {k} must be a whole number 0 to 366"),
                    ));
                    None
                }
            }
        };
        let list = |k: &str, allowed: Option<&[&str]>, out: &mut Vec<Refusal>| -> Vec<String> {
            let Some(v) = get(k) else { return Vec::new() };
            let Some(items) = v.get_ref().as_array() else {
                out.push(refusal(Some(v.span().start), format!("rule {id_str}: {k} must be a list")));
                return Vec::new();
            };
            let mut result = Vec::new();
            for item in items {
                match (item.as_str(), allowed) {
                    (Some(s), Some(allowed)) if !allowed.contains(&s) => out.push(refusal(
                        Some(v.span().start),
                        format!("rule {id_str}: {k}: unknown value «{s}»: give {}", allowed.join(", ")),
                    )),
                    (Some(s), _) => result.push(s.to_string()),
                    (None, _) => {
                        out.push(refusal(Some(v.span().start), format!("rule {id_str}: {k} must be a list of strings")))
                    }
                }
            }
            result
        };
        let mut params = RuleParams::default();
        let days = number("days", &mut rule_refusals);
        params.days = days;
        match id_str {
            "M1" | "M2" | "M3" | "M4" => {
                let by = match get("by") {
                    None => None,
                    Some(v) => match v.get_ref().as_str().and_then(|s| NaiveTime::parse_from_str(s, "%H:%M").ok()) {
                        Some(t) => Some(t),
                        None => {
                            rule_refusals.push(refusal(
                                Some(v.span().start),
                                format!("rule {id_str}: by must be a time of day such as \"16:00\""),
                            ));
                            None
                        }
                    },
                };
                let hours = number("hours", &mut rule_refusals);
                let deadline = string("deadline", false, &mut rule_refusals);
                let at = get("deadline").map(|v| v.span().start).unwrap_or(id.span().start);
                params.deadline = match deadline.as_deref() {
                    None if id_str == "M3" => None,
                    None => {
                        rule_refusals.push(refusal(Some(at), format!("rule {id_str}: give its deadline")));
                        None
                    }
                    Some("same_day") if days.is_none() => {
                        Some(Deadline::SameDay { by: by.unwrap_or(NaiveTime::from_hms_opt(23, 59, 59).expect("valid")) })
                    }
                    Some("days") if by.is_none() => match days {
                        Some(d) if d >= 1 => Some(Deadline::Days { days: d }),
                        _ => {
                            rule_refusals.push(refusal(Some(at), format!("rule {id_str}: deadline = \"days\" needs days ≥ 1")));
                            None
                        }
                    },
                    Some("after_lessons") if id_str == "M4" => {
                        let reading = match string("reading", true, &mut rule_refusals).as_deref() {
                            Some("lesson") => Some(AfterReading::Lesson),
                            Some("class_day") => Some(AfterReading::ClassDay),
                            Some(other) => {
                                rule_refusals.push(refusal(
                                    get("reading").map(|v| v.span().start),
                                    format!("rule {id_str}: reading «{other}»: give lesson or class_day"),
                                ));
                                None
                            }
                            None => None,
                        };
                        match (hours, reading) {
                            (Some(hours), Some(reading)) => Some(Deadline::AfterLessons { hours, reading }),
                            (None, _) => {
                                rule_refusals.push(refusal(Some(at), format!("rule {id_str}: after_lessons needs hours")));
                                None
                            }
                            _ => None,
                        }
                    }
                    Some("same_day") => {
                        rule_refusals.push(refusal(Some(at), format!("rule {id_str}: same_day takes by, not days")));
                        None
                    }
                    Some("days") => {
                        rule_refusals.push(refusal(Some(at), format!("rule {id_str}: deadline = \"days\" takes days, not by")));
                        None
                    }
                    Some(other) => {
                        rule_refusals.push(refusal(
                            Some(at),
                            format!(
                                "rule {id_str}: deadline «{other}»: give same_day (with by) or days (with days){}",
                                if id_str == "M4" { " or after_lessons (with hours and reading)" } else { "" }
                            ),
                        ));
                        None
                    }
                };
                if let Some(v) = get("ktp") {
                    match v.get_ref() {
                        toml::Value::Boolean(_) => {
                            params.other.insert("ktp".into(), v.get_ref().clone());
                        }
                        _ => rule_refusals.push(refusal(Some(v.span().start), format!("rule {id_str}: ktp must be true or false"))),
                    }
                }
            }
            "M5" | "M6" => {
                if days.is_none() {
                    rule_refusals.push(refusal(Some(id.span().start), format!("rule {id_str}: give its days")));
                }
                params.kinds = list("kinds", Some(WORK_KINDS), &mut rule_refusals);
                if params.kinds.is_empty() && get("kinds").is_none() {
                    rule_refusals.push(refusal(
                        Some(id.span().start),
                        format!("rule {id_str}: give its kinds (work kinds: {})", WORK_KINDS.join(", ")),
                    ));
                }
            }
            "M10" => match get("min_marks").map(|v| (v, v.get_ref().as_array())) {
                None => rule_refusals.push(refusal(Some(id.span().start), "rule M10: give min_marks = [3, 5, 6]".into())),
                Some((v, Some(items))) if !items.is_empty() && items.iter().all(|i| i.as_integer().is_some_and(|n| (1..=100).contains(&n))) => {
                    params.min_marks = items.iter().filter_map(|i| i.as_integer()).map(|n| n as u32).collect();
                    let _ = v;
                }
                Some((v, _)) => rule_refusals.push(refusal(
                    Some(v.span().start),
                    "rule M10: min_marks must be a list of whole numbers 1 to 100 (at 1, 2, … hours a week; the last applies above)".into(),
                )),
            },
            "M11" => {
                let at = get("deadline").map(|v| v.span().start).unwrap_or(id.span().start);
                params.period_deadline = match string("deadline", true, &mut rule_refusals).as_deref() {
                    Some("days_after_end") => match days {
                        Some(days) => Some(PeriodDeadline::DaysAfterEnd { days }),
                        None => {
                            rule_refusals.push(refusal(Some(at), "rule M11: days_after_end needs days".into()));
                            None
                        }
                    },
                    Some("last_week") => Some(PeriodDeadline::LastWeek),
                    Some(other) => {
                        rule_refusals.push(refusal(Some(at), format!("rule M11: deadline «{other}»: give days_after_end or last_week")));
                        None
                    }
                    None => None,
                };
            }
            "M12" => {
                if get("allowed").is_none() {
                    rule_refusals.push(refusal(Some(id.span().start), "rule M12: give allowed = [] (the special final marks allowed)".into()));
                }
                params.allowed = list("allowed", Some(SPECIAL_FINALS), &mut rule_refusals);
            }
            "M22" => {
                params.checks = list("checks", Some(M22_CHECKS), &mut rule_refusals);
                if get("checks").is_none() {
                    params.checks = M22_CHECKS.iter().map(|s| s.to_string()).collect();
                }
            }
            _ => {
                for k in known.iter().filter(|k| **k != "days") {
                    if let Some(v) = get(k) {
                        params.other.insert((*k).to_string(), v.get_ref().clone());
                    }
                }
            }
        }
        if rule_refusals.is_empty() {
            rules.push(Rule {
                id: id_str.to_string(),
                clause: clause.unwrap_or_default(),
                text: text_quote.unwrap_or_default(),
                severity: severity.unwrap_or(Severity::Medium),
                params,
                line: line_of(text, id.span().start),
            });
        }
        refusals.extend(rule_refusals);
    }
    if refusals.is_empty() {
        Ok(Profile { name: raw.name.into_inner(), title: raw.title, seed: raw.seed, rules, file: file.to_path_buf() })
    } else {
        refusals.sort_by_key(|r| r.line);
        Err(refusals)
    }
}

/// Reads every `*.toml` of a directory, sorted by name; refuses them all at once.
pub fn load_dir(dir: &Path) -> Result<Vec<Profile>, Refused> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Refused(vec![Refusal {
            file: dir.to_path_buf(),
            line: None,
            reason: format!(
                "cannot read the regulations directory: {e} (give regulations_dir in ejgate.toml or --dir)"
            ),
        }])
    })?;
    let (profiles, refusals) = parse_files(toml_files(entries), parse_profile);
    if refusals.is_empty() {
        Ok(profiles)
    } else {
        Err(Refused(refusals))
    }
}

/// Reads one profile by name from a directory.
pub fn load(dir: &Path, name: &str) -> Result<Profile, Refused> {
    let file = dir.join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Refused(vec![Refusal {
            file: file.clone(),
            line: None,
            reason: format!(
                "the regulation profile «{name}» cannot be read: {e} (profiles are the *.toml of {})",
                dir.display()
            ),
        }])
    })?;
    parse_profile(&text, &file).map_err(Refused)
}
