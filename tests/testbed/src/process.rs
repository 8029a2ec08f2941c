//! Child processes that cannot outlive the test that started them.
//!
//! A [`ManagedProcess`] runs its command in a process group of its own, with stdout and stderr
//! appended to a temporary log file. Stopping it (explicitly or on drop, so also when a test
//! panics) signals the *whole group*: wrappers such as `moto_server` (a Python script) or a shell
//! may fork the real server, and killing only the pid we spawned would leak it.
//!
//! This module also holds what every service module shares: the crate's [`Error`], [`free_port`],
//! and the lookup of installed programs ([`locate`], [`locate_on_path`]), which never skips: a
//! missing program is an error that says where we looked and how to install it.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

/// What to tell someone whose machine lacks a program the test bed needs.
pub const SETUP_HINT: &str = "run `bash .ci/setup` from the repository root";

/// How long [`ManagedProcess::stop`] waits after SIGTERM before it sends SIGKILL to the group.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// How many log lines an error quotes: enough for a Python traceback, short enough to read.
const LOG_TAIL_LINES: usize = 40;

/// How often [`ManagedProcess::wait_until`] probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// Why a test service could not be started or used.
///
/// Every variant names the service; the start-up variants also carry the command line and the end
/// of the service's log, so a CI failure can be understood without re-running it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A program the test bed runs is not installed where we looked.
    #[error("{program} not found: looked at {looked_at} (override with {env_var}); {hint}", hint = SETUP_HINT)]
    ProgramMissing {
        /// The program, e.g. `moto_server`.
        program: String,
        /// The path (or PATH directories) searched.
        looked_at: String,
        /// The environment variable that overrides the location.
        env_var: &'static str,
    },
    /// The operating system refused to start the command.
    #[error("cannot start {service} (`{command}`)")]
    Spawn {
        /// The service being started.
        service: String,
        /// The full command line.
        command: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The service kept running but did not become ready in time.
    #[error(
        "{} not ready after {waited:?} (waiting until {}; last probe: {last_probe})\n{startup}",
        startup.service,
        startup.what
    )]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// The outcome of the last probe.
        last_probe: String,
        /// The service, its command line and its log.
        startup: Box<Startup>,
    },
    /// The service exited (or was stopped) while we waited for it.
    #[error(
        "{} exited ({status}) while waiting until {}\n{startup}",
        startup.service,
        startup.what
    )]
    Exited {
        /// How it ended, e.g. "exit code 2".
        status: String,
        /// The service, its command line and its log.
        startup: Box<Startup>,
    },
    /// A file-system or socket operation failed.
    #[error("{service}: {action}")]
    Io {
        /// The service concerned.
        service: String,
        /// What we were doing.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP request to the service failed.
    #[error("{service}: {action}")]
    Http {
        /// The service concerned.
        service: String,
        /// What we were doing.
        action: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// A Kafka client operation failed.
    #[error("{service}: {action}")]
    Kafka {
        /// The service concerned.
        service: String,
        /// What we were doing.
        action: String,
        /// The underlying error (boxed: it is large).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// The service answered, but not as expected.
    #[error("{service}: {action}: {detail}")]
    Unexpected {
        /// The service concerned.
        service: String,
        /// What we were doing.
        action: String,
        /// What was wrong with the answer.
        detail: String,
    },
}

/// The result type of the test bed.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a start-up error reports about the service (boxed in [`Error`] to keep it small).
#[derive(Debug)]
pub struct Startup {
    /// The service being started.
    pub service: String,
    /// The readiness condition, e.g. "GET /moto-api/ answers 200".
    pub what: String,
    /// The full command line.
    pub command: String,
    /// The log file (deleted when the process handle drops).
    pub log: String,
    /// The last lines of the log.
    pub log_tail: String,
}

impl Display for Startup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: `{}`\nlast lines of {}:\n{}",
            self.command, self.log, self.log_tail
        )
    }
}

/// The cache directory that `.ci/setup` installs into: `$GOV_CACHE`, else
/// `/var/cache/governance-jobs`.
pub fn gov_cache() -> PathBuf {
    std::env::var_os("GOV_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/governance-jobs"))
}

/// The Python virtual environment that holds `moto_server` and aiosmtpd: `$GOV_VENV`, else
/// `$GOV_CACHE/venv`.
pub fn venv_dir() -> PathBuf {
    std::env::var_os("GOV_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| gov_cache().join("venv"))
}

/// Checks that `path` is an executable file, or returns [`Error::ProgramMissing`] naming
/// `program`, the path and the `env_var` that overrides it.
pub fn locate(program: &str, env_var: &'static str, path: PathBuf) -> Result<PathBuf> {
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(Error::ProgramMissing {
            program: program.to_owned(),
            looked_at: path.display().to_string(),
            env_var,
        })
    }
}

/// Finds a program through `$env_var` (a path) if set, else by `name` on `PATH`.
pub fn locate_on_path(name: &str, env_var: &'static str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        return locate(name, env_var, PathBuf::from(path));
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| Error::ProgramMissing {
            program: name.to_owned(),
            looked_at: format!("every directory of PATH={}", search.to_string_lossy()),
            env_var,
        })
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Ports handed out by [`free_port`] in this test binary. The kernel may return a port again as
/// soon as our probe socket closes; remembering them keeps two services started by parallel
/// tests from being given the same port.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Picks a loopback TCP port that is free now and that no earlier call in this process returned.
///
/// Another process may still take it before our service binds it; the service then fails to
/// start and its log says so.
pub fn free_port() -> Result<u16> {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    // Keep every probe socket open until we have found a new port, so the kernel cannot offer the
    // same already-handed-out port twice in this loop.
    let mut probes = Vec::new();
    for _ in 0..64 {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|source| Error::Io {
            service: "testbed".into(),
            action: "bind 127.0.0.1:0 to find a free port".into(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| Error::Io {
                service: "testbed".into(),
                action: "read the address of a probe socket".into(),
                source,
            })?
            .port();
        if handed_out.insert(port) {
            return Ok(port);
        }
        probes.push(listener);
    }
    Err(Error::Unexpected {
        service: "testbed".into(),
        action: "find a free port".into(),
        detail: "64 probes only returned ports already handed out".into(),
    })
}

/// A command running in its own process group, stopped with its whole group on [`stop`] or drop.
///
/// [`stop`]: ManagedProcess::stop
#[derive(Debug)]
pub struct ManagedProcess {
    service: String,
    command_line: String,
    child: Option<Child>,
    log: tempfile::TempPath,
    grace: Duration,
}

impl ManagedProcess {
    /// Starts `program` with `args` (and extra `envs`) in a new process group, stdout and stderr
    /// going to a temporary log file. `service` names it in logs and errors.
    pub fn spawn<I, S>(
        service: &str,
        program: &Path,
        args: I,
        envs: &[(&str, &str)],
    ) -> Result<ManagedProcess>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::spawn_in(service, None, program, args, envs)
    }

    /// Like [`spawn`](Self::spawn), in working directory `cwd` if given (for programs that read
    /// files such as `.env` from it).
    pub fn spawn_in<I, S>(
        service: &str,
        cwd: Option<&Path>,
        program: &Path,
        args: I,
        envs: &[(&str, &str)],
    ) -> Result<ManagedProcess>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let command_line = std::iter::once(program.as_os_str())
            .chain(args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let io_error = |action: &str| {
            let service = service.to_owned();
            let action = action.to_owned();
            move |source| Error::Io {
                service,
                action,
                source,
            }
        };
        let log = tempfile::Builder::new()
            .prefix(&format!("testbed-{service}-"))
            .suffix(".log")
            .tempfile()
            .map_err(io_error("create the log file"))?
            .into_temp_path();
        // Both streams share one append-mode file description, so lines interleave in order.
        let stdout = OpenOptions::new()
            .append(true)
            .open(&log)
            .map_err(io_error("open the log file"))?;
        let stderr = stdout
            .try_clone()
            .map_err(io_error("duplicate the log file handle"))?;
        let mut command = Command::new(program);
        command
            .args(&args)
            .envs(envs.iter().copied())
            // Python buffers its output when it is not a terminal; an unflushed log is useless
            // in an error message.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let child = command.spawn().map_err(|source| Error::Spawn {
            service: service.to_owned(),
            command: command_line.clone(),
            source,
        })?;
        tracing::debug!(service, pid = child.id(), command = %command_line, log = %log.display(), "started");
        Ok(ManagedProcess {
            service: service.to_owned(),
            command_line,
            child: Some(child),
            log,
            grace: STOP_GRACE,
        })
    }

    /// The service name given to [`spawn`](Self::spawn).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// The pid of the spawned command, which is also its process group id; `None` once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Where stdout and stderr go. The file is deleted when this handle drops.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let Ok(file) = File::open(&self.log) else {
            return format!("(cannot read {})", self.log.display());
        };
        let mut tail = VecDeque::with_capacity(lines);
        for line in BufReader::new(file).split(b'\n').map_while(|l| l.ok()) {
            if tail.len() == lines {
                tail.pop_front();
            }
            tail.push_back(String::from_utf8_lossy(&line).into_owned());
        }
        if tail.is_empty() {
            "(empty)".to_owned()
        } else {
            Vec::from(tail).join("\n")
        }
    }

    /// How the spawned command ended, if it has (without reaping it, so its pid stays reserved
    /// as the group id until [`stop`](Self::stop) has signalled the rest of the group).
    pub fn exit_status(&self) -> Option<String> {
        let Some(child) = &self.child else {
            return Some("stopped".to_owned());
        };
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        match waitid(Id::Pid(pid_of(child)), flags) {
            Ok(WaitStatus::Exited(_, code)) => Some(format!("exit code {code}")),
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(format!("killed by {signal}")),
            Ok(_) => None,
            Err(errno) => Some(format!("cannot wait for it: {errno}")),
        }
    }

    /// Probes until `probe` succeeds, failing as soon as the process exits or after `timeout`.
    ///
    /// `what` describes readiness for the error message ("GET /moto-api/ answers 200"); a failed
    /// probe returns why, which the timeout error quotes together with the command line and the
    /// last lines of the log.
    pub async fn wait_until<F, Fut, E>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: F,
    ) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: Display,
    {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exit_status() {
                return Err(Error::Exited {
                    status,
                    startup: self.startup(what),
                });
            }
            let last_probe = match probe().await {
                Ok(()) => {
                    tracing::debug!(service = %self.service, waited = ?started.elapsed(), "ready");
                    return Ok(());
                }
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= timeout {
                return Err(Error::NotReady {
                    waited: started.elapsed(),
                    last_probe,
                    startup: self.startup(what),
                });
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    fn startup(&self, what: &str) -> Box<Startup> {
        Box::new(Startup {
            service: self.service.clone(),
            what: what.to_owned(),
            command: self.command_line.clone(),
            log: self.log.display().to_string(),
            log_tail: self.log_tail(LOG_TAIL_LINES),
        })
    }

    /// Sets how long [`stop`](Self::stop) (and drop) waits between SIGTERM and SIGKILL;
    /// [`STOP_GRACE`] unless changed. Zero means SIGKILL at once, for services with nothing to
    /// flush whose graceful shutdown is slow.
    pub fn set_stop_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// Stops the whole process group: SIGTERM, up to the grace period (see
    /// [`set_stop_grace`](Self::set_stop_grace)) for the spawned command to exit, then SIGKILL
    /// for whatever is left of the group, then reaps the command.
    ///
    /// Blocks for at most the grace period. Calling it again does nothing.
    pub fn stop(&mut self) {
        self.stop_with_grace(self.grace);
    }

    /// Like [`stop`](Self::stop), but SIGKILLs the group at once (a crash rather than a shutdown).
    pub fn kill(&mut self) {
        self.stop_with_grace(Duration::ZERO);
    }

    fn stop_with_grace(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = pid_of(&child);
        if !grace.is_zero() {
            // Errors mean the group is already gone (ESRCH), which is what we want.
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
            while Instant::now() < deadline
                && matches!(waitid(Id::Pid(group), flags), Ok(WaitStatus::StillAlive))
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // The spawned command is still unreaped (at worst a zombie), so its pid cannot have been
        // reused and still names our group: members that ignored SIGTERM or outlived their parent
        // get SIGKILL here.
        let _ = killpg(group, Signal::SIGKILL);
        match child.wait() {
            Ok(status) => tracing::debug!(service = %self.service, %status, "stopped"),
            Err(e) => tracing::warn!(service = %self.service, error = %e, "cannot reap"),
        }
        // SIGKILL takes effect when each target is next scheduled, which under load is not
        // instant. Wait for it, so that a stopped service no longer holds its ports or files.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left = live_group_members(group);
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(service = %self.service, ?left, "group members outlived SIGKILL");
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Processes of group `group` that are not zombies (Linux `/proc`). Orphaned members become
/// children of PID 1, which may reap them late or never, so a zombie counts as gone.
fn live_group_members(group: Pid) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the parenthesised command name (which may contain anything): state, ppid,
            // pgrp, …
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(group.as_raw()) && !matches!(state, Some("Z" | "X") | None)
        })
        .collect()
}

fn pid_of(child: &Child) -> Pid {
    // Pids fit in i32 on every Unix; `Child::id` widens them to u32.
    Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX))
}
