//! A throwaway PostgreSQL cluster for the warehouse test and bench: `initdb` and
//! `pg_ctl` in a temporary directory, on a free port of 127.0.0.1, trust authentication
//! for the user `cms`, stopped when dropped (also when the test panics). As root the
//! server runs as the `postgres` user (PostgreSQL refuses root), which then owns the
//! directory. No service, no system cluster is touched.
//!
//! [`Cluster::start_tls`] starts one that accepts TCP connections only over TLS, with a
//! self-signed certificate made here for `localhost` and `127.0.0.1` (docs/warehouse.md,
//! "TLS", sets a server up the same way); the test's own [`Client`] then connects over
//! the Unix socket, which stays plaintext.
//!
//! Without PostgreSQL's binaries (`tests/pg/ci-setup.sh` installs Debian's) the test
//! skips with a message, unless `CMS_REQUIRE_POSTGRES=1` (set by `.ci/run`) makes it fail.

use super::wait::until;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Run the server's tools as this user (root cannot run them).
    user: Option<&'static str>,
    pub port: u16,
    /// The server's self-signed certificate (PEM) when started with TLS: what a client
    /// passes as `--warehouse-ca`.
    pub tls_cert: Option<String>,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The newest `/usr/lib/postgresql/*/bin` with `initdb`, or the one on the PATH.
fn bindir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().or_else(|| {
        let o = Command::new("sh")
            .args(["-c", "command -v initdb"])
            .output()
            .ok()?;
        let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        p.parent()
            .map(Path::to_owned)
            .filter(|_| o.status.success())
    })
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Cluster {
    /// Starts a cluster, or says why not: `None` means skip (the message is printed);
    /// with `CMS_REQUIRE_POSTGRES=1` a missing PostgreSQL panics instead. Without
    /// fsync: a test cluster is thrown away, and syncs cost seconds here.
    pub fn start() -> Option<Cluster> {
        Cluster::start_with(false)
    }

    /// [`Cluster::start`], with PostgreSQL's default durability when `durable` (the
    /// bench measures a server as it would run).
    pub fn start_with(durable: bool) -> Option<Cluster> {
        Cluster::start_opts(durable, false)
    }

    /// [`Cluster::start`] with `ssl = on` and a self-signed certificate for `localhost`
    /// and `127.0.0.1` ([`Cluster::tls_cert`]); pg_hba.conf trusts TCP connections over
    /// TLS and rejects plaintext ones (`hostssl ... trust`, `hostnossl ... reject`).
    pub fn start_tls() -> Option<Cluster> {
        Cluster::start_opts(false, true)
    }

    fn start_opts(durable: bool, tls: bool) -> Option<Cluster> {
        let Some(bin) = bindir() else {
            let msg = "PostgreSQL is not installed (no initdb): run tests/pg/ci-setup.sh";
            if std::env::var("CMS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("{msg} (CMS_REQUIRE_POSTGRES=1)");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        };
        let user = is_root().then_some("postgres");
        let dir = tempfile::Builder::new()
            .prefix("cms-pg-")
            .tempdir()
            .unwrap();
        if let Some(u) = user {
            let o = Command::new("chown")
                .args(["-R", u])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(o.status.success(), "chown {u}: {}", text(&o));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = Cluster {
            bin,
            dir,
            user,
            port,
            tls_cert: None,
        };
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "cms",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        if tls {
            c.tls_cert = Some(c.set_up_tls());
        }
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {}",
            c.dir.path().display()
        );
        if !durable {
            opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = c.dir.path().join("server.log");
        c.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        until(
            Duration::from_secs(30),
            || format!("PostgreSQL on port {port}:\n{}", c.log()),
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
        Some(c)
    }

    /// Writes `server.crt` and `server.key` (mode 0600, owned by the server's user, as
    /// PostgreSQL demands of a key) into the data directory, turns `ssl` on (and
    /// `log_connections`, whose lines say which sessions used TLS) and replaces
    /// pg_hba.conf: the socket trusted, TCP trusted over TLS only. Returns the PEM.
    fn set_up_tls(&self) -> String {
        use std::os::unix::fs::PermissionsExt;
        let data = self.data();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let (crt, key) = (data.join("server.crt"), data.join("server.key"));
        std::fs::write(&crt, cert.cert.pem()).unwrap();
        std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(
            &mut conf,
            b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nlog_connections = on\n",
        )
        .unwrap();
        if let Some(u) = self.user {
            let o = Command::new("chown")
                .arg(u)
                .arg(&crt)
                .arg(&key)
                .arg(data.join("pg_hba.conf"))
                .output()
                .unwrap();
            assert!(o.status.success(), "chown {u}: {}", text(&o));
        }
        cert.cert.pem()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let o = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{tool} {args:?}: {}\n{}",
            text(&o),
            self.log()
        );
    }

    /// The connection URL of the database `postgres` as user `cms`.
    pub fn url(&self) -> String {
        format!("postgres://cms@127.0.0.1:{}/postgres", self.port)
    }

    /// The same database over the cluster's Unix socket (plaintext, trusted even when
    /// TCP takes TLS only): for the test's own [`Client`].
    pub fn socket_url(&self) -> String {
        format!(
            "host={} port={} user=cms dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ])
            .current_dir(self.dir.path())
            .output();
    }
}

/// A blocking client for the test's own queries.
pub struct Client {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Client {
    pub fn connect(url: &str) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            tokio::spawn(conn);
            client
        });
        Client { rt, client }
    }

    pub fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        self.rt
            .block_on(self.client.query(sql, params))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn one_i64(&self, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> i64 {
        self.query(sql, params)[0].get(0)
    }

    pub fn execute(&self, sql: &str) {
        self.rt
            .block_on(self.client.batch_execute(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}
