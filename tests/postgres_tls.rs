//! The PostgreSQL store over TLS (a district's database server normally requires it; ejgate
//! had been built without TLS and `sslmode=require` could not connect at all).
//!
//! The server is a throwaway cluster of this test's own: `initdb` into a temporary
//! directory, started on a free loopback port with `ssl = on` and a server certificate
//! signed by a CA made here with the `openssl` command, and stopped at the end. The
//! machine's main cluster is not touched, so the other PostgreSQL tests run beside it.
//! PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` user.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sqlx::Connection;

use ejgate::store;

/// Runs a command, panicking with its stderr when it fails.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// A CA certificate (`NAME.crt`, key `NAME.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN=ejgate test {name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt"))));
    dir.join(format!("{name}.crt"))
}

/// `server.crt` and `server.key` in `dir`, for 127.0.0.1 and localhost, signed by `ca`.
fn make_server_certificate(dir: &Path, ca: &str) {
    run(Command::new("openssl")
        .args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("server.key"))
        .arg("-out")
        .arg(dir.join("server.csr")));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
        .arg("-in")
        .arg(dir.join("server.csr"))
        .arg("-CA")
        .arg(dir.join(format!("{ca}.crt")))
        .arg("-CAkey")
        .arg(dir.join(format!("{ca}.key")))
        .arg("-extfile")
        .arg(dir.join("server.ext"))
        .arg("-out")
        .arg(dir.join("server.crt")));
}

/// The directory of PostgreSQL's server programs (`initdb`, `postgres`).
fn server_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|b| b.join("initdb").exists()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "the PostgreSQL server programs (/usr/lib/postgresql/*/bin/initdb) are needed to start a cluster with TLS: \
         install postgresql",
    )
}

/// The user the cluster runs as: `postgres` when this test runs as root (the server refuses
/// root), else this user.
fn server_user() -> Option<(u32, u32)> {
    let me = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap();
    if me.trim() != "0" {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "postgres"]).output().unwrap();
        assert!(out.status.success(), "running as root, the cluster needs the user `postgres`");
        String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
    };
    Some((id("-u"), id("-g")))
}

/// A PostgreSQL cluster of this test's own, with TLS; stopped and removed when dropped.
struct TlsCluster {
    dir: tempfile::TempDir,
    port: u16,
    server: Child,
}

impl TlsCluster {
    fn start() -> TlsCluster {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let user = server_user();
        let as_server = |cmd: &mut Command| {
            if let Some((uid, gid)) = user {
                cmd.uid(uid).gid(gid);
            }
        };
        make_ca(dir.path(), "ca");
        make_server_certificate(dir.path(), "ca");
        if let Some((uid, gid)) = user {
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
            }
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let bin = server_bin();
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
        initdb.env("HOME", dir.path()).current_dir(dir.path());
        as_server(&mut initdb);
        run(&mut initdb);

        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .arg("-c")
            .arg(format!("ssl_cert_file={}", dir.path().join("server.crt").display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", dir.path().join("server.key").display()))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_server(&mut postgres);
        let mut server = postgres.spawn().unwrap();
        // Ready when the server says so on its log (stderr); its lines are drained after.
        let mut log = BufReader::new(server.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = log.read_line(&mut line).unwrap();
            assert!(n > 0, "the test's PostgreSQL server ended before it was ready:\n{seen}");
            seen.push_str(&line);
            if line.contains("ready to accept connections") {
                break;
            }
        }
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        TlsCluster { dir, port, server }
    }

    fn url(&self, query: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?{query}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT): the server ends its sessions and exits.
        let _ = Command::new("kill").args(["-INT", &self.server.id().to_string()]).status();
        let _ = self.server.wait();
    }
}

/// Whether the connection at `url` is encrypted, as the server sees it.
async fn encrypted(url: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetch_one(&mut conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_connects_over_tls_verifying_the_server_and_says_what_is_wrong_with_a_certificate() {
    let cluster = TlsCluster::start();

    // verify-full: the server's certificate chains to the CA in sslrootcert and names the host.
    let url = cluster.url(&format!("sslmode=verify-full&sslrootcert={}", cluster.ca().display()));
    let st = store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let run = st.begin_run("tls-1", "full").await.unwrap();
    assert!(st.runs(1).await.unwrap().iter().any(|r| r.id == run));
    assert!(encrypted(&url).await, "verify-full connects over TLS");

    // require: encrypted, the certificate is not checked.
    let url = cluster.url("sslmode=require");
    store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(encrypted(&url).await, "require connects over TLS");

    // A CA that did not sign the server's certificate: one line naming the server and the
    // certificate's problem, and what to check.
    let other = tempfile::tempdir().unwrap();
    let wrong = make_ca(other.path(), "other");
    let e = store::open(&cluster.url(&format!("sslmode=verify-full&sslrootcert={}", wrong.display())))
        .await
        .err()
        .expect("a server certificate from another CA is refused")
        .to_string();
    let place = format!("127.0.0.1:{}", cluster.port);
    assert!(e.contains(&place), "{e}");
    assert!(e.contains("certificate") && e.contains("UnknownIssuer"), "{e}");
    assert!(e.contains(&wrong.display().to_string()) && e.contains("sslrootcert"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");

    // verify-ca: the chain is checked, not the name.
    let url = cluster.url(&format!("sslmode=verify-ca&sslrootcert={}", cluster.ca().display()));
    store::open(&url).await.unwrap_or_else(|e| panic!("{e}"));

    // A missing sslrootcert file: named, with what to do.
    let missing = other.path().join("no-such-ca.crt");
    let e = store::open(&cluster.url(&format!("sslmode=verify-full&sslrootcert={}", missing.display())))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(&missing.display().to_string()) && e.contains("cannot be read"), "{e}");
    // A CA file that is not PEM (a DER copy): said before connecting, with the conversion.
    let der = other.path().join("ca.der");
    std::fs::write(&der, [0x30, 0x82, 0x01, 0x0a]).unwrap();
    let e = store::open(&cluster.url(&format!("sslmode=verify-full&sslrootcert={}", der.display())))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("is not a PEM certificate") && e.contains("openssl x509 -inform der"), "{e}");
}
