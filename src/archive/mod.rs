//! Электронный архив за год: the year-end snapshot of a school as a BagIt 1.0 bag (RFC 8493)
//! with a detached minisign signature of its tag manifest (REGULATIONS A5 integrity over
//! the retention period, A7, K7), and its verification.
//!
//! A bag `ejgate-SCHOOL-YYYY-YYYY/`:
//! - `bagit.txt`; `data/KIND.jsonl` and `data/KIND.csv` per entity kind: the live canonical
//!   records of the school's sources dated inside the school year, and the undated ones
//!   (people, classes, subjects…) as the store holds them now;
//! - `bag-info.txt`: school, school year, source systems, counts per kind, retention class
//!   (A3: journals 5 years, сводные ведомости 25 years), Payload-Oxum;
//! - `manifest-sha512.txt` (every payload file), `tagmanifest-sha512.txt` (the three tag
//!   files above), and `tagmanifest-sha512.txt.minisig`, the signature `minisign -V`
//!   checks. The signature covers the tag manifest, which covers the manifest, which covers
//!   every payload byte.
//!
//! The bag is written under a temporary name and renamed once signed.
//!
//! *Assumption*: `--school` names a `[[school]]` (its sources) or one source; a source
//! serving several schools (a district's) is bagged whole.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use sha2::{Digest, Sha512};

use crate::config::Config;
use crate::store::{Store, StoredRecord};
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::year::SchoolYear;

/// `[archive]` in `ejgate.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Where bags are written (default `archive` beside the configuration).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The minisign secret key signing the tag manifests (`minisign -G` writes one).
    #[serde(default)]
    pub minisign_secret_key: Option<PathBuf>,
    /// The password of an encrypted secret key, in a file or an environment variable.
    #[serde(default)]
    pub minisign_password_file: Option<PathBuf>,
    #[serde(default)]
    pub minisign_password_env: Option<String>,
    /// The public key `ejgate archive verify` checks signatures with.
    #[serde(default)]
    pub minisign_public_key: Option<PathBuf>,
}

const SIGNATURE: &str = "tagmanifest-sha512.txt.minisig";
/// The untrusted comment ejgate writes (minisign does not sign it; `verify` checks it is
/// the one written, so that no byte of the signature file can change unnoticed).
const UNTRUSTED: &str = "ejgate year-end archive: signature of tagmanifest-sha512.txt";
const TAG_FILES: [&str; 3] = ["bagit.txt", "bag-info.txt", "manifest-sha512.txt"];

/// What a snapshot wrote.
#[derive(Debug, Clone)]
pub struct SnapshotReport {
    pub bag: PathBuf,
    pub counts: BTreeMap<EntityKind, u64>,
    pub payload_files: usize,
    pub payload_bytes: u64,
}

/// A file name part from a school's name: letters and digits kept (Cyrillic too), the
/// rest one `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn sha512_hex(bytes: &[u8]) -> String {
    hex::encode(Sha512::digest(bytes))
}

/// A value of a CSV cell: strings as they are, other JSON as its text.
fn cell(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The records of one kind in the bag, as JSON Lines and CSV.
fn payload(records: &[StoredRecord]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut jsonl = Vec::new();
    let mut keys = BTreeSet::new();
    for r in records {
        serde_json::to_writer(
            &mut jsonl,
            &serde_json::json!({
                "id": r.id, "source": r.source, "source_id": r.source_id, "scope": r.scope, "date": r.date,
                "content": r.content,
            }),
        )?;
        jsonl.push(b'\n');
        if let serde_json::Value::Object(m) = &r.content {
            keys.extend(m.keys().cloned());
        }
    }
    let mut csv = csv::Writer::from_writer(Vec::new());
    let fixed = ["id", "source", "source_id", "scope", "date"];
    csv.write_record(fixed.iter().map(|s| s.to_string()).chain(keys.iter().cloned()))?;
    for r in records {
        let mut row = vec![
            r.id.to_string(),
            r.source.clone(),
            r.source_id.clone(),
            r.scope.clone(),
            r.date.map(|d| d.to_string()).unwrap_or_default(),
        ];
        row.extend(keys.iter().map(|k| cell(r.content.get(k))));
        csv.write_record(row)?;
    }
    Ok((jsonl, csv.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?))
}

/// Loads a minisign secret key (encrypted with the password, if one is given).
pub fn load_secret_key(path: &Path, password: Option<secrecy::SecretString>) -> anyhow::Result<minisign::SecretKey> {
    use secrecy::ExposeSecret;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the minisign secret key {}", path.display()))?;
    let key_box = minisign::SecretKeyBox::from_string(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a minisign secret key: {e}", path.display()))?;
    match password {
        Some(p) => key_box.into_secret_key(Some(p.expose_secret().to_string())),
        None => key_box.into_unencrypted_secret_key(),
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "the minisign secret key {} cannot be opened ({e}); an encrypted key needs minisign_password_file or \
             minisign_password_env",
            path.display()
        )
    })
}

/// `ejgate archive snapshot`: the bag of a school's year, signed.
pub async fn snapshot(
    store: &dyn Store,
    school: &str,
    sources: &[(String, String)],
    year: SchoolYear,
    out_dir: &Path,
    key: &minisign::SecretKey,
) -> anyhow::Result<SnapshotReport> {
    let name = format!("ejgate-{}-{}-{}", slug(school), year.start_year, year.start_year + 1);
    let bag = out_dir.join(&name);
    if bag.exists() {
        anyhow::bail!(
            "{} exists: a year-end bag is never overwritten; move it away to bag the year again",
            bag.display()
        );
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let part = out_dir.join(format!(".{name}.part"));
    if part.exists() {
        std::fs::remove_dir_all(&part)?;
    }
    std::fs::create_dir_all(part.join("data"))?;
    let range = (year.start(), year.end());
    let mut manifest = String::new();
    let mut counts = BTreeMap::new();
    let (mut files, mut bytes) = (0usize, 0u64);
    for kind in EntityKind::ALL {
        let mut records = Vec::new();
        for (source, _) in sources {
            records.extend(
                store
                    .records(kind, Some(source), false)
                    .await?
                    .into_iter()
                    .filter(|r| r.date.is_none_or(|d| d >= range.0 && d <= range.1)),
            );
        }
        if records.is_empty() {
            continue;
        }
        counts.insert(kind, records.len() as u64);
        let (jsonl, csv) = payload(&records)?;
        for (ext, content) in [("jsonl", jsonl), ("csv", csv)] {
            let rel = format!("data/{}.{ext}", kind.as_str());
            std::fs::write(part.join(&rel), &content)?;
            manifest.push_str(&format!("{}  {rel}\n", sha512_hex(&content)));
            files += 1;
            bytes += content.len() as u64;
        }
    }
    let bagit = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
    let today = chrono::Utc::now().date_naive();
    let keep_until = |years: i32| year.end().with_year_saturating(year.start_year + 1 + years);
    let mut info = format!(
        "Source-Organization: {school}\nBagging-Date: {today}\nBag-Software-Agent: ejgate {}\n\
         External-Identifier: ejgate:{}:{}\nExternal-Description: Year-end electronic archive of the school year \
         {year} (the journal and the final marks)\nPayload-Oxum: {bytes}.{files}\nEjgate-School: {school}\n\
         Ejgate-School-Year: {year}\n",
        env!("CARGO_PKG_VERSION"),
        slug(school),
        year
    );
    for (source, system) in sources {
        info.push_str(&format!("Ejgate-Source: {source} ({system})\n"));
    }
    for (kind, n) in &counts {
        info.push_str(&format!("Ejgate-Count: {} {n}\n", kind.as_str()));
    }
    info.push_str(&format!(
        "Ejgate-Retention-Class: journal 5 years (until {}); final marks (svodnaya vedomost) 25 years (until {})\n",
        keep_until(5),
        keep_until(25)
    ));
    std::fs::write(part.join("bagit.txt"), bagit)?;
    std::fs::write(part.join("bag-info.txt"), &info)?;
    std::fs::write(part.join("manifest-sha512.txt"), &manifest)?;
    let tagmanifest: String = [
        ("bagit.txt", bagit.as_bytes()),
        ("bag-info.txt", info.as_bytes()),
        ("manifest-sha512.txt", manifest.as_bytes()),
    ]
    .iter()
    .map(|(name, content)| format!("{}  {name}\n", sha512_hex(content)))
    .collect();
    std::fs::write(part.join("tagmanifest-sha512.txt"), &tagmanifest)?;
    let trusted = format!("ejgate year-end archive {} {year}, bagged {today}", slug(school));
    let signature = minisign::sign(None, key, tagmanifest.as_bytes(), Some(&trusted), Some(UNTRUSTED))
        .map_err(|e| anyhow::anyhow!("signing the tag manifest: {e}"))?;
    let mut f = std::fs::File::create(part.join(SIGNATURE))?;
    f.write_all(signature.to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&part, &bag).with_context(|| format!("cannot rename {} to {}", part.display(), bag.display()))?;
    Ok(SnapshotReport { bag, counts, payload_files: files, payload_bytes: bytes })
}

trait WithYear {
    fn with_year_saturating(self, year: i32) -> chrono::NaiveDate;
}

impl WithYear for chrono::NaiveDate {
    fn with_year_saturating(self, year: i32) -> chrono::NaiveDate {
        use chrono::Datelike;
        self.with_year(year).unwrap_or(self)
    }
}

/// `ejgate archive snapshot`: the school's sources (a `[[school]]`, or one source), the
/// configured key, the bag written.
pub async fn snapshot_command(
    config: &Config,
    store: &dyn Store,
    school: &str,
    year: SchoolYear,
    out: Option<PathBuf>,
) -> anyhow::Result<SnapshotReport> {
    let archive = config.archive.clone().unwrap_or_default();
    let names = match config.schools.iter().find(|s| s.name == school) {
        Some(s) => s.sources.clone(),
        None if config.source(school).is_some() => vec![school.to_string()],
        None => anyhow::bail!("no [[school]] and no source named «{school}» in the configuration"),
    };
    let sources: Vec<(String, String)> = names
        .into_iter()
        .map(|name| {
            let system = config.source(&name).map_or("unknown", |s| s.system.as_str()).to_string();
            (name, system)
        })
        .collect();
    let key_path = archive.minisign_secret_key.as_deref().map(|p| config.resolve(p)).context(
        "archive.minisign_secret_key is not set: make a key pair (`minisign -G -p archive.pub -s archive.key`) and \
         name it in [archive]",
    )?;
    let password = match (&archive.minisign_password_file, &archive.minisign_password_env) {
        (None, None) => None,
        (file, env) => Some(
            ejgate_sdk::secret::SecretRef { file: file.as_deref().map(|p| config.resolve(p)), env: env.clone() }
                .load("the minisign key password")?,
        ),
    };
    let key = load_secret_key(&key_path, password)?;
    let out = out.unwrap_or_else(|| config.resolve(archive.dir.as_deref().unwrap_or(Path::new("archive"))));
    snapshot(store, school, &sources, year, &out, &key).await
}

/// `ejgate archive verify`: the public key (`--public-key`, or the configured one), then
/// [`verify`].
pub fn verify_command(config: &Config, bag: &Path, public_key: Option<PathBuf>) -> anyhow::Result<Vec<String>> {
    let archive = config.archive.clone().unwrap_or_default();
    let path = public_key
        .or_else(|| archive.minisign_public_key.as_deref().map(|p| config.resolve(p)))
        .context("give the minisign public key: --public-key FILE or archive.minisign_public_key")?;
    let key = minisign::PublicKey::from_file(&path)
        .map_err(|e| anyhow::anyhow!("{} is not a minisign public key: {e}", path.display()))?;
    Ok(verify(bag, &key))
}

/// Reads `HASH  PATH` lines of a manifest.
fn read_manifest(bag: &Path, name: &str, problems: &mut Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let text = match std::fs::read(bag.join(name)) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            problems.push(format!("{name}: cannot be read: {e}"));
            return out;
        }
    };
    for (i, line) in text.lines().enumerate() {
        match line.split_once("  ") {
            Some((hash, path)) if hash.len() == 128 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                out.insert(path.to_string(), hash.to_ascii_lowercase());
            }
            _ => problems.push(format!("{name}:{}: not a «SHA512  PATH» line", i + 1)),
        }
    }
    out
}

/// Every file under `dir`, relative to `base`, with `/`.
fn files_under(base: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files_under(base, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// `ejgate archive verify BAG`: the signature and every manifest; each problem names the
/// file. Empty: the bag is as it was signed.
pub fn verify(bag: &Path, public_key: &minisign::PublicKey) -> Vec<String> {
    let mut problems = Vec::new();
    match std::fs::read_to_string(bag.join("bagit.txt")) {
        Ok(t) if t.lines().next() == Some("BagIt-Version: 1.0") => {}
        Ok(_) => problems.push("bagit.txt: not «BagIt-Version: 1.0»".into()),
        Err(e) => problems.push(format!("bagit.txt: cannot be read: {e}")),
    }
    // The signature over the tag manifest.
    match (std::fs::read(bag.join("tagmanifest-sha512.txt")), std::fs::read_to_string(bag.join(SIGNATURE))) {
        (Ok(tags), Ok(sig)) => match minisign::SignatureBox::from_string(&sig) {
            Err(e) => problems.push(format!("{SIGNATURE}: not a minisign signature: {e}")),
            Ok(sig_box) if sig_box.to_string() != sig => problems.push(format!(
                "{SIGNATURE}: a byte of it was changed (it is not the text minisign writes for the signature it holds)"
            )),
            Ok(sig_box) if sig_box.untrusted_comment().ok().as_deref() != Some(UNTRUSTED) => {
                problems.push(format!("{SIGNATURE}: its untrusted comment line was changed"))
            }
            Ok(sig) => {
                if let Err(e) = minisign::verify(public_key, &sig, std::io::Cursor::new(&tags), true, false, false) {
                    problems.push(format!(
                        "{SIGNATURE}: the signature of tagmanifest-sha512.txt does not verify with the public key \
                         ({e}): the tag manifest or the signature was changed"
                    ));
                }
            }
        },
        (Err(e), _) => problems.push(format!("tagmanifest-sha512.txt: cannot be read: {e}")),
        (_, Err(e)) => problems.push(format!("{SIGNATURE}: cannot be read: {e}")),
    }
    let check = |listed: &BTreeMap<String, String>, manifest: &str, problems: &mut Vec<String>| {
        for (path, hash) in listed {
            match std::fs::read(bag.join(path)) {
                Ok(bytes) if sha512_hex(&bytes) == *hash => {}
                Ok(_) => problems.push(format!("{path}: its sha512 differs from {manifest}: the file was changed")),
                Err(_) => problems.push(format!("{path}: listed in {manifest} but missing")),
            }
        }
    };
    let tags = read_manifest(bag, "tagmanifest-sha512.txt", &mut problems);
    for name in TAG_FILES {
        if !tags.contains_key(name) {
            problems.push(format!("{name}: not covered by tagmanifest-sha512.txt"));
        }
    }
    check(&tags, "tagmanifest-sha512.txt", &mut problems);
    let payload = read_manifest(bag, "manifest-sha512.txt", &mut problems);
    check(&payload, "manifest-sha512.txt", &mut problems);
    let mut present = Vec::new();
    if let Err(e) = files_under(bag, &bag.join("data"), &mut present) {
        problems.push(format!("data/: cannot be read: {e}"));
    }
    for path in present {
        if !payload.contains_key(&path) {
            problems.push(format!("{path}: added: not listed in manifest-sha512.txt"));
        }
    }
    problems
}
