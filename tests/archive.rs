//! The year-end bag, with outside tools as judges: `bagit.py --validate` (PyPI bagit)
//! accepts it, `minisign -V` (Debian minisign) verifies the signature of its tag manifest,
//! and `ejgate archive verify` names any flipped byte in a payload file, `bag-info.txt`, a
//! manifest or the signature, and a file added to the payload.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ejgate, output_text, start_emulator, TOKEN};
use ejgate_sdk::synth::{SynthConfig, World};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Flips one bit of the byte at `at` (a negative offset counts from the end).
fn flip(path: &Path, at: isize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = if at < 0 { (bytes.len() as isize + at) as usize } else { at as usize };
    bytes[i] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_year_end_bag_passes_bagit_py_and_minisign_and_any_flipped_byte_is_named() {
    let emulator = start_emulator(World::generate(SynthConfig::small(41)), None).await;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("secrets")).unwrap();
    std::fs::write(p.join("secrets/token"), TOKEN).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.join("secrets/token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A minisign key pair from the outside tool, its secret key encrypted with a password
    // (minisign reads it twice from standard input).
    const PASSWORD: &str = "archive-key-password-2718";
    let mut child = Command::new("minisign")
        .args(["-G", "-p"])
        .arg(p.join("archive.pub"))
        .arg("-s")
        .arg(p.join("archive.key"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("minisign runs (apt-get install minisign)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{PASSWORD}\n{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let config = p.join("ejgate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://ejgate.db\"\n\n[[source]]\nname = \"dn\"\nsystem = \"dnevnik\"\n\
             base_url = \"{}\"\ntoken_file = \"secrets/token\"\n\n[archive]\ndir = \"archive\"\n\
             minisign_secret_key = \"archive.key\"\nminisign_password_env = \"EJGATE_TEST_MINISIGN_PASSWORD\"\n\
             minisign_public_key = \"archive.pub\"\n\n\
             [[school]]\nname = \"МБОУ СОШ № 7\"\nsources = [\"dn\"]\n",
            emulator.base_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        ejgate()
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("EJGATE_TEST_MINISIGN_PASSWORD", PASSWORD)
            .output()
            .unwrap()
    };
    let out = run(&["sync", "--full", "--quiet"]);
    assert!(out.status.success(), "{}", output_text(&out));

    let out = run(&["archive", "snapshot", "--school", "МБОУ СОШ № 7", "--year", "2025/2026"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(!output_text(&out).contains(PASSWORD));
    let bag: PathBuf = p.join("archive/ejgate-МБОУ-СОШ-7-2025-2026");
    assert!(bag.join("data/mark.jsonl").exists(), "{}", output_text(&out));

    // The payload holds the store's live marks dated in the year, counted here in SQL.
    let conn = rusqlite::Connection::open(p.join("ejgate.db")).unwrap();
    let marks: i64 = conn
        .query_row(
            "SELECT count(*) FROM records WHERE kind = 'mark' AND deleted_at IS NULL \
             AND (date IS NULL OR date BETWEEN '2025-09-01' AND '2026-08-31')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(marks > 100);
    let jsonl = std::fs::read_to_string(bag.join("data/mark.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count() as i64, marks);
    let csv = std::fs::read_to_string(bag.join("data/mark.csv")).unwrap();
    assert_eq!(csv.lines().count() as i64, marks + 1, "a header and one row per mark");
    // Every kind's CSV says what its JSON Lines says, row for line: the envelope (id, source,
    // source id, scope, date), then each content field — a string as it is, an absent field
    // and null empty, any other value its JSON.
    let mut kinds = 0;
    for entry in std::fs::read_dir(bag.join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        kinds += 1;
        let lines = std::fs::read_to_string(&path).unwrap();
        let mut csv = csv::Reader::from_path(path.with_extension("csv")).unwrap();
        let header = csv.headers().unwrap().clone();
        assert_eq!(header.iter().take(5).collect::<Vec<_>>(), ["id", "source", "source_id", "scope", "date"]);
        let mut rows = 0;
        for (line, row) in lines.lines().zip(csv.records()) {
            let (line, row): (serde_json::Value, _) = (serde_json::from_str(line).unwrap(), row.unwrap());
            for (column, cell) in header.iter().zip(row.iter()) {
                let value = match column {
                    "id" | "source" | "source_id" | "scope" | "date" => &line[column],
                    field => &line["content"][field],
                };
                let expected = match value {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(cell, expected, "{}: column {column} of {}", path.display(), line["id"]);
            }
            rows += 1;
        }
        assert_eq!(rows, lines.lines().count(), "{}", path.display());
        assert_eq!(csv.records().count(), 0, "{}: rows after the last line", path.display());
    }
    assert!(kinds >= 10, "{kinds} kinds in the payload");
    let info = std::fs::read_to_string(bag.join("bag-info.txt")).unwrap();
    assert!(info.contains(&format!("Ejgate-Count: mark {marks}\n")), "{info}");
    assert!(info.contains("Ejgate-School-Year: 2025/2026") && info.contains("Ejgate-Source: dn (dnevnik)"), "{info}");

    // The outside judges.
    let out = Command::new("bagit.py").arg("--validate").arg(&bag).output().expect("bagit.py runs (pip install bagit)");
    assert!(out.status.success(), "bagit.py: {}", output_text(&out));
    let out = Command::new("minisign")
        .arg("-V")
        .arg("-p")
        .arg(p.join("archive.pub"))
        .arg("-m")
        .arg(bag.join("tagmanifest-sha512.txt"))
        .output()
        .unwrap();
    assert!(out.status.success(), "minisign -V: {}", output_text(&out));
    let out = run(&["archive", "verify", bag.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));

    // Tampering: a copy per case, one flipped byte each, named by `archive verify`.
    let sig = "tagmanifest-sha512.txt.minisig";
    // The signature file's second line is the signature itself (its end: the last byte
    // before the newline of that line).
    let sig_text = std::fs::read_to_string(bag.join(sig)).unwrap();
    let second_line_end = sig_text.lines().take(2).map(|l| l.len() + 1).sum::<usize>() as isize - 2;
    let second_line_middle = sig_text.lines().next().unwrap().len() as isize + 1 + 40;
    let last_line_middle = sig_text.len() as isize - 30;
    let cases: [(&str, isize, &str); 8] = [
        ("data/mark.jsonl", 10, "data/mark.jsonl"),
        ("data/person.csv", -3, "data/person.csv"),
        ("bag-info.txt", 3, "bag-info.txt"),
        ("manifest-sha512.txt", 5, "manifest-sha512.txt"),
        (sig, second_line_end, sig),
        (sig, second_line_middle, sig),
        (sig, last_line_middle, sig),
        // The untrusted comment (minisign leaves it unsigned).
        (sig, 25, sig),
    ];
    for (i, (file, at, named)) in cases.iter().enumerate() {
        let copy = p.join(format!("tampered-{i}"));
        copy_dir(&bag, &copy);
        flip(&copy.join(file), *at);
        let out = run(&["archive", "verify", copy.to_str().unwrap()]);
        assert!(!out.status.success(), "{file}: not detected: {}", output_text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.lines().any(|l| l.contains(&format!(": {named}:"))), "{file}: not named:\n{stderr}");
    }
    // The flipped payload byte is caught by bagit.py too.
    let out = Command::new("bagit.py").arg("--validate").arg(p.join("tampered-0")).output().unwrap();
    assert!(!out.status.success(), "{}", output_text(&out));
    // A file added to the payload is named.
    let copy = p.join("tampered-added");
    copy_dir(&bag, &copy);
    std::fs::write(copy.join("data/extra.csv"), "x\n").unwrap();
    let out = run(&["archive", "verify", copy.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("data/extra.csv: added"), "{}", output_text(&out));

    // A bag is never overwritten.
    let out = run(&["archive", "snapshot", "--school", "МБОУ СОШ № 7", "--year", "2025/2026"]);
    assert!(!out.status.success() && output_text(&out).contains("never overwritten"), "{}", output_text(&out));
}

/// The bag of files a directory holds, by relative path.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(path.strip_prefix(base).unwrap().display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The year-end archive on two media (A7) with a second, GOST signature (A5): `archive
/// snapshot` signs the tag manifest with minisign and through `openssl cms` with a GOST R
/// 34.10-2012 key (Debian's libengine-gost-openssl; `openssl cms -verify` is the judge),
/// and copies the bag, sealed, to both backup targets. `archive pull` with one target down
/// (an unmounted drive) gets it from the other, with a damaged copy passes it over, verifies
/// it, and logs who, when and why (A9); the pulled bag is the bag, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_year_end_bag_is_signed_twice_kept_on_both_targets_and_pulled_with_one_down() {
    let emulator = start_emulator(World::generate(SynthConfig::small(42)), None).await;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for d in ["secrets", "usb", "nas", "keys"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("secrets/token"), TOKEN).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.join("secrets/token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let tool = |program: &str, args: &[&str]| {
        let out = Command::new(program).current_dir(p.join("keys")).args(args).output().unwrap_or_else(|e| {
            panic!("{program} runs ({e}): apt-get install minisign age openssl libengine-gost-openssl")
        });
        assert!(out.status.success(), "{program} {args:?}: {}", output_text(&out));
        out
    };
    const PASSWORD: &str = "archive-key-password-1414";
    let mut child = Command::new("minisign")
        .current_dir(p.join("keys"))
        .args(["-G", "-p", "archive.pub", "-s", "archive.key"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("minisign runs (apt-get install minisign)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{PASSWORD}\n{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    tool("age-keygen", &["-o", "director.key"]);
    let public = String::from_utf8(tool("age-keygen", &["-y", "director.key"]).stdout).unwrap().trim().to_string();
    // The director's GOST key and certificate (a qualified certificate would come from an
    // accredited CA; the signing path is the same).
    tool(
        "openssl",
        &["genpkey", "-engine", "gost", "-algorithm", "gost2012_256", "-pkeyopt", "paramset:A", "-out", "director.pem"],
    );
    tool(
        "openssl",
        &[
            "req",
            "-engine",
            "gost",
            "-x509",
            "-new",
            "-key",
            "director.pem",
            "-subj",
            "/CN=Director/O=School 7",
            "-days",
            "3650",
            "-out",
            "director.crt",
        ],
    );
    let keys = p.join("keys");
    let k = |name: &str| keys.join(name).display().to_string();
    let signer = format!(
        "openssl cms -sign -engine gost -binary -outform DER -in {{in}} -out {{out}} -signer {} -inkey {} -md md_gost12_256",
        k("director.crt"),
        k("director.pem")
    );
    let verifier = format!(
        "openssl cms -verify -engine gost -binary -inform DER -in {{sig}} -content {{in}} -CAfile {} -out /dev/null",
        k("director.crt")
    );
    let config = p.join("ejgate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://ejgate.db\"\n\n[[source]]\nname = \"dn\"\nsystem = \"dnevnik\"\n\
             base_url = \"{}\"\ntoken_file = \"secrets/token\"\n\n[archive]\ndir = \"archive\"\n\
             minisign_secret_key = \"keys/archive.key\"\nminisign_public_key = \"keys/archive.pub\"\n\
             minisign_password_env = \"EJGATE_TEST_MINISIGN_PASSWORD\"\n\
             external_signer = \"{signer}\"\nexternal_verifier = \"{verifier}\"\n\n\
             [backup]\nrecipients = [\"{public}\"]\nidentity_file = \"keys/director.key\"\n\n\
             [[backup.target]]\nname = \"usb\"\npath = \"usb\"\n\n[[backup.target]]\nname = \"nas\"\npath = \"nas\"\n\n\
             [[school]]\nname = \"МБОУ СОШ № 7\"\nsources = [\"dn\"]\n",
            emulator.base_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        ejgate()
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("EJGATE_TEST_MINISIGN_PASSWORD", PASSWORD)
            .output()
            .unwrap()
    };
    let out = run(&["sync", "--full", "--quiet"]);
    assert!(out.status.success(), "{}", output_text(&out));

    let out = run(&["archive", "snapshot", "--school", "МБОУ СОШ № 7", "--year", "2025/2026"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let name = "ejgate-МБОУ-СОШ-7-2025-2026";
    let bag = p.join("archive").join(name);
    let sealed = format!("{name}.bag.tar.zst.age");
    for target in ["usb", "nas"] {
        assert!(p.join(target).join(&sealed).is_file(), "{target}: {}", output_text(&out));
    }
    // The second signature, judged by openssl itself; bagit.py accepts the bag with it.
    let p7s = bag.join("tagmanifest-sha512.txt.p7s");
    let verify_p7s = |content: &Path| {
        Command::new("openssl")
            .args(["cms", "-verify", "-engine", "gost", "-binary", "-inform", "DER", "-in"])
            .arg(&p7s)
            .arg("-content")
            .arg(content)
            .arg("-CAfile")
            .arg(keys.join("director.crt"))
            .args(["-out", "/dev/null"])
            .output()
            .unwrap()
    };
    let out = verify_p7s(&bag.join("tagmanifest-sha512.txt"));
    assert!(out.status.success(), "openssl cms -verify: {}", output_text(&out));
    let out = verify_p7s(&bag.join("bag-info.txt"));
    assert!(!out.status.success(), "the GOST signature is of the tag manifest only");
    let out = Command::new("bagit.py").arg("--validate").arg(&bag).output().unwrap();
    assert!(out.status.success(), "bagit.py: {}", output_text(&out));
    let out = run(&["archive", "verify", bag.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    // One flipped byte of the GOST signature is named.
    let copy = p.join("tampered-p7s");
    copy_dir(&bag, &copy);
    flip(&copy.join("tagmanifest-sha512.txt.p7s"), -20);
    let out = run(&["archive", "verify", copy.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(": tagmanifest-sha512.txt.p7s: the second signature"),
        "{}",
        output_text(&out)
    );
    // The copy on a target opens with age -d into a tar of the bag.
    let tar = p.join("copy.tar.zst");
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(keys.join("director.key"))
        .arg("-o")
        .arg(&tar)
        .arg(p.join("nas").join(&sealed))
        .output()
        .unwrap();
    assert!(out.status.success(), "age -d: {}", output_text(&out));

    // usb is down (the drive not mounted): the pull comes from nas.
    std::fs::rename(p.join("usb"), p.join("usb-unmounted")).unwrap();
    let pull = |from: Option<&str>, out_dir: &str, reason: &str| {
        let mut args = vec![
            "archive",
            "pull",
            "--school",
            "МБОУ СОШ № 7",
            "--year",
            "2025/2026",
            "--out",
            out_dir,
            "--reason",
            reason,
            "--who",
            "архивист Иванова",
        ];
        if let Some(f) = from {
            args.extend(["--from", f]);
        }
        ejgate().arg("--config").arg(&config).current_dir(p).args(&args).output().unwrap()
    };
    let out = pull(None, "pulled-1", "запрос прокуратуры");
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("pulled from «nas»") && output_text(&out).contains("passed over usb"),
        "{}",
        output_text(&out)
    );
    assert_eq!(files(&p.join("pulled-1").join(name)), files(&bag), "the pulled bag is the bag");
    let out = Command::new("bagit.py").arg("--validate").arg(p.join("pulled-1").join(name)).output().unwrap();
    assert!(out.status.success(), "bagit.py: {}", output_text(&out));

    // usb back, nas's copy damaged: passed over, the pull comes from usb; --from nas fails.
    std::fs::rename(p.join("usb-unmounted"), p.join("usb")).unwrap();
    let damaged = p.join("nas").join(&sealed);
    let mut bytes = std::fs::read(&damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&damaged, bytes).unwrap();
    let out = pull(Some("nas"), "pulled-2", "проверка копии nas");
    assert!(!out.status.success() && !p.join("pulled-2").join(name).exists(), "{}", output_text(&out));
    assert!(output_text(&out).contains("no backup target gave a copy"), "{}", output_text(&out));
    let out = pull(None, "pulled-3", "плановая проверка архива");
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(output_text(&out).contains("pulled from «usb»"), "{}", output_text(&out));
    assert_eq!(files(&p.join("pulled-3").join(name)), files(&bag));

    // The backup-usage log: every pull, with who, why and the outcome, newest first.
    let log = run(&["backup", "log", "--json"]);
    let uses: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let pulls: Vec<(&str, &str, &str)> = uses
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["action"] == "pull")
        .map(|u| (u["why"].as_str().unwrap(), u["outcome"].as_str().unwrap(), u["who"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pulls,
        [
            ("плановая проверка архива", "ok", "архивист Иванова"),
            ("проверка копии nas", "failed", "архивист Иванова"),
            ("запрос прокуратуры", "ok", "архивист Иванова"),
        ]
    );
    assert!(uses.as_array().unwrap().iter().all(|u| u["backup_id"] == name || u["action"] != "pull"));
}
