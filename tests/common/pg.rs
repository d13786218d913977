//! A throwaway PostgreSQL cluster for the warehouse test and bench: `initdb` and
//! `pg_ctl` in a temporary directory, on a free port of 127.0.0.1, trust authentication
//! for the user `cms`, stopped when dropped (also when the test panics). As root the
//! server runs as the `postgres` user (PostgreSQL refuses root), which then owns the
//! directory. No service, no system cluster is touched.
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
        let c = Cluster {
            bin,
            dir,
            user,
            port,
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
