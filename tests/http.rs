//! The HTTP side of `ejgate serve`: `/metrics` read by the Python `prometheus_client`
//! package's parsers (the Prometheus text format and OpenMetrics) and checked against what
//! the emulator saw and the store recorded after real syncs; `/readyz` with a PostgreSQL
//! store that goes away; the JSON API's bearer tokens through the binary (made, used,
//! revoked, never in its log or in the store); the alerts of a failed and a never-synced
//! source in `ejgate status` and `/metrics`; the systemd unit checked by `systemd-analyze`.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ejgate, start_emulator, Harness, TOKEN};
use ejgate::config::Config;
use ejgate::daemon::http::{self, HttpState};
use ejgate::store::{ChangeOp, Store};
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::Value;

/// chmod 600: a token file others can read is refused.
fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Serves the router in-process on a loopback port until the returned sender is dropped.
async fn serve(state: HttpState) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = http::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(http::serve_on(listener, state, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// One sample as the Python parser read it.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    family: String,
    kind: String,
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses a metrics text with the `prometheus_client` package: its Prometheus text parser,
/// or its (stricter) OpenMetrics parser.
fn parse_metrics(text: &str, openmetrics: bool) -> Vec<Sample> {
    let parser = if openmetrics { "prometheus_client.openmetrics.parser" } else { "prometheus_client.parser" };
    let script = format!(
        "import sys, json\n\
         from {parser} import text_string_to_metric_families\n\
         out = []\n\
         for f in text_string_to_metric_families(sys.stdin.read()):\n\
         \x20   for s in f.samples:\n\
         \x20       out.append(dict(family=f.name, kind=f.type, name=s.name, labels=s.labels, value=s.value))\n\
         print(json.dumps(out))\n"
    );
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 is needed to parse /metrics with prometheus_client: {e}"));
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics{}:\n{stderr}\n{text}",
        if stderr.contains("No module named") {
            " (pip install prometheus-client, see .ci/requirements.txt)"
        } else {
            ""
        }
    );
    let parsed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    parsed
        .into_iter()
        .map(|s| Sample {
            family: s["family"].as_str().unwrap().to_string(),
            kind: s["kind"].as_str().unwrap().to_string(),
            name: s["name"].as_str().unwrap().to_string(),
            labels: serde_json::from_value(s["labels"].clone()).unwrap(),
            value: s["value"].as_f64().unwrap(),
        })
        .collect()
}

/// The value of the sample `name` with these labels (all of them).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
}

async fn get_metrics(addr: SocketAddr, openmetrics: bool) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if openmetrics {
        request = request.header("Accept", "application/openmetrics-text; version=1.0.0");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    (content_type, response.text().await.unwrap())
}

fn config_for(source: &str, base_url: &str, store_url: &str) -> Config {
    let text = format!(
        "[store]\nurl = \"{store_url}\"\n[[source]]\nname = \"{source}\"\nsystem = \"dnevnik\"\n\
         base_url = \"{base_url}\"\ntoken_env = \"EJGATE_TEST_UNUSED\"\n"
    );
    Config::parse(&text, Path::new("/tmp/ejgate.toml")).unwrap()
}

/// After a full and a nightly sync against an emulator that enforces a request limit, the
/// counters of `/metrics`, as the Prometheus parsers read them, are what the emulator saw
/// (requests, limit answers) and what the store's change log holds (records written), and
/// they read the same after a restart (a new server over the same store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_equal_what_the_source_and_the_store_saw() {
    // 50 requests a second: a sync of four requests in flight runs into it at once, so
    // the run meets the source's limit answers and waits for them.
    let h = Harness::with_limit(SynthConfig::small(31), Some(50)).await;
    const SOURCE: &str = "dnevnik-test";
    let full = h.sync(SyncMode::Full).await;
    assert!(full.error.is_none(), "{:?}", full.error);
    let nightly = h.sync(SyncMode::Incremental).await;
    assert!(nightly.error.is_none(), "{:?}", nightly.error);

    let store: Arc<dyn Store> = h.store.shared();
    let config = Arc::new(config_for(SOURCE, &h.emulator.base_url(), "sqlite://unused.db"));
    let (addr, stop) = serve(HttpState::new(store.clone(), config.clone())).await;
    let (content_type, text) = get_metrics(addr, false).await;
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let samples = parse_metrics(&text, false);

    // Every family has its declared type, counters included (`_total` samples).
    let kind_of = |family: &str| samples.iter().find(|s| s.family == family).map(|s| s.kind.clone());
    assert_eq!(kind_of("ejgate_source_requests").as_deref(), Some("counter"), "{text}");
    assert_eq!(kind_of("ejgate_source_stale").as_deref(), Some("gauge"));
    assert!(samples.iter().all(|s| s.kind != "unknown" && s.kind != "untyped"), "{samples:?}");

    // What the emulator answered.
    let seen = h.emulator.stats();
    let src = [("source", SOURCE)];
    assert_eq!(value(&samples, "ejgate_source_requests_total", &src), Some(seen.requests as f64));
    assert!(seen.limited > 0, "the emulator's limit was reached: {seen:?}");
    assert_eq!(value(&samples, "ejgate_source_rate_limited_total", &src), Some(seen.limited as f64));
    // Waits: each limit answer holds every request back, so there were some; their count
    // and time are the runs' (the store's) own.
    let runs = store.runs(10).await.unwrap();
    let waits: u64 = runs.iter().map(|r| r.stats.limit_waits).sum();
    let waited: u64 = runs.iter().map(|r| r.stats.limit_wait_ms).sum();
    assert!(waits > 0, "{runs:?}");
    assert_eq!(value(&samples, "ejgate_source_request_limit_waits_total", &src), Some(waits as f64));
    let seconds = value(&samples, "ejgate_source_request_limit_wait_seconds_total", &src).unwrap();
    assert!((seconds - waited as f64 / 1000.0).abs() < 1e-9, "{seconds} s against {waited} ms");

    // Records written: the change log's rows by operation.
    let changes = store.changes_since(0, u32::MAX).await.unwrap();
    for (op, ops) in [
        ("inserted", &[ChangeOp::Insert][..]),
        ("updated", &[ChangeOp::Update, ChangeOp::KeyChange][..]),
        ("deleted", &[ChangeOp::Delete][..]),
    ] {
        let expected = changes.iter().filter(|c| c.source == SOURCE && ops.contains(&c.op)).count();
        assert_eq!(
            value(&samples, "ejgate_records_written_total", &[("source", SOURCE), ("op", op)]),
            Some(expected as f64),
            "{op}"
        );
    }
    // The first sync inserted the whole school.
    let truth: u64 = h.expected().values().sum();
    assert!(truth > 100);
    assert_eq!(
        value(&samples, "ejgate_records_written_total", &[("source", SOURCE), ("op", "inserted")]),
        Some(truth as f64)
    );
    for (mode, n) in [("full", 1.0), ("incremental", 1.0)] {
        let labels = [("source", SOURCE), ("mode", mode), ("status", "succeeded")];
        assert_eq!(value(&samples, "ejgate_sync_runs_total", &labels), Some(n), "{mode}");
    }
    let finished = runs[0].finished_at.unwrap();
    let last = value(&samples, "ejgate_source_last_success_timestamp_seconds", &src).unwrap();
    assert!((last - finished.timestamp_micros() as f64 / 1e6).abs() < 1e-3, "{last} against {finished}");
    assert_eq!(value(&samples, "ejgate_source_stale", &src), Some(0.0));
    assert_eq!(value(&samples, "ejgate_source_last_run_failed", &src), Some(0.0));

    // The strict OpenMetrics parser reads the same numbers when a scraper asks for it.
    let (content_type, open) = get_metrics(addr, true).await;
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(open.ends_with("# EOF\n"));
    let open_samples = parse_metrics(&open, true);
    for name in ["ejgate_source_requests_total", "ejgate_source_rate_limited_total"] {
        assert_eq!(value(&open_samples, name, &src), value(&samples, name, &src), "{name}");
    }

    // A restart: another server over another handle on the same store reads the same.
    drop(stop);
    let reopened: Arc<dyn Store> =
        ejgate::store::open(&format!("sqlite://{}", h.dir.path().join("ejgate.db").display())).await.unwrap().shared();
    let (addr, _stop) = serve(HttpState::new(reopened, config)).await;
    let again = parse_metrics(&get_metrics(addr, false).await.1, false);
    for s in samples.iter().filter(|s| s.kind == "counter") {
        assert_eq!(
            value(&again, &s.name, &s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>()),
            Some(s.value),
            "{s:?}"
        );
    }
    h.emulator.shutdown().await;
}

/// A TCP relay to the PostgreSQL server that the test can cut: the store behind it becomes
/// unreachable as a database server that went away.
struct Relay {
    addr: SocketAddr,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let spawned = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                spawned.lock().unwrap().push(relay);
            }
        });
        tasks.lock().unwrap().push(accept);
        Relay { addr, tasks }
    }

    /// Closes the listener and every relayed connection.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_when_the_store_is_unreachable_or_the_schedules_are_not_loaded() {
    let schema = common::PgSchema::create("ejgate_http").await;
    let url = schema.url.clone();
    let parsed = url::Url::parse(&url).unwrap();
    let target: SocketAddr = tokio::net::lookup_host((parsed.host_str().unwrap(), parsed.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap();
    let relay = Relay::start(target).await;
    let mut relayed = parsed.clone();
    relayed.set_host(Some("127.0.0.1")).unwrap();
    relayed.set_port(Some(relay.addr.port())).unwrap();
    let store: Arc<dyn Store> = ejgate::store::open(relayed.as_str()).await.unwrap().shared();
    let config = Arc::new(config_for("dn", "http://127.0.0.1:9/", relayed.as_str()));
    let state = HttpState::new(store, config);
    let (addr, _stop) = serve(state.clone()).await;
    let client = reqwest::Client::new();
    let ready = || async {
        let r = client.get(format!("http://{addr}/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };

    let (status, body) = ready().await;
    assert_eq!(status, 503, "schedules not loaded yet: {body}");
    assert_eq!(body["ready"], false);
    assert!(body["schedules"].as_str().unwrap().contains("not loaded"), "{body}");
    assert!(body["store"].as_str().unwrap().starts_with("ok"), "{body}");
    state.set_jobs(Vec::new());
    let (status, body) = ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);

    relay.cut();
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert!(!body["store"].as_str().unwrap().starts_with("ok"), "{body}");
    // The process itself is alive.
    let health = client.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// Reads a child's stderr into a shared buffer, line by line, as it comes.
fn collect(stderr: std::process::ChildStderr) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let into = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = into.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

/// Waits (with a deadline) until `condition` holds.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The binary as an administrator uses it: `ejgate token create` prints a token once; the
/// API answers 401 with a JSON error without it, 200 with it, 401 again once it is
/// revoked; at trace level the process's log never shows it, nor does the store. A source
/// whose sync failed and one never synced are alerts in `ejgate status --json`, in
/// `/metrics` and in the server's log at error level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_and_alerts_through_the_binary() {
    let emulator = start_emulator(World::generate(SynthConfig::small(32)), None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.path().join("secrets/wrong"), "not-the-token\n").unwrap();
    private(&dir.path().join("secrets/token"));
    private(&dir.path().join("secrets/wrong"));
    let base = emulator.base_url();
    let source = |name: &str, token: &str| {
        format!("[[source]]\nname = \"{name}\"\nsystem = \"dnevnik\"\nbase_url = \"{base}\"\ntoken_file = \"secrets/{token}\"\n")
    };
    let config = dir.path().join("ejgate.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://ejgate.db\"\n[serve]\nlisten = \"127.0.0.1:0\"\n{}{}{}",
            source("good", "token"),
            source("refused", "wrong"),
            source("never", "token")
        ),
    )
    .unwrap();
    let run =
        |args: &[&str]| ejgate().arg("--config").arg(&config).args(args).env("RUST_LOG", "trace").output().unwrap();
    assert!(run(&["sync", "--quiet", "--source", "good"]).status.success());
    assert!(!run(&["sync", "--quiet", "--source", "refused"]).status.success());

    // status: the failed source (with what to do) and the never-synced ones are alerts.
    let out = run(&["status", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut alerts: Vec<(String, String)> = status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["source"].as_str().unwrap().to_string(), a["kind"].as_str().unwrap().to_string()))
        .collect();
    alerts.sort();
    assert_eq!(
        alerts,
        [("never", "stale"), ("refused", "last_run_failed"), ("refused", "stale")]
            .map(|(s, k)| (s.to_string(), k.to_string()))
    );
    let failed = status["alerts"].as_array().unwrap().iter().find(|a| a["kind"] == "last_run_failed").unwrap();
    assert_eq!(failed["error_kind"], "unauthorized");
    assert!(failed["message"].as_str().unwrap().contains("renew the token"), "{failed}");
    let text = String::from_utf8_lossy(&run(&["status"]).stdout).to_string();
    assert!(text.starts_with("Alerts (3):") && text.contains("source «never» has never synced successfully"), "{text}");

    // A token, made once.
    let made = run(&["token", "create", "grafana"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("ejgate_") && token.len() == 71, "{token}");
    let listed = String::from_utf8(run(&["token", "list"]).stdout).unwrap();
    assert!(listed.contains("grafana") && listed.contains("in force") && !listed.contains(&token), "{listed}");

    let mut server = ejgate()
        .arg("--config")
        .arg(&config)
        .arg("http")
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect(server.stderr.take().unwrap());
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("ejgate: HTTP on ").unwrap_or_else(|| panic!("{first}")).to_string();
    let client = reqwest::Client::new();
    let api = |bearer: Option<String>| {
        let mut request = client.get(format!("{addr}/api/v1/sources"));
        if let Some(b) = bearer {
            request = request.header("Authorization", b);
        }
        async move {
            let r = request.send().await.unwrap();
            let www = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), www, r.json::<Value>().await.unwrap())
        }
    };
    let (status, www, body) = api(None).await;
    assert_eq!((status, www.as_deref()), (401, Some("Bearer realm=\"ejgate\"")), "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("bearer token")
            && body["what_to_do"].as_str().unwrap().contains("ejgate token create")
    );
    let wrong = format!("ejgate_{}", "0".repeat(64));
    assert_eq!(api(Some(format!("Bearer {wrong}"))).await.0, 401);
    assert_eq!(api(Some(format!("Basic {token}"))).await.0, 401, "only a bearer token opens");
    let (status, _, body) = api(Some(format!("Bearer {token}"))).await;
    assert_eq!(status, 200, "{body}");
    let sources = body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 3);
    assert_eq!(sources[0]["name"], "good");
    assert_eq!(sources[0]["last_run"]["status"], "succeeded");
    assert!(sources[0]["alerts"].as_array().unwrap().is_empty());
    assert_eq!(sources[1]["alerts"].as_array().unwrap().len(), 2);
    let runs: Value = client
        .get(format!("{addr}/api/v1/runs?limit=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    assert_eq!(runs["runs"][0]["source"], "refused");
    let jobs = client.get(format!("{addr}/api/v1/jobs")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(jobs.status(), 200);

    // /metrics: the alerts as gauges.
    let text = client.get(format!("{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    let samples = parse_metrics(&text, false);
    for (source, stale, failed) in [("good", 0.0, 0.0), ("refused", 1.0, 1.0), ("never", 1.0, 0.0)] {
        assert_eq!(value(&samples, "ejgate_source_stale", &[("source", source)]), Some(stale), "{source}");
        assert_eq!(value(&samples, "ejgate_source_last_run_failed", &[("source", source)]), Some(failed), "{source}");
    }
    // The server's log: each alert at error level, naming the source and what to do.
    until("the alerts in the log", || {
        let log = log.lock().unwrap();
        log.lines().any(|l| {
            l.contains("ERROR") && l.contains("source «refused»: its last run") && l.contains("renew the token")
        }) && log.lines().any(|l| l.contains("ERROR") && l.contains("source «never» has never synced"))
    })
    .await;

    // Revoked, the token no longer opens.
    assert!(run(&["token", "revoke", "grafana"]).status.success());
    assert_eq!(api(Some(format!("Bearer {token}"))).await.0, 401);
    let again = run(&["token", "revoke", "grafana"]);
    assert!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("no API token «grafana» in force")
    );

    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "ejgate http did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = log.lock().unwrap().clone();
    assert!(log.contains("TRACE") || log.contains("DEBUG"), "the log is at trace level: {log}");
    assert!(log.contains("API request"), "the log shows the API requests: {log}");
    assert!(!log.contains(&token) && !log.contains(&token[7..]), "the token leaked into the log");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    assert!(!stored.windows(64).any(|w| w == &token.as_bytes()[7..]), "the token is in the store in clear");
    emulator.shutdown().await;
}

/// The systemd unit of `deploy/` passes `systemd-analyze verify` (with ExecStart pointed at
/// the built binary, which the check requires to exist).
#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/ejgate.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/ejgate serve --config /etc/ejgate/ejgate.toml"), "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ejgate.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/ejgate", env!("CARGO_BIN_EXE_ejgate"))).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze is needed to check the unit (apt-get install systemd): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let own: Vec<&str> = stderr.lines().filter(|l| l.contains("ejgate.service")).collect();
    assert!(out.status.success() && own.is_empty(), "systemd-analyze verify:\n{stderr}");
}

/// Jobs run through the binary (`ejgate jobs run`, the daemon's path): `/metrics` counts
/// them by job, kind and outcome as the store lists them, and the failed one is an alert
/// in `ejgate status` and a gauge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_are_counted_by_kind_and_outcome_and_a_failed_job_is_an_alert() {
    let emulator = start_emulator(World::generate(SynthConfig::small(33)), None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    std::fs::create_dir_all(dir.path().join("schedules")).unwrap();
    for (file, token) in [("token", TOKEN), ("wrong", "not-the-token")] {
        std::fs::write(dir.path().join("secrets").join(file), format!("{token}\n")).unwrap();
        private(&dir.path().join("secrets").join(file));
    }
    let base = emulator.base_url();
    let mut text = String::from("[store]\nurl = \"sqlite://ejgate.db\"\n");
    for (name, token) in [("good", "token"), ("refused", "wrong")] {
        text.push_str(&format!(
            "[[source]]\nname = \"{name}\"\nsystem = \"dnevnik\"\nbase_url = \"{base}\"\ntoken_file = \"secrets/{token}\"\n"
        ));
    }
    let config = dir.path().join("ejgate.toml");
    std::fs::write(&config, text).unwrap();
    let mut jobs = String::from("time_zone = \"UTC\"\n");
    for (name, kind, target) in [
        ("nightly-good", "sync", "good"),
        ("weekly-good", "sync --full", "good"),
        ("nightly-refused", "sync", "refused"),
    ] {
        jobs.push_str(&format!(
            "[[job]]\nname = \"{name}\"\nkind = \"{kind}\"\ntarget = \"{target}\"\ncron = \"0 2 * * *\"\n\
             catch_up = \"skip\"\ntime_limit_minutes = 10\n"
        ));
    }
    std::fs::write(dir.path().join("schedules/jobs.toml"), jobs).unwrap();
    let run = |args: &[&str]| ejgate().arg("--config").arg(&config).args(args).output().unwrap();
    for (job, ok) in [("nightly-good", true), ("nightly-good", true), ("weekly-good", true), ("nightly-refused", false)]
    {
        let out = run(&["jobs", "run", job]);
        assert_eq!(out.status.success(), ok, "{job}: {}", String::from_utf8_lossy(&out.stderr));
    }

    let loaded = Config::load(&config).unwrap();
    let schedule = ejgate::schedule::load_dir(&loaded.schedules_dir(), &loaded).unwrap();
    let store: Arc<dyn Store> = ejgate::store::open(&loaded.store_url()).await.unwrap().shared();
    let state = HttpState::new(store.clone(), Arc::new(loaded));
    state.set_jobs(schedule);
    let (addr, _stop) = serve(state).await;
    let samples = parse_metrics(&get_metrics(addr, false).await.1, false);

    // The store's own list of job runs, counted here.
    let recorded = store.job_runs(None, 100).await.unwrap();
    assert_eq!(recorded.len(), 4);
    for (job, kind) in [("nightly-good", "sync"), ("weekly-good", "sync --full"), ("nightly-refused", "sync")] {
        for outcome in ["succeeded", "failed", "timed_out", "skipped"] {
            let expected = recorded.iter().filter(|r| r.job == job && r.status.as_str() == outcome).count();
            let labels = [("job", job), ("kind", kind), ("outcome", outcome)];
            assert_eq!(value(&samples, "ejgate_job_runs_total", &labels), Some(expected as f64), "{job} {outcome}");
        }
    }
    assert_eq!(
        value(
            &samples,
            "ejgate_job_runs_total",
            &[("job", "nightly-good"), ("kind", "sync"), ("outcome", "succeeded")]
        ),
        Some(2.0)
    );
    let newest = recorded.iter().filter(|r| r.job == "nightly-good").filter_map(|r| r.finished_at).max().unwrap();
    let last = value(&samples, "ejgate_job_last_success_timestamp_seconds", &[("job", "nightly-good")]).unwrap();
    assert!((last - newest.timestamp_micros() as f64 / 1e6).abs() < 1e-3);
    assert_eq!(value(&samples, "ejgate_job_last_run_failed", &[("job", "nightly-refused")]), Some(1.0));
    assert_eq!(value(&samples, "ejgate_job_last_run_failed", &[("job", "nightly-good")]), Some(0.0));
    // The sync runs the jobs made are counted too: three of «good», one of «refused».
    let synced: f64 = ["full", "incremental"]
        .iter()
        .filter_map(|mode| {
            value(&samples, "ejgate_sync_runs_total", &[("source", "good"), ("mode", mode), ("status", "succeeded")])
        })
        .sum();
    assert_eq!(synced, 3.0);

    let out = run(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let alert = status["alerts"].as_array().unwrap().iter().find(|a| a["kind"] == "job_failed").expect("a job alert");
    assert_eq!(alert["job"], "nightly-refused");
    assert!(alert.get("source").is_none(), "{alert}");
    let message = alert["message"].as_str().unwrap();
    assert!(message.contains("renew the token") && message.contains("ejgate jobs run nightly-refused"), "{message}");
    emulator.shutdown().await;
}

/// `ejgate serve` answers HTTP beside its scheduler: ready once its schedules are loaded,
/// the jobs and their runs in the API, and it stops on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_http_beside_the_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("schedules")).unwrap();
    let config = dir.path().join("ejgate.toml");
    std::fs::write(
        &config,
        "[store]\nurl = \"sqlite://ejgate.db\"\n[serve]\nlisten = \"127.0.0.1:0\"\n[[source]]\nname = \"dn\"\n\
         system = \"dnevnik\"\nbase_url = \"http://127.0.0.1:9/\"\ntoken_env = \"EJGATE_TEST_UNUSED\"\n",
    )
    .unwrap();
    // A slot far from now: nothing runs during the test.
    std::fs::write(
        dir.path().join("schedules/jobs.toml"),
        "time_zone = \"Asia/Krasnoyarsk\"\n[[job]]\nname = \"nightly\"\nkind = \"sync\"\ntarget = \"dn\"\n\
         cron = \"0 2 29 2 *\"\ncatch_up = \"skip\"\ntime_limit_minutes = 10\n",
    )
    .unwrap();
    let made = ejgate().arg("--config").arg(&config).args(["token", "create", "ops"]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let mut server = ejgate()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect(server.stderr.take().unwrap());
    let mut addr = String::new();
    until("serve's HTTP address in its log", || {
        let log = log.lock().unwrap();
        match log.lines().find_map(|l| l.split("HTTP on ").nth(1)) {
            Some(rest) => {
                addr = rest.split(':').take(3).collect::<Vec<_>>().join(":");
                true
            }
            None => false,
        }
    })
    .await;
    let client = reqwest::Client::new();
    let ready = client.get(format!("{addr}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["schedules"], "loaded: 1 job(s)", "{body}");
    let jobs: Value =
        client.get(format!("{addr}/api/v1/jobs")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let nightly = &jobs["jobs"][0];
    assert_eq!((nightly["name"].as_str(), nightly["time_zone"].as_str()), (Some("nightly"), Some("Asia/Krasnoyarsk")));
    assert!(nightly["next_utc"].as_str().unwrap().ends_with("T19:00:00Z"), "02:00 in Krasnoyarsk: {nightly}");
    assert_eq!(nightly["last_run"], Value::Null);
    let runs = client.get(format!("{addr}/api/v1/jobs/nightly/runs")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(runs.status(), 200);
    let missing = client.get(format!("{addr}/api/v1/jobs/weekly/runs")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let text = client.get(format!("{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    let samples = parse_metrics(&text, false);
    let labels = [("job", "nightly"), ("kind", "sync"), ("outcome", "succeeded")];
    assert_eq!(value(&samples, "ejgate_job_runs_total", &labels), Some(0.0));

    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{}", log.lock().unwrap());
    assert!(!log.lock().unwrap().contains(&token));
}
