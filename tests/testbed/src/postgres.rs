//! A throwaway PostgreSQL 15 server (Debian's, on the machine image) on a free loopback port.
//!
//! Each [`Postgres`] is a fresh cluster: `initdb` into a temporary directory, then `postgres` in
//! the foreground under a [`ManagedProcess`], stopped (and the directory deleted) when the handle
//! drops. Password authentication is real: TCP connections use `scram-sha-256`, so a test can
//! prove that an old password no longer logs in. The superuser is `postgres` with a password
//! generated per server ([`Postgres::superuser_password`]).
//!
//! `initdb` and `postgres` refuse to run as root; when the tests run as root (CI does), both are
//! started through `setpriv` as the `postgres` system user, which owns the data directory.
//! Durability is switched off (`fsync=off`): these are test clusters.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{Error, ManagedProcess, Result, free_port};

/// Where Debian installs PostgreSQL 15's server programs.
pub const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The superuser every cluster is created with.
pub const SUPERUSER: &str = "postgres";

/// Start-up is about 0.2 s after `initdb` (which takes a few seconds).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running PostgreSQL cluster.
#[derive(Debug)]
pub struct Postgres {
    // Declared before `dir` so the server stops before its data directory is removed.
    process: ManagedProcess,
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
}

impl Postgres {
    /// Creates a cluster (`initdb`, UTF-8, `scram-sha-256` on TCP) and starts it on a free
    /// loopback port; ready when `pg_isready` says so. `$GOV_PG_BIN` overrides
    /// [`DEFAULT_BIN_DIR`].
    pub async fn start() -> Result<Postgres> {
        let bin = std::env::var_os("GOV_PG_BIN")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_BIN_DIR), PathBuf::from);
        let initdb = crate::process::locate("initdb", "GOV_PG_BIN", bin.join("initdb"))?;
        let server = crate::process::locate("postgres", "GOV_PG_BIN", bin.join("postgres"))?;
        let io = |action: &str| {
            let action = action.to_string();
            move |source| Error::Io {
                service: "postgres".into(),
                action,
                source,
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("testbed-pg-")
            .tempdir()
            .map_err(io("create a temporary directory"))?;
        let password = uuid::Uuid::new_v4().simple().to_string();
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).map_err(io("write the password file"))?;
        let owner = run_as();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(io("chown the data directory to postgres"))?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(io("chown the password file to postgres"))?;
        }
        let data = dir.path().join("data");
        let data_arg = data.display().to_string();
        let pwfile_arg = format!("--pwfile={}", pwfile.display());
        let mut init = as_postgres(&initdb, owner.is_some());
        init.args([
            "-D",
            &data_arg,
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            &pwfile_arg,
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        let out = init.output().map_err(io("run initdb"))?;
        if !out.status.success() {
            return Err(Error::Unexpected {
                service: "postgres".into(),
                action: "initdb".into(),
                detail: format!(
                    "{}\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let _ = std::fs::remove_file(&pwfile);

        let port = free_port()?;
        let port_arg = port.to_string();
        let socket_dir = dir.path().display().to_string();
        let mut args: Vec<String> = Vec::new();
        let program = if owner.is_some() {
            args.extend(setpriv_args());
            args.push(server.display().to_string());
            PathBuf::from("/usr/bin/setpriv")
        } else {
            server.clone()
        };
        args.extend(
            [
                "-D",
                &data_arg,
                "-p",
                &port_arg,
                "-k",
                &socket_dir,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            .map(str::to_string),
        );
        let process = ManagedProcess::spawn("postgres", &program, &args, &[])?;
        let isready = bin.join("pg_isready");
        process
            .wait_until("pg_isready answers", START_TIMEOUT, || {
                let isready = isready.clone();
                let port = port_arg.clone();
                async move {
                    let out = tokio::process::Command::new(&isready)
                        .args(["-h", "127.0.0.1", "-p", &port, "-U", SUPERUSER, "-q"])
                        .output()
                        .await
                        .map_err(|e| e.to_string())?;
                    if out.status.success() {
                        Ok(())
                    } else {
                        Err(format!("pg_isready: {}", out.status))
                    }
                }
            })
            .await?;
        Ok(Postgres {
            process,
            dir,
            bin,
            port,
            password,
        })
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (generated per cluster; a test secret).
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// A `postgres://` URL for `user`:`password` on database `db`.
    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        format!("postgres://{user}:{password}@127.0.0.1:{}/{db}", self.port)
    }

    /// The superuser's URL for database `db`.
    pub fn superuser_url(&self, db: &str) -> String {
        self.url(SUPERUSER, &self.password, db)
    }

    /// Connects as `user` with `password` to `db` (no TLS) and drives the connection in a task.
    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(self.host())
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(db)
            .connect_timeout(Duration::from_secs(5));
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "testbed postgres connection ended");
            }
        });
        Ok(client)
    }

    /// Connects as the superuser to `db`.
    pub async fn superuser(&self, db: &str) -> Result<tokio_postgres::Client> {
        self.connect(SUPERUSER, &self.password, db)
            .await
            .map_err(|e| Error::Unexpected {
                service: "postgres".into(),
                action: format!("connect as {SUPERUSER} to {db}"),
                detail: e.to_string(),
            })
    }

    /// Runs SQL statements (separated by `;`, in one implicit transaction, so not `CREATE
    /// DATABASE` with others) as the superuser on `db`; fails on the first error.
    pub async fn execute(&self, db: &str, sql: &str) -> Result<()> {
        let client = self.superuser(db).await?;
        client
            .batch_execute(sql)
            .await
            .map_err(|e| Error::Unexpected {
                service: "postgres".into(),
                action: format!("execute SQL on {db}"),
                detail: db_error_text(&e),
            })
    }

    /// Whether `user` can log in to `db` with `password` right now.
    pub async fn can_login(&self, user: &str, password: &str, db: &str) -> bool {
        match self.connect(user, password, db).await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// The directory holding the cluster (and its Unix socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The directory of the server programs used.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The server process (its log, for failure messages).
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }
}

/// The server's message for a database error (`Display` of tokio-postgres says only "db error").
fn db_error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// The `postgres` user's uid and gid when we are root (the server refuses to run as root).
fn run_as() -> Option<(u32, u32)> {
    if !nix::unistd::Uid::effective().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres").ok().flatten()?;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

fn setpriv_args() -> [String; 4] {
    [
        "--reuid=postgres".to_string(),
        "--regid=postgres".to_string(),
        "--init-groups".to_string(),
        "--".to_string(),
    ]
}

/// `program` as a command, through `setpriv` as `postgres` when `drop_root`.
fn as_postgres(program: &Path, drop_root: bool) -> Command {
    if drop_root {
        let mut c = Command::new("/usr/bin/setpriv");
        c.args(setpriv_args()).arg(program);
        c
    } else {
        Command::new(program)
    }
}
