//! Fuzzing each API connector's response parsers (issue #14, item 2: no parser panics on
//! what a source may send). Every connector reads its emulator through a proxy that
//! replaces some JSON answers with random mutations of themselves (`ejgate_sdk::fuzz`:
//! a value of another type, a Cyrillic or empty string, `null`, a huge number, an array
//! element dropped or doubled, a key dropped): the answers pass through the connector's
//! serde structs (`connectors/*/src/api.rs`) and the functions that map them, as in a real
//! run. A run may fail (a malformed answer is a failed run) or succeed with warnings; it
//! must never panic — the engine turns a panic into a failed run of kind `internal`, and
//! that is what the test looks for. Seeds are fixed: a failure replays.
#![cfg(feature = "emulators")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use ejgate::config::{Config, System};
use ejgate::emulators::Emulator;
use ejgate::store::{RunErrorKind, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::fuzz;
use ejgate_sdk::synth::{SynthConfig, World};

/// The token every emulator accepts (КИАСУО: the first refresh token, 32 hex characters).
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// What the proxy did.
#[derive(Default)]
struct Counts {
    answers: AtomicU64,
    mutated: AtomicU64,
}

/// A proxy in front of `upstream` (`http://127.0.0.1:port`) that leaves the first `first`
/// JSON answers as they are and mutates each later one with probability `share`, from its
/// own seeded generator.
async fn mutating_proxy(upstream: String, seed: u64, first: u64, share: f64, counts: Arc<Counts>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rng = Arc::new(Mutex::new(fuzz::rng(seed)));
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { return };
            let (upstream, rng, http, counts) = (upstream.clone(), rng.clone(), http.clone(), counts.clone());
            tokio::spawn(async move {
                let _ = serve(socket, &upstream, &rng, &http, first, share, &counts).await;
            });
        }
    });
    addr
}

/// One request on one connection (answered with `Connection: close`).
async fn serve(
    mut socket: TcpStream,
    upstream: &str,
    rng: &Mutex<fuzz::Rng>,
    http: &reqwest::Client,
    first: u64,
    share: f64,
    counts: &Counts,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) =
        (request_line.next().unwrap_or("GET").to_string(), request_line.next().unwrap_or("/").to_string());
    let mut headers = reqwest::header::HeaderMap::new();
    let mut length = 0usize;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        }
        if ["host", "connection", "content-length", "accept-encoding"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
            continue;
        }
        if let (Ok(n), Ok(v)) =
            (reqwest::header::HeaderName::from_bytes(name.as_bytes()), reqwest::header::HeaderValue::from_str(value))
        {
            headers.append(n, v);
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let answer = http.request(method, format!("{upstream}{target}")).headers(headers).body(body).send().await;
    let Ok(answer) = answer else { return Ok(()) };
    let status = answer.status();
    let mut keep = Vec::new();
    for name in [reqwest::header::CONTENT_TYPE, reqwest::header::DATE, reqwest::header::RETRY_AFTER] {
        if let Some(v) = answer.headers().get(&name).and_then(|v| v.to_str().ok()) {
            keep.push(format!("{name}: {v}\r\n"));
        }
    }
    let is_json = answer
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    let mut bytes = answer.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    if status.is_success() && is_json {
        let index = counts.answers.fetch_add(1, Ordering::Relaxed);
        let mut rng = rng.lock().unwrap();
        if index >= first && fuzz::chance(&mut rng, share) {
            if let Ok(valid) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                bytes = serde_json::to_vec(&fuzz::mutate_json(&mut rng, &valid, 3)).unwrap();
                counts.mutated.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let head = format!(
        "HTTP/1.1 {} {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("-"),
        keep.concat(),
        bytes.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(&bytes).await?;
    socket.shutdown().await
}

/// Syncs `system` through the mutating proxy: once unchanged (to count its JSON answers),
/// then `runs` times, each run from a random answer on mutating every second answer (a run
/// stops at the first answer it cannot read, so each run starts mutating somewhere else).
/// A fresh emulator and store per run. Returns the mutated answers served; panics when a
/// run ended in a panic.
async fn fuzz_system(system: System, runs: u64) -> u64 {
    let world = World::generate(SynthConfig::small(3));
    let clean = sync_through_proxy(system, &world, 0, u64::MAX, 0.0).await;
    assert_eq!(clean.0, None, "{}: the unchanged run succeeds", system.as_str());
    let answers = clean.1;
    let mut pick = fuzz::rng(u64::from(system.as_str().len() as u32) * 1000 + 14);
    let mut mutated = 0;
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for seed in 0..runs {
        let first = fuzz::below(&mut pick, answers);
        let (kind, _, m) = sync_through_proxy(system, &world, seed, first, 0.5).await;
        mutated += m;
        *outcomes.entry(kind.map_or("succeeded".into(), |k| k.to_string())).or_default() += 1;
    }
    println!(
        "{}: {answers} JSON answers in an unchanged run; {runs} runs, {mutated} mutated answers, outcomes {outcomes:?}",
        system.as_str()
    );
    mutated
}

/// One full sync of `system` into a fresh store through a mutating proxy; returns the run's
/// error kind, the JSON answers served and how many were mutated.
async fn sync_through_proxy(
    system: System,
    world: &World,
    seed: u64,
    first: u64,
    share: f64,
) -> (Option<RunErrorKind>, u64, u64) {
    let emulator =
        Emulator::start(system, world.clone(), TOKEN, None, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let base: url::Url = emulator.base_url().parse().unwrap();
    let upstream =
        format!("{}://{}", base.scheme(), base.host_str().zip(base.port()).map(|(h, p)| format!("{h}:{p}")).unwrap());
    let counts = Arc::new(Counts::default());
    let proxy = mutating_proxy(upstream, seed, first, share, counts.clone()).await;
    let mut through = base.clone();
    through.set_port(Some(proxy.port())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    // A token file others can read is refused.
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(dir.path().join("token"), private).unwrap();
    let text = format!(
        "[store]\nurl = \"sqlite://ejgate.db\"\n[[source]]\nname = \"fuzz\"\nsystem = \"{}\"\nbase_url = \"{through}\"\n\
         token_file = \"token\"\ntimeout_seconds = 10\n",
        system.as_str()
    );
    let config = Config::parse(&text, &dir.path().join("ejgate.toml")).unwrap();
    let connector = ejgate::sources::connector(&config, &config.sources[0]).unwrap();
    let store = SqliteStore::open(&config.store_url()).await.unwrap();
    let report =
        run_sync(&store as &dyn Store, connector, &SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() })
            .await
            .unwrap();
    assert_ne!(
        report.error_kind,
        Some(RunErrorKind::Internal),
        "{}: seed {seed} (mutating from answer {first}): the connector panicked on a mutated answer: {:?}",
        system.as_str(),
        report.error
    );
    emulator.shutdown().await;
    (report.error_kind, counts.answers.load(Ordering::Relaxed), counts.mutated.load(Ordering::Relaxed))
}

/// Runs per system: `EJGATE_FUZZ_RUNS`, 6 by default (each run is a sync of the small school,
/// a few seconds on a shared machine; 40 runs per system found no panic, 2026-12-04).
fn runs() -> u64 {
    std::env::var("EJGATE_FUZZ_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(6)
}

#[tokio::test]
async fn dnevnik_answers_never_panic_the_connector() {
    assert!(fuzz_system(System::Dnevnik, runs()).await >= runs());
}

#[tokio::test]
async fn epos_answers_never_panic_the_connector() {
    assert!(fuzz_system(System::Epos, runs()).await >= runs());
}

#[tokio::test]
async fn kiasuo_answers_never_panic_the_connector() {
    assert!(fuzz_system(System::Kiasuo, runs()).await >= runs());
}

#[tokio::test]
async fn mosreg_answers_never_panic_the_connector() {
    assert!(fuzz_system(System::Mosreg, runs()).await >= runs());
}
