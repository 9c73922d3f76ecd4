//! What the benchmarks share: an emulator of a source system run as its own process
//! (`ejgate emulate`) on loopback, so that serving and syncing do not share one runtime.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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
