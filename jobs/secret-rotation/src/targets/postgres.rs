//! PostgreSQL role passwords. The new password is sent as a SCRAM-SHA-256 verifier computed
//! here (`ALTER ROLE … PASSWORD 'SCRAM-SHA-256$…'`, as psql's `\password` does), so the
//! plaintext never travels in SQL text and cannot land in the server's statement log.
//!
//! Two modes: one `role` (the old password is dead at once: disruptive, so consumers must be
//! restarted quickly and a failed rollout must put the old password back), or two `roles` used
//! in turn (`app` / `app_clone`): the idle one gets the new password, consumers move to it, and
//! the previous user keeps its password until the next cycle.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::TargetError;
use crate::value::{Data, field};

/// The users whose password changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One user.
    Single(String),
    /// Two users used in turn.
    Alternating([String; 2]),
}

/// A role on a server.
pub struct Postgres {
    /// The server's name in config.
    pub server: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The database logins are tested against.
    pub database: String,
    /// A role with CREATEROLE.
    pub admin_user: String,
    /// Its password.
    pub admin_password: SecretString,
    /// Connect timeout.
    pub timeout: Duration,
    /// Which users.
    pub mode: Mode,
}

/// `"name"` with embedded quotes doubled: a role name as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The server's message for a database error (tokio-postgres' `Display` says only "db error");
/// it names roles and reasons, never a password.
fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl Postgres {
    /// `postgres orders/app` or `postgres orders/app|app_clone`.
    pub fn describe(&self) -> String {
        match &self.mode {
            Mode::Single(r) => format!("postgres {}/{r}", self.server),
            Mode::Alternating([a, b]) => format!("postgres {}/{a}|{b}", self.server),
        }
    }

    /// The user the new password goes to: the single one, or the one not in `current`.
    pub fn next_user(&self, current: Option<&str>) -> String {
        match &self.mode {
            Mode::Single(r) => r.clone(),
            Mode::Alternating([a, b]) => {
                if current == Some(a.as_str()) {
                    b.clone()
                } else {
                    a.clone()
                }
            }
        }
    }

    async fn connect(&self, user: &str, password: &str) -> Result<tokio_postgres::Client, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(&self.database)
            .connect_timeout(self.timeout)
            .application_name("secret-rotation");
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("connect as {user}: {}", db_error(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %db_error(&e), "postgres connection ended");
            }
        });
        Ok(client)
    }

    async fn set_password(&self, user: &str, password: &str) -> Result<(), TargetError> {
        let target = self.describe();
        let admin = self
            .connect(&self.admin_user, self.admin_password.expose_secret())
            .await
            .map_err(|e| TargetError::new(&target, e))?;
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        // ALTER ROLE takes no parameters; the verifier is base64 and `$:` only.
        let sql = format!("ALTER ROLE {} PASSWORD '{verifier}'", ident(user));
        admin.batch_execute(&sql).await.map_err(|e| {
            let message = format!("ALTER ROLE {user}: {}", db_error(&e));
            // A role that does not exist or a refused password is the value's problem (42704
            // undefined_object, 28P01 / 22023 policy refusals by extensions).
            match e.code().map(|c| c.code()) {
                Some("22023") | Some("28P01") => TargetError::rejected(&target, message),
                _ => TargetError::new(&target, message),
            }
        })
    }

    /// Gives the next user the new password.
    pub async fn set(&self, new: &Data, value: &str) -> Result<(), TargetError> {
        let user = field(new, "username")
            .map(String::from)
            .unwrap_or_else(|| self.next_user(None));
        self.set_password(&user, value).await
    }

    /// Logs in as the new user with the new password.
    pub async fn test(&self, new: &Data, value: &str) -> Result<(), TargetError> {
        let user = field(new, "username").unwrap_or_default();
        let client = self
            .connect(user, value)
            .await
            .map_err(|e| TargetError::new(&self.describe(), format!("login test: {e}")))?;
        client.simple_query("SELECT 1").await.map_err(|e| {
            TargetError::new(&self.describe(), format!("login test: {}", db_error(&e)))
        })?;
        Ok(())
    }

    /// Puts the old password back on a single user; an alternating pair needs nothing (the old
    /// user was never touched).
    pub async fn restore(&self, old_value: &str) -> Result<(), TargetError> {
        match &self.mode {
            Mode::Single(user) => self.set_password(user, old_value).await,
            Mode::Alternating(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(mode: Mode) -> Postgres {
        Postgres {
            server: "db".into(),
            host: "h".into(),
            port: 1,
            database: "d".into(),
            admin_user: "a".into(),
            admin_password: SecretString::from("x"),
            timeout: Duration::from_secs(1),
            mode,
        }
    }

    #[test]
    fn alternating_users_take_turns() {
        let t = pg(Mode::Alternating(["app".into(), "app_clone".into()]));
        assert_eq!(t.next_user(Some("app")), "app_clone");
        assert_eq!(t.next_user(Some("app_clone")), "app");
        assert_eq!(t.next_user(None), "app");
        let s = pg(Mode::Single("app".into()));
        assert_eq!(s.next_user(Some("anything")), "app");
        assert_eq!(t.describe(), "postgres db/app|app_clone");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(ident("app"), "\"app\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }
}
