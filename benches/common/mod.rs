//! What the benchmarks share: an emulator of a source system run as its own process
//! (`ejgate emulate`) on loopback, so that serving and syncing do not share one runtime.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The allocator of the `ejgate` binary (src/main.rs), so the benchmark measures the sync
/// as the command runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A running `ejgate emulate` process; killed when dropped.
pub struct Emulator {
    child: Child,
    pub base_url: String,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    /// CPU seconds (user + system) the emulator process has used so far (Linux; 0 elsewhere).
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }
}

/// CPU seconds (user + system) this process has used so far (Linux; 0 elsewhere).
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds("/proc/self/stat")
}

/// CPU seconds (user + system) this process's children have used, those it has waited for
/// (a command run with `Command::output`, say; Linux; 0 elsewhere).
pub fn children_cpu_seconds() -> f64 {
    // cutime and cstime: fields 16 and 17 of the whole line.
    stat_seconds("/proc/self/stat", [16, 17])
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
fn cpu_seconds(stat: &str) -> f64 {
    // utime and stime: fields 14 and 15 of the whole line.
    stat_seconds(stat, [14, 15])
}

/// The sum of two clock-tick fields (numbered from 1, as in proc(5)) of a `/proc/…/stat`
/// file, in seconds. Clock ticks are 100 per second on Linux (`getconf CLK_TCK`) on every
/// architecture the project runs on.
fn stat_seconds(stat: &str, fields: [usize; 2]) -> f64 {
    let Ok(text) = std::fs::read_to_string(stat) else { return 0.0 };
    // Fields after the command name (field 2), which is in parentheses and may hold spaces:
    // field 3 is the first of them.
    let Some(rest) = text.rfind(')').map(|i| &text[i + 1..]) else { return 0.0 };
    let after: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| after.get(n - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(fields[0]) + ticks(fields[1])) / 100.0
}

/// Starts `ejgate emulate SYSTEM --listen 127.0.0.1:0 --token TOKEN ARGS…` without waiting
/// for it (several can generate their school at once); [`ready`] waits.
pub fn spawn(system: &str, token: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ejgate"))
        .args(["emulate", system, "--listen", "127.0.0.1:0", "--token", token])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the ejgate binary starts")
}

/// Waits for the emulator's first line, which says where it listens.
pub fn ready(mut child: Child) -> Emulator {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the emulator says where it listens");
    let base_url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("a URL").to_string();
    Emulator { child, base_url }
}

/// A whole-number option of a benchmark: `--name N` after `--`, else the environment
/// variable, else the default.
pub fn option(name: &str, env: &str, default: usize) -> usize {
    text_option(name, env).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A text option of a benchmark: `--name VALUE` after `--`, else the environment variable.
pub fn text_option(name: &str, env: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
        .filter(|v| !v.is_empty())
}

/// The middle value of the runs (the upper one of the two middles for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A schema of its own on the PostgreSQL server at `EJGATE_TEST_PG_URL` (default the test
/// database), named `PREFIX_PID`: the admin connection (to drop it afterwards), its name and
/// the store URL that works inside it.
pub async fn pg_schema(prefix: &str) -> (sqlx::PgConnection, String, String) {
    pg_named_schema(&format!("{prefix}_{}", std::process::id())).await
}

/// The schema `schema` on the PostgreSQL server at `EJGATE_TEST_PG_URL`, made when it is
/// not there and left as it is when it is (a bench that keeps its store between runs):
/// the admin connection, its name and the store URL that works inside it.
pub async fn pg_named_schema(schema: &str) -> (sqlx::PgConnection, String, String) {
    use sqlx::Connection as _;
    assert!(
        !schema.is_empty() && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "a schema name of lower-case letters, digits and underscores: «{schema}»"
    );
    let admin =
        std::env::var("EJGATE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL at EJGATE_TEST_PG_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {schema}"))).execute(&mut conn).await.unwrap();
    let sep = if admin.contains('?') { '&' } else { '?' };
    let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
    (conn, schema.to_string(), url)
}
