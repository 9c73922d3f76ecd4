//! Электронный архив за год: the year-end snapshot of a school as a BagIt 1.0 bag (RFC 8493)
//! with a detached minisign signature of its tag manifest (REGULATIONS A5 integrity over
//! the retention period, A7, K7), and its verification.
//!
//! A bag `ejgate-SCHOOL-YYYY-YYYY/`:
//! - `bagit.txt`; `data/KIND.jsonl` and `data/KIND.csv` per entity kind: the live canonical
//!   records of the school's sources dated inside the school year, and the undated ones
//!   (people, classes, subjects…) as the store holds them now; and `data/paper/`, the
//!   year's journal as PDF/A (each class's year-end book) and the сводные ведомости
//!   (K7), when the bag is made by `archive snapshot` (see [`paper`]);
//! - `bag-info.txt`: school, school year, source systems, counts per kind, retention class
//!   (A3: journals 5 years, сводные ведомости 25 years), Payload-Oxum;
//! - `manifest-sha512.txt` (every payload file), `tagmanifest-sha512.txt` (the three tag
//!   files above), and `tagmanifest-sha512.txt.minisig`, the signature `minisign -V`
//!   checks. The signature covers the tag manifest, which covers the manifest, which covers
//!   every payload byte.
//!
//! The records' payload is written in one pass over the store, each file hashed as it is
//! written ([`payload`]: the design, and the form of the JSON Lines content).
//!
//! The bag is written under a temporary name and renamed once signed.
//!
//! *Assumption*: `--school` names a `[[school]]` (its sources) or one source; a source
//! serving several schools (a district's) is bagged whole.

pub mod paper;
mod payload;
pub mod register;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use sha2::{Digest, Sha512};

use crate::config::Config;
use crate::store::Store;
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
    /// A second signature of the tag manifest by an outside signer, for a qualified
    /// electronic signature (КЭП) where the school has one (REGULATIONS A5): a command line
    /// run without a shell, `{in}` standing for the tag manifest and `{out}` for the
    /// signature file it writes (`tagmanifest-sha512.txt.p7s`); without `{in}` the tag
    /// manifest is its standard input, without `{out}` its standard output is the signature.
    /// For example `cryptcp -sign -der -detached -thumbprint … {in} {out}`, or
    /// `openssl cms -sign -engine gost -binary -outform DER -in {in} -out {out} -signer
    /// director.crt -inkey director.key -md md_gost12_256`.
    #[serde(default)]
    pub external_signer: Option<String>,
    /// The command checking that signature (`archive verify`, `archive pull`): `{in}` the tag
    /// manifest, `{sig}` the signature file; exit status 0 when it is valid. For example
    /// `openssl cms -verify -engine gost -binary -inform DER -in {sig} -content {in} -CAfile
    /// ca.crt -out /dev/null`.
    #[serde(default)]
    pub external_verifier: Option<String>,
    /// The paper copies' template for every school (`templates/paper.toml` is the default;
    /// a school's `paper_template` wins over this one).
    #[serde(default)]
    pub paper_template: Option<PathBuf>,
}

const SIGNATURE: &str = "tagmanifest-sha512.txt.minisig";
/// The outside signer's signature of the tag manifest (CMS/PKCS #7, as `openssl cms` and
/// `cryptcp` write it).
pub const EXTERNAL_SIGNATURE: &str = "tagmanifest-sha512.txt.p7s";
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
pub(crate) fn slug(name: &str) -> String {
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

/// `ejgate archive snapshot`: the bag of a school's year, signed (its canonical data only;
/// [`snapshot_with`] adds the paper copies).
pub async fn snapshot(
    store: &dyn Store,
    school: &str,
    sources: &[(String, String)],
    year: SchoolYear,
    out_dir: &Path,
    key: &minisign::SecretKey,
    external_signer: Option<&str>,
) -> anyhow::Result<SnapshotReport> {
    snapshot_with(store, school, sources, year, out_dir, key, external_signer, None).await
}

/// The PDFs a year-end bag holds (K7): the journal source's year-end books and сводные
/// ведомости, laid out with this template.
pub struct BagPaper<'a> {
    pub journal_source: &'a str,
    pub template: &'a crate::documents::template::Template,
}

/// [`snapshot`], with the year's paper copies as PDF/A in `data/paper/` when `paper` is
/// given (the journal of the year and the сводные ведомости, REGULATIONS K7).
#[allow(clippy::too_many_arguments)]
pub async fn snapshot_with(
    store: &dyn Store,
    school: &str,
    sources: &[(String, String)],
    year: SchoolYear,
    out_dir: &Path,
    key: &minisign::SecretKey,
    external_signer: Option<&str>,
    paper: Option<BagPaper<'_>>,
) -> anyhow::Result<SnapshotReport> {
    let name = bag_name(school, year);
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
    let mut counts = BTreeMap::new();
    // Every kind is exported by its own pipeline (`payload`: the store's rows streamed,
    // written and hashed in one pass, on four threads), as many kinds at a time as the
    // machine has cores: with two, the JSON Lines of one kind is hashed while another's CSV
    // is made, and no large kind waits for the small ones.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(cores));
    let names: std::sync::Arc<[String]> = sources.iter().map(|(s, _)| s.clone()).collect();
    let mut writing = Vec::new();
    for kind in EntityKind::ALL {
        let permit = permits.clone().acquire_owned().await?;
        let (store, names, data) = (store.shared(), names.clone(), part.join("data"));
        writing.push(tokio::spawn(async move {
            let written = payload::export_kind(store, kind, names, range, data).await;
            drop(permit);
            (kind, written)
        }));
    }
    let mut lines = Vec::new();
    for task in writing {
        let (kind, written) = task.await.context("writing the payload")?;
        if let Some((rows, files)) = written? {
            counts.insert(kind, rows);
            lines.extend(files);
        }
    }
    let mut pdfs = 0;
    if let Some(paper) = paper {
        let journal = paper::Journal::load(store, school, paper.journal_source).await?;
        let dir = part.join("data").join("paper");
        let written = tokio::task::block_in_place(|| {
            paper::write(&journal, paper.template, &paper::PaperSpan::Year(year), &dir)
        })?;
        for f in &written.files {
            let bytes = std::fs::read(&f.path)?;
            let name = f.path.file_name().and_then(|n| n.to_str()).context("a PDF without a UTF-8 name")?;
            lines.push((format!("data/paper/{name}"), sha512_hex(&bytes), bytes.len() as u64));
        }
        pdfs = written.files.len();
    }
    // Manifest lines in path order, whatever order the threads finished in.
    lines.sort();
    let (files, bytes) = (lines.len(), lines.iter().map(|l| l.2).sum::<u64>());
    let manifest: String = lines.iter().map(|(rel, hash, _)| format!("{hash}  {rel}\n")).collect();
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
    if pdfs > 0 {
        info.push_str(&format!(
            "Ejgate-Paper-Copies: {pdfs} PDF/A-2u files in data/paper (year-end books and svodnye vedomosti)\n"
        ));
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
    if let Some(command) = external_signer {
        let made = external_sign(command, &part.join("tagmanifest-sha512.txt"), &part.join(EXTERNAL_SIGNATURE));
        if let Err(e) = made {
            std::fs::remove_dir_all(&part).ok();
            return Err(e);
        }
    }
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
    let out = out.unwrap_or_else(|| archive_dir(config));
    let template = paper::school_template(config, school)?;
    let journal_source = paper::journal_source(config, school)?;
    let paper = BagPaper { journal_source: &journal_source, template: &template };
    snapshot_with(store, school, &sources, year, &out, &key, archive.external_signer.as_deref(), Some(paper)).await
}

/// `archive.dir`, or `archive` beside the configuration.
pub fn archive_dir(config: &Config) -> PathBuf {
    let archive = config.archive.clone().unwrap_or_default();
    config.resolve(archive.dir.as_deref().unwrap_or(Path::new("archive")))
}

/// The bag's name: `ejgate-SCHOOL-YYYY-YYYY`.
pub fn bag_name(school: &str, year: SchoolYear) -> String {
    format!("ejgate-{}-{}-{}", slug(school), year.start_year, year.start_year + 1)
}

/// The words of a command line: split at white space, `'…'` and `"…"` keep spaces.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// Runs an outside signer or verifier: `{in}`, `{out}` and `{sig}` replaced by paths;
/// `stdin` fed when `{in}` is not in the line. Its standard output, or the error naming the
/// program (never its arguments, which may hold a key's PIN) with what it wrote to stderr.
fn run_external(what: &str, line: &str, paths: &[(&str, &Path)], stdin: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
    let mut args = words(line);
    if args.is_empty() {
        anyhow::bail!("[archive] {what} is empty: give the command line");
    }
    for a in &mut args {
        for (placeholder, path) in paths {
            if a.contains(placeholder) {
                *a = a.replace(placeholder, &path.display().to_string());
            }
        }
    }
    let program = args.remove(0);
    let mut command = std::process::Command::new(&program);
    command.args(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    command.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    let mut child = command
        .spawn()
        .with_context(|| format!("[archive] {what}: cannot run «{program}» (is it installed and on PATH?)"))?;
    if let (Some(bytes), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(bytes).with_context(|| format!("[archive] {what}: writing to «{program}»"))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!(
            "[archive] {what}: «{program}» ended with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The outside signer's signature of the tag manifest into `signature`.
fn external_sign(line: &str, tagmanifest: &Path, signature: &Path) -> anyhow::Result<()> {
    let uses_in = line.contains("{in}");
    let input = if uses_in { None } else { Some(std::fs::read(tagmanifest)?) };
    let stdout =
        run_external("external_signer", line, &[("{in}", tagmanifest), ("{out}", signature)], input.as_deref())?;
    if !line.contains("{out}") {
        std::fs::write(signature, stdout)?;
    }
    match std::fs::metadata(signature) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => anyhow::bail!("[archive] external_signer wrote no signature into {}", signature.display()),
    }
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
    Ok(verify(bag, &key, archive.external_verifier.as_deref()))
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

/// `ejgate archive verify BAG`: the signature, the outside signer's signature when the bag
/// has one (checked by `external_verifier`), and every manifest; each problem names the
/// file. Empty: the bag is as it was signed.
pub fn verify(bag: &Path, public_key: &minisign::PublicKey, external_verifier: Option<&str>) -> Vec<String> {
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
    let p7s = bag.join(EXTERNAL_SIGNATURE);
    if p7s.exists() {
        match external_verifier {
            None => problems.push(format!(
                "{EXTERNAL_SIGNATURE}: the bag has a second signature, but no [archive] external_verifier is set to \
                 check it"
            )),
            Some(line) => {
                let tags = bag.join("tagmanifest-sha512.txt");
                if let Err(e) =
                    run_external("external_verifier", line, &[("{in}", tags.as_path()), ("{sig}", p7s.as_path())], None)
                {
                    problems.push(format!(
                        "{EXTERNAL_SIGNATURE}: the second signature of tagmanifest-sha512.txt does not verify: {e:#}"
                    ));
                }
            }
        }
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

// ---- the year-end archive on the backup targets (A7: two media in different rooms) -------

/// The name of a bag's sealed copy on the backup targets: the bag as a tar, zstd, age (to
/// the backups' recipients or the director's passphrase, A8).
pub fn sealed_name(bag_name: &str) -> String {
    format!("{bag_name}.bag.tar.zst.age")
}

/// The bag as one tar file, its entries under the bag's name in path order, with fixed
/// times and modes (the same bag gives the same tar).
fn tar_bag(bag: &Path, out: &Path) -> anyhow::Result<()> {
    let name = bag.file_name().and_then(|n| n.to_str()).context("the bag's directory has no UTF-8 name")?;
    let mut files = Vec::new();
    files_under(bag, bag, &mut files).with_context(|| format!("cannot read the bag {}", bag.display()))?;
    files.sort();
    let file = std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, file));
    builder.mode(tar::HeaderMode::Deterministic);
    for rel in files {
        builder.append_path_with_name(bag.join(&rel), format!("{name}/{rel}"))?;
    }
    let file = builder.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

/// What happened to one target's copy of a bag.
#[derive(Debug, Clone)]
pub struct TargetCopy {
    pub target: String,
    /// It held the copy already (an earlier run wrote it).
    pub already: bool,
    /// `None`: written and read back, or already there.
    pub error: Option<String>,
}

/// Copies the bag, sealed, to every backup target that lacks it; a target that is down does
/// not stop the others.
pub async fn copy_to_targets(backups: &crate::backup::Backups, bag: &Path) -> anyhow::Result<Vec<TargetCopy>> {
    let name = bag.file_name().and_then(|n| n.to_str()).context("the bag's directory has no UTF-8 name")?;
    let file = sealed_name(name);
    let work = tempfile::Builder::new().prefix("ejgate-bag-").tempdir()?;
    let (tar_path, sealed_path) = (work.path().join("bag.tar"), work.path().join("sealed"));
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        tar_bag(bag, &tar_path)?;
        crate::backup::crypt::seal(&tar_path, &sealed_path, &backups.sealing)?;
        Ok(())
    })?;
    let sealed = std::fs::read(&sealed_path)?;
    let mut copies = Vec::new();
    for t in &backups.targets {
        let result = async {
            t.check().await?;
            if t.names().await?.contains(&file) {
                return Ok(true);
            }
            t.put(&file, &sealed).await?;
            Ok::<_, anyhow::Error>(false)
        }
        .await;
        copies.push(match result {
            Ok(already) => TargetCopy { target: t.name.clone(), already, error: None },
            Err(e) => TargetCopy { target: t.name.clone(), already: false, error: Some(format!("{e:#}")) },
        });
    }
    Ok(copies)
}

/// What [`year_end`] did.
#[derive(Debug, Clone)]
pub struct YearEndReport {
    pub bag: PathBuf,
    /// `None`: the bag was made by an earlier run.
    pub made: Option<SnapshotReport>,
    /// Per backup target; empty when the configuration has no `[backup]`.
    pub copies: Vec<TargetCopy>,
}

impl YearEndReport {
    pub fn render(&self) -> String {
        let mut out = match &self.made {
            Some(r) => format!(
                "{}: {} records of {} kinds, {} payload files ({} bytes), signed\n",
                r.bag.display(),
                r.counts.values().sum::<u64>(),
                r.counts.len(),
                r.payload_files,
                r.payload_bytes
            ),
            None => format!("{}: made by an earlier run\n", self.bag.display()),
        };
        if self.copies.is_empty() {
            out.push_str(
                "  not copied to backup targets: ejgate.toml has no [backup] (REGULATIONS A7 asks for two media)\n",
            );
        }
        for c in &self.copies {
            match (&c.error, c.already) {
                (None, true) => out.push_str(&format!("  {}: holds it already\n", c.target)),
                (None, false) => out.push_str(&format!("  {}: copied (sealed) and read back\n", c.target)),
                (Some(e), _) => out.push_str(&format!(
                    "  {}: NOT COPIED: {e}\n    what to do: bring the target back and run the snapshot again (a bag \
                     already made is copied, not made again: `ejgate jobs run` of the year-end job, or `ejgate \
                     archive snapshot`)\n",
                    c.target
                )),
            }
        }
        out
    }
}

/// The year-end archive of a school: the bag (unless an earlier run made it), copied to
/// the backup targets that lack it.
pub async fn year_end(
    config: &Config,
    store: &dyn Store,
    school: &str,
    year: SchoolYear,
) -> anyhow::Result<YearEndReport> {
    let bag = archive_dir(config).join(bag_name(school, year));
    let made = if bag.is_dir() { None } else { Some(snapshot_command(config, store, school, year, None).await?) };
    let copies = match &config.backup {
        Some(_) => {
            let backups = crate::backup::Backups::from_config(config, None)?;
            copy_to_targets(&backups, &bag).await?
        }
        None => Vec::new(),
    };
    Ok(YearEndReport { bag, made, copies })
}

/// What `ejgate archive pull` did.
#[derive(Debug, Clone)]
pub struct PullReport {
    pub bag: PathBuf,
    pub from: String,
    /// Targets tried before, and why each was passed over.
    pub passed_over: Vec<String>,
}

/// `ejgate archive pull`: the sealed bag of a school's year from the first backup target
/// (or `from`) whose copy opens and verifies (signatures and every manifest), unpacked into
/// `out_dir`; logged in the backup-usage log (A9) with who and why, failed pulls too.
#[allow(clippy::too_many_arguments)]
pub async fn pull(
    config: &Config,
    store: &dyn Store,
    backups: &crate::backup::Backups,
    school: &str,
    year: SchoolYear,
    from: Option<&str>,
    out_dir: &Path,
    public_key: &minisign::PublicKey,
    who: &str,
    why: &str,
) -> anyhow::Result<PullReport> {
    use crate::store::{BackupAction, BackupOutcome, BackupUse};
    let name = bag_name(school, year);
    let dest = out_dir.join(&name);
    if dest.exists() {
        anyhow::bail!("{} exists: pull into another directory (--out DIR)", dest.display());
    }
    if let Some(from) = from {
        if !backups.targets.iter().any(|t| t.name == from) {
            let names: Vec<&str> = backups.targets.iter().map(|t| t.name.as_str()).collect();
            anyhow::bail!("--from {from}: no [[backup.target]] of that name (targets: {})", names.join(", "));
        }
    }
    if backups.opening.is_empty() {
        anyhow::bail!(
            "the archive copies are sealed like the backups: give the key (--identity FILE or backup.identity_file, \
             or the passphrase)"
        );
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let external = config.archive.as_ref().and_then(|a| a.external_verifier.clone());
    let file = sealed_name(&name);
    let mut passed_over = Vec::new();
    let mut pulled = None;
    for t in backups.targets.iter().filter(|t| from.is_none_or(|f| f == t.name)) {
        let part = out_dir.join(format!(".{name}.pull-{}", t.name));
        let result = async {
            let sealed = t.get(&file).await?;
            tokio::task::block_in_place(|| -> anyhow::Result<Vec<String>> {
                if part.exists() {
                    std::fs::remove_dir_all(&part)?;
                }
                std::fs::create_dir_all(&part)?;
                let tar_path = part.join("bag.tar");
                crate::backup::crypt::unseal(&sealed, &tar_path, &backups.opening)?;
                // Entries outside the directory (`..`, absolute paths) are refused by unpack.
                tar::Archive::new(std::fs::File::open(&tar_path)?)
                    .unpack(&part)
                    .context("the copy is not a tar of a bag")?;
                std::fs::remove_file(&tar_path)?;
                if !part.join(&name).is_dir() {
                    anyhow::bail!("the copy does not hold the bag {name}");
                }
                Ok(verify(&part.join(&name), public_key, external.as_deref()))
            })
        }
        .await;
        match result {
            Ok(problems) if problems.is_empty() => {
                std::fs::rename(part.join(&name), &dest)
                    .with_context(|| format!("cannot move the bag into {}", dest.display()))?;
                std::fs::remove_dir_all(&part).ok();
                pulled = Some(t.name.clone());
                break;
            }
            Ok(problems) => {
                std::fs::remove_dir_all(&part).ok();
                passed_over.push(format!(
                    "{}: the copy does not verify ({} problem(s): {})",
                    t.name,
                    problems.len(),
                    problems.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                ));
            }
            Err(e) => {
                std::fs::remove_dir_all(&part).ok();
                passed_over.push(format!("{}: {e:#}", t.name));
            }
        }
    }
    let detail = match &pulled {
        Some(t) => format!(
            "year-end archive pulled from «{t}» into {}: the signature and every manifest verify{}",
            dest.display(),
            if passed_over.is_empty() { String::new() } else { format!("; passed over: {}", passed_over.join("; ")) }
        ),
        None => format!("year-end archive not pulled: {}", passed_over.join("; ")),
    };
    store
        .log_backup_use(&BackupUse {
            at: crate::store::now_micros(),
            action: BackupAction::Pull,
            backup_id: Some(name.clone()),
            who: who.to_string(),
            why: Some(why.to_string()),
            outcome: if pulled.is_some() { BackupOutcome::Ok } else { BackupOutcome::Failed },
            detail: detail.clone(),
        })
        .await?;
    match pulled {
        Some(from) => Ok(PullReport { bag: dest, from, passed_over }),
        None => anyhow::bail!("no backup target gave a copy of {name} that verifies: {}", passed_over.join("; ")),
    }
}
