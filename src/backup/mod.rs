//! Резервное копирование: `ejgate backup`, `backup verify`, `backup log` and `restore`
//! (REGULATIONS A6 backups by schedule and on demand to external media, A7 on at least two
//! media, A8 opened by a code only the director knows, A9 a log of every use, A10 restore
//! in a trustworthy state).
//!
//! A backup is one consistent snapshot of the store taken while syncs write (SQLite:
//! `VACUUM INTO`, a database file; PostgreSQL: an export of one `REPEATABLE READ`
//! transaction in `COPY` text format, `store::postgres::export`), compressed with zstd and
//! encrypted with age, written with its manifest to every
//! configured target (at least two). Each target holds, per backup `ID`:
//! - `ejgate-ID.sqlite.zst.age` (`ejgate-ID.postgres.zst.age`): the sealed snapshot;
//! - `ejgate-ID.manifest.json`: what it holds (store kind, schema version, rows per table,
//!   sha256 of the plaintext and of the sealed file, created at, by whom, why). Written
//!   last: a backup is listed only once its manifest is there.
//!
//! Both are written under a temporary name, renamed, then read back and compared. A target
//! that is down does not stop the others: the run is degraded, and the next run copies the
//! backups a target lacks from a target that has them (verified by their hash) before it
//! writes its own. Retention: [`retention`].

pub mod crypt;
pub mod retention;
pub mod target;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{line_of, Config};
use crate::store::{self, BackupAction, BackupOutcome, BackupUse, Inspection, Store};
use crypt::{Opening, Sealing};
use retention::Keep;
use target::{Place, Target};

/// `[backup]` in `ejgate.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// age recipients (X25519 public keys, `age1…`, as `age-keygen` prints them).
    #[serde(default)]
    pub recipients: Vec<toml::Spanned<String>>,
    /// The director's passphrase (scrypt), in a file or an environment variable; instead of
    /// recipients (age allows a passphrase only alone).
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
    #[serde(default)]
    pub passphrase_env: Option<String>,
    /// An identity file opening the backups, for `backup verify` and `restore` on this
    /// machine (`--identity` gives one too). Usually kept elsewhere, by the director.
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// Backups kept per target: the newest `keep_last`, the newest of each of `keep_monthly`
    /// months, and of `keep_yearly` school years (at least 25, A3); a target may set its own.
    #[serde(default)]
    pub keep_last: Option<toml::Spanned<u32>>,
    #[serde(default)]
    pub keep_monthly: Option<toml::Spanned<u32>>,
    #[serde(default)]
    pub keep_yearly: Option<toml::Spanned<u32>>,
    #[serde(default, rename = "target")]
    pub targets: Vec<TargetConfig>,
}

/// `[[backup.target]]`: exactly one of `path` and `webdav`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: toml::Spanned<String>,
    /// A local or mounted directory (it must exist: an unmounted drive is a target down).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// A WebDAV collection, `https://host/path/`.
    #[serde(default)]
    pub webdav: Option<toml::Spanned<String>>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub keep_last: Option<toml::Spanned<u32>>,
    #[serde(default)]
    pub keep_monthly: Option<toml::Spanned<u32>>,
    #[serde(default)]
    pub keep_yearly: Option<toml::Spanned<u32>>,
}

/// Checks `[backup]` when the configuration loads; the error names the line.
pub fn check_config(backup: &BackupConfig, text: &str) -> Result<(), String> {
    let at = |span: std::ops::Range<usize>| format!("line {}", line_of(text, span.start));
    if backup.targets.len() < 2 {
        return Err(format!(
            "[backup] names {} target(s): give at least two [[backup.target]] (REGULATIONS A7: the archive on two \
             media kept in different rooms), for example a mounted drive and a network share",
            backup.targets.len()
        ));
    }
    let passphrase = backup.passphrase_file.is_some() || backup.passphrase_env.is_some();
    if backup.passphrase_file.is_some() && backup.passphrase_env.is_some() {
        return Err("[backup]: give one of passphrase_file and passphrase_env, not both".into());
    }
    if passphrase && !backup.recipients.is_empty() {
        return Err(format!(
            "[backup] {}: recipients and a passphrase together: age seals a file either to recipients' keys or to one \
             passphrase; keep one of them",
            at(backup.recipients[0].span())
        ));
    }
    if !passphrase && backup.recipients.is_empty() {
        return Err("[backup]: name who can open the backups: recipients = [\"age1…\"] (public keys from \
                    `age-keygen`) or the director's passphrase_file / passphrase_env"
            .into());
    }
    for r in &backup.recipients {
        if r.get_ref().parse::<age::x25519::Recipient>().is_err() {
            return Err(format!(
                "[backup] {}: «{}» is not an age public key (age1…, as `age-keygen -y KEYFILE` prints it)",
                at(r.span()),
                r.get_ref()
            ));
        }
    }
    let check_keep = |keep: &Option<toml::Spanned<u32>>, yearly: bool, whose: &str| -> Result<(), String> {
        let Some(k) = keep else { return Ok(()) };
        if yearly && (*k.get_ref() as i32) < retention::MIN_YEARS {
            return Err(format!(
                "{whose} {}: keep_yearly = {} is below 25: the newest backup of each school year holds the сводные \
                 ведомости, kept 25 years (REGULATIONS A3); give 25 or more",
                at(k.span()),
                k.get_ref()
            ));
        }
        if !yearly && *k.get_ref() == 0 {
            return Err(format!("{whose} {}: keep_last and keep_monthly take 1 or more", at(k.span())));
        }
        Ok(())
    };
    check_keep(&backup.keep_last, false, "[backup]")?;
    check_keep(&backup.keep_monthly, false, "[backup]")?;
    check_keep(&backup.keep_yearly, true, "[backup]")?;
    let mut names = std::collections::HashSet::new();
    for t in &backup.targets {
        let name = t.name.get_ref();
        let whose = format!("backup target «{name}»");
        if !names.insert(name.as_str()) {
            return Err(format!("{whose} {}: two targets have this name", at(t.name.span())));
        }
        match (&t.path, &t.webdav) {
            (Some(_), None) => {
                if t.username.is_some() || t.password_file.is_some() || t.password_env.is_some() {
                    return Err(format!("{whose} {}: a local path takes no username or password", at(t.name.span())));
                }
            }
            (None, Some(url)) => match url::Url::parse(url.get_ref()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err(format!(
                        "{whose} {}: webdav «{}» is not an http(s):// URL",
                        at(url.span()),
                        url.get_ref()
                    ))
                }
            },
            _ => return Err(format!("{whose} {}: give exactly one of path and webdav", at(t.name.span()))),
        }
        if t.password_file.is_some() && t.password_env.is_some() {
            return Err(format!("{whose}: give one of password_file and password_env, not both"));
        }
        check_keep(&t.keep_last, false, &whose)?;
        check_keep(&t.keep_monthly, false, &whose)?;
        check_keep(&t.keep_yearly, true, &whose)?;
    }
    Ok(())
}

/// Manifest format version.
const FORMAT: u32 = 1;

/// Опись резервной копии: what a backup holds; kept beside it on every target. Holds no
/// secret and no pupil's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub who: String,
    pub why: Option<String>,
    pub host: String,
    pub ejgate_version: String,
    /// `sqlite` (the snapshot is a database file) or `postgres` (an export).
    pub store_kind: String,
    pub schema_version: i64,
    /// Rows per table of the snapshot.
    pub tables: BTreeMap<String, u64>,
    /// What the store's consistency check found in the snapshot (empty: consistent).
    pub problems: Vec<String>,
    pub plaintext_sha256: String,
    pub plaintext_bytes: u64,
    pub compression: String,
    /// `age-x25519` or `age-scrypt`.
    pub encryption: String,
    /// The recipients' public keys (none for a passphrase).
    pub recipients: Vec<String>,
    /// The sealed file's name, sha256 and size.
    pub file: String,
    pub file_sha256: String,
    pub file_bytes: u64,
}

const MANIFEST_SUFFIX: &str = ".manifest.json";

fn manifest_name(id: &str) -> String {
    format!("ejgate-{id}{MANIFEST_SUFFIX}")
}

fn data_name(id: &str, store_kind: &str) -> String {
    format!("ejgate-{id}.{store_kind}.zst.age")
}

/// Who acts: `--who`, or the OS user.
pub fn who(given: Option<String>) -> String {
    given
        .filter(|w| !w.trim().is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| whoami::username().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The configured backups, ready to use.
pub struct Backups {
    pub targets: Vec<Target>,
    pub sealing: Sealing,
    pub opening: Opening,
}

impl Backups {
    /// From the configuration; `identity` adds an identity file (`--identity`). Secrets are
    /// read here.
    pub fn from_config(config: &Config, identity: Option<&Path>) -> anyhow::Result<Backups> {
        let backup = config.backup.as_ref().with_context(|| {
            "the configuration has no [backup] section: add one with two [[backup.target]] (see `ejgate init`)"
        })?;
        let mut targets = Vec::new();
        let default_keep = Keep {
            last: backup.keep_last.as_ref().map_or(Keep::default().last, |k| *k.get_ref()),
            monthly: backup.keep_monthly.as_ref().map_or(Keep::default().monthly, |k| *k.get_ref()),
            yearly: backup.keep_yearly.as_ref().map_or(Keep::default().yearly, |k| *k.get_ref()),
        };
        for t in &backup.targets {
            let name = t.name.get_ref();
            let keep = Keep {
                last: t.keep_last.as_ref().map_or(default_keep.last, |k| *k.get_ref()),
                monthly: t.keep_monthly.as_ref().map_or(default_keep.monthly, |k| *k.get_ref()),
                yearly: t.keep_yearly.as_ref().map_or(default_keep.yearly, |k| *k.get_ref()),
            };
            let place = match (&t.path, &t.webdav) {
                (Some(path), _) => Place::Local(config.resolve(path)),
                (_, Some(url)) => {
                    let password = match (&t.password_file, &t.password_env) {
                        (None, None) => None,
                        (file, env) => Some(
                            ejgate_sdk::secret::SecretRef {
                                file: file.as_deref().map(|p| config.resolve(p)),
                                env: env.clone(),
                            }
                            .load(&format!("backup target «{name}» password"))?,
                        ),
                    };
                    Place::WebDav { url: url::Url::parse(url.get_ref())?, username: t.username.clone(), password }
                }
                _ => unreachable!("checked when the configuration loaded"),
            };
            targets.push(Target::new(name, place, keep)?);
        }
        let passphrase = match (&backup.passphrase_file, &backup.passphrase_env) {
            (None, None) => None,
            (file, env) => Some(
                ejgate_sdk::secret::SecretRef { file: file.as_deref().map(|p| config.resolve(p)), env: env.clone() }
                    .load("the backup passphrase")?,
            ),
        };
        let sealing = match &passphrase {
            Some(p) => Sealing::Passphrase(p.clone()),
            None => Sealing::Recipients(
                backup
                    .recipients
                    .iter()
                    .map(|r| r.get_ref().parse().map_err(|e: &str| anyhow::anyhow!("{e}")))
                    .collect::<anyhow::Result<_>>()?,
            ),
        };
        let mut opening = Opening { passphrase, ..Default::default() };
        if let Some(path) = &backup.identity_file {
            opening.add_identity_file(&config.resolve(path))?;
        }
        if let Some(path) = identity {
            opening.add_identity_file(path)?;
        }
        Ok(Backups { targets, sealing, opening })
    }
}

/// What happened on one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub place: String,
    /// `None`: written and verified.
    pub error: Option<String>,
    /// Backups copied from another target to fill a gap.
    pub filled: Vec<String>,
    /// Backups deleted by the retention rules.
    pub pruned: Vec<String>,
}

/// The outcome of `ejgate backup`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    pub id: String,
    pub manifest: Manifest,
    pub targets: Vec<TargetReport>,
    pub outcome: BackupOutcome,
}

impl BackupReport {
    /// The text a person reads; a target down is named with what to do.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let m = &self.manifest;
        let rows: u64 = m.tables.values().sum();
        out.push_str(&format!(
            "backup {}: {} store, schema {}, {rows} rows in {} tables, {} bytes sealed ({})\n",
            self.id,
            m.store_kind,
            m.schema_version,
            m.tables.len(),
            m.file_bytes,
            m.encryption
        ));
        for t in &self.targets {
            match &t.error {
                None => out.push_str(&format!("  {} ({}): written and verified\n", t.target, t.place)),
                Some(e) => out.push_str(&format!(
                    "  {} ({}): NOT WRITTEN: {e}\n    what to do: bring the target back (mount the drive, start the \
                     server, check the network and credentials); the next `ejgate backup` copies the missing \
                     backups there\n",
                    t.target, t.place
                )),
            }
            if !t.filled.is_empty() {
                out.push_str(&format!("    gap filled: {}\n", t.filled.join(", ")));
            }
            if !t.pruned.is_empty() {
                out.push_str(&format!("    deleted by retention: {}\n", t.pruned.join(", ")));
            }
        }
        for p in &m.problems {
            out.push_str(&format!("  warning: the store's consistency check: {p}\n"));
        }
        out.push_str(match self.outcome {
            BackupOutcome::Ok => "backup complete on every target\n",
            BackupOutcome::Degraded => "backup DEGRADED: not every target was written (see above)\n",
            BackupOutcome::Failed => "backup FAILED: no target was written\n",
        });
        out
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// `ejgate backup`: snapshot, seal, write to every target, fill gaps, apply retention, log.
pub async fn backup(
    store: &dyn Store,
    backups: &Backups,
    who: &str,
    why: Option<&str>,
) -> anyhow::Result<BackupReport> {
    let created_at = store::now_micros();
    let id = created_at.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let work =
        tempfile::Builder::new().prefix("ejgate-backup-").tempdir().context("cannot make a temporary directory")?;
    let snapshot = work.path().join("snapshot");
    // The snapshot and its rows, schema version and consistency check, of one moment.
    let inspection = store.snapshot_into(&snapshot).await?;
    let kind = store.backend().to_string();
    let sealed_path = work.path().join("sealed");
    let sealing = &backups.sealing;
    let plain = {
        let (snapshot, sealed_path) = (snapshot.clone(), sealed_path.clone());
        // The sealing needs the keys: done on this thread's blocking pool via block_in_place.
        tokio::task::block_in_place(|| crypt::seal(&snapshot, &sealed_path, sealing))?
    };
    std::fs::remove_file(&snapshot).ok();
    let sealed = std::fs::read(&sealed_path)?;
    let file = data_name(&id, &kind);
    let manifest = Manifest {
        format: FORMAT,
        id: id.clone(),
        created_at,
        who: who.to_string(),
        why: why.map(str::to_string),
        host: host(),
        ejgate_version: env!("CARGO_PKG_VERSION").to_string(),
        store_kind: kind,
        schema_version: inspection.schema_version,
        tables: inspection.tables,
        problems: inspection.problems,
        plaintext_sha256: plain.sha256,
        plaintext_bytes: plain.bytes,
        compression: "zstd".into(),
        encryption: sealing.describe().into(),
        recipients: sealing.recipients(),
        file: file.clone(),
        file_sha256: crypt::sha256_hex(&sealed),
        file_bytes: sealed.len() as u64,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;

    let mut reports = Vec::new();
    for t in &backups.targets {
        let result = async {
            t.check().await?;
            t.put(&file, &sealed).await?;
            t.put(&manifest_name(&id), &manifest_bytes).await
        }
        .await;
        reports.push(TargetReport {
            target: t.name.clone(),
            place: t.place.clone(),
            error: result.err().map(|e| format!("{e:#}")),
            filled: Vec::new(),
            pruned: Vec::new(),
        });
    }
    fill_gaps(&backups.targets, &mut reports).await;
    let now = Utc::now();
    for (t, report) in backups.targets.iter().zip(reports.iter_mut()) {
        if report.error.is_some() {
            continue;
        }
        match prune(t, now).await {
            Ok(pruned) => report.pruned = pruned,
            Err(e) => tracing::warn!("retention on {}: {e:#}", t.name),
        }
    }
    let written = reports.iter().filter(|r| r.error.is_none()).count();
    let outcome = match written {
        0 => BackupOutcome::Failed,
        n if n == reports.len() => BackupOutcome::Ok,
        _ => BackupOutcome::Degraded,
    };
    let detail = reports
        .iter()
        .map(|r| match &r.error {
            None => format!("{}: written", r.target),
            Some(e) => format!("{}: not written: {e}", r.target),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let log = |action, backup_id: Option<String>, outcome, detail: String| BackupUse {
        at: store::now_micros(),
        action,
        backup_id,
        who: who.to_string(),
        why: why.map(str::to_string),
        outcome,
        detail,
    };
    store.log_backup_use(&log(BackupAction::Backup, Some(id.clone()), outcome, detail)).await?;
    // Per target, for `/metrics` and the alerts: a target down stays flagged until a run
    // writes it (and fills its gap).
    let states: Vec<(String, Option<String>)> = reports.iter().map(|r| (r.target.clone(), r.error.clone())).collect();
    store.record_backup_targets(created_at, &id, &states).await?;
    for r in &reports {
        for gone in &r.pruned {
            store
                .log_backup_use(&log(
                    BackupAction::Prune,
                    Some(gone.clone()),
                    BackupOutcome::Ok,
                    format!("deleted from {} by its retention rules", r.target),
                ))
                .await?;
        }
    }
    Ok(BackupReport { id, manifest, targets: reports, outcome })
}

/// The manifests a target holds, by id.
async fn manifests(t: &Target) -> anyhow::Result<BTreeMap<String, Manifest>> {
    let mut out = BTreeMap::new();
    for name in t.names().await? {
        if let Some(id) = name.strip_prefix("ejgate-").and_then(|n| n.strip_suffix(MANIFEST_SUFFIX)) {
            let bytes = t.get(&name).await?;
            let m: Manifest = serde_json::from_slice(&bytes)
                .with_context(|| format!("backup target «{}»: {name} is not a manifest ejgate reads", t.name))?;
            out.insert(id.to_string(), m);
        }
    }
    Ok(out)
}

/// Copies to every target that is up the backups another target has and it lacks, each
/// checked against its manifest's hash before it is written.
async fn fill_gaps(targets: &[Target], reports: &mut [TargetReport]) {
    let mut held = Vec::new();
    for (t, r) in targets.iter().zip(reports.iter_mut()) {
        if r.error.is_some() {
            held.push(None);
            continue;
        }
        match manifests(t).await {
            Ok(m) => held.push(Some(m)),
            Err(e) => {
                r.error = Some(format!("{e:#}"));
                held.push(None);
            }
        }
    }
    for i in 0..targets.len() {
        let Some(mine) = &held[i] else { continue };
        let mut missing: BTreeMap<&String, (usize, &Manifest)> = BTreeMap::new();
        for (j, other) in held.iter().enumerate() {
            let Some(other) = other else { continue };
            for (id, m) in other {
                if !mine.contains_key(id) {
                    missing.entry(id).or_insert((j, m));
                }
            }
        }
        for (id, (from, m)) in missing {
            let result = async {
                let bytes = targets[from].get(&m.file).await?;
                if crypt::sha256_hex(&bytes) != m.file_sha256 {
                    anyhow::bail!(
                        "the copy of {id} on «{}» does not match its manifest's sha256: not copied",
                        targets[from].name
                    );
                }
                targets[i].put(&m.file, &bytes).await?;
                targets[i].put(&manifest_name(id), &serde_json::to_vec_pretty(m)?).await
            }
            .await;
            match result {
                Ok(()) => reports[i].filled.push(id.clone()),
                Err(e) => tracing::warn!("filling the gap of {id} on «{}»: {e:#}", targets[i].name),
            }
        }
    }
}

/// Applies a target's retention rules; the ids deleted.
async fn prune(t: &Target, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
    let held = manifests(t).await?;
    let list: Vec<(String, DateTime<Utc>)> = held.values().map(|m| (m.id.clone(), m.created_at)).collect();
    let gone = retention::to_delete(&list, t.keep, now);
    for id in &gone {
        t.delete(&manifest_name(id)).await?;
        t.delete(&held[id].file).await?;
    }
    Ok(gone)
}

/// What `ejgate backup verify` found on one target.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub id: String,
    /// `sqlite` or `postgres`: what the content is.
    pub store_kind: String,
    /// Per target: `None` when its copy matches the manifest.
    pub targets: Vec<(String, Option<String>)>,
    /// Whether the content was opened and checked (needs the identity or passphrase), and
    /// what was found.
    pub content: Option<Result<Inspection, String>>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.targets.iter().all(|(_, e)| e.is_none()) && !matches!(self.content, Some(Err(_)))
    }

    pub fn render(&self) -> String {
        let mut out = format!("backup {}:\n", self.id);
        for (t, e) in &self.targets {
            match e {
                None => out.push_str(&format!("  {t}: the copy matches its manifest\n")),
                Some(e) => out.push_str(&format!("  {t}: BAD: {e}\n")),
            }
        }
        match &self.content {
            None => out.push_str(
                "  content not opened: give the identity file (--identity FILE or backup.identity_file) or the \
                 passphrase to check it as well\n",
            ),
            Some(Ok(i)) if self.store_kind == "sqlite" => out.push_str(&format!(
                "  content opened: plaintext sha256, rows of {} tables and the store's consistency check match\n",
                i.tables.len()
            )),
            Some(Ok(i)) => out.push_str(&format!(
                "  content opened: plaintext sha256 and rows of {} tables match (the consistency check of a PostgreSQL \
                 export runs when it is restored; the manifest holds the one made when it was taken)\n",
                i.tables.len()
            )),
            Some(Err(e)) => out.push_str(&format!("  content BAD: {e}\n")),
        }
        out.push_str(if self.ok() { "verified\n" } else { "verification FAILED\n" });
        out
    }
}

/// Finds a backup (`None`: the newest any target holds): its manifest and the targets that
/// hold it. Targets that cannot be reached are reported with their error.
async fn find(
    targets: &[Target],
    id: Option<&str>,
) -> anyhow::Result<(Manifest, Vec<(usize, Result<Manifest, String>)>)> {
    let mut found = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match manifests(t).await {
            Ok(m) => found.push((i, Ok(m))),
            Err(e) => found.push((i, Err(format!("{e:#}")))),
        }
    }
    let id = match id {
        Some(id) => id.to_string(),
        None => found
            .iter()
            .filter_map(|(_, m)| m.as_ref().ok())
            .flat_map(|m| m.keys())
            .max()
            .cloned()
            .context("no backup on any reachable target")?,
    };
    let mut per_target = Vec::new();
    let mut manifest = None;
    for (i, m) in found {
        let entry = match m {
            Err(e) => Err(e),
            Ok(mut all) => all.remove(&id).ok_or_else(|| format!("holds no backup {id}")),
        };
        if let (None, Ok(m)) = (&manifest, &entry) {
            manifest = Some(m.clone());
        }
        per_target.push((i, entry));
    }
    let manifest = manifest
        .with_context(|| format!("no reachable target holds backup {id} (`ejgate backup log` lists the backups)"))?;
    Ok((manifest, per_target))
}

/// Opens a sealed copy into `plain` and checks it against the manifest: the plaintext's
/// sha256, the rows of every table, and (a SQLite file) the store's consistency check; a
/// PostgreSQL export's consistency check runs when it is restored.
fn open_and_check(sealed: &[u8], plain: &Path, manifest: &Manifest, opening: &Opening) -> Result<Inspection, String> {
    let digest = crypt::unseal(sealed, plain, opening).map_err(|e| format!("{e:#}"))?;
    if digest.sha256 != manifest.plaintext_sha256 || digest.bytes != manifest.plaintext_bytes {
        return Err(format!(
            "the opened store's sha256 {} ({} bytes) differs from the manifest's {} ({} bytes)",
            digest.sha256, digest.bytes, manifest.plaintext_sha256, manifest.plaintext_bytes
        ));
    }
    let inspection = match manifest.store_kind.as_str() {
        "sqlite" => store::inspect_sqlite_file(plain),
        "postgres" => store::inspect_postgres_export(plain),
        other => return Err(format!("the manifest names a store kind «{other}» this ejgate does not know")),
    }
    .map_err(|e| e.to_string())?;
    compare_inspection(&inspection, manifest)?;
    Ok(inspection)
}

/// The rows per table and consistency of an opened store against the manifest.
fn compare_inspection(inspection: &Inspection, manifest: &Manifest) -> Result<(), String> {
    for (table, n) in &manifest.tables {
        let got = inspection.tables.get(table).copied();
        if got != Some(*n) {
            return Err(format!(
                "table {table}: the manifest says {n} rows, the opened store has {}",
                got.map_or("no such table".into(), |g| g.to_string())
            ));
        }
    }
    if !inspection.problems.is_empty() {
        return Err(format!("the store's consistency check: {}", inspection.problems.join("; ")));
    }
    Ok(())
}

/// `ejgate backup verify [ID]`: every target's copy against the manifest; with a key, the
/// content too. Logged when a store is given.
pub async fn verify(
    store: Option<&dyn Store>,
    backups: &Backups,
    id: Option<&str>,
    who: &str,
    why: Option<&str>,
) -> anyhow::Result<VerifyReport> {
    let (manifest, per_target) = find(&backups.targets, id).await?;
    let mut targets = Vec::new();
    let mut good_copy = None;
    for (i, entry) in per_target {
        let t = &backups.targets[i];
        let result = async {
            let m = entry.map_err(|e| e.to_string())?;
            if m != manifest {
                return Err("its manifest differs from the other targets' copy".to_string());
            }
            let bytes = t.get(&m.file).await.map_err(|e| format!("{e:#}"))?;
            let sha = crypt::sha256_hex(&bytes);
            if sha != m.file_sha256 {
                return Err(format!(
                    "{} has sha256 {sha} ({} bytes), the manifest says {} ({} bytes): this copy is damaged",
                    m.file,
                    bytes.len(),
                    m.file_sha256,
                    m.file_bytes
                ));
            }
            Ok(bytes)
        }
        .await;
        match result {
            Ok(bytes) => {
                good_copy.get_or_insert(bytes);
                targets.push((t.name.clone(), None));
            }
            Err(e) => targets.push((t.name.clone(), Some(e))),
        }
    }
    let content = match (&good_copy, backups.opening.is_empty()) {
        (Some(bytes), false) => {
            let work = tempfile::Builder::new().prefix("ejgate-verify-").tempdir()?;
            let plain = work.path().join("content");
            Some(tokio::task::block_in_place(|| open_and_check(bytes, &plain, &manifest, &backups.opening)))
        }
        _ => None,
    };
    let report = VerifyReport { id: manifest.id.clone(), store_kind: manifest.store_kind.clone(), targets, content };
    if let Some(store) = store {
        let detail = report
            .targets
            .iter()
            .map(|(t, e)| format!("{t}: {}", e.as_deref().unwrap_or("matches")))
            .chain(std::iter::once(match &report.content {
                None => "content not opened".to_string(),
                Some(Ok(_)) => "content matches".to_string(),
                Some(Err(e)) => format!("content: {e}"),
            }))
            .collect::<Vec<_>>()
            .join("; ");
        store
            .log_backup_use(&BackupUse {
                at: store::now_micros(),
                action: BackupAction::Verify,
                backup_id: Some(report.id.clone()),
                who: who.to_string(),
                why: why.map(str::to_string),
                outcome: if report.ok() { BackupOutcome::Ok } else { BackupOutcome::Failed },
                detail,
            })
            .await?;
    }
    Ok(report)
}

/// `ejgate restore ID --into URL`: pulls the backup from the first target whose copy
/// matches its manifest, opens it into a new store (a SQLite backup into a new file, a
/// PostgreSQL one into a fresh schema or database), checks it against the manifest and the
/// store's consistency check, and logs the pull and the restore in the restored store.
pub async fn restore(
    backups: &Backups,
    id: &str,
    into: &str,
    who: &str,
    why: Option<&str>,
) -> anyhow::Result<(Manifest, Inspection)> {
    let into_kind = if into.starts_with("sqlite://") {
        "sqlite"
    } else if into.starts_with("postgres://") || into.starts_with("postgresql://") {
        "postgres"
    } else {
        anyhow::bail!(
            "restore into «{into}»: give a new store: sqlite://PATH (a new file) or postgres://… (a fresh schema or \
             database)"
        )
    };
    let sqlite_path = into.strip_prefix("sqlite://").map(PathBuf::from);
    if let Some(path) = &sqlite_path {
        if path.exists() {
            anyhow::bail!(
                "restore into {}: the file exists; a restore makes a fresh store: name a new file (the running store \
                 is never overwritten)",
                path.display()
            );
        }
    }
    if backups.opening.is_empty() {
        anyhow::bail!(
            "restore needs the key: --identity FILE (or backup.identity_file), or the passphrase (backup.passphrase_file \
             or backup.passphrase_env)"
        );
    }
    let (manifest, per_target) = find(&backups.targets, Some(id)).await?;
    if manifest.store_kind != into_kind {
        anyhow::bail!(
            "backup {id} is of a {} store and restores into a {} one ({}), not into «{into}»",
            manifest.store_kind,
            manifest.store_kind,
            if manifest.store_kind == "sqlite" { "sqlite://NEW-FILE" } else { "postgres://…, a fresh schema" }
        );
    }
    let mut pulled = None;
    let mut refused = Vec::new();
    for (i, entry) in per_target {
        let t = &backups.targets[i];
        let m = match entry {
            Ok(m) => m,
            Err(e) => {
                refused.push(format!("{}: {e}", t.name));
                continue;
            }
        };
        match t.get(&m.file).await {
            Ok(bytes) if crypt::sha256_hex(&bytes) == manifest.file_sha256 && m == manifest => {
                pulled = Some((t.name.clone(), bytes));
                break;
            }
            Ok(_) => refused.push(format!("{}: the copy does not match the manifest", t.name)),
            Err(e) => refused.push(format!("{e:#}")),
        }
    }
    let Some((from, sealed)) = pulled else {
        anyhow::bail!("no target holds a sound copy of backup {id}: {}", refused.join("; "))
    };
    let inspection = match &sqlite_path {
        Some(path) => {
            let part = path.with_extension("restoring");
            let checked = tokio::task::block_in_place(|| open_and_check(&sealed, &part, &manifest, &backups.opening));
            let inspection = match checked {
                Ok(i) => i,
                Err(e) => {
                    std::fs::remove_file(&part).ok();
                    anyhow::bail!(
                        "backup {id} from «{from}» does not restore: {e}; nothing was written to {}",
                        path.display()
                    );
                }
            };
            std::fs::rename(&part, path)
                .with_context(|| format!("cannot rename {} to {}", part.display(), path.display()))?;
            inspection
        }
        None => {
            let work = tempfile::Builder::new().prefix("ejgate-restore-").tempdir()?;
            let plain = work.path().join("export");
            tokio::task::block_in_place(|| open_and_check(&sealed, &plain, &manifest, &backups.opening)).map_err(
                |e| {
                    anyhow::anyhow!(
                        "backup {id} from «{from}» does not restore: {e}; nothing was written to the database"
                    )
                },
            )?;
            store::restore_postgres_export(into, &plain)
                .await
                .with_context(|| format!("restoring backup {id} from «{from}»"))?;
            let restored = store::open(into).await?;
            let inspection = restored.inspect().await?;
            compare_inspection(&inspection, &manifest).map_err(|e| {
                anyhow::anyhow!(
                    "backup {id} was loaded but the restored store does not match its manifest: {e}; drop the schema \
                     it was loaded into before another try"
                )
            })?;
            inspection
        }
    };
    let restored = store::open(into).await?;
    let entry = |action, detail: String| BackupUse {
        at: store::now_micros(),
        action,
        backup_id: Some(id.to_string()),
        who: who.to_string(),
        why: why.map(str::to_string),
        outcome: BackupOutcome::Ok,
        detail,
    };
    let place = match &sqlite_path {
        Some(path) => path.display().to_string(),
        None => "a fresh PostgreSQL schema".to_string(),
    };
    restored
        .log_backup_use(&entry(BackupAction::Pull, format!("pulled from «{from}», sha256 matches the manifest")))
        .await?;
    restored
        .log_backup_use(&entry(
            BackupAction::Restore,
            format!(
                "restored into {place}: rows of {} tables and the consistency check match the manifest",
                inspection.tables.len()
            ),
        ))
        .await?;
    Ok((manifest, inspection))
}

/// `ejgate backup log`, as text.
pub fn render_log(uses: &[BackupUse]) -> String {
    if uses.is_empty() {
        return "The backup-usage log is empty.\n".into();
    }
    let mut out = String::new();
    for u in uses {
        out.push_str(&format!(
            "{}  {:<7} {:<8} {:<24} by {}{}\n    {}\n",
            u.at.format("%Y-%m-%d %H:%M:%S UTC"),
            u.action.as_str(),
            u.outcome.as_str(),
            u.backup_id.as_deref().unwrap_or("-"),
            u.who,
            u.why.as_deref().map(|w| format!(" — {w}")).unwrap_or_default(),
            u.detail
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    /// A public key from `age-keygen` (its identity was thrown away).
    const KEY: &str = "age1m2nxh92m7msyyqse9g697v5apdnx5z9xu80ga7cqxwxampmjkpms7cx0s4";

    fn parse(backup: &str) -> Result<Config, String> {
        let text = format!("[store]\nurl = \"sqlite://x.db\"\n\n{backup}");
        Config::parse(&text, Path::new("e.toml")).map_err(|e| e.to_string())
    }

    const TARGETS: &str =
        "[[backup.target]]\nname = \"usb\"\npath = \"/mnt/usb\"\n\n[[backup.target]]\nname = \"nas\"\nwebdav = \"https://nas/dav/\"\n";

    #[test]
    fn a_good_backup_section_loads() {
        let c = parse(&format!("[backup]\nrecipients = [\"{KEY}\"]\nkeep_monthly = 6\n\n{TARGETS}")).unwrap();
        let b = c.backup.unwrap();
        assert_eq!(b.targets.len(), 2);
        assert_eq!(*b.keep_monthly.unwrap().get_ref(), 6);
    }

    /// Each refusal names the line (or the section) and what to do.
    #[test]
    fn bad_backup_settings_are_refused_with_their_line() {
        let cases = [
                        (format!("[backup]\nrecipients = [\"{KEY}\"]\nkeep_yearly = 10\n\n{TARGETS}"), "line 6: keep_yearly = 10 is below 25"),
            (format!("[backup]\nrecipients = [\"age1nope\"]\n\n{TARGETS}"), "line 5: «age1nope» is not an age public key"),
            (
                format!("[backup]\nrecipients = [\"{KEY}\"]\npassphrase_env = \"P\"\n\n{TARGETS}"),
                "recipients and a passphrase together",
            ),
            (format!("[backup]\n\n{TARGETS}"), "name who can open the backups"),
            (
                format!("[backup]\nrecipients = [\"{KEY}\"]\n\n[[backup.target]]\nname = \"usb\"\npath = \"/mnt/usb\"\n"),
                "give at least two [[backup.target]]",
            ),
            (
                format!("[backup]\nrecipients = [\"{KEY}\"]\n\n{TARGETS}[[backup.target]]\nname = \"usb\"\npath = \"/x\"\n"),
                "line 15: two targets have this name",
            ),
            (
                format!("[backup]\nrecipients = [\"{KEY}\"]\n\n{TARGETS}[[backup.target]]\nname = \"ftp\"\nwebdav = \"ftp://x/\"\n"),
                "line 16: webdav «ftp://x/» is not an http(s):// URL",
            ),
            (
                format!("[backup]\nrecipients = [\"{KEY}\"]\n\n{TARGETS}[[backup.target]]\nname = \"both\"\npath = \"/x\"\nwebdav = \"https://x/\"\n"),
                "give exactly one of path and webdav",
            ),
            (format!("[backup]\nrecipients = [\"{KEY}\"]\nkeep_last = 0\n\n{TARGETS}"), "line 6: keep_last and keep_monthly take 1"),
        ];
        for (text, expected) in cases {
            let e = parse(&text).unwrap_err();
            assert!(e.contains(expected), "{text}\n→ {e}");
        }
    }
}
