//! One YAML config file per job, validated into typed config before any side effect.
//!
//! Parsing goes through serde-saphyr (serde_yaml is deprecated upstream) wrapped in
//! `serde_path_to_error`, so every error names the file, the line and column, and the field path:
//!
//! ```text
//! config.yaml:12:5: kafka.brokers[0]: expected host:port, got "localhost"
//! ```
//!
//! Every section is `deny_unknown_fields`: a typo is an error, not a silently ignored setting.
//! Endpoints and secrets can be overridden from the environment (see [`ENV_OVERRIDES`]) so that a
//! Kubernetes Secret or a test can supply them without editing the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::Error;

/// One problem found in a config file or an environment override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `env:NAME` for an environment override).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// Dotted field path such as `kafka.brokers[0]`, when known.
    pub field: Option<String>,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
}

impl ConfigError {
    /// A problem tied to a field but not to a position (cross-field validation).
    pub fn field(
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line: None,
            column: None,
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Reads and parses a YAML config file into `T`, naming file:line:column and field on error.
pub fn load_file<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    parse_str(&read_text(path)?, &path.display().to_string())
}

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and parses a *data* file into `T` (an offline inventory of 100,000 resources): as
/// [`load_file`], with a parser budget that grows with the file instead of serde-saphyr's
/// defaults for configs (250,000 nodes, 1,000,000 events). Alias and anchor caps stay, so an
/// alias bomb is still refused; the input itself bounds the rest. A `.json` file is read as
/// JSON (the same shape, YAML's subset), with serde_json: several times faster on large files.
pub fn load_data_file<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = read_text(path)?;
    let origin = path.display().to_string();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        return parse_json(&text, &origin);
    }
    parse_with(&text, &origin, data_options(text.len()))
}

/// JSON text into `T`, with errors shaped as the YAML ones (file:line:column: field: message).
fn parse_json<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        Error::Config(vec![ConfigError {
            file: origin.to_string(),
            line: u64::try_from(inner.line()).ok(),
            column: u64::try_from(inner.column()).ok(),
            field: Some(field).filter(|p| p != "." && !p.is_empty()),
            message: inner
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_string(),
        }])
    })
}

/// Parser options for a data file of `len` bytes: a node is at least two bytes of input, an
/// event at most two per node.
fn data_options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(len / 2 + 1);
    budget.max_events = budget.max_events.max(len + 1);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Parses YAML text into `T`; `origin` names the source in error messages.
pub fn parse_str<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, Error> {
    parse_with(text, origin, serde_saphyr::Options::default())
}

fn parse_with<T: DeserializeOwned>(
    text: &str,
    origin: &str,
    options: serde_saphyr::Options,
) -> Result<T, Error> {
    // serde_path_to_error records where deserialisation failed; the inner error goes back to
    // serde-saphyr so that it stops parsing there (and keeps its position).
    let mut path: Option<String> = None;
    let outcome = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    let err = match outcome {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    let location = err.location();
    Err(Error::Config(vec![ConfigError {
        file: origin.to_string(),
        line: location.map(|l| l.line()),
        column: location.map(|l| l.column()),
        field: path.filter(|p| p != "." && !p.is_empty()),
        message: plain_message(&err),
    }]))
}

/// serde-saphyr renders a source snippet and a position into its messages; we print our own
/// `file:line:col: field:` prefix, so keep only the first line of the bare message and drop the
/// position it repeats.
fn plain_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let first = text.lines().next().unwrap_or_default().trim();
    let first = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    first.trim_end_matches('.').to_string()
}

/// Where each value of a YAML document is, by dotted field path (`job.caps.max_percent`,
/// `kafka.brokers[0]`), so that a problem found *after* parsing — a cross-field check, a value
/// out of range — names its line like a parse error does.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    file: String,
    positions: BTreeMap<String, (u64, u64)>,
}

/// A YAML node whose children carry their positions (for [`SourceMap`]).
enum Node {
    Map(Vec<(String, serde_saphyr::Spanned<Node>)>),
    Seq(Vec<serde_saphyr::Spanned<Node>>),
    Leaf,
}

/// A mapping key of any scalar kind, as text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(Key(key)) = m.next_key()? {
                    out.push((key, m.next_value()?));
                }
                Ok(Node::Map(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element()? {
                    out.push(v);
                }
                Ok(Node::Seq(out))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
        }
        d.deserialize_any(V)
    }
}

impl SourceMap {
    /// The positions of `path`'s YAML (empty when it cannot be read or parsed: the loader has
    /// reported that already).
    pub fn read(path: &Path) -> SourceMap {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        SourceMap::parse(&text, &path.display().to_string())
    }

    /// The positions of YAML `text`, which came from `origin`.
    pub fn parse(text: &str, origin: &str) -> SourceMap {
        let mut map = SourceMap {
            file: origin.to_string(),
            positions: BTreeMap::new(),
        };
        if let Ok(root) = serde_saphyr::from_str::<Node>(text) {
            map.walk(String::new(), &root);
        }
        map
    }

    fn walk(&mut self, prefix: String, node: &Node) {
        match node {
            Node::Map(entries) => {
                for (key, value) in entries {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    let at = &value.referenced;
                    self.positions
                        .insert(path.clone(), (at.line(), at.column()));
                    self.walk(path, &value.value);
                }
            }
            Node::Seq(items) => {
                for (i, value) in items.iter().enumerate() {
                    let path = format!("{prefix}[{i}]");
                    let at = &value.referenced;
                    self.positions
                        .insert(path.clone(), (at.line(), at.column()));
                    self.walk(path, &value.value);
                }
            }
            Node::Leaf => {}
        }
    }

    /// Line and column of `field` (a dotted path, `[i]` for sequence items), or of the closest
    /// enclosing field the file spells out (a defaulted field has no line of its own).
    pub fn locate(&self, field: &str) -> Option<(u64, u64)> {
        let mut path = field;
        loop {
            if let Some(p) = self.positions.get(path) {
                return Some(*p);
            }
            let cut = path.rfind(['.', '['])?;
            path = &path[..cut];
        }
    }

    /// A [`ConfigError`] for `field`, positioned where the file says it.
    pub fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let at = self.locate(field);
        ConfigError {
            file: self.file.clone(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// Turns `field: message` problems (the jobs' `validate` output) into positioned errors.
    pub fn errors(&self, problems: &[String]) -> Error {
        Error::Config(
            problems
                .iter()
                .map(|p| match p.split_once(": ") {
                    Some((field, message)) => self.error(field, message),
                    None => ConfigError {
                        file: self.file.clone(),
                        line: None,
                        column: None,
                        field: None,
                        message: p.clone(),
                    },
                })
                .collect(),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Small validated value types: validation happens while deserialising, so the error carries the
// position of the offending value.

/// A `host:port` pair (Kafka bootstrap servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort(String);

impl HostPort {
    /// Validates `host:port` with a non-empty host and a port in 1..=65535.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("expected host:port, got {s:?}"))?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("expected host:port, got {s:?}"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(HostPort(s.to_string())),
            _ => Err(format!(
                "expected host:port with a port in 1..65535, got {s:?}"
            )),
        }
    }

    /// The `host:port` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HostPort::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An `http://` or `https://` URL, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// Accepts `http://host[:port][/path]` and `https://…`; strips one trailing `/`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
            .ok_or_else(|| format!("expected an http:// or https:// url, got {s:?}"))?;
        if rest.is_empty() || rest.starts_with('/') || s.contains(char::is_whitespace) {
            return Err(format!(
                "expected an http:// or https:// url with a host, got {s:?}"
            ));
        }
        Ok(HttpUrl(s.trim_end_matches('/').to_string()))
    }

    /// The URL text, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HttpUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A duration written for people: `500ms`, `10s`, `5m`, `1h 30m`, `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "expected a duration such as 10s or 5m, got {s:?} ({e})"
                ))
            })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// An email address (`local@domain.tld`); a deliberately simple check, documented in README.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    /// Accepts one `@` with a non-empty local part and a dotted domain, and no whitespace.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("expected an email address, got {s:?}");
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let ok = !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.contains(char::is_whitespace);
        if ok {
            Ok(Email(s.to_string()))
        } else {
            Err(bad())
        }
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// The sections every job shares.

/// A job's whole config file: the shared sections plus the job's own `job:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig<J> {
    /// Where events go.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Where metrics go; absent means metrics are not pushed (logged plainly).
    #[serde(default)]
    pub pushgateway: Option<PushgatewayConfig>,
    /// Email, chat and pager channels.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// AWS regions, accounts and endpoint.
    #[serde(default)]
    pub aws: AwsConfig,
    /// Kubernetes access.
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// The job's own settings.
    pub job: J,
}

/// Kafka: the result event and every other event type go through one publisher.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers; empty means no broker: events go to [`KafkaConfig::fallback`].
    #[serde(default)]
    pub brokers: Vec<HostPort>,
    /// Topic of the result event (the platform's contract).
    #[serde(default = "default_results_topic")]
    pub topic: String,
    /// Topic per other event type (`resource-expiring`, …); default: the event type's name.
    #[serde(default)]
    pub topics: BTreeMap<String, String>,
    /// How long to wait for the broker to acknowledge one event.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout: HumanDuration,
    /// Extra librdkafka properties (for example `client.id`). The keys the publisher owns
    /// (durability, security, see [`RESERVED_KAFKA_PROPERTIES`]) are refused here.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Where events go when no broker is configured.
    #[serde(default)]
    pub fallback: Fallback,
    /// librdkafka's `security.protocol`: `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT`,
    /// `SASL_SSL`.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    /// TLS settings for `SSL` and `SASL_SSL`: the CA to trust, a client certificate for mTLS.
    #[serde(default)]
    pub tls: KafkaTls,
    /// SASL settings for `SASL_PLAINTEXT` and `SASL_SSL`.
    #[serde(default)]
    pub sasl: Option<KafkaSasl>,
}

/// How the connection to the brokers is secured; the names are librdkafka's (and Kafka's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum SecurityProtocol {
    /// No TLS, no authentication: only for a local or test broker.
    #[default]
    #[serde(rename = "PLAINTEXT")]
    Plaintext,
    /// TLS, optionally with a client certificate (mTLS).
    #[serde(rename = "SSL")]
    Ssl,
    /// SASL without TLS: the credentials cross the network readable (PLAIN) or replayable.
    #[serde(rename = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS: what Confluent Cloud and Amazon MSK (SCRAM, IAM) require.
    #[serde(rename = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// The librdkafka `security.protocol` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// True for `SSL` and `SASL_SSL`.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// True for `SASL_PLAINTEXT` and `SASL_SSL`.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// TLS to the brokers (librdkafka through OpenSSL). The broker's certificate is always verified,
/// host name included.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTls {
    /// PEM file of the CA(s) to trust; default: the system's trust store (`ca-certificates`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mTLS; needs `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`: a mounted Secret, read by librdkafka, never logged.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// File holding the passphrase of an encrypted `key_file`.
    #[serde(default)]
    pub key_password_file: Option<PathBuf>,
}

/// A SASL mechanism; the names are Kafka's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// Username and password in the clear (inside TLS): Confluent Cloud API keys.
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response with SHA-512: Amazon MSK's SCRAM.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// A bearer token from a provider (`aws_msk_iam`): Amazon MSK's IAM access control.
    #[serde(rename = "OAUTHBEARER")]
    OauthBearer,
}

impl SaslMechanism {
    /// The librdkafka `sasl.mechanism` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OauthBearer => "OAUTHBEARER",
        }
    }
}

/// SASL authentication to the brokers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSasl {
    /// The mechanism the cluster's listener requires.
    pub mechanism: SaslMechanism,
    /// The user (PLAIN, SCRAM); also `GOV_KAFKA_SASL_USERNAME`.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (PLAIN, SCRAM): a mounted Secret (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The password from `GOV_KAFKA_SASL_PASSWORD`; never read from the config file, which is
    /// not a secret.
    #[serde(skip)]
    pub password: Option<SecretString>,
    /// OAUTHBEARER tokens for Amazon MSK IAM, signed with the AWS default credentials chain.
    #[serde(default)]
    pub aws_msk_iam: Option<MskIamConfig>,
}

/// Amazon MSK IAM access control: SigV4-presigned `kafka-cluster:Connect` tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MskIamConfig {
    /// The cluster's AWS region, e.g. `eu-west-1` (part of what is signed).
    pub region: String,
}

/// librdkafka properties that `kafka.properties` may not set, with the setting that owns each:
/// the durability of the audit (`acks=all`, idempotence, the delivery timeout) and the security
/// settings, whose secrets must not sit in a config file. A key ending in `.` is a prefix.
pub const RESERVED_KAFKA_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "kafka.brokers"),
    ("acks", "the publisher (always all)"),
    ("enable.idempotence", "the publisher (always true)"),
    ("message.timeout.ms", "kafka.delivery_timeout"),
    ("security.protocol", "kafka.security_protocol"),
    ("ssl.", "kafka.tls"),
    ("sasl.", "kafka.sasl"),
    ("enable.ssl.", "kafka.tls"),
];

impl KafkaConfig {
    /// Checks what must hold across the section's fields and its environment overrides; `file`
    /// names the config file in the errors. [`load_job_config`] calls it, and so does
    /// [`crate::kafka::Publisher::from_config`] for configs built in code.
    pub fn validate(&self, file: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(ConfigError::field(file, format!("kafka.{field}"), message))
        };
        for key in self.properties.keys() {
            let owner = RESERVED_KAFKA_PROPERTIES.iter().find(|(reserved, _)| {
                key == reserved || (reserved.ends_with('.') && key.starts_with(reserved))
            });
            if let Some((_, owner)) = owner {
                problem(
                    &format!("properties.{key}"),
                    format!("set by {owner}, not through properties"),
                );
            }
        }
        let protocol = self.security_protocol;
        let tls = &self.tls;
        let tls_set = tls.ca_file.is_some()
            || tls.cert_file.is_some()
            || tls.key_file.is_some()
            || tls.key_password_file.is_some();
        if tls_set && !protocol.uses_tls() {
            problem(
                "tls",
                format!(
                    "set, but security_protocol is {} (use SSL or SASL_SSL)",
                    protocol.as_str()
                ),
            );
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(_), None) => problem("tls.key_file", "cert_file needs key_file".into()),
            (None, Some(_)) => problem("tls.cert_file", "key_file needs cert_file".into()),
            _ => {}
        }
        if tls.key_password_file.is_some() && tls.key_file.is_none() {
            problem(
                "tls.key_password_file",
                "set, but there is no key_file".into(),
            );
        }
        match (&self.sasl, protocol.uses_sasl()) {
            (None, true) => problem(
                "sasl",
                format!(
                    "security_protocol {} needs a sasl section",
                    protocol.as_str()
                ),
            ),
            (Some(_), false) => problem(
                "sasl",
                format!(
                    "set, but security_protocol is {} (use SASL_SSL)",
                    protocol.as_str()
                ),
            ),
            _ => {}
        }
        if let Some(sasl) = &self.sasl {
            let has_password = sasl.password.is_some() || sasl.password_file.is_some();
            match sasl.mechanism {
                SaslMechanism::OauthBearer => {
                    if sasl.aws_msk_iam.is_none() {
                        problem(
                            "sasl.aws_msk_iam",
                            "OAUTHBEARER needs a token provider: aws_msk_iam".into(),
                        );
                    }
                    if sasl.username.is_some() || has_password {
                        problem(
                            "sasl",
                            "OAUTHBEARER takes no username or password (the token is the credential)"
                                .into(),
                        );
                    }
                }
                mechanism => {
                    if sasl.username.as_deref().is_none_or(str::is_empty) {
                        problem(
                            "sasl.username",
                            format!("{} needs a username", mechanism.as_str()),
                        );
                    }
                    if !has_password {
                        problem(
                            "sasl.password_file",
                            format!(
                                "{} needs password_file or GOV_KAFKA_SASL_PASSWORD",
                                mechanism.as_str()
                            ),
                        );
                    }
                    if sasl.aws_msk_iam.is_some() {
                        problem(
                            "sasl.aws_msk_iam",
                            format!("only for OAUTHBEARER, not {}", mechanism.as_str()),
                        );
                    }
                }
            }
            if let Some(iam) = &sasl.aws_msk_iam
                && !is_aws_region(&iam.region)
            {
                problem(
                    "sasl.aws_msk_iam.region",
                    format!(
                        "expected an AWS region such as eu-west-1, got {:?}",
                        iam.region
                    ),
                );
            }
            // SCRAM never sends the password; PLAIN sends it and OAUTHBEARER a replayable
            // token, so those two only inside TLS.
            let in_the_clear = match sasl.mechanism {
                SaslMechanism::Plain => Some("the password"),
                SaslMechanism::OauthBearer => Some("the token"),
                SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => None,
            };
            if protocol == SecurityProtocol::SaslPlaintext
                && let Some(what) = in_the_clear
            {
                problem(
                    "security_protocol",
                    format!(
                        "SASL_PLAINTEXT with {} sends {what} in the clear: use SASL_SSL",
                        sasl.mechanism.as_str()
                    ),
                );
            }
        }
        problems
    }
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: lowercase letters, digits and dashes, as
/// signed into an MSK IAM token's host and credential scope.
fn is_aws_region(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').count() >= 3
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: Vec::new(),
            topic: default_results_topic(),
            topics: BTreeMap::new(),
            delivery_timeout: default_delivery_timeout(),
            properties: BTreeMap::new(),
            fallback: Fallback::default(),
            security_protocol: SecurityProtocol::default(),
            tls: KafkaTls::default(),
            sasl: None,
        }
    }
}

fn default_results_topic() -> String {
    "security-job-results".to_string()
}

fn default_delivery_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// Where events go with no broker: JSON lines on stderr (stdout stays the job's report) or a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fallback {
    /// One JSON object per line on stderr.
    #[default]
    Stderr,
    /// Appended as JSON lines to this file.
    File(PathBuf),
}

/// The Prometheus Pushgateway.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushgatewayConfig {
    /// Base URL, for example `http://pushgateway.monitoring:9091`.
    pub url: HttpUrl,
    /// Request timeout.
    #[serde(default = "default_http_timeout")]
    pub timeout: HumanDuration,
    /// HTTP basic auth (the Pushgateway's own `--web.config.file` `basic_auth_users`).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// File holding a bearer token (for an authenticating proxy in front of the Pushgateway).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of the CA(s) to trust for an `https://` url, in addition to the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl PushgatewayConfig {
    /// A config for `url` with the defaults: no authentication, the webpki roots.
    pub fn new(url: HttpUrl) -> Self {
        PushgatewayConfig {
            url,
            timeout: default_http_timeout(),
            basic_auth: None,
            bearer_token_file: None,
            ca_file: None,
        }
    }

    /// Checks what must hold across the fields; `file` names the config file in the errors.
    pub fn validate(&self, file: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        if self.basic_auth.is_some() && self.bearer_token_file.is_some() {
            problems.push(ConfigError::field(
                file,
                "pushgateway.bearer_token_file",
                "set together with basic_auth: choose one",
            ));
        }
        let credentials = self.basic_auth.is_some() || self.bearer_token_file.is_some();
        if credentials && !self.url.as_str().starts_with("https://") {
            problems.push(ConfigError::field(
                file,
                "pushgateway.url",
                format!(
                    "credentials would be sent in the clear to {}: use an https:// url",
                    self.url.as_str()
                ),
            ));
        }
        problems
    }
}

/// HTTP basic auth credentials; the password comes from a file (a mounted Secret).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// File holding the password (trailing newline ignored).
    pub password_file: PathBuf,
}

fn default_http_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// Notification channels; each is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// SMTP email.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Recipients of a job's digest email (per-owner mails name their own recipients).
    #[serde(default)]
    pub email_to: Vec<Email>,
    /// A Slack-compatible incoming webhook.
    #[serde(default)]
    pub chat: Option<ChatConfig>,
    /// PagerDuty Events API v2.
    #[serde(default)]
    pub pagerduty: Option<PagerDutyConfig>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS at all: only for a local relay or a test sink.
    None,
}

/// An SMTP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server host name (also the name its certificate must carry).
    pub host: String,
    /// Port; default 587 (STARTTLS), 465 (implicit) or 25 (none).
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Extra PEM root certificates to trust (a private CA, a test sink).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The sender, `Name <addr>` or `addr`.
    pub from: String,
    /// Optional login.
    #[serde(default)]
    pub username: Option<String>,
    /// Password; prefer `password_file` (a mounted Secret) or `GOV_SMTP_PASSWORD`.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// File holding the password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Bounds each message, from the connect to the server's acceptance (default 10s).
    #[serde(default = "default_http_timeout")]
    pub timeout: HumanDuration,
}

impl SmtpConfig {
    /// The effective port for the configured TLS mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        })
    }
}

/// A Slack-compatible incoming webhook; the URL is a secret (it authorises posting).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// Webhook URL; prefer `GOV_CHAT_WEBHOOK_URL`.
    pub webhook_url: SecretString,
}

/// PagerDuty Events API v2.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// Integration routing key; prefer `GOV_PAGERDUTY_ROUTING_KEY`.
    pub routing_key: SecretString,
    /// Events endpoint (overridable for tests).
    #[serde(default = "default_pagerduty_url")]
    pub url: HttpUrl,
}

fn default_pagerduty_url() -> HttpUrl {
    HttpUrl("https://events.pagerduty.com/v2/enqueue".to_string())
}

/// AWS: where to look and as whom.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Regions to scan (each account may narrow this).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Endpoint override (moto in tests); also `GOV_AWS_ENDPOINT_URL`.
    #[serde(default)]
    pub endpoint_url: Option<HttpUrl>,
    /// Accounts to act in; the role to assume in each is configured, never hard-coded.
    #[serde(default)]
    pub accounts: Vec<AwsAccount>,
}

/// One AWS account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsAccount {
    /// The 12-digit account id.
    pub id: String,
    /// Role to assume in that account; absent means the ambient credentials (IRSA) are used.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// Regions for this account; default: `aws.regions`.
    #[serde(default)]
    pub regions: Vec<String>,
}

/// Kubernetes access: in-cluster service account, or `KUBECONFIG`/`~/.kube/config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file to use instead of in-cluster config / `KUBECONFIG` / `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context to use instead of the current one.
    #[serde(default)]
    pub context: Option<String>,
    /// A name for this cluster in findings and caps (default `default`).
    #[serde(default)]
    pub cluster_name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Environment overrides.

/// The environment variables that override config values, and what each sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    (
        "GOV_KAFKA_BROKERS",
        "kafka.brokers (comma-separated host:port)",
    ),
    ("GOV_KAFKA_SASL_USERNAME", "kafka.sasl.username"),
    (
        "GOV_KAFKA_SASL_PASSWORD",
        "kafka.sasl password (PLAIN, SCRAM)",
    ),
    ("GOV_PUSHGATEWAY_URL", "pushgateway.url"),
    ("GOV_SMTP_HOST", "notify.smtp.host"),
    ("GOV_SMTP_PORT", "notify.smtp.port"),
    ("GOV_SMTP_USERNAME", "notify.smtp.username"),
    ("GOV_SMTP_PASSWORD", "notify.smtp.password"),
    ("GOV_CHAT_WEBHOOK_URL", "notify.chat.webhook_url"),
    ("GOV_PAGERDUTY_ROUTING_KEY", "notify.pagerduty.routing_key"),
    ("GOV_AWS_ENDPOINT_URL", "aws.endpoint_url"),
];

impl<J> JobConfig<J> {
    /// Applies [`ENV_OVERRIDES`] read through `get` (the process environment in production, a map
    /// in tests), then checks what must hold across fields. Reports every problem at once.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let mut problems = Vec::new();
        let env_err = |name: &str, message: String| ConfigError {
            file: format!("env:{name}"),
            line: None,
            column: None,
            field: None,
            message,
        };
        if let Some(v) = get("GOV_KAFKA_BROKERS") {
            let parsed: Result<Vec<HostPort>, String> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(HostPort::parse)
                .collect();
            match parsed {
                Ok(brokers) => self.kafka.brokers = brokers,
                Err(e) => problems.push(env_err("GOV_KAFKA_BROKERS", e)),
            }
        }
        match &mut self.kafka.sasl {
            Some(sasl) => {
                if let Some(v) = get("GOV_KAFKA_SASL_USERNAME") {
                    sasl.username = Some(v);
                }
                if let Some(v) = get("GOV_KAFKA_SASL_PASSWORD") {
                    sasl.password = Some(SecretString::from(v));
                }
            }
            None => {
                for name in ["GOV_KAFKA_SASL_USERNAME", "GOV_KAFKA_SASL_PASSWORD"] {
                    if get(name).is_some() {
                        problems.push(env_err(
                            name,
                            "set, but the config has no kafka.sasl section (mechanism unknown)"
                                .to_string(),
                        ));
                    }
                }
            }
        }
        if let Some(v) = get("GOV_PUSHGATEWAY_URL") {
            match HttpUrl::parse(&v) {
                Ok(url) => match &mut self.pushgateway {
                    Some(p) => p.url = url,
                    None => self.pushgateway = Some(PushgatewayConfig::new(url)),
                },
                Err(e) => problems.push(env_err("GOV_PUSHGATEWAY_URL", e)),
            }
        }
        if let Some(v) = get("GOV_AWS_ENDPOINT_URL") {
            match HttpUrl::parse(&v) {
                Ok(url) => self.aws.endpoint_url = Some(url),
                Err(e) => problems.push(env_err("GOV_AWS_ENDPOINT_URL", e)),
            }
        }
        if let Some(smtp) = &mut self.notify.smtp {
            if let Some(v) = get("GOV_SMTP_HOST") {
                smtp.host = v;
            }
            if let Some(v) = get("GOV_SMTP_PORT") {
                match v.parse::<u16>() {
                    Ok(p) => smtp.port = Some(p),
                    Err(_) => problems.push(env_err(
                        "GOV_SMTP_PORT",
                        format!("expected a port number, got {v:?}"),
                    )),
                }
            }
            if let Some(v) = get("GOV_SMTP_USERNAME") {
                smtp.username = Some(v);
            }
            if let Some(v) = get("GOV_SMTP_PASSWORD") {
                smtp.password = Some(SecretString::from(v));
            }
        } else if get("GOV_SMTP_HOST").is_some() {
            problems.push(env_err(
                "GOV_SMTP_HOST",
                "set, but the config has no notify.smtp section (from address unknown)".to_string(),
            ));
        }
        if let Some(v) = get("GOV_CHAT_WEBHOOK_URL") {
            self.notify.chat = Some(ChatConfig {
                webhook_url: SecretString::from(v),
            });
        }
        if let Some(v) = get("GOV_PAGERDUTY_ROUTING_KEY") {
            let url = self
                .notify
                .pagerduty
                .take()
                .map(|p| p.url)
                .unwrap_or_else(default_pagerduty_url);
            self.notify.pagerduty = Some(PagerDutyConfig {
                routing_key: SecretString::from(v),
                url,
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(problems))
        }
    }
}

/// A path written in `config_file`, made relative to that file's directory (absolute paths are
/// kept): a config means the same whatever directory the job starts in. Every path a config
/// names goes through this, the shared sections' ([`JobConfig::resolve_paths`]) and the jobs'.
pub fn relative_to(config_file: &Path, p: &Path) -> PathBuf {
    match config_file.parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

impl<J> JobConfig<J> {
    /// Makes the shared sections' relative paths (the Kafka fallback file, TLS files and SASL
    /// `password_file`, the Pushgateway's credential and CA files, SMTP `ca_file` and
    /// `password_file`, the kubeconfig) relative to `config_file`'s directory, as the jobs' own
    /// paths are ([`relative_to`]).
    pub fn resolve_paths(&mut self, config_file: &Path) {
        let smtp = self.notify.smtp.as_mut();
        let kafka = &mut self.kafka;
        let tls = &mut kafka.tls;
        let pushgateway = self.pushgateway.as_mut();
        let paths = [
            match &mut kafka.fallback {
                Fallback::File(p) => Some(p),
                Fallback::Stderr => None,
            },
            self.kubernetes.kubeconfig.as_mut(),
            tls.ca_file.as_mut(),
            tls.cert_file.as_mut(),
            tls.key_file.as_mut(),
            tls.key_password_file.as_mut(),
            kafka.sasl.as_mut().and_then(|s| s.password_file.as_mut()),
        ]
        .into_iter()
        .chain(pushgateway.into_iter().flat_map(|p| {
            [
                p.ca_file.as_mut(),
                p.bearer_token_file.as_mut(),
                p.basic_auth.as_mut().map(|b| &mut b.password_file),
            ]
        }))
        .chain(
            smtp.into_iter()
                .flat_map(|s| [s.ca_file.as_mut(), s.password_file.as_mut()]),
        )
        .flatten();
        for p in paths {
            *p = relative_to(config_file, p);
        }
    }
}

/// Loads a job's config file, resolves the shared sections' relative paths against the file's
/// directory ([`JobConfig::resolve_paths`]) and applies the process environment's overrides.
pub fn load_job_config<J: DeserializeOwned>(path: &Path) -> Result<JobConfig<J>, Error> {
    let mut config: JobConfig<J> = load_file(path)?;
    config.resolve_paths(path);
    config.apply_env(|name| std::env::var(name).ok())?;
    let problems = config.validate_sinks(&path.display().to_string());
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(Error::Config(problems))
    }
}

impl<J> JobConfig<J> {
    /// The cross-field checks of the sink sections (Kafka, Pushgateway), after the environment
    /// overrides are applied; `file` names the config file in the errors.
    pub fn validate_sinks(&self, file: &str) -> Vec<ConfigError> {
        let mut problems = self.kafka.validate(file);
        if let Some(p) = &self.pushgateway {
            problems.extend(p.validate(file));
        }
        problems
    }
}

/// Reads a secret from a file (a mounted Kubernetes Secret), trimming one trailing newline.
pub fn read_secret_file(path: &Path) -> Result<SecretString, Error> {
    let text = read_text(path)?;
    Ok(SecretString::from(
        text.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

#[cfg(test)]
mod source_map_tests {
    use super::*;

    #[test]
    fn fields_are_located_by_dotted_path_and_defaulted_ones_by_their_parent() {
        let text = "kafka:\n  brokers: [a:1, b:2]\njob:\n  caps:\n    max_percent: 250\n  list:\n    - x\n    - {y: 1}\n";
        let map = SourceMap::parse(text, "c.yaml");
        assert_eq!(map.locate("job.caps.max_percent").map(|p| p.0), Some(5));
        assert_eq!(map.locate("job.list[1].y").map(|p| p.0), Some(8));
        assert_eq!(map.locate("kafka.brokers[1]").map(|p| p.0), Some(2));
        // Not in the file: the closest enclosing field that is.
        assert_eq!(map.locate("job.caps.max_deletions").map(|p| p.0), Some(5));
        assert_eq!(map.locate("other.x"), None);
        let e = map.error("job.caps.max_percent", "must be in (0, 100], got 250");
        assert_eq!(
            e.to_string(),
            "c.yaml:5:18: job.caps.max_percent: must be in (0, 100], got 250"
        );
        let all = map.errors(&["job.caps.max_percent: too big".to_string()]);
        assert!(all.to_string().starts_with("c.yaml:5:"), "{all}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        name: String,
    }

    fn parse(text: &str) -> Result<JobConfig<Demo>, Error> {
        parse_str(text, "config.yaml")
    }

    #[test]
    fn a_data_file_may_be_larger_than_a_config_budget_allows() {
        #[derive(Debug, Deserialize)]
        struct Items {
            items: Vec<u32>,
        }
        // 300,000 nodes: over serde-saphyr's default of 250,000 for a config.
        let text = format!("items:\n{}", "- 1\n".repeat(300_000));
        let refused = parse_str::<Items>(&text, "big.yaml").expect_err("a config this size");
        assert!(refused.to_string().contains("budget"), "{refused}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.yaml");
        std::fs::write(&path, &text).expect("write");
        let loaded: Items = load_data_file(&path).expect("a data file this size");
        assert_eq!(loaded.items.len(), 300_000);
    }

    #[test]
    fn a_json_data_file_is_read_as_json_with_positioned_errors() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Items {
            items: Vec<u32>,
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("data.json");
        std::fs::write(&path, "{\"items\": [1, 2, 3]}").expect("write");
        let loaded: Items = load_data_file(&path).expect("json");
        assert_eq!(loaded.items, [1, 2, 3]);
        std::fs::write(&path, "{\"items\": [1,\n \"two\"]}").expect("write");
        let Err(Error::Config(errors)) = load_data_file::<Items>(&path) else {
            panic!("a string where a number goes");
        };
        let e = &errors[0];
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("items[1]")),
            "{e}"
        );
        assert!(e.message.contains("invalid type"), "{e}");
    }

    fn only_error(r: Result<JobConfig<Demo>, Error>) -> ConfigError {
        match r {
            Err(Error::Config(mut errors)) => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                errors.remove(0)
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_apply_when_sections_are_absent() {
        let c = parse("job:\n  name: x\n").expect("valid");
        assert_eq!(c.job, Demo { name: "x".into() });
        assert!(c.kafka.brokers.is_empty());
        assert_eq!(c.kafka.topic, "security-job-results");
        assert_eq!(c.kafka.fallback, Fallback::Stderr);
        assert_eq!(c.kafka.delivery_timeout.0, Duration::from_secs(10));
        assert!(c.pushgateway.is_none());
    }

    #[test]
    fn bad_broker_names_line_column_and_field() {
        let text =
            "job:\n  name: x\nkafka:\n  brokers:\n    - \"kafka-0:9092\"\n    - \"localhost\"\n";
        let e = only_error(parse(text));
        assert_eq!(e.file, "config.yaml");
        assert_eq!(e.line, Some(6), "{e}");
        assert_eq!(e.column, Some(7), "{e}");
        assert_eq!(e.field.as_deref(), Some("kafka.brokers[1]"), "{e}");
        assert!(e.message.contains("expected host:port"), "{e}");
        assert!(
            e.to_string()
                .starts_with("config.yaml:6:7: kafka.brokers[1]: expected host:port"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_is_an_error_naming_it() {
        let e = only_error(parse(
            "job:\n  name: x\npushgateway:\n  url: http://p:9091\n  tiemout: 5s\n",
        ));
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("tiemout"), "{e}");
        assert_eq!(e.field.as_deref(), Some("pushgateway.tiemout"), "{e}");
        assert!(
            e.to_string()
                .starts_with("config.yaml:5:3: pushgateway.tiemout: unknown field"),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_and_url_are_reported_with_position() {
        let e = only_error(parse("job:\n  name: x\nkafka:\n  delivery_timeout: soon\n"));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(4), Some("kafka.delivery_timeout")),
            "{e}"
        );
        assert!(e.message.contains("expected a duration"), "{e}");
        let e = only_error(parse("job:\n  name: x\npushgateway:\n  url: ftp://x\n"));
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(4), Some("pushgateway.url")),
            "{e}"
        );
    }

    #[test]
    fn missing_job_section_is_named() {
        let e = only_error(parse("kafka:\n  topic: t\n"));
        assert!(e.message.contains("job"), "{e}");
    }

    #[test]
    fn yaml_syntax_error_has_a_position() {
        let e = only_error(parse("job:\n  name: [unclosed\n"));
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn env_overrides_replace_endpoints_and_secrets() {
        let mut c = parse(
            "job:\n  name: x\nnotify:\n  smtp:\n    host: mail\n    from: jobs@example.com\n",
        )
        .expect("valid");
        let env: BTreeMap<&str, &str> = [
            ("GOV_KAFKA_BROKERS", "a:9092, b:9093"),
            ("GOV_PUSHGATEWAY_URL", "http://pgw:9091/"),
            ("GOV_SMTP_PORT", "2525"),
            ("GOV_SMTP_PASSWORD", "hunter2"),
        ]
        .into_iter()
        .collect();
        c.apply_env(|k| env.get(k).map(|v| v.to_string()))
            .expect("valid overrides");
        let brokers: Vec<&str> = c.kafka.brokers.iter().map(HostPort::as_str).collect();
        assert_eq!(brokers, ["a:9092", "b:9093"]);
        assert_eq!(
            c.pushgateway.as_ref().map(|p| p.url.as_str()),
            Some("http://pgw:9091")
        );
        let smtp = c.notify.smtp.as_ref().expect("smtp");
        assert_eq!(smtp.port, Some(2525));
        use secrecy::ExposeSecret;
        assert_eq!(
            smtp.password.as_ref().map(|p| p.expose_secret()),
            Some("hunter2")
        );
        assert!(
            !format!("{smtp:?}").contains("hunter2"),
            "debug output must redact secrets"
        );
    }

    #[test]
    fn bad_env_override_names_the_variable() {
        let mut c = parse("job:\n  name: x\n").expect("valid");
        let err = c
            .apply_env(|k| (k == "GOV_KAFKA_BROKERS").then(|| "nope".to_string()))
            .expect_err("invalid override");
        assert!(
            err.to_string()
                .starts_with("env:GOV_KAFKA_BROKERS: expected host:port"),
            "{err}"
        );
    }

    #[test]
    fn email_check_is_simple_and_strict_about_shape() {
        for good in ["a@b.io", "first.last+tag@corp.example.com"] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "a", "@b.io", "a@", "a@b", "a@@b.io", "a b@c.io", "a@.io", "a@io.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shared_relative_paths_are_relative_to_the_config_file() {
        let mut c = parse(
            "kafka:\n  fallback: {file: events.jsonl}\n\
             notify:\n  smtp: {host: smtp, from: a@b.io, ca_file: ca.pem, password_file: /run/pw}\n\
             kubernetes:\n  kubeconfig: ../kube/config\njob:\n  name: x\n",
        )
        .expect("valid");
        c.resolve_paths(Path::new("/etc/jobs/config.yaml"));
        assert_eq!(
            c.kafka.fallback,
            Fallback::File(PathBuf::from("/etc/jobs/events.jsonl"))
        );
        let smtp = c.notify.smtp.as_ref().expect("smtp");
        assert_eq!(smtp.ca_file.as_deref(), Some(Path::new("/etc/jobs/ca.pem")));
        assert_eq!(smtp.password_file.as_deref(), Some(Path::new("/run/pw")));
        assert_eq!(
            c.kubernetes.kubeconfig.as_deref(),
            Some(Path::new("/etc/jobs/../kube/config"))
        );
    }

    fn sink_problems(text: &str) -> Vec<String> {
        let c = parse(text).expect("parses");
        c.validate_sinks("config.yaml")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn kafka_security_sections_parse_with_kafka_s_names() {
        let c = parse(
            "kafka:\n  brokers: [b:9096]\n  security_protocol: SASL_SSL\n  tls: {ca_file: ca.pem}\n  sasl: {mechanism: SCRAM-SHA-512, username: jobs, password_file: pw}\njob:\n  name: x\n",
        )
        .expect("valid");
        assert_eq!(c.kafka.security_protocol, SecurityProtocol::SaslSsl);
        let sasl = c.kafka.sasl.as_ref().expect("sasl");
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert!(c.validate_sinks("config.yaml").is_empty());
        let e = only_error(parse("kafka:\n  security_protocol: TLS\njob:\n  name: x\n"));
        assert_eq!(e.field.as_deref(), Some("kafka.security_protocol"), "{e}");
        assert!(
            e.message.contains("SASL_SSL"),
            "lists the valid values: {e}"
        );
        let e = only_error(parse(
            "kafka:\n  security_protocol: SASL_SSL\n  sasl: {mechanism: GSSAPI}\njob:\n  name: x\n",
        ));
        assert_eq!(e.field.as_deref(), Some("kafka.sasl.mechanism"), "{e}");
    }

    #[test]
    fn kafka_security_problems_are_all_reported_with_the_field() {
        let problems = sink_problems(
            "kafka:\n  security_protocol: SSL\n  tls: {cert_file: c.pem}\n  sasl: {mechanism: PLAIN}\n  properties: {sasl.password: x, acks: '1', client.id: ok}\njob:\n  name: x\n",
        );
        let expected = [
            "config.yaml: kafka.properties.acks: set by the publisher (always all), not through properties",
            "config.yaml: kafka.properties.sasl.password: set by kafka.sasl, not through properties",
            "config.yaml: kafka.tls.key_file: cert_file needs key_file",
            "config.yaml: kafka.sasl: set, but security_protocol is SSL (use SASL_SSL)",
            "config.yaml: kafka.sasl.username: PLAIN needs a username",
            "config.yaml: kafka.sasl.password_file: PLAIN needs password_file or GOV_KAFKA_SASL_PASSWORD",
        ];
        assert_eq!(problems, expected);
        assert_eq!(
            sink_problems("kafka:\n  security_protocol: SASL_SSL\njob:\n  name: x\n"),
            ["config.yaml: kafka.sasl: security_protocol SASL_SSL needs a sasl section"]
        );
        assert_eq!(
            sink_problems("kafka:\n  tls: {ca_file: ca.pem}\njob:\n  name: x\n"),
            [
                "config.yaml: kafka.tls: set, but security_protocol is PLAINTEXT (use SSL or SASL_SSL)"
            ]
        );
        assert_eq!(
            sink_problems(
                "kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl: {mechanism: PLAIN, username: u, password_file: p}\njob:\n  name: x\n"
            ),
            [
                "config.yaml: kafka.security_protocol: SASL_PLAINTEXT with PLAIN sends the password in the clear: use SASL_SSL"
            ]
        );
        assert!(
            sink_problems(
                "kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl: {mechanism: SCRAM-SHA-256, username: u, password_file: p}\njob:\n  name: x\n"
            )
            .is_empty(),
            "SCRAM never sends the password"
        );
        assert_eq!(
            sink_problems(
                "kafka:\n  security_protocol: SASL_SSL\n  sasl: {mechanism: OAUTHBEARER, username: u}\njob:\n  name: x\n"
            ),
            [
                "config.yaml: kafka.sasl.aws_msk_iam: OAUTHBEARER needs a token provider: aws_msk_iam",
                "config.yaml: kafka.sasl: OAUTHBEARER takes no username or password (the token is the credential)",
            ]
        );
        assert_eq!(
            sink_problems(
                "kafka:\n  security_protocol: SASL_SSL\n  sasl: {mechanism: OAUTHBEARER, aws_msk_iam: {region: Ireland}}\njob:\n  name: x\n"
            ),
            [
                "config.yaml: kafka.sasl.aws_msk_iam.region: expected an AWS region such as eu-west-1, got \"Ireland\""
            ]
        );
        assert!(
            sink_problems(
                "kafka:\n  security_protocol: SASL_SSL\n  sasl: {mechanism: OAUTHBEARER, aws_msk_iam: {region: us-gov-west-1}}\njob:\n  name: x\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn sasl_credentials_come_from_the_environment_and_stay_secret() {
        let mut c = parse(
            "kafka:\n  security_protocol: SASL_SSL\n  sasl: {mechanism: SCRAM-SHA-512}\njob:\n  name: x\n",
        )
        .expect("valid");
        let env: BTreeMap<&str, &str> = [
            ("GOV_KAFKA_SASL_USERNAME", "jobs"),
            ("GOV_KAFKA_SASL_PASSWORD", "kafka-s3cret"),
        ]
        .into_iter()
        .collect();
        c.apply_env(|k| env.get(k).map(|v| v.to_string()))
            .expect("valid overrides");
        assert!(c.validate_sinks("config.yaml").is_empty());
        let sasl = c.kafka.sasl.as_ref().expect("sasl");
        assert_eq!(sasl.username.as_deref(), Some("jobs"));
        use secrecy::ExposeSecret;
        assert_eq!(
            sasl.password.as_ref().map(|p| p.expose_secret()),
            Some("kafka-s3cret")
        );
        assert!(!format!("{c:?}").contains("kafka-s3cret"));
        // A password without a sasl section is an error, not silently dropped.
        let mut c = parse("job:\n  name: x\n").expect("valid");
        let err = c
            .apply_env(|k| (k == "GOV_KAFKA_SASL_PASSWORD").then(|| "p".to_string()))
            .expect_err("no sasl section");
        assert!(
            err.to_string().starts_with(
                "env:GOV_KAFKA_SASL_PASSWORD: set, but the config has no kafka.sasl section"
            ),
            "{err}"
        );
        // The config file cannot hold the password.
        let e = only_error(parse(
            "kafka:\n  sasl: {mechanism: PLAIN, password: x}\njob:\n  name: x\n",
        ));
        assert_eq!(e.field.as_deref(), Some("kafka.sasl.password"), "{e}");
    }

    #[test]
    fn pushgateway_credentials_need_https_and_one_kind() {
        assert_eq!(
            sink_problems(
                "pushgateway:\n  url: http://pgw:9091\n  basic_auth: {username: u, password_file: p}\n  bearer_token_file: t\njob:\n  name: x\n"
            ),
            [
                "config.yaml: pushgateway.bearer_token_file: set together with basic_auth: choose one",
                "config.yaml: pushgateway.url: credentials would be sent in the clear to http://pgw:9091: use an https:// url",
            ]
        );
        assert!(
            sink_problems(
                "pushgateway:\n  url: https://pgw:9091\n  bearer_token_file: t\n  ca_file: ca.pem\njob:\n  name: x\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn sink_secret_and_ca_paths_are_relative_to_the_config_file() {
        let mut c = parse(
            "kafka:\n  security_protocol: SASL_SSL\n  tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, key_password_file: kp}\n  sasl: {mechanism: PLAIN, username: u, password_file: pw}\n\
             pushgateway:\n  url: https://p\n  ca_file: pca.pem\n  basic_auth: {username: u, password_file: ppw}\njob:\n  name: x\n",
        )
        .expect("valid");
        c.resolve_paths(Path::new("/etc/jobs/config.yaml"));
        let tls = &c.kafka.tls;
        let at = |p: &Option<PathBuf>| p.as_deref().map(Path::to_path_buf);
        for (got, name) in [
            (at(&tls.ca_file), "ca.pem"),
            (at(&tls.cert_file), "c.pem"),
            (at(&tls.key_file), "k.pem"),
            (at(&tls.key_password_file), "kp"),
            (
                at(&c.kafka.sasl.as_ref().expect("sasl").password_file),
                "pw",
            ),
            (at(&c.pushgateway.as_ref().expect("pgw").ca_file), "pca.pem"),
            (
                c.pushgateway
                    .as_ref()
                    .and_then(|p| p.basic_auth.as_ref())
                    .map(|b| b.password_file.clone()),
                "ppw",
            ),
        ] {
            assert_eq!(got, Some(Path::new("/etc/jobs").join(name)), "{name}");
        }
    }
}
