//! The control-plane PostgreSQL database: tenants, contacts, their APIs, applications, users and
//! subscriptions, and quotas (platform defaults plus per-tenant overrides).
//!
//! The schema is `migrations/` (documented in `migrations/README.md`). The session is read-only
//! (`default_transaction_read_only=on`) with a `statement_timeout`, so the job cannot change the
//! database even through a bug. TLS goes through rustls (tokio-postgres-rustls).

use std::collections::BTreeMap;
use std::sync::Arc;

use common::config::Email;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;

use crate::config::{PostgresSource, PostgresTls};
use crate::error::Error;

/// The schema version this job reads (`schema_version` in `migrations/`).
pub const SCHEMA_VERSION: i32 = 1;

/// Where a quota limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// `tenant_quotas`: the tenant's own.
    Tenant,
    /// `quota_defaults`: the platform's.
    Default,
}

/// A quota limit and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Limit {
    /// The limit (0: none allowed).
    pub value: f64,
    /// Its source.
    pub source: LimitSource,
}

/// One tenant as the control plane knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Primary key.
    pub id: i64,
    /// Machine name: the `tenant` label of the gateway's metrics.
    pub slug: String,
    /// Name for people (any Unicode).
    pub name: String,
    /// Prefix of the department's Kafka Connect connectors.
    pub department: String,
    /// The `project` tag of its cloud and cluster resources.
    pub project: String,
    /// Report recipients (valid addresses only; see `invalid_contacts`).
    pub contacts: Vec<Email>,
    /// Contact rows that are not usable email addresses.
    pub invalid_contacts: Vec<String>,
    /// APIs it publishes.
    pub apis: u64,
    /// Its applications' slugs (the `application` label of the gateway's metrics).
    pub applications: Vec<String>,
    /// Active users.
    pub users: u64,
    /// Active subscriptions of its applications.
    pub subscriptions: u64,
    /// Its own quota overrides, by dimension.
    pub overrides: BTreeMap<String, f64>,
}

/// Everything the job reads from the control plane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlPlane {
    /// Active tenants, by slug.
    pub tenants: Vec<Tenant>,
    /// Platform default limits, by dimension.
    pub defaults: BTreeMap<String, f64>,
}

impl ControlPlane {
    /// The limit of `dimension` for `tenant`: its own override, else the platform default.
    pub fn limit(&self, tenant: &Tenant, dimension: &str) -> Option<Limit> {
        if let Some(v) = tenant.overrides.get(dimension) {
            return Some(Limit {
                value: *v,
                source: LimitSource::Tenant,
            });
        }
        self.defaults.get(dimension).map(|v| Limit {
            value: *v,
            source: LimitSource::Default,
        })
    }

    /// Which tenant an application belongs to, by application slug.
    pub fn application_owners(&self) -> BTreeMap<&str, &str> {
        self.tenants
            .iter()
            .flat_map(|t| {
                t.applications
                    .iter()
                    .map(move |a| (a.as_str(), t.slug.as_str()))
            })
            .collect()
    }
}

/// Connects (TLS per config) with a read-only session and the configured statement timeout.
pub async fn connect(
    source: &PostgresSource,
    password: Option<&SecretString>,
    extra_roots: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<tokio_postgres::Client, Error> {
    let server = server_name(source);
    let fail = |action: &str, e: tokio_postgres::Error| Error::Postgres {
        server: server.clone(),
        action: action.to_string(),
        message: db_message(&e),
    };
    let mut config = tokio_postgres::Config::new();
    config
        .host(&source.host)
        .port(source.port)
        .dbname(&source.dbname)
        .user(&source.user)
        .application_name("usage-reporting")
        .connect_timeout(source.timeout.0)
        .options(format!(
            "-c default_transaction_read_only=on -c statement_timeout={}",
            source.timeout.0.as_millis()
        ));
    if let Some(p) = password {
        config.password(p.expose_secret());
    }
    let client = match source.tls {
        PostgresTls::Off => {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| fail("connect", e))?;
            tokio::spawn(drive(connection, server.clone()));
            client
        }
        PostgresTls::Verify => {
            config.ssl_mode(SslMode::Require);
            let tls = tls_connector(extra_roots).map_err(|message| Error::Postgres {
                server: server.clone(),
                action: "tls setup".into(),
                message,
            })?;
            let (client, connection) = config
                .connect(tls)
                .await
                .map_err(|e| fail("connect over tls", e))?;
            tokio::spawn(drive(connection, server.clone()));
            client
        }
    };
    Ok(client)
}

async fn drive<F: Future<Output = Result<(), tokio_postgres::Error>>>(
    connection: F,
    server: String,
) {
    if let Err(e) = connection.await {
        tracing::warn!(%server, error = %db_message(&e), "control-plane connection ended");
    }
}

fn tls_connector(
    extra_roots: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in extra_roots {
        roots
            .add(der.clone())
            .map_err(|e| format!("ca_file: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// `host:port/dbname`, for messages.
pub fn server_name(source: &PostgresSource) -> String {
    format!("{}:{}/{}", source.host, source.port, source.dbname)
}

/// The server's message (`code: text`); tokio-postgres' `Display` alone says only "db error".
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// Reads tenants, contacts, counts and quotas; `only` restricts to one tenant slug or name.
pub async fn load(
    client: &tokio_postgres::Client,
    server: &str,
    only: Option<&str>,
) -> Result<ControlPlane, Error> {
    let fail = |action: &str| {
        let action = action.to_string();
        let server = server.to_string();
        move |e: tokio_postgres::Error| Error::Postgres {
            server,
            action,
            message: db_message(&e),
        }
    };
    let version: Option<i32> = match client
        .query_one("SELECT max(version) FROM schema_version", &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Err(Error::Schema {
                server: server.to_string(),
                message: "no schema_version table: the control-plane schema is missing".into(),
            });
        }
        Err(e) => return Err(fail("read schema_version")(e)),
    };
    match version {
        Some(v) if v >= SCHEMA_VERSION => {}
        other => {
            return Err(Error::Schema {
                server: server.to_string(),
                message: format!(
                    "schema version {} is older than the {SCHEMA_VERSION} this job reads",
                    other.map_or("none".to_string(), |v| v.to_string())
                ),
            });
        }
    }

    let rows = client
        .query(
            "SELECT id, slug, name, department, project FROM tenants WHERE active ORDER BY slug",
            &[],
        )
        .await
        .map_err(fail("read tenants"))?;
    let mut tenants: Vec<Tenant> = rows
        .iter()
        .map(|r| Tenant {
            id: r.get(0),
            slug: r.get(1),
            name: r.get(2),
            department: r.get(3),
            project: r.get(4),
            contacts: Vec::new(),
            invalid_contacts: Vec::new(),
            apis: 0,
            applications: Vec::new(),
            users: 0,
            subscriptions: 0,
            overrides: BTreeMap::new(),
        })
        .filter(|t| only.is_none_or(|o| t.slug == o || t.name == o))
        .collect();
    let index: BTreeMap<i64, usize> = tenants.iter().enumerate().map(|(i, t)| (t.id, i)).collect();

    for r in client
        .query(
            "SELECT tenant_id, email FROM tenant_contacts ORDER BY tenant_id, email",
            &[],
        )
        .await
        .map_err(fail("read tenant_contacts"))?
    {
        let Some(&i) = index.get(&r.get::<_, i64>(0)) else {
            continue;
        };
        let email: String = r.get(1);
        match Email::parse(&email) {
            Ok(e) => tenants[i].contacts.push(e),
            Err(_) => tenants[i].invalid_contacts.push(email),
        }
    }
    let counts: [(&str, &str); 3] = [
        (
            "read apis",
            "SELECT tenant_id, count(*) FROM apis GROUP BY tenant_id",
        ),
        (
            "read users",
            "SELECT tenant_id, count(*) FROM users WHERE active GROUP BY tenant_id",
        ),
        (
            "read subscriptions",
            "SELECT a.tenant_id, count(*) FROM subscriptions s \
             JOIN applications a ON a.id = s.application_id WHERE s.active GROUP BY a.tenant_id",
        ),
    ];
    for (n, (action, sql)) in counts.iter().enumerate() {
        for r in client.query(*sql, &[]).await.map_err(fail(action))? {
            let Some(&i) = index.get(&r.get::<_, i64>(0)) else {
                continue;
            };
            let count = u64::try_from(r.get::<_, i64>(1)).unwrap_or(0);
            let t = &mut tenants[i];
            match n {
                0 => t.apis = count,
                1 => t.users = count,
                _ => t.subscriptions = count,
            }
        }
    }
    for r in client
        .query(
            "SELECT tenant_id, slug FROM applications ORDER BY slug",
            &[],
        )
        .await
        .map_err(fail("read applications"))?
    {
        if let Some(&i) = index.get(&r.get::<_, i64>(0)) {
            tenants[i].applications.push(r.get(1));
        }
    }
    for r in client
        .query(
            "SELECT tenant_id, dimension, limit_value::float8 FROM tenant_quotas",
            &[],
        )
        .await
        .map_err(fail("read tenant_quotas"))?
    {
        if let Some(&i) = index.get(&r.get::<_, i64>(0)) {
            tenants[i].overrides.insert(r.get(1), r.get(2));
        }
    }
    let defaults = client
        .query(
            "SELECT dimension, limit_value::float8 FROM quota_defaults",
            &[],
        )
        .await
        .map_err(fail("read quota_defaults"))?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, f64>(1)))
        .collect();
    Ok(ControlPlane { tenants, defaults })
}

/// The migrations this repository ships, in order: `(file name, SQL)`. Tests and the bench apply
/// them to a fresh database; production applies them with its own migration tool.
pub const MIGRATIONS: &[(&str, &str)] = &[(
    "0001_control_plane.sql",
    include_str!("../../../migrations/0001_control_plane.sql"),
)];
