//! A throwaway PostgreSQL cluster: initdb in a temporary directory, a
//! server listening on a Unix socket there only (no TCP port at all),
//! stopped and removed when dropped. As root (CI), it runs as the
//! `postgres` account the package creates, since PostgreSQL refuses root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    /// The port, which names the socket too.
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
    next_db: std::sync::atomic::AtomicU32,
}

/// Where initdb and pg_ctl are: the distribution's versioned directory,
/// or the PATH.
fn bindir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|b| b.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    if let Some(newest) = found.pop() {
        return newest;
    }
    let which = Command::new("sh")
        .args(["-c", "dirname \"$(command -v initdb)\""])
        .output()
        .expect("sh");
    let dir = String::from_utf8_lossy(&which.stdout).trim().to_string();
    assert!(
        !dir.is_empty() && Path::new(&dir).join("initdb").exists(),
        "initdb not found (apt-get install postgresql)"
    );
    PathBuf::from(dir)
}

/// A cluster that also listens on 127.0.0.1 with TLS: its port and the
/// CA certificate that signed its certificate (for localhost and 127.0.0.1).
pub struct TlsPostgres {
    pub pg: Postgres,
    pub port: u16,
    pub ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Postgres {
        Postgres::start_with("")
    }

    /// With TLS on a loopback port, certificates made by openssl.
    pub fn start_tls() -> TlsPostgres {
        let certs = tempfile::tempdir().expect("tempdir");
        let d = certs.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=gh-test-ca",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(d.join("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "ext",
            ],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::Builder::new()
            .prefix("gh-pg-tls")
            .tempdir()
            .unwrap();
        // The server's key and certificate, where its account reads them.
        for f in ["server.key", "server.pem"] {
            std::fs::copy(d.join(f), dir.path().join(f)).unwrap();
        }
        let extra = format!(
            "-c ssl=on -c ssl_cert_file={0}/server.pem -c ssl_key_file={0}/server.key -c listen_addresses=127.0.0.1 -c port={port}",
            dir.path().display()
        );
        let pg = Postgres::start_in(dir, &extra, port);
        let ca = pg.dir.path().join("ca.pem");
        std::fs::copy(d.join("ca.pem"), &ca).unwrap();
        TlsPostgres { pg, port, ca }
    }

    fn start_with(extra: &str) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("gh-pg")
            .tempdir()
            .expect("tempdir");
        Postgres::start_in(dir, extra, 5432)
    }

    fn start_in(dir: tempfile::TempDir, extra: &str, port: u16) -> Postgres {
        let as_postgres = nix::unistd::geteuid().is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let pg = Postgres {
            bin: bindir(),
            port,
            dir,
            as_postgres,
            next_db: std::sync::atomic::AtomicU32::new(0),
        };
        let data = pg.dir.path().join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "gatehouse",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = if extra.is_empty() {
            format!(
                "-k {} -c listen_addresses='' -c fsync=off -c max_connections=200",
                pg.dir.path().display()
            )
        } else {
            format!(
                "-k {} -c fsync=off -c max_connections=200 {extra}",
                pg.dir.path().display()
            )
        };
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                pg.dir.path().join("log").to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        pg
    }

    /// A PostgreSQL program, as the account that owns the cluster.
    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program).args(args);
            c
        } else {
            let mut c = Command::new(&program);
            c.args(args);
            c
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool, args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The URL of the cluster's `postgres` database.
    fn url_of(&self, db: &str) -> String {
        format!(
            "host={} port={} user=gatehouse dbname={db}",
            self.dir.path().display(),
            self.port
        )
    }

    /// SQL run with psql, as the cluster's superuser; its output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.dir.path().to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-U",
                "gatehouse",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A new, empty database; its name and URL.
    pub fn database(&self) -> (String, String) {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("gh_{n}");
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        let url = self.url_of(&name);
        (name, url)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command(
                "pg_ctl",
                &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "stop"],
            )
            .output();
    }
}
