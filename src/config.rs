//! Configuration: one `ejgate.toml`, validated when it loads (an unknown key or a bad value
//! is an error naming the line), the example compiled in and written by `ejgate init`.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use ejgate_sdk::secret::SecretRef;

/// The commented example configuration (`ejgate init` writes it).
pub const EXAMPLE: &str = include_str!("../ejgate.example.toml");

/// The configuration file, as read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    #[serde(default)]
    pub mappings_dir: Option<PathBuf>,
    /// The directory of schedule files (`schedule`); left out, `schedules` beside this file.
    #[serde(default)]
    pub schedules_dir: Option<PathBuf>,
    /// The directory of regulation profiles (`regulations/*.toml`); left out, `regulations`
    /// beside this file.
    #[serde(default)]
    pub regulations_dir: Option<PathBuf>,
    /// Where the `report` jobs of `ejgate serve` write their reports; left out, `reports`
    /// beside this file.
    #[serde(default)]
    pub reports_dir: Option<PathBuf>,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// Schools served by more than one source: their people are linked across the sources.
    #[serde(default, rename = "school")]
    pub schools: Vec<SchoolConfig>,
    /// Backups (`ejgate backup`): targets, keys, retention.
    #[serde(default)]
    pub backup: Option<crate::backup::BackupConfig>,
    /// Year-end bags (`ejgate archive`): where, and the minisign keys.
    #[serde(default)]
    pub archive: Option<crate::archive::ArchiveConfig>,
    /// `ejgate serve`'s HTTP side (health, metrics, the JSON API).
    #[serde(default)]
    pub serve: ServeConfig,
    /// When a source is reported (`ejgate status`, `/metrics`, the daemon's log).
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// The directory the file was read from: relative paths in it are relative to this.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub url: String,
}

/// `[serve]`: where `ejgate serve` answers HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The address of `/healthz`, `/readyz`, `/metrics` and the JSON API `/api/v1/…`.
    /// Loopback by default: `/metrics` and the health checks answer without a token, so
    /// another address belongs behind a firewall or a reverse proxy.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig { listen: default_listen() }
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8089))
}

/// `[alerts]`: when a source needs a person (оповещение ответственного).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// A source without a successful sync for longer than this is reported as stale;
    /// a source's own `stale_after_hours` overrides it. The default, 36 hours, lets one
    /// nightly run fail (or a night's run be late) before the alert: a source synced
    /// every night is never older than 24 hours plus the run's time.
    #[serde(default = "default_stale_after_hours")]
    pub stale_after_hours: u32,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig { stale_after_hours: default_stale_after_hours() }
    }
}

fn default_stale_after_hours() -> u32 {
    36
}

/// The longest `stale_after_hours`: a year.
const MAX_STALE_HOURS: u32 = 366 * 24;

/// A school bound to several sources (for example КИАСУО for the contingent and another
/// system for the journal).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchoolConfig {
    pub name: String,
    /// Source names; the first is the reference the others' persons are linked to.
    pub sources: Vec<String>,
    /// Match rules, strictest first (see `link`): each a list of fields that must all be
    /// present and equal.
    #[serde(default = "crate::link::default_rules", rename = "match")]
    pub match_rules: Vec<Vec<crate::link::MatchField>>,
    /// The regulation profile the school follows (профиль положения): the name of a file in
    /// `regulations_dir` without `.toml` (`"s1-kiasuo"`); monitoring needs it.
    #[serde(default)]
    pub regulation: Option<String>,
    /// The source that is the school's journal of record (журнал), where it has several;
    /// left out, the first of `sources`.
    #[serde(default)]
    pub journal: Option<String>,
    /// The school's template of the paper copies (шаблон бумажных копий), laid over
    /// `templates/paper.toml`: only the keys it changes need be in it.
    #[serde(default)]
    pub paper_template: Option<PathBuf>,
}

impl SchoolConfig {
    /// The source whose journal monitoring judges.
    pub fn journal_source(&self) -> &str {
        self.journal.as_deref().unwrap_or_else(|| self.sources.first().map(String::as_str).unwrap_or_default())
    }

    /// The school's sources, the journal of record first (the order the school reports
    /// read them in: the journal's record wins where sources overlap).
    pub fn sources_journal_first(&self) -> Vec<String> {
        let journal = self.journal_source();
        std::iter::once(journal)
            .chain(self.sources.iter().map(String::as_str).filter(|x| *x != journal))
            .map(str::to_owned)
            .collect()
    }
}

/// The systems ejgate has connectors for (also the values of `ejgate emulate SYSTEM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum System {
    /// Dnevnik.ru API v2 (also the old api.school.mosreg.ru white-label)
    Dnevnik,
    /// ЭПОС.Школа (Perm krai)
    Epos,
    /// КИАСУО diary API (Krasnoyarsk krai)
    Kiasuo,
    /// «Моя школа» (Школьный портал МО today, authedu.mosreg.ru), МЭШ-style API
    Mosreg,
    /// Exports of any journal system (XLSX, CSV, XML) in a directory, read by a mapping file
    Files,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Dnevnik => "dnevnik",
            System::Epos => "epos",
            System::Kiasuo => "kiasuo",
            System::Mosreg => "mosreg",
            System::Files => "files",
        }
    }

    /// Whether the system is read over HTTP (needs `base_url` and a token).
    pub fn is_api(self) -> bool {
        self != System::Files
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    pub system: System,
    /// The API's address (every system but `files`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// `files` only: the directory the school's system exports into.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// `files` only: the mapping file naming sheets, columns and elements
    /// (`mappings/files/default.toml` documents the format); left out, the built-in default
    /// layout.
    #[serde(default)]
    pub mapping: Option<PathBuf>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub token_env: Option<String>,
    /// A token file that other users can read or change (group or others bits of its mode)
    /// is a warning, not a refusal (`sources::check_token_file`).
    #[serde(default)]
    pub allow_readable_token_file: bool,
    #[serde(default)]
    pub requests_per_second: Option<NonZeroU32>,
    /// The most requests one run of this source may make (a night's budget): a plan that
    /// needs more keeps the reference lists and the most recent journal and names what it
    /// leaves for a later run (`sync::fit_budget`). Left out: no budget.
    #[serde(default)]
    pub max_requests: Option<u64>,
    #[serde(default = "default_window")]
    pub window_days: u32,
    /// Days of journal one request asks for in a full run (Dnevnik, ЭПОС.Школа, «Моя
    /// школа»); left out, the system's default (its README: the whole year for Dnevnik, 31
    /// days for the others). A range the source refuses is asked again in halves.
    #[serde(default)]
    pub chunk_days: Option<u32>,
    #[serde(default)]
    pub schools: Vec<String>,
    #[serde(default)]
    pub extra_root_certificates: Vec<PathBuf>,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The share of a kind's live records (percent) a sync may turn into tombstones without
    /// `ejgate sync --allow-deletes` (see `sync::DeleteLimit`).
    #[serde(default = "default_max_delete_percent")]
    pub max_delete_percent: f64,
    /// The school's offset from UTC in hours (ЭПОС.Школа: Perm is +5), used to read the
    /// source's clock; other systems send zoned times.
    #[serde(default)]
    pub utc_offset_hours: Option<i32>,
    /// «Моя школа» only: the mobile host (`https://api.myschool.mosreg.ru/`) and the school
    /// host (`https://myschool.mosreg.ru/`); `base_url` is the web host
    /// (`https://authedu.mosreg.ru/`). Left out: the production hosts when `base_url` is
    /// authedu.mosreg.ru, otherwise `base_url` for all three (one server, as the emulator).
    #[serde(default)]
    pub mobile_url: Option<String>,
    #[serde(default)]
    pub school_url: Option<String>,
    /// The share of a stream's records that may be unreadable (left out with a warning)
    /// before the run fails; at least `SkipLimit::MIN_COUNT` (5) of them must be.
    #[serde(default = "default_skipped_share")]
    pub max_skipped_share: f64,
    /// The school year this source reads (`"2024/2025"`), for an archive of a past year;
    /// left out, the year the source calls current. `ejgate sync --year` overrides it.
    #[serde(default)]
    pub year: Option<ejgate_sdk::year::SchoolYear>,
    /// This source's own `[alerts] stale_after_hours` (a source synced weekly, a files
    /// source the school exports into once a month).
    #[serde(default)]
    pub stale_after_hours: Option<u32>,
}

/// The longest `chunk_days` and `window_days`: a year.
const MAX_DAYS: u32 = 366;

fn default_window() -> u32 {
    35
}
fn default_timeout() -> u64 {
    60
}
fn default_concurrency() -> usize {
    4
}
fn default_max_delete_percent() -> f64 {
    crate::sync::DEFAULT_MAX_DELETE_PERCENT
}
fn default_skipped_share() -> f64 {
    crate::sync::SkipLimit::DEFAULT_SHARE
}

/// A configuration that cannot be used; the text says which file, where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}. Run `ejgate init` to write one")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads and checks a configuration file. `EJGATE_STORE_URL` replaces `store.url`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let mut config = Config::parse(&text, path)?;
        if let Ok(url) = std::env::var("EJGATE_STORE_URL") {
            config.store.url = url;
        }
        Ok(config)
    }

    /// Parses and checks configuration text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: path.to_path_buf(), message };
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            invalid(match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_string(),
            })
        })?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let hours_in_range = |hours: u32| (1..=MAX_STALE_HOURS).contains(&hours);
        if !hours_in_range(config.alerts.stale_after_hours) {
            return Err(invalid(format!(
                "[alerts] stale_after_hours = {} is out of range: give 1 to {MAX_STALE_HOURS} (default {})",
                config.alerts.stale_after_hours,
                default_stale_after_hours()
            )));
        }
        let mut names = std::collections::HashSet::new();
        for source in &config.sources {
            if let Some(hours) = source.stale_after_hours.filter(|h| !hours_in_range(*h)) {
                return Err(invalid(format!(
                    "source «{}»: stale_after_hours = {hours} is out of range: give 1 to {MAX_STALE_HOURS} \
                     (default: [alerts] stale_after_hours, {})",
                    source.name, config.alerts.stale_after_hours
                )));
            }
            if !(0.0..=100.0).contains(&source.max_delete_percent) {
                return Err(invalid(format!(
                    "source «{}»: max_delete_percent = {} is not a share: give 0 to 100 (default {})",
                    source.name,
                    source.max_delete_percent,
                    crate::sync::DEFAULT_MAX_DELETE_PERCENT
                )));
            }
            if !names.insert(source.name.as_str()) {
                return Err(invalid(format!("two sources are named «{}»; names must be unique", source.name)));
            }
            if source.name.is_empty() || source.name.contains(['/', ' ']) {
                return Err(invalid(format!("source name «{}»: use letters, digits, '-' and '_'", source.name)));
            }
            if !(0.0..=1.0).contains(&source.max_skipped_share) {
                return Err(invalid(format!(
                    "source «{}»: max_skipped_share is a share between 0 and 1 (0.05 is one record in twenty), not {}",
                    source.name, source.max_skipped_share
                )));
            }
            if !source.system.is_api() {
                if source.dir.is_none() {
                    return Err(invalid(format!(
                        "source «{}»: a files source needs `dir`, the directory the exports are in",
                        source.name
                    )));
                }
                if source.year.is_some() {
                    return Err(invalid(format!(
                        "source «{}»: a files source reads the year its exports hold; `year` does not apply (export \
                         a past year into a directory of its own)",
                        source.name
                    )));
                }
                if source.base_url.is_some() || source.token_file.is_some() || source.token_env.is_some() {
                    return Err(invalid(format!(
                        "source «{}»: a files source reads `dir`; base_url, token_file and token_env do not apply",
                        source.name
                    )));
                }
                continue;
            }
            if source.dir.is_some() || source.mapping.is_some() {
                return Err(invalid(format!(
                    "source «{}»: `dir` and `mapping` belong to files sources; system «{}» reads base_url",
                    source.name,
                    source.system.as_str()
                )));
            }
            for (key, value) in
                [("base_url", &source.base_url), ("mobile_url", &source.mobile_url), ("school_url", &source.school_url)]
            {
                match value {
                    None if key == "base_url" => {
                        return Err(invalid(format!("source «{}»: base_url is missing", source.name)))
                    }
                    None => {}
                    Some(url) => match url::Url::parse(url) {
                        Err(_) => return Err(invalid(format!("source «{}»: {key} «{url}» is not a URL", source.name))),
                        // An ftp:// address had been retried as a network failure.
                        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                            return Err(invalid(format!(
                                "source «{}»: {key} «{url}»: ejgate reads the journal systems over https:// \
                                 (or http://), not {}://",
                                source.name,
                                u.scheme()
                            )))
                        }
                        Ok(_) => {}
                    },
                }
            }
            if let Some(offset) = source.utc_offset_hours {
                if !(-12..=14).contains(&offset) {
                    return Err(invalid(format!(
                        "source «{}»: utc_offset_hours = {offset} is not an offset of a time zone: give -12 to 14 \
                         (Perm is 5, Moscow 3, Krasnoyarsk 7)",
                        source.name
                    )));
                }
            }
            if source.token_file.is_some() == source.token_env.is_some() {
                return Err(invalid(format!("source «{}»: give exactly one of token_file and token_env", source.name)));
            }
            // КИАСУО's refresh token rotates: ejgate must write each new one back.
            if source.system == System::Kiasuo && source.token_file.is_none() {
                return Err(invalid(format!(
                    "source «{}»: КИАСУО needs token_file (the refresh token rotates and ejgate writes \
                     each new one back to that file); token_env cannot be used",
                    source.name
                )));
            }
            // A year at most: `chunk_days = 100000000` passed and then panicked on a date out
            // of range in the model.
            if let Some(days) = source.chunk_days.filter(|d| !(1..=MAX_DAYS).contains(d)) {
                return Err(invalid(format!(
                    "source «{}»: chunk_days = {days} is out of range: give 1 to {MAX_DAYS} (left out: the \
                     system's default)",
                    source.name,
                )));
            }
            if !(1..=MAX_DAYS).contains(&source.window_days) {
                return Err(invalid(format!(
                    "source «{}»: window_days = {} is out of range: give 1 to {MAX_DAYS} (default {})",
                    source.name,
                    source.window_days,
                    default_window()
                )));
            }
            if source.concurrency == 0 || source.concurrency > 64 {
                return Err(invalid(format!(
                    "source «{}»: concurrency = {} is out of range: give 1 to 64 (default {})",
                    source.name,
                    source.concurrency,
                    default_concurrency()
                )));
            }
            for cert in &source.extra_root_certificates {
                let path = config.resolve(cert);
                match std::fs::read(&path) {
                    Err(e) => {
                        return Err(invalid(format!(
                            "source «{}»: the root certificate {} cannot be read: {e}",
                            source.name,
                            path.display()
                        )))
                    }
                    Ok(bytes) if !bytes.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") => {
                        return Err(invalid(format!(
                            "source «{}»: {} is not a PEM certificate (no «-----BEGIN CERTIFICATE-----» in it); \
                             a DER file converts with `openssl x509 -inform der -in FILE -out FILE.pem`",
                            source.name,
                            path.display()
                        )))
                    }
                    Ok(_) => {}
                }
            }
        }
        if let Some(dir) = &config.mappings_dir {
            let dir = config.resolve(dir);
            if !dir.is_dir() {
                return Err(invalid(format!(
                    "mappings_dir {} is not a directory: correct the path or leave mappings_dir out (the built-in \
                     code tables are used)",
                    dir.display()
                )));
            }
        }
        if let Some(backup) = &config.backup {
            crate::backup::check_config(backup, text).map_err(invalid)?;
        }
        for school in &config.schools {
            if school.sources.is_empty() {
                return Err(invalid(format!("school «{}»: name its sources", school.name)));
            }
            if let Some(missing) = school.sources.iter().find(|s| !names.contains(s.as_str())) {
                return Err(invalid(format!("school «{}»: there is no [[source]] named «{missing}»", school.name)));
            }
            if school.match_rules.is_empty() || school.match_rules.iter().any(Vec::is_empty) {
                return Err(invalid(format!(
                    "school «{}»: every match rule needs at least one field (last_name, first_name, middle_name, birth_date, sex)",
                    school.name
                )));
            }
            if let Some(journal) = &school.journal {
                if !school.sources.contains(journal) {
                    return Err(invalid(format!(
                        "school «{}»: journal = «{journal}» is not one of its sources ({})",
                        school.name,
                        school.sources.join(", ")
                    )));
                }
            }
            if let Some(regulation) = &school.regulation {
                let file = config.regulations_dir().join(format!("{regulation}.toml"));
                if !file.is_file() {
                    return Err(invalid(format!(
                        "school «{}»: regulation = «{regulation}»: there is no {}; name a profile of {} (without .toml) \
                         or set regulations_dir",
                        school.name,
                        file.display(),
                        config.regulations_dir().display()
                    )));
                }
            }
        }
        Ok(config)
    }

    /// A path from the file, relative to the file's directory.
    /// The schedules directory: `schedules_dir`, or `schedules` beside the configuration.
    pub fn schedules_dir(&self) -> PathBuf {
        self.resolve(self.schedules_dir.as_deref().unwrap_or(Path::new("schedules")))
    }

    /// The reports directory of `report` jobs: `reports_dir`, or `reports` beside the file.
    pub fn reports_dir(&self) -> PathBuf {
        self.resolve(self.reports_dir.as_deref().unwrap_or(Path::new("reports")))
    }

    /// The regulation profiles directory: `regulations_dir`, or `regulations` beside the
    /// configuration.
    pub fn regulations_dir(&self) -> PathBuf {
        self.resolve(self.regulations_dir.as_deref().unwrap_or(Path::new("regulations")))
    }

    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// The store URL with a relative SQLite path made relative to the configuration file.
    pub fn store_url(&self) -> String {
        let url = &self.store.url;
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let path = Path::new(rest);
            if !path.is_absolute() && !rest.starts_with(':') {
                return format!("sqlite://{}", self.resolve(path).display());
            }
        }
        url.clone()
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }
}

impl SourceConfig {
    /// The source's delete limit, confirmed or not by the person running the sync.
    pub fn delete_limit(&self, allowed: bool) -> crate::sync::DeleteLimit {
        crate::sync::DeleteLimit { max_percent: self.max_delete_percent, allowed }
    }

    /// Where the source's token is.
    pub fn token_ref(&self, config: &Config) -> SecretRef {
        SecretRef { file: self.token_file.as_deref().map(|p| config.resolve(p)), env: self.token_env.clone() }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds.max(1))
    }

    /// How long this source may go without a successful sync before it is reported.
    pub fn stale_after(&self, config: &Config) -> chrono::TimeDelta {
        chrono::TimeDelta::hours(i64::from(self.stale_after_hours.unwrap_or(config.alerts.stale_after_hours)))
    }

    /// When unreadable records fail this source's runs.
    pub fn skip_limit(&self) -> crate::sync::SkipLimit {
        crate::sync::SkipLimit { max_share: self.max_skipped_share, ..Default::default() }
    }
}

/// The 1-based line of a byte offset into a TOML text (a parse error's or a value's span),
/// for errors that name the line: the configuration's and the schedule files'.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_valid() {
        let c = Config::parse(EXAMPLE, Path::new("/etc/ejgate/ejgate.toml")).unwrap();
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.store_url(), "sqlite:///etc/ejgate/ejgate.db");
        assert_eq!(c.sources[0].token_ref(&c).file.unwrap(), Path::new("/etc/ejgate/secrets/dnevnik.token"));
        assert_eq!(c.serve.listen, std::net::SocketAddr::from(([127, 0, 0, 1], 8089)));
        assert_eq!(c.sources[0].stale_after(&c), chrono::TimeDelta::hours(36));
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let text = "[store]\nurl = \"sqlite://x.db\"\n\n[[source]]\nname = \"d\"\nsystem = \"dnevnik\"\nbase_url = \"http://x/\"\ntoken_file = \"t\"\nwindow_dayz = 3\n";
        let e = Config::parse(text, Path::new("e.toml")).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("window_dayz"), "{e}");
        let text = "[store]\nurl = \"sqlite://x.db\"\n[[source]]\nname = \"d\"\nsystem = \"dnevnik\"\nbase_url = \"http://x/\"\n";
        let e = Config::parse(text, Path::new("e.toml")).unwrap_err().to_string();
        assert!(e.contains("token_file"), "{e}");
    }

    /// Values that passed before and failed later (a panic, a retried «network failure»)
    /// or were silently wrong are refused when the file loads, naming the key and the range.
    #[test]
    fn out_of_range_settings_are_refused_with_the_range() {
        let source = |extra: &str| {
            format!(
                "[store]\nurl = \"sqlite://x.db\"\n[[source]]\nname = \"d\"\nsystem = \"dnevnik\"\n\
                 base_url = \"https://x/\"\ntoken_env = \"T\"\n{extra}\n"
            )
        };
        let cases = [
            ("chunk_days = 100000000", "chunk_days = 100000000 is out of range: give 1 to 366"),
            ("window_days = 0", "window_days = 0 is out of range"),
            ("utc_offset_hours = 1000", "utc_offset_hours = 1000 is not an offset"),
            ("max_delete_percent = 150", "max_delete_percent = 150 is not a share"),
            ("concurrency = 0", "concurrency = 0 is out of range"),
            ("stale_after_hours = 0", "stale_after_hours = 0 is out of range: give 1 to 8784"),
            ("extra_root_certificates = [\"/nonexistent/ca.pem\"]", "/nonexistent/ca.pem cannot be read"),
        ];
        for (extra, expected) in cases {
            let e = Config::parse(&source(extra), Path::new("e.toml")).unwrap_err().to_string();
            assert!(e.contains(expected), "{extra}: {e}");
        }
        let alerts = format!("[alerts]\nstale_after_hours = 100000\n{}", source(""));
        let e = Config::parse(&alerts, Path::new("e.toml")).unwrap_err().to_string();
        assert!(e.contains("[alerts] stale_after_hours = 100000 is out of range"), "{e}");
        let listen = format!("[serve]\nlisten = \"localhost\"\n{}", source(""));
        let e = Config::parse(&listen, Path::new("e.toml")).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let ftp = source("").replace("https://x/", "ftp://x/");
        let e = Config::parse(&ftp, Path::new("e.toml")).unwrap_err().to_string();
        assert!(e.contains("not ftp://"), "{e}");
        let e = Config::parse(&format!("mappings_dir = \"/nonexistent/m\"\n{}", source("")), Path::new("e.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/m is not a directory"), "{e}");

        let dir = std::env::temp_dir().join(format!("ejgate-config-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.der"), [0x30, 0x82, 0x01, 0x0a]).unwrap();
        let e = Config::parse(&source("extra_root_certificates = [\"ca.der\"]"), &dir.join("ejgate.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca.der is not a PEM certificate") && e.contains("openssl x509"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn max_skipped_share_defaults_to_one_in_twenty_and_is_a_share() {
        let source = "[store]\nurl = \"sqlite://x.db\"\n[[source]]\nname = \"d\"\nsystem = \"dnevnik\"\nbase_url = \"http://x/\"\ntoken_file = \"t\"\n";
        let c = Config::parse(source, Path::new("e.toml")).unwrap();
        assert_eq!(c.sources[0].max_skipped_share, 0.05);
        let c = Config::parse(&format!("{source}max_skipped_share = 0.2\n"), Path::new("e.toml")).unwrap();
        assert_eq!(c.sources[0].skip_limit().max_share, 0.2);
        let e =
            Config::parse(&format!("{source}max_skipped_share = 5\n"), Path::new("e.toml")).unwrap_err().to_string();
        assert!(e.contains("max_skipped_share"), "{e}");
    }

    #[test]
    fn a_source_may_name_its_school_year() {
        let source = "[store]\nurl = \"sqlite://x.db\"\n[[source]]\nname = \"d\"\nsystem = \"dnevnik\"\nbase_url = \"http://x/\"\ntoken_file = \"t\"\n";
        assert_eq!(Config::parse(source, Path::new("e.toml")).unwrap().sources[0].year, None);
        let c = Config::parse(&format!("{source}year = \"2024/2025\"\n"), Path::new("e.toml")).unwrap();
        assert_eq!(c.sources[0].year, Some(ejgate_sdk::year::SchoolYear::new(2024)));
        let e = Config::parse(&format!("{source}year = \"2024\"\n"), Path::new("e.toml")).unwrap_err().to_string();
        assert!(e.contains("line 8") && e.contains("not a school year"), "{e}");
    }
}
