//! Bounded memory on hostile input files (issue #15): the files the fault matrix fed to
//! `ejgate kiasuo import` and to a files source, each refused before a parser allocates by
//! what the file says, with the file and the limit named, under a measured memory peak.
//!
//! Before the limits (`ejgate_sdk::limits`): the far cell made calamine allocate the whole
//! grid (22.9 GB, then the OOM killer); a 1 GiB shared string peaked at 3.7 GB; 2 MB of
//! compressed white space at 5 GB, and was accepted.
//!
//! The test's files: the far cell as in the matrix (11 KB); a 1 GiB shared string; 1 GiB
//! of white space in a sheet (the matrix's was 5 GB; any size past the part limit is
//! refused the same way, and a gibibyte keeps the test quick).
//!
//! The peak is the real binary's, measured with GNU time (`/usr/bin/time -v`, Debian
//! package `time`; `.ci/run` installs it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use zip::write::SimpleFileOptions;

/// The peak resident size a refused file may cost the whole `ejgate` process (its runtime,
/// the store's connections, the check). The documented bound for any file read is higher
/// (`ejgate_sdk::limits`); a refusal costs far less.
const REFUSAL_PEAK_KIB: u64 = 150 * 1024;

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#;
const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Сведения" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#;
const SHEET_HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const SHEET_TAIL: &str = "</sheetData></worksheet>";

/// A part of a workbook: its name and its text, given as a head, `repeat` times a filler
/// byte, and a tail (so that a part of a gibibyte is written as a stream).
struct Part<'a> {
    name: &'a str,
    head: &'a str,
    fill: (u8, u64),
    tail: &'a str,
}

fn workbook(path: &Path, parts: &[Part]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    // The fastest level: the filler compresses a thousandfold anyway.
    let options =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).compression_level(Some(1));
    let chunk = vec![0u8; 1 << 20];
    for part in parts {
        let options = if part.fill.1 > u32::MAX as u64 { options.large_file(true) } else { options };
        zip.start_file(part.name, options).unwrap();
        zip.write_all(part.head.as_bytes()).unwrap();
        let chunk: Vec<u8> = chunk.iter().map(|_| part.fill.0).collect();
        let mut left = part.fill.1;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            zip.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        zip.write_all(part.tail.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

fn plain_parts<'a>(sheet_cells: &'a str, shared: &'a str) -> Vec<Part<'a>> {
    vec![
        Part { name: "[Content_Types].xml", head: CONTENT_TYPES, fill: (b' ', 0), tail: "" },
        Part { name: "_rels/.rels", head: RELS, fill: (b' ', 0), tail: "" },
        Part { name: "xl/workbook.xml", head: WORKBOOK, fill: (b' ', 0), tail: "" },
        Part { name: "xl/_rels/workbook.xml.rels", head: WORKBOOK_RELS, fill: (b' ', 0), tail: "" },
        Part { name: "xl/worksheets/sheet1.xml", head: sheet_cells, fill: (b' ', 0), tail: SHEET_TAIL },
        Part { name: "xl/sharedStrings.xml", head: shared, fill: (b' ', 0), tail: "" },
    ]
}

const ONE_SHARED: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>Вид файла</t></si></sst>"#;

/// The three hostile workbooks of the fault matrix, in `dir`.
fn hostile(dir: &Path) -> Vec<(&'static str, PathBuf, &'static str)> {
    let far_cell = dir.join("far-cell.xlsx");
    let sheet = format!(
        "{SHEET_HEAD}<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row><row r=\"1048576\"><c r=\"XFD1048576\"><v>1</v></c></row>"
    );
    workbook(&far_cell, &plain_parts(&sheet, ONE_SHARED));

    let shared_string = dir.join("shared-string.xlsx");
    let sheet = format!("{SHEET_HEAD}<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c></row>");
    let mut parts = plain_parts(&sheet, "");
    parts[5] = Part {
        name: "xl/sharedStrings.xml",
        head: r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>"#,
        fill: (b'a', 1 << 30),
        tail: "</t></si></sst>",
    };
    workbook(&shared_string, &parts);

    let whitespace = dir.join("whitespace.xlsx");
    let mut parts = plain_parts("", ONE_SHARED);
    parts[4] = Part { name: "xl/worksheets/sheet1.xml", head: SHEET_HEAD, fill: (b' ', 1 << 30), tail: SHEET_TAIL };
    workbook(&whitespace, &parts);

    vec![
        ("far-cell", far_cell, "XFD1048576"),
        ("shared-string", shared_string, "xl/sharedStrings.xml"),
        ("whitespace", whitespace, "xl/worksheets/sheet1.xml"),
    ]
}

/// Runs the binary under GNU time; returns (success, stderr, peak resident KiB).
fn measured(args: &[&std::ffi::OsStr]) -> (bool, String, u64) {
    let time = Path::new("/usr/bin/time");
    assert!(time.exists(), "GNU time is needed to measure peak memory: apt-get install -y time (.ci/run does)");
    let out = Command::new(time).arg("-v").arg(env!("CARGO_BIN_EXE_ejgate")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in GNU time's report:\n{stderr}"));
    (out.status.success(), stderr, peak)
}

#[test]
fn hostile_workbooks_are_refused_before_they_are_unpacked_under_a_small_peak() {
    let dir = tempfile::tempdir().unwrap();
    let files = hostile(dir.path());
    let far = std::fs::metadata(&files[0].1).unwrap().len();
    assert!(far < 16 * 1024, "the far-cell workbook is small ({far} bytes)");

    // `ejgate kiasuo import`: the secretary's exchange file.
    let config = dir.path().join("ejgate.toml");
    std::fs::write(&config, "[store]\nurl = \"sqlite://ejgate.db\"\n").unwrap();
    for (name, file, names) in &files {
        let (ok, stderr, peak) = measured(&[
            "--config".as_ref(),
            config.as_os_str(),
            "kiasuo".as_ref(),
            "import".as_ref(),
            file.as_os_str(),
        ]);
        eprintln!("{name}: peak {peak} KiB");
        assert!(!ok, "{name}: refused");
        let file_name = file.file_name().unwrap().to_string_lossy();
        assert!(stderr.contains(&*file_name) && stderr.contains(names), "{name}: names the file and where:\n{stderr}");
        assert!(stderr.contains("more than"), "{name}: names the limit:\n{stderr}");
        assert!(peak < REFUSAL_PEAK_KIB, "{name}: peak {peak} KiB");
    }

    // A files source: the same checks in its reader.
    let mapping =
        ejgate_files::Mapping::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/files/default.toml"))
            .unwrap();
    let (index, block) = mapping
        .blocks
        .iter()
        .enumerate()
        .find(|(_, b)| b.file.ends_with(".xlsx"))
        .expect("the default layout reads a workbook");
    for (name, file, names) in &files {
        let (rows, errors) = ejgate_files::read::read_file(file, "school.xlsx", &[(index, block)]);
        assert!(rows.is_empty(), "{name}");
        let text = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
        assert!(
            text.starts_with("school.xlsx") && text.contains(names) && text.contains("more than"),
            "{name}: {text}"
        );
    }
}

#[test]
fn a_text_file_past_its_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.xml");
    // A sparse file: its size is on record, its bytes take no disk.
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(ejgate_sdk::limits::MAX_TEXT_FILE_BYTES + 1).unwrap();
    let config = dir.path().join("ejgate.toml");
    std::fs::write(&config, "[store]\nurl = \"sqlite://ejgate.db\"\n").unwrap();
    let (ok, stderr, peak) =
        measured(&["--config".as_ref(), config.as_os_str(), "kiasuo".as_ref(), "import".as_ref(), path.as_os_str()]);
    assert!(!ok);
    assert!(stderr.contains("huge.xml") && stderr.contains("128 MiB"), "{stderr}");
    assert!(peak < REFUSAL_PEAK_KIB, "peak {peak} KiB");
}
