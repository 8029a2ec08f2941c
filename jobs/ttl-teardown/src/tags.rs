//! The platform's tagging standard: which tags a resource must carry, what their values may be,
//! and how a raw tag map becomes a typed [`ResourceTags`].
//!
//! [`parse_tags`] is the only door from untrusted tag values into the teardown decision. It never
//! stops at the first problem: every problem with every tag comes back at once as a
//! [`TagViolation`], so an owner fixes their resource in one go. A resource with any violation
//! becomes a `tag-violation` finding and is never deleted; the caller must not try to guess what a
//! broken tag meant.
//!
//! Accepted values (with the default [`TagPolicy`]):
//!
//! | tag                   | accepted                                                              |
//! |-----------------------|-----------------------------------------------------------------------|
//! | `environment`         | exactly one of `dev`, `staging`, `sandbox`, `demo`, `prod`            |
//! | `owner`               | a plausible email, see [`is_plausible_email`]                         |
//! | `project`             | any non-blank value                                                   |
//! | `cost-center`         | any non-blank value                                                   |
//! | `ttl`                 | `<N>d` or `<N>h`, N ≥ 1, at most `max_ttl` (30d), see [`parse_ttl`]   |
//! | `created_at`          | RFC 3339 / ISO 8601 with a `Z` or numeric offset, or a bare date      |
//! | `auto-teardown`       | exactly `true` or `false`                                             |
//! | `data-class`          | exactly one of `public`, `internal`, `confidential`, `restricted`     |
//! | `ttl-extension-count` | optional, a decimal integer in `0..=max_extensions` (2)               |
//! | `ttl-extended-days`   | optional, a decimal integer; `ttl` + extended days ≤ `max_lifetime`   |
//! | `ttl-notified-stage`  | optional, our own bookkeeping; a malformed value is ignored (a note)  |
//!
//! Every comparison is exact and case-sensitive (`Prod`, `TRUE` and `7D` are violations): the
//! job deletes things, so it only acts on values that mean exactly one thing. Messages point out
//! a case-only mismatch so the fix is obvious.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};

use crate::stage::{NotifiedStage, parse_notified_tag_value};

const SECS_PER_HOUR: i64 = 60 * 60;
const SECS_PER_DAY: i64 = 24 * SECS_PER_HOUR;

/// The names of the tags the job reads and writes, so a platform with other spellings can
/// configure them instead of retagging every resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagKeys {
    /// Environment tag (default `environment`).
    pub environment: String,
    /// Owner email tag (default `owner`).
    pub owner: String,
    /// Project tag (default `project`).
    pub project: String,
    /// Cost center tag (default `cost-center`).
    pub cost_center: String,
    /// Time-to-live tag (default `ttl`).
    pub ttl: String,
    /// Creation time tag (default `created_at`).
    pub created_at: String,
    /// Opt-in tag (default `auto-teardown`).
    pub auto_teardown: String,
    /// Data classification tag (default `data-class`).
    pub data_class: String,
    /// Number of snoozes granted so far, written by the snooze service (default
    /// `ttl-extension-count`).
    pub extension_count: String,
    /// Total days granted by snoozes, written by the snooze service (default
    /// `ttl-extended-days`).
    pub extended_days: String,
    /// Last warning sent, written by this job as `stage@deadline` (default
    /// `ttl-notified-stage`).
    pub notified_stage: String,
    /// When the owner asked for deletion at the next run ("Delete now" in the warning email),
    /// RFC 3339, written by the snooze service (default `ttl-released-at`). The deadline becomes
    /// this instant, and the release counts as the owner's consent to deletion without a
    /// further notice period ([`crate::policy::evaluate`]).
    pub released_at: String,
}

impl Default for TagKeys {
    fn default() -> Self {
        Self {
            environment: "environment".into(),
            owner: "owner".into(),
            project: "project".into(),
            cost_center: "cost-center".into(),
            ttl: "ttl".into(),
            created_at: "created_at".into(),
            auto_teardown: "auto-teardown".into(),
            data_class: "data-class".into(),
            extension_count: "ttl-extension-count".into(),
            extended_days: "ttl-extended-days".into(),
            notified_stage: "ttl-notified-stage".into(),
            released_at: "ttl-released-at".into(),
        }
    }
}

impl TagKeys {
    /// Every key with the name of its field, in a fixed order (used by validation).
    fn all(&self) -> [(&'static str, &str); 12] {
        [
            ("environment", &self.environment),
            ("owner", &self.owner),
            ("project", &self.project),
            ("cost_center", &self.cost_center),
            ("ttl", &self.ttl),
            ("created_at", &self.created_at),
            ("auto_teardown", &self.auto_teardown),
            ("data_class", &self.data_class),
            ("extension_count", &self.extension_count),
            ("extended_days", &self.extended_days),
            ("notified_stage", &self.notified_stage),
            ("released_at", &self.released_at),
        ]
    }
}

/// The tagging standard the job enforces. `Default` is the platform's standard; every field can
/// be overridden in the job's config (snake_case keys, unknown keys are rejected).
///
/// Durations in config use the same `<N><unit>` grammar as the `ttl` tag, with units `d`
/// (24 hours), `h`, `m` and `s`, e.g. `max_ttl: 30d`, `clock_skew: 5m`.
///
/// Call [`TagPolicy::validate`] after loading: [`parse_tags`] and
/// [`evaluate`](crate::policy::evaluate) assume a valid policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TagPolicy {
    /// Values accepted in the environment tag; anything else is a violation.
    pub allowed_environments: Vec<String>,
    /// Environments that are production and therefore never torn down (default `["prod"]`).
    /// Must be non-empty and a subset of `allowed_environments`.
    pub prod_environments: Vec<String>,
    /// Values accepted in the data-class tag; anything else is a violation.
    pub allowed_data_classes: Vec<String>,
    /// Data classes that are never torn down (default `["restricted"]`). Must be a subset of
    /// `allowed_data_classes`.
    pub restricted_data_classes: Vec<String>,
    /// Longest ttl an owner may set (default 30d).
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_ttl: SignedDuration,
    /// Most snoozes a resource may have been granted (default 2).
    pub max_extensions: u8,
    /// Longest total lifetime, ttl plus extended days (default 60d).
    #[serde(deserialize_with = "deserialize_duration")]
    pub max_lifetime: SignedDuration,
    /// How far in the future a `created_at` may be before it is a violation, to tolerate clocks
    /// that disagree a little (default 5m).
    #[serde(deserialize_with = "deserialize_duration")]
    pub clock_skew: SignedDuration,
    /// When true (the default), an expired resource is only deleted if a warning was recorded
    /// for its current deadline; otherwise it gets a final warning first and is deleted on a
    /// later run. This protects resources the job first sees already expired (first rollout,
    /// auto-teardown flipped on late, job down for days) from being deleted without notice.
    pub require_warning_before_delete: bool,
    /// The least time between the last warning an owner was sent and the deletion (default
    /// 24h): a resource first warned when already expired (or with less than this left) is
    /// deleted no earlier than this after that warning, and its snooze links stay valid until
    /// then. Needs the warning's time in the notified-stage tag; a record without one (written
    /// by an older version) counts as sent long ago.
    #[serde(deserialize_with = "deserialize_duration")]
    pub notice_period: SignedDuration,
    /// Names of the tags.
    pub keys: TagKeys,
}

impl Default for TagPolicy {
    fn default() -> Self {
        Self {
            allowed_environments: strings(&["dev", "staging", "sandbox", "demo", "prod"]),
            prod_environments: strings(&["prod"]),
            allowed_data_classes: strings(&["public", "internal", "confidential", "restricted"]),
            restricted_data_classes: strings(&["restricted"]),
            max_ttl: SignedDuration::from_secs(30 * SECS_PER_DAY),
            max_extensions: 2,
            max_lifetime: SignedDuration::from_secs(60 * SECS_PER_DAY),
            clock_skew: SignedDuration::from_secs(5 * 60),
            require_warning_before_delete: true,
            notice_period: SignedDuration::from_hours(24),
            keys: TagKeys::default(),
        }
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// A [`TagPolicy`] that contradicts itself; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag policy: {}", problems.join("; "))]
pub struct TagPolicyError {
    /// One lowercase sentence per problem, naming the field at fault.
    pub problems: Vec<String>,
}

impl TagPolicy {
    /// Checks the policy is coherent: non-empty lists without blank entries, at least one
    /// production environment (the job must know what production is), production and restricted
    /// values drawn from the allowed lists, positive `max_ttl` no larger than `max_lifetime`, a
    /// non-negative `clock_skew`, and tag names that are non-blank and pairwise distinct.
    pub fn validate(&self) -> Result<(), TagPolicyError> {
        let mut problems = Vec::new();
        let lists = [
            ("allowed_environments", &self.allowed_environments),
            ("prod_environments", &self.prod_environments),
            ("allowed_data_classes", &self.allowed_data_classes),
        ];
        for (field, list) in lists {
            if list.is_empty() {
                problems.push(format!("{field} must not be empty"));
            }
        }
        let lists = [
            ("allowed_environments", &self.allowed_environments),
            ("prod_environments", &self.prod_environments),
            ("allowed_data_classes", &self.allowed_data_classes),
            ("restricted_data_classes", &self.restricted_data_classes),
        ];
        for (field, list) in lists {
            if list.iter().any(|v| v.trim().is_empty()) {
                problems.push(format!("{field} must not contain a blank value"));
            }
        }
        for env in &self.prod_environments {
            if !self.allowed_environments.contains(env) {
                problems.push(format!(
                    "prod_environments: {env:?} is not in allowed_environments"
                ));
            }
        }
        for class in &self.restricted_data_classes {
            if !self.allowed_data_classes.contains(class) {
                problems.push(format!(
                    "restricted_data_classes: {class:?} is not in allowed_data_classes"
                ));
            }
        }
        if self.max_ttl <= SignedDuration::ZERO {
            problems.push("max_ttl must be positive".to_owned());
        }
        if self.max_lifetime < self.max_ttl {
            problems.push(format!(
                "max_lifetime {} is below max_ttl {}",
                format_duration(self.max_lifetime),
                format_duration(self.max_ttl)
            ));
        }
        if self.clock_skew.is_negative() {
            problems.push("clock_skew must not be negative".to_owned());
        }
        if self.notice_period.is_negative() {
            problems.push("notice_period must not be negative".to_owned());
        }
        let keys = self.keys.all();
        for (i, (field, key)) in keys.iter().enumerate() {
            if key.trim().is_empty() {
                problems.push(format!("keys.{field} must not be blank"));
            }
            for (other_field, other_key) in &keys[..i] {
                if key == other_key {
                    problems.push(format!(
                        "keys.{field} and keys.{other_field} are both {key:?}"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TagPolicyError { problems })
        }
    }
}

/// What is wrong with a tag. Stable and `kebab-case` when serialized, so it can label metrics
/// and findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    /// A mandatory tag is absent.
    Missing,
    /// A tag is present but blank.
    Empty,
    /// The value is not one of the configured values (environment, data-class).
    NotAllowed,
    /// The owner is not a plausible email address.
    InvalidEmail,
    /// The ttl is not `<N>d` or `<N>h`.
    InvalidTtl,
    /// The ttl is zero or negative.
    NonPositiveTtl,
    /// The ttl is above `max_ttl`.
    TtlAboveMaximum,
    /// The creation time is not a timestamp with an offset nor a bare date.
    InvalidTimestamp,
    /// The creation time is further in the future than the clock skew allows.
    CreatedInFuture,
    /// auto-teardown is not exactly `true` or `false`.
    InvalidBool,
    /// The extension count is not a non-negative integer.
    InvalidExtensionCount,
    /// The extension count is above `max_extensions`.
    TooManyExtensions,
    /// The extended days are not a non-negative integer.
    InvalidExtendedDays,
    /// ttl plus extended days is above `max_lifetime`.
    LifetimeAboveMaximum,
    /// The extension count and extended days contradict each other (one is zero, the other not).
    InconsistentExtensions,
}

impl ViolationKind {
    /// The stable kebab-case name, as serialized.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Empty => "empty",
            Self::NotAllowed => "not-allowed",
            Self::InvalidEmail => "invalid-email",
            Self::InvalidTtl => "invalid-ttl",
            Self::NonPositiveTtl => "non-positive-ttl",
            Self::TtlAboveMaximum => "ttl-above-maximum",
            Self::InvalidTimestamp => "invalid-timestamp",
            Self::CreatedInFuture => "created-in-future",
            Self::InvalidBool => "invalid-bool",
            Self::InvalidExtensionCount => "invalid-extension-count",
            Self::TooManyExtensions => "too-many-extensions",
            Self::InvalidExtendedDays => "invalid-extended-days",
            Self::LifetimeAboveMaximum => "lifetime-above-maximum",
            Self::InconsistentExtensions => "inconsistent-extensions",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one tag. Displays as `tag "ttl" = "45d": ttl 45d is above the maximum of
/// 30d`, or `tag "owner": missing` when there is no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagViolation {
    /// The tag key at fault, as configured in [`TagKeys`].
    pub tag: String,
    /// The offending value, `None` when the tag is absent.
    pub value: Option<String>,
    /// What is wrong, for metrics and tests.
    pub problem: ViolationKind,
    /// What is wrong, for people: lowercase, no trailing period, no key or value prefix.
    pub message: String,
}

impl fmt::Display for TagViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug formatting quotes and escapes, so a value with a newline cannot forge log lines.
        write!(f, "tag {:?}", self.tag)?;
        if let Some(value) = &self.value {
            write!(f, " = {value:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TagViolation {}

/// The validated tags of one resource. Only [`parse_tags`] should build one outside tests: the
/// fields are public for reading, and every invariant listed here comes from parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceTags {
    /// One of `allowed_environments`.
    pub environment: String,
    /// A plausible email address.
    pub owner: String,
    /// Non-blank.
    pub project: String,
    /// Non-blank.
    pub cost_center: String,
    /// Positive and at most `max_ttl`; [`SignedDuration::MAX`] (no deadline) for a production
    /// resource without the tag, which the standard does not require of production.
    pub ttl: SignedDuration,
    /// From the tag, else from the fallback; never beyond `now + clock_skew`.
    pub created_at: Timestamp,
    /// Whether the owner opted in to teardown (`false` for a production resource without the
    /// tag).
    pub auto_teardown: bool,
    /// One of `allowed_data_classes`.
    pub data_class: String,
    /// Snoozes granted, `0..=max_extensions`; 0 when the tag is absent.
    pub extension_count: u8,
    /// Days granted by snoozes, 0 when the tag is absent; `ttl` + these ≤ `max_lifetime`.
    pub extended_days: u32,
    /// The last warning recorded, if the tag is present and well-formed.
    pub notified: Option<NotifiedStage>,
    /// When the owner released the resource for deletion ("Delete now"), if the tag is present
    /// and a timestamp. A malformed value is ignored with a note: ignoring it can only delay a
    /// deletion, never bring one forward.
    pub released_at: Option<Timestamp>,
    /// Things worth logging that are not violations, e.g. a malformed notified stage that was
    /// ignored, or that `created_at` came from the fallback.
    pub notes: Vec<String>,
}

impl ResourceTags {
    /// The total time extensions added, `extended_days` × 24h.
    pub fn extension(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::from(self.extended_days) * SECS_PER_DAY)
    }
}

/// Why a ttl string was rejected by [`parse_ttl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// Not `<digits><unit>`.
    #[error("expected a whole number of days or hours such as 7d or 12h")]
    Malformed,
    /// Zero or negative.
    #[error("must be at least 1h")]
    NotPositive,
    /// The number does not fit in a duration; certainly above any maximum.
    #[error("is too large")]
    TooLarge,
}

/// Parses a ttl: ASCII digits then `d` (24 hours, the job works in UTC so a day never has a DST
/// jump) or `h`, with nothing else: no sign, spaces, fractions, other units or upper case.
/// `0d` and `-7d` are [`TtlError::NotPositive`] rather than malformed so the message helps.
pub fn parse_ttl(text: &str) -> Result<SignedDuration, TtlError> {
    if let Some(rest) = text.strip_prefix('-') {
        // A negative ttl is a specific mistake; say so rather than "malformed".
        return match parse_amount(rest, &['d', 'h']) {
            Ok(_) | Err(TtlError::TooLarge) | Err(TtlError::NotPositive) => {
                Err(TtlError::NotPositive)
            }
            Err(TtlError::Malformed) => Err(TtlError::Malformed),
        };
    }
    let duration = parse_amount(text, &['d', 'h'])?;
    if duration.is_zero() {
        return Err(TtlError::NotPositive);
    }
    Ok(duration)
}

/// `<digits><unit>` with unit in `units` (`d`, `h`, `m`, `s`). Zero is allowed here.
fn parse_amount(text: &str, units: &[char]) -> Result<SignedDuration, TtlError> {
    let Some(unit) = text.chars().last() else {
        return Err(TtlError::Malformed);
    };
    let digits = &text[..text.len() - unit.len_utf8()];
    if !units.contains(&unit) || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TtlError::Malformed);
    }
    let unit_secs = match unit {
        'd' => SECS_PER_DAY,
        'h' => SECS_PER_HOUR,
        'm' => 60,
        _ => 1,
    };
    // All digits, so the only parse failure left is overflow.
    let amount: i64 = digits.parse().map_err(|_| TtlError::TooLarge)?;
    let secs = amount.checked_mul(unit_secs).ok_or(TtlError::TooLarge)?;
    Ok(SignedDuration::from_secs(secs))
}

fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<SignedDuration, D::Error> {
    let text = String::deserialize(d)?;
    parse_amount(&text, &['d', 'h', 'm', 's']).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?}: expected <N>d, <N>h, <N>m or <N>s ({e})"
        ))
    })
}

/// Formats a duration in the largest whole unit of the ttl grammar (`30d`, `36h`, `5m`, `10s`),
/// falling back to jiff's friendly format for anything finer.
pub fn format_duration(duration: SignedDuration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_nanos() != 0 {
        format!("{duration:#}")
    } else if secs % SECS_PER_DAY == 0 && secs != 0 {
        format!("{}d", secs / SECS_PER_DAY)
    } else if secs % SECS_PER_HOUR == 0 && secs != 0 {
        format!("{}h", secs / SECS_PER_HOUR)
    } else if secs % 60 == 0 && secs != 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The deliberately simple owner check: no whitespace anywhere, exactly one `@`, a non-empty
/// local part, and a domain with a dot that is neither its first nor its last character. It
/// catches typos and team names, not every RFC 5322 oddity; the mail server is the real judge.
pub fn is_plausible_email(value: &str) -> bool {
    if value.chars().any(char::is_whitespace) {
        return false;
    }
    let mut parts = value.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
}

/// Parses a creation time: anything jiff reads as an instant (RFC 3339 / ISO 8601 with a date,
/// a time and a `Z` or numeric offset; converted to UTC), or a bare date `YYYY-MM-DD`, which
/// means midnight UTC of that day. A date and time without an offset is rejected: we will not
/// guess a time zone for a deadline.
pub fn parse_created_at(text: &str) -> Option<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    // Only the exact `YYYY-MM-DD` shape counts as a bare date.
    let bytes = text.as_bytes();
    let date_shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !date_shaped {
        return None;
    }
    let date: Date = text.parse().ok()?;
    Offset::UTC
        .to_timestamp(date.to_datetime(Time::midnight()))
        .ok()
}

/// Reads and validates every tag of one resource, reporting every violation at once.
///
/// `fallback_created_at` (the Kubernetes `creationTimestamp`, say) is used only when the
/// created-at tag is absent; a present but blank or malformed tag is a violation, not a reason to
/// fall back. `now` is the run's clock; this function never reads the time itself.
///
/// A malformed notified-stage tag is not a violation (it is the job's own bookkeeping): it is
/// treated as "not notified", which at worst repeats a warning, and a note says so.
pub fn parse_tags(
    tags: &BTreeMap<String, String>,
    fallback_created_at: Option<Timestamp>,
    policy: &TagPolicy,
    now: Timestamp,
) -> Result<ResourceTags, Vec<TagViolation>> {
    let keys = &policy.keys;
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let v = &mut out;

    let environment = required(tags, &keys.environment, v)
        .and_then(|value| one_of(&keys.environment, value, &policy.allowed_environments, v));

    let owner = required(tags, &keys.owner, v).and_then(|value| {
        if is_plausible_email(value) {
            Some(value.to_owned())
        } else {
            v.push(violation(
                &keys.owner,
                Some(value),
                ViolationKind::InvalidEmail,
                format!(
                    "{} must be an email address such as alice@example.com",
                    keys.owner
                ),
            ));
            None
        }
    });

    let project = required(tags, &keys.project, v).map(str::to_owned);
    let cost_center = required(tags, &keys.cost_center, v).map(str::to_owned);

    // Production resources are never torn down, so the standard does not ask them for a ttl or
    // an auto-teardown tag: absent, they mean "no deadline" and "not opted in". Present, they
    // are checked like any other tag.
    let production = environment
        .as_ref()
        .is_some_and(|e| policy.prod_environments.contains(e));
    let ttl_exempt = production && !tags.contains_key(&keys.ttl);
    let auto_teardown_exempt = production && !tags.contains_key(&keys.auto_teardown);

    let ttl = if ttl_exempt {
        Some(SignedDuration::MAX)
    } else {
        required(tags, &keys.ttl, v).and_then(|value| match parse_ttl(value) {
            Ok(ttl) if ttl > policy.max_ttl => {
                v.push(ttl_above_maximum(&keys.ttl, value, policy));
                None
            }
            Ok(ttl) => Some(ttl),
            Err(TtlError::TooLarge) => {
                v.push(ttl_above_maximum(&keys.ttl, value, policy));
                None
            }
            Err(e @ TtlError::NotPositive) => {
                v.push(violation(
                    &keys.ttl,
                    Some(value),
                    ViolationKind::NonPositiveTtl,
                    format!("{} {e}", keys.ttl),
                ));
                None
            }
            Err(e @ TtlError::Malformed) => {
                v.push(violation(
                    &keys.ttl,
                    Some(value),
                    ViolationKind::InvalidTtl,
                    format!(
                        "{} {e}, at most {}",
                        keys.ttl,
                        format_duration(policy.max_ttl)
                    ),
                ));
                None
            }
        })
    };

    let created_at = created_at(tags, fallback_created_at, policy, now, v, &mut notes);

    let auto_teardown = if auto_teardown_exempt {
        Some(false)
    } else {
        required(tags, &keys.auto_teardown, v).and_then(|value| match value {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                v.push(violation(
                    &keys.auto_teardown,
                    Some(value),
                    ViolationKind::InvalidBool,
                    format!(
                        "{} must be exactly \"true\" or \"false\" (lowercase)",
                        keys.auto_teardown
                    ),
                ));
                None
            }
        })
    };

    let data_class = required(tags, &keys.data_class, v)
        .and_then(|value| one_of(&keys.data_class, value, &policy.allowed_data_classes, v));

    let extension_count = optional(tags, &keys.extension_count, v).map_or(Some(0), |value| {
        match parse_natural(value) {
            Natural::Value(n) if n <= u64::from(policy.max_extensions) => u8::try_from(n).ok(),
            Natural::Value(_) | Natural::TooLarge => {
                v.push(violation(
                    &keys.extension_count,
                    Some(value),
                    ViolationKind::TooManyExtensions,
                    format!(
                        "{} {value} is above the maximum of {} extensions",
                        keys.extension_count, policy.max_extensions
                    ),
                ));
                None
            }
            Natural::NotANumber => {
                v.push(violation(
                    &keys.extension_count,
                    Some(value),
                    ViolationKind::InvalidExtensionCount,
                    format!(
                        "{} must be a whole number from 0 to {}",
                        keys.extension_count, policy.max_extensions
                    ),
                ));
                None
            }
        }
    });

    let extended_days = optional(tags, &keys.extended_days, v).map_or(Some(0), |value| {
        match parse_natural(value) {
            Natural::Value(n) => match u32::try_from(n) {
                Ok(days) => Some(days),
                Err(_) => {
                    v.push(lifetime_above_maximum(&keys.extended_days, value, policy));
                    None
                }
            },
            Natural::TooLarge => {
                v.push(lifetime_above_maximum(&keys.extended_days, value, policy));
                None
            }
            Natural::NotANumber => {
                v.push(violation(
                    &keys.extended_days,
                    Some(value),
                    ViolationKind::InvalidExtendedDays,
                    format!("{} must be a whole number of days", keys.extended_days),
                ));
                None
            }
        }
    });

    // Cross-tag checks only make sense when both sides parsed.
    if let (Some(count), Some(days)) = (extension_count, extended_days)
        && (count == 0) != (days == 0)
    {
        // Each snooze adds at least a day, so these move together. A mismatch means a hand edit;
        // rather than guess which side is right, ask a human.
        v.push(violation(
            &keys.extension_count,
            tags.get(&keys.extension_count).map(String::as_str),
            ViolationKind::InconsistentExtensions,
            format!(
                "{} is {count} but {} is {days}; both are written by the snooze service and \
                 must be zero together",
                keys.extension_count, keys.extended_days
            ),
        ));
    }
    if let (Some(ttl), Some(days), false) = (ttl, extended_days, ttl_exempt) {
        let extra = SignedDuration::from_secs(i64::from(days) * SECS_PER_DAY);
        // ttl ≤ max_ttl and days ≤ u32::MAX, so this cannot overflow.
        let lifetime = ttl + extra;
        if lifetime > policy.max_lifetime {
            v.push(violation(
                &keys.extended_days,
                tags.get(&keys.extended_days).map(String::as_str),
                ViolationKind::LifetimeAboveMaximum,
                format!(
                    "lifetime {} ({} {} + {days}d extended) is above the maximum of {}",
                    format_duration(lifetime),
                    keys.ttl,
                    format_duration(ttl),
                    format_duration(policy.max_lifetime)
                ),
            ));
        }
    }

    let notified = match tags.get(&keys.notified_stage) {
        None => None,
        Some(value) => match parse_notified_tag_value(value) {
            Ok(stage) => Some(stage),
            Err(e) => {
                notes.push(format!(
                    "ignored tag {:?} = {value:?} ({e}); treating the resource as not notified",
                    keys.notified_stage
                ));
                None
            }
        },
    };

    let released_at = match tags.get(&keys.released_at) {
        None => None,
        Some(value) => match value.parse::<Timestamp>() {
            Ok(at) => Some(at),
            Err(_) => {
                notes.push(format!(
                    "ignored tag {:?} = {value:?} (not an RFC 3339 timestamp); treating the resource as not released",
                    keys.released_at
                ));
                None
            }
        },
    };

    let (
        Some(environment),
        Some(owner),
        Some(project),
        Some(cost_center),
        Some(ttl),
        Some(created_at),
        Some(auto_teardown),
        Some(data_class),
        Some(extension_count),
        Some(extended_days),
    ) = (
        environment,
        owner,
        project,
        cost_center,
        ttl,
        created_at,
        auto_teardown,
        data_class,
        extension_count,
        extended_days,
    )
    else {
        // Every `None` above pushed a violation, so this is never empty.
        debug_assert!(!out.is_empty(), "a tag failed without a violation");
        return Err(out);
    };
    if !out.is_empty() {
        return Err(out);
    }
    Ok(ResourceTags {
        environment,
        owner,
        project,
        cost_center,
        ttl,
        created_at,
        auto_teardown,
        data_class,
        extension_count,
        extended_days,
        notified,
        released_at,
        notes,
    })
}

fn created_at(
    tags: &BTreeMap<String, String>,
    fallback: Option<Timestamp>,
    policy: &TagPolicy,
    now: Timestamp,
    v: &mut Vec<TagViolation>,
    notes: &mut Vec<String>,
) -> Option<Timestamp> {
    let key = &policy.keys.created_at;
    let (created_at, raw) = match (optional(tags, key, v), tags.contains_key(key), fallback) {
        (Some(value), _, _) => match parse_created_at(value) {
            Some(ts) => (ts, value.to_owned()),
            None => {
                v.push(violation(
                    key,
                    Some(value),
                    ViolationKind::InvalidTimestamp,
                    format!(
                        "{key} must be an RFC 3339 timestamp with an offset such as \
                         2026-11-01T10:00:00Z, or a date such as 2026-11-01 (midnight utc)"
                    ),
                ));
                return None;
            }
        },
        // Present but blank: `optional` already reported it.
        (None, true, _) => return None,
        (None, false, Some(ts)) => {
            notes.push(format!(
                "tag {key:?} is absent; using the resource's creation time {ts}"
            ));
            (ts, ts.to_string())
        }
        (None, false, None) => {
            v.push(missing(tags, key));
            return None;
        }
    };
    let latest = now.checked_add(policy.clock_skew).unwrap_or(Timestamp::MAX);
    if created_at > latest {
        // A future creation time would push the deadline out; it is a mistake either way, and
        // reporting it beats silently trusting or clamping it.
        v.push(violation(
            key,
            Some(&raw),
            ViolationKind::CreatedInFuture,
            format!(
                "{key} {created_at} is in the future (now is {now}, allowed clock skew {})",
                format_duration(policy.clock_skew)
            ),
        ));
        return None;
    }
    Some(created_at)
}

fn violation(
    tag: &str,
    value: Option<&str>,
    problem: ViolationKind,
    message: String,
) -> TagViolation {
    TagViolation {
        tag: tag.to_owned(),
        value: value.map(str::to_owned),
        problem,
        message,
    }
}

/// A mandatory tag: reports it missing or blank, else returns the value.
fn required<'t>(
    tags: &'t BTreeMap<String, String>,
    key: &str,
    v: &mut Vec<TagViolation>,
) -> Option<&'t str> {
    if !tags.contains_key(key) {
        v.push(missing(tags, key));
        return None;
    }
    optional(tags, key, v)
}

/// An optional tag: absent is `None` silently, blank is reported and `None`.
fn optional<'t>(
    tags: &'t BTreeMap<String, String>,
    key: &str,
    v: &mut Vec<TagViolation>,
) -> Option<&'t str> {
    let value = tags.get(key)?;
    if value.trim().is_empty() {
        v.push(violation(
            key,
            Some(value),
            ViolationKind::Empty,
            format!("{key} must not be blank"),
        ));
        return None;
    }
    Some(value)
}

fn missing(tags: &BTreeMap<String, String>, key: &str) -> TagViolation {
    // `Environment` or `created-at` instead of the real key is the commonest mistake; name it.
    let wanted = normalize_key(key);
    let near = tags.keys().find(|k| normalize_key(k) == wanted);
    let message = match near {
        Some(near) => format!("missing (found {near:?}; tag keys must match exactly)"),
        None => "missing".to_owned(),
    };
    violation(key, None, ViolationKind::Missing, message)
}

fn normalize_key(key: &str) -> String {
    key.trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn one_of(key: &str, value: &str, allowed: &[String], v: &mut Vec<TagViolation>) -> Option<String> {
    if allowed.iter().any(|a| a == value) {
        return Some(value.to_owned());
    }
    let mut message = format!("{key} must be one of {}", allowed.join(", "));
    if let Some(near) = allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(value.trim()))
    {
        message.push_str(&format!(
            " (did you mean {near:?}? values are case-sensitive)"
        ));
    }
    v.push(violation(
        key,
        Some(value),
        ViolationKind::NotAllowed,
        message,
    ));
    None
}

fn ttl_above_maximum(key: &str, value: &str, policy: &TagPolicy) -> TagViolation {
    violation(
        key,
        Some(value),
        ViolationKind::TtlAboveMaximum,
        format!(
            "{key} {value} is above the maximum of {}",
            format_duration(policy.max_ttl)
        ),
    )
}

fn lifetime_above_maximum(key: &str, value: &str, policy: &TagPolicy) -> TagViolation {
    violation(
        key,
        Some(value),
        ViolationKind::LifetimeAboveMaximum,
        format!(
            "{key} {value} is above the maximum lifetime of {}",
            format_duration(policy.max_lifetime)
        ),
    )
}

enum Natural {
    Value(u64),
    TooLarge,
    NotANumber,
}

/// ASCII digits only: no sign, no spaces, no fraction.
fn parse_natural(text: &str) -> Natural {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Natural::NotANumber;
    }
    text.parse().map_or(Natural::TooLarge, Natural::Value)
}

/// Fixtures shared by the unit tests of this crate.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// The run's clock in tests; the valid fixture's deadline is 2026-11-08T10:00:00Z.
    pub(crate) fn now() -> Timestamp {
        ts("2026-11-05T10:00:00Z")
    }

    pub(crate) fn ts(text: &str) -> Timestamp {
        text.parse().expect("test timestamp")
    }

    /// Builds a tag map from a valid baseline: `TagsBuilder::valid().with("ttl", "45d")`.
    #[derive(Debug, Clone)]
    pub(crate) struct TagsBuilder {
        tags: BTreeMap<String, String>,
        fallback: Option<Timestamp>,
    }

    impl TagsBuilder {
        /// A dev resource owned by alice, created 2026-11-01T10:00:00Z with a 7d ttl.
        pub(crate) fn valid() -> Self {
            let tags = [
                ("environment", "dev"),
                ("owner", "alice@example.com"),
                ("project", "checkout"),
                ("cost-center", "cc-1234"),
                ("ttl", "7d"),
                ("created_at", "2026-11-01T10:00:00Z"),
                ("auto-teardown", "true"),
                ("data-class", "internal"),
            ];
            Self {
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                fallback: None,
            }
        }

        pub(crate) fn with(mut self, key: &str, value: &str) -> Self {
            self.tags.insert(key.to_owned(), value.to_owned());
            self
        }

        pub(crate) fn without(mut self, key: &str) -> Self {
            self.tags.remove(key);
            self
        }

        pub(crate) fn fallback(mut self, created: Timestamp) -> Self {
            self.fallback = Some(created);
            self
        }

        pub(crate) fn parse_with(
            &self,
            policy: &TagPolicy,
            now: Timestamp,
        ) -> Result<ResourceTags, Vec<TagViolation>> {
            parse_tags(&self.tags, self.fallback, policy, now)
        }

        pub(crate) fn parse(&self) -> Result<ResourceTags, Vec<TagViolation>> {
            self.parse_with(&TagPolicy::default(), now())
        }

        /// Parses and panics with every violation if there is one.
        pub(crate) fn build(&self) -> ResourceTags {
            match self.parse() {
                Ok(tags) => tags,
                Err(violations) => panic!("fixture has violations: {violations:#?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TagsBuilder, now, ts};
    use super::*;
    use crate::policy::Stage;
    use ViolationKind as K;

    fn violations(builder: &TagsBuilder) -> Vec<TagViolation> {
        match builder.parse() {
            Ok(tags) => panic!("expected violations, parsed {tags:#?}"),
            Err(v) => v,
        }
    }

    fn kinds(v: &[TagViolation]) -> Vec<(&str, ViolationKind)> {
        v.iter().map(|v| (v.tag.as_str(), v.problem)).collect()
    }

    #[test]
    fn valid_fixture_parses_to_expected_values() {
        let tags = TagsBuilder::valid().build();
        assert_eq!(tags.environment, "dev");
        assert_eq!(tags.owner, "alice@example.com");
        assert_eq!(tags.project, "checkout");
        assert_eq!(tags.cost_center, "cc-1234");
        assert_eq!(tags.ttl, SignedDuration::from_hours(7 * 24));
        assert_eq!(tags.created_at, ts("2026-11-01T10:00:00Z"));
        assert!(tags.auto_teardown);
        assert_eq!(tags.data_class, "internal");
        assert_eq!(tags.extension_count, 0);
        assert_eq!(tags.extended_days, 0);
        assert_eq!(tags.notified, None);
        assert!(tags.notes.is_empty());
    }

    #[test]
    fn every_bad_value_of_every_tag_is_one_violation_of_the_right_kind() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, ViolationKind)] = &[
            ("environment", "", K::Empty),
            ("environment", "   ", K::Empty),
            ("environment", "production", K::NotAllowed),
            ("environment", "Prod", K::NotAllowed),
            ("environment", "DEV", K::NotAllowed),
            ("environment", "dev ", K::NotAllowed),
            ("environment", "qa", K::NotAllowed),
            ("owner", "", K::Empty),
            ("owner", "alice", K::InvalidEmail),
            ("owner", "alice@", K::InvalidEmail),
            ("owner", "@example.com", K::InvalidEmail),
            ("owner", "alice@example", K::InvalidEmail),
            ("owner", "alice@.com", K::InvalidEmail),
            ("owner", "alice@example.", K::InvalidEmail),
            ("owner", "alice@@example.com", K::InvalidEmail),
            ("owner", "alice@bob@example.com", K::InvalidEmail),
            ("owner", "alice smith@example.com", K::InvalidEmail),
            ("owner", " alice@example.com", K::InvalidEmail),
            ("owner", "team-payments", K::InvalidEmail),
            ("project", "", K::Empty),
            ("project", " \t", K::Empty),
            ("cost-center", "", K::Empty),
            ("cost-center", "  ", K::Empty),
            ("ttl", "", K::Empty),
            ("ttl", "7", K::InvalidTtl),
            ("ttl", "d", K::InvalidTtl),
            ("ttl", "7 d", K::InvalidTtl),
            ("ttl", " 7d", K::InvalidTtl),
            ("ttl", "7D", K::InvalidTtl),
            ("ttl", "7days", K::InvalidTtl),
            ("ttl", "1w", K::InvalidTtl),
            ("ttl", "30m", K::InvalidTtl),
            ("ttl", "7.5d", K::InvalidTtl),
            ("ttl", "+7d", K::InvalidTtl),
            ("ttl", "P7D", K::InvalidTtl),
            ("ttl", "7d12h", K::InvalidTtl),
            ("ttl", "-d", K::InvalidTtl),
            ("ttl", "0d", K::NonPositiveTtl),
            ("ttl", "0h", K::NonPositiveTtl),
            ("ttl", "-7d", K::NonPositiveTtl),
            ("ttl", "31d", K::TtlAboveMaximum),
            ("ttl", "45d", K::TtlAboveMaximum),
            ("ttl", "721h", K::TtlAboveMaximum),
            ("ttl", "99999999999999999999d", K::TtlAboveMaximum),
            ("ttl", "9223372036854775807d", K::TtlAboveMaximum),
            ("created_at", "", K::Empty),
            ("created_at", "yesterday", K::InvalidTimestamp),
            ("created_at", "2026-11-01T10:00:00", K::InvalidTimestamp),
            ("created_at", "2026-11-01 10:00", K::InvalidTimestamp),
            ("created_at", "2026-13-01", K::InvalidTimestamp),
            ("created_at", "2026-02-30", K::InvalidTimestamp),
            ("created_at", "2026-11-01T25:00:00Z", K::InvalidTimestamp),
            ("created_at", "01/11/2026", K::InvalidTimestamp),
            ("created_at", "1793527200", K::InvalidTimestamp),
            ("created_at", "2026-11-05T10:05:01Z", K::CreatedInFuture),
            ("created_at", "2027-01-01", K::CreatedInFuture),
            ("auto-teardown", "", K::Empty),
            ("auto-teardown", "True", K::InvalidBool),
            ("auto-teardown", "TRUE", K::InvalidBool),
            ("auto-teardown", "yes", K::InvalidBool),
            ("auto-teardown", "1", K::InvalidBool),
            ("auto-teardown", "true ", K::InvalidBool),
            ("auto-teardown", "False", K::InvalidBool),
            ("data-class", "", K::Empty),
            ("data-class", "secret", K::NotAllowed),
            ("data-class", "Restricted", K::NotAllowed),
            ("data-class", "internal ", K::NotAllowed),
            ("ttl-extension-count", "", K::Empty),
            ("ttl-extension-count", "3", K::TooManyExtensions),
            ("ttl-extension-count", "300", K::TooManyExtensions),
            ("ttl-extension-count", "99999999999999999999", K::TooManyExtensions),
            ("ttl-extension-count", "-1", K::InvalidExtensionCount),
            ("ttl-extension-count", "+1", K::InvalidExtensionCount),
            ("ttl-extension-count", "one", K::InvalidExtensionCount),
            ("ttl-extension-count", "1.0", K::InvalidExtensionCount),
            ("ttl-extension-count", " 1", K::InvalidExtensionCount),
            ("ttl-extended-days", "", K::Empty),
            ("ttl-extended-days", "-7", K::InvalidExtendedDays),
            ("ttl-extended-days", "7d", K::InvalidExtendedDays),
            ("ttl-extended-days", "seven", K::InvalidExtendedDays),
            ("ttl-extended-days", "1.5", K::InvalidExtendedDays),
            ("ttl-extended-days", "4294967296", K::LifetimeAboveMaximum),
            ("ttl-extended-days", "99999999999999999999", K::LifetimeAboveMaximum),
        ];
        for (tag, value, kind) in cases {
            let got = violations(&TagsBuilder::valid().with(tag, value));
            assert_eq!(kinds(&got), [(*tag, *kind)], "{tag} = {value:?}: {got:#?}");
        }
    }

    #[test]
    fn every_missing_mandatory_tag_is_a_missing_violation() {
        for tag in [
            "environment",
            "owner",
            "project",
            "cost-center",
            "ttl",
            "created_at",
            "auto-teardown",
            "data-class",
        ] {
            let got = violations(&TagsBuilder::valid().without(tag));
            assert_eq!(kinds(&got), [(tag, K::Missing)], "{tag}");
            assert_eq!(got[0].value, None);
        }
    }

    #[test]
    fn optional_tags_may_be_absent() {
        let tags = TagsBuilder::valid()
            .without("ttl-extension-count")
            .without("ttl-extended-days")
            .without("ttl-notified-stage")
            .build();
        assert_eq!((tags.extension_count, tags.extended_days), (0, 0));
    }

    #[test]
    fn all_violations_are_reported_together() {
        let got = violations(
            &TagsBuilder::valid()
                .with("environment", "production")
                .without("owner")
                .with("project", "")
                .with("ttl", "45d")
                .with("created_at", "soon")
                .with("auto-teardown", "yes")
                .with("data-class", "secret")
                .with("ttl-extension-count", "9")
                .with("ttl-extended-days", "many"),
        );
        assert_eq!(
            kinds(&got),
            [
                ("environment", K::NotAllowed),
                ("owner", K::Missing),
                ("project", K::Empty),
                ("ttl", K::TtlAboveMaximum),
                ("created_at", K::InvalidTimestamp),
                ("auto-teardown", K::InvalidBool),
                ("data-class", K::NotAllowed),
                ("ttl-extension-count", K::TooManyExtensions),
                ("ttl-extended-days", K::InvalidExtendedDays),
            ]
        );
    }

    #[test]
    fn violation_display_names_tag_value_and_problem() {
        let got = violations(&TagsBuilder::valid().with("ttl", "45d"));
        assert_eq!(
            got[0].to_string(),
            r#"tag "ttl" = "45d": ttl 45d is above the maximum of 30d"#
        );
        let got = violations(&TagsBuilder::valid().without("owner"));
        assert_eq!(got[0].to_string(), r#"tag "owner": missing"#);
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let got = violations(
            &TagsBuilder::valid()
                .with("environment", "Prod")
                .with("owner", "x")
                .with("project", "")
                .with("ttl", "0d")
                .with("created_at", "2030-01-01T00:00:00Z")
                .with("auto-teardown", "YES")
                .with("data-class", "x")
                .with("ttl-extension-count", "1")
                .without("cost-center"),
        );
        assert_eq!(got.len(), 9, "{got:#?}");
        for v in got {
            let first = v.message.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{v}");
            assert!(!v.message.ends_with('.'), "{v}");
        }
    }

    #[test]
    fn value_is_escaped_in_display() {
        let got = violations(&TagsBuilder::valid().with("environment", "dev\nINFO forged"));
        assert!(
            got[0].to_string().contains(r#""dev\nINFO forged""#),
            "{}",
            got[0]
        );
    }

    #[test]
    fn case_mismatch_gets_a_hint() {
        let got = violations(&TagsBuilder::valid().with("environment", "Prod"));
        assert_eq!(
            got[0].message,
            "environment must be one of dev, staging, sandbox, demo, prod \
             (did you mean \"prod\"? values are case-sensitive)"
        );
        let got = violations(
            &TagsBuilder::valid()
                .without("environment")
                .with("Environment", "dev"),
        );
        assert_eq!(
            got[0].message,
            "missing (found \"Environment\"; tag keys must match exactly)"
        );
        let got = violations(
            &TagsBuilder::valid()
                .without("created_at")
                .with("created-at", "2026-11-01T10:00:00Z"),
        );
        assert_eq!(kinds(&got), [("created_at", K::Missing)]);
    }

    #[test]
    fn created_at_formats() {
        let cases = [
            ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00Z"),
            ("2026-11-01T10:00:00z", "2026-11-01T10:00:00Z"),
            ("2026-11-01T12:00:00+02:00", "2026-11-01T10:00:00Z"),
            ("2026-11-01T05:00:00-05:00", "2026-11-01T10:00:00Z"),
            ("2026-11-01T10:00:00.250Z", "2026-11-01T10:00:00.25Z"),
            ("2026-11-01T10:00Z", "2026-11-01T10:00:00Z"),
            ("2026-11-01", "2026-11-01T00:00:00Z"),
        ];
        for (text, want) in cases {
            let tags = TagsBuilder::valid().with("created_at", text).build();
            assert_eq!(tags.created_at, ts(want), "{text}");
        }
    }

    #[test]
    fn bare_date_today_is_not_in_the_future() {
        let tags = TagsBuilder::valid()
            .with("created_at", "2026-11-05")
            .build();
        assert_eq!(tags.created_at, ts("2026-11-05T00:00:00Z"));
        let got = violations(&TagsBuilder::valid().with("created_at", "2026-11-06"));
        assert_eq!(kinds(&got), [("created_at", K::CreatedInFuture)]);
    }

    #[test]
    fn fallback_created_at_is_used_only_when_the_tag_is_absent() {
        let k8s = ts("2026-11-02T08:00:00Z");
        let tags = TagsBuilder::valid()
            .without("created_at")
            .fallback(k8s)
            .build();
        assert_eq!(tags.created_at, k8s);
        assert_eq!(tags.notes.len(), 1, "{:?}", tags.notes);

        let tags = TagsBuilder::valid().fallback(k8s).build();
        assert_eq!(tags.created_at, ts("2026-11-01T10:00:00Z"), "tag wins");

        for bad in ["", "soon"] {
            let got = violations(&TagsBuilder::valid().with("created_at", bad).fallback(k8s));
            assert_eq!(got.len(), 1, "{bad:?} must not fall back: {got:#?}");
        }
    }

    #[test]
    fn future_fallback_created_at_is_a_violation() {
        let got = violations(
            &TagsBuilder::valid()
                .without("created_at")
                .fallback(ts("2026-11-05T11:00:00Z")),
        );
        assert_eq!(kinds(&got), [("created_at", K::CreatedInFuture)]);
        assert_eq!(got[0].value.as_deref(), Some("2026-11-05T11:00:00Z"));
    }

    #[test]
    fn future_created_at_within_clock_skew_is_accepted() {
        let tags = TagsBuilder::valid()
            .with("created_at", "2026-11-05T10:05:00Z")
            .build();
        assert_eq!(tags.created_at, ts("2026-11-05T10:05:00Z"));
        let got = violations(&TagsBuilder::valid().with("created_at", "2026-11-05T10:05:01Z"));
        assert_eq!(kinds(&got), [("created_at", K::CreatedInFuture)]);
        assert_eq!(
            got[0].to_string(),
            "tag \"created_at\" = \"2026-11-05T10:05:01Z\": created_at 2026-11-05T10:05:01Z is \
             in the future (now is 2026-11-05T10:00:00Z, allowed clock skew 5m)"
        );
    }

    #[test]
    fn clock_skew_is_configurable() {
        let strict = TagPolicy {
            clock_skew: SignedDuration::ZERO,
            ..TagPolicy::default()
        };
        let at_now = TagsBuilder::valid().with("created_at", "2026-11-05T10:00:00Z");
        assert!(at_now.parse_with(&strict, now()).is_ok());
        let later = TagsBuilder::valid().with("created_at", "2026-11-05T10:00:01Z");
        let got = later.parse_with(&strict, now()).unwrap_err();
        assert_eq!(kinds(&got), [("created_at", K::CreatedInFuture)]);

        let lenient = TagPolicy {
            clock_skew: SignedDuration::from_hours(1),
            ..TagPolicy::default()
        };
        let skewed = TagsBuilder::valid().with("created_at", "2026-11-05T10:59:00Z");
        assert!(skewed.parse_with(&lenient, now()).is_ok());
    }

    #[test]
    fn ttl_accepts_days_and_hours_up_to_the_maximum() {
        for (text, hours) in [
            ("1h", 1),
            ("12h", 12),
            ("1d", 24),
            ("07d", 168),
            ("30d", 720),
        ] {
            let tags = TagsBuilder::valid().with("ttl", text).build();
            assert_eq!(tags.ttl, SignedDuration::from_hours(hours), "{text}");
        }
        let tags = TagsBuilder::valid().with("ttl", "720h").build();
        assert_eq!(tags.ttl, SignedDuration::from_hours(720));
    }

    #[test]
    fn max_ttl_is_configurable() {
        let policy = TagPolicy {
            max_ttl: SignedDuration::from_hours(14 * 24),
            ..TagPolicy::default()
        };
        let got = TagsBuilder::valid()
            .with("ttl", "15d")
            .parse_with(&policy, now())
            .unwrap_err();
        assert_eq!(got[0].message, "ttl 15d is above the maximum of 14d");
    }

    #[test]
    fn extensions_within_the_lifetime_cap_are_accepted() {
        let tags = TagsBuilder::valid()
            .with("ttl", "30d")
            .with("ttl-extension-count", "2")
            .with("ttl-extended-days", "30")
            .build();
        assert_eq!((tags.extension_count, tags.extended_days), (2, 30));
        assert_eq!(tags.extension(), SignedDuration::from_hours(30 * 24));
    }

    #[test]
    fn lifetime_above_the_cap_is_a_violation() {
        let got = violations(
            &TagsBuilder::valid()
                .with("ttl", "30d")
                .with("ttl-extension-count", "2")
                .with("ttl-extended-days", "31"),
        );
        assert_eq!(
            kinds(&got),
            [("ttl-extended-days", K::LifetimeAboveMaximum)]
        );
        assert_eq!(
            got[0].to_string(),
            "tag \"ttl-extended-days\" = \"31\": lifetime 61d (ttl 30d + 31d extended) is \
             above the maximum of 60d"
        );
        // Hours count too: 12h + 60d is over 60d.
        let got = violations(
            &TagsBuilder::valid()
                .with("ttl", "12h")
                .with("ttl-extension-count", "1")
                .with("ttl-extended-days", "60"),
        );
        assert_eq!(
            kinds(&got),
            [("ttl-extended-days", K::LifetimeAboveMaximum)]
        );
    }

    #[test]
    fn extension_count_and_days_must_agree() {
        let got = violations(&TagsBuilder::valid().with("ttl-extension-count", "1"));
        assert_eq!(
            kinds(&got),
            [("ttl-extension-count", K::InconsistentExtensions)]
        );
        let got = violations(&TagsBuilder::valid().with("ttl-extended-days", "7"));
        assert_eq!(
            kinds(&got),
            [("ttl-extension-count", K::InconsistentExtensions)]
        );
        assert_eq!(got[0].value, None);
        let tags = TagsBuilder::valid()
            .with("ttl-extension-count", "0")
            .with("ttl-extended-days", "0")
            .build();
        assert_eq!((tags.extension_count, tags.extended_days), (0, 0));
    }

    #[test]
    fn notified_stage_is_parsed() {
        let tags = TagsBuilder::valid()
            .with("ttl-notified-stage", "warn-48h@2026-11-08T10:00:00Z")
            .build();
        let notified = tags.notified.expect("notified");
        assert_eq!(notified.stage, Stage::Warn48h);
        assert_eq!(notified.deadline, ts("2026-11-08T10:00:00Z"));
    }

    #[test]
    fn malformed_notified_stage_is_ignored_with_a_note() {
        for bad in [
            "",
            "warn-48h",
            "warn-12h@2026-11-08T10:00:00Z",
            "warn-48h@tomorrow",
            "WARN-48H@2026-11-08T10:00:00Z",
        ] {
            let tags = TagsBuilder::valid().with("ttl-notified-stage", bad).build();
            assert_eq!(tags.notified, None, "{bad:?}");
            assert_eq!(tags.notes.len(), 1, "{bad:?}");
            assert!(
                tags.notes[0].contains("ttl-notified-stage"),
                "{:?}",
                tags.notes
            );
        }
    }

    #[test]
    fn configured_key_names_are_used_everywhere() {
        let policy = TagPolicy {
            keys: TagKeys {
                environment: "Environment".into(),
                ttl: "TTL".into(),
                ..TagKeys::default()
            },
            ..TagPolicy::default()
        };
        let tags = TagsBuilder::valid()
            .without("environment")
            .without("ttl")
            .with("Environment", "staging")
            .with("TTL", "90d");
        let got = tags.parse_with(&policy, now()).unwrap_err();
        assert_eq!(kinds(&got), [("TTL", K::TtlAboveMaximum)]);
        assert_eq!(got[0].message, "TTL 90d is above the maximum of 30d");
    }

    #[test]
    fn owner_email_check() {
        for ok in ["alice@example.com", "a.b+c@sub.example.co.uk", "x@y.z"] {
            assert!(is_plausible_email(ok), "{ok}");
        }
    }

    #[test]
    fn parse_ttl_errors() {
        assert_eq!(parse_ttl("7d"), Ok(SignedDuration::from_hours(168)));
        assert_eq!(parse_ttl(""), Err(TtlError::Malformed));
        assert_eq!(parse_ttl("-0d"), Err(TtlError::NotPositive));
        assert_eq!(
            parse_ttl("-99999999999999999999d"),
            Err(TtlError::NotPositive)
        );
        assert_eq!(parse_ttl("99999999999999999999h"), Err(TtlError::TooLarge));
        assert_eq!(parse_ttl("7é"), Err(TtlError::Malformed));
    }

    #[test]
    fn format_duration_uses_the_largest_whole_unit() {
        let cases = [
            (SignedDuration::from_hours(720), "30d"),
            (SignedDuration::from_hours(36), "36h"),
            (SignedDuration::from_mins(5), "5m"),
            (SignedDuration::from_secs(90), "90s"),
            (SignedDuration::ZERO, "0s"),
        ];
        for (duration, want) in cases {
            assert_eq!(format_duration(duration), want);
        }
    }

    #[test]
    fn default_policy_is_valid() {
        assert_eq!(TagPolicy::default().validate(), Ok(()));
    }

    #[test]
    fn policy_deserializes_with_defaults_and_durations() {
        let policy: TagPolicy = serde_json::from_str(
            r#"{"max_ttl": "14d", "clock_skew": "30s", "keys": {"owner": "Owner"}}"#,
        )
        .unwrap();
        assert_eq!(policy.max_ttl, SignedDuration::from_hours(14 * 24));
        assert_eq!(policy.clock_skew, SignedDuration::from_secs(30));
        assert_eq!(policy.keys.owner, "Owner");
        assert_eq!(policy.keys.ttl, "ttl");
        assert_eq!(policy.prod_environments, ["prod"]);
        assert_eq!(policy.validate(), Ok(()));
    }

    #[test]
    fn policy_rejects_unknown_fields_and_bad_durations() {
        for bad in [
            r#"{"max-ttl": "14d"}"#,
            r#"{"keys": {"env": "Environment"}}"#,
            r#"{"max_ttl": "two weeks"}"#,
            r#"{"max_ttl": "-1d"}"#,
            r#"{"clock_skew": 300}"#,
        ] {
            assert!(serde_json::from_str::<TagPolicy>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn incoherent_policy_lists_every_problem() {
        let policy = TagPolicy {
            allowed_environments: strings(&["dev", ""]),
            prod_environments: vec![],
            restricted_data_classes: strings(&["top-secret"]),
            max_ttl: SignedDuration::from_hours(24 * 90),
            keys: TagKeys {
                extended_days: "ttl".into(),
                owner: " ".into(),
                ..TagKeys::default()
            },
            ..TagPolicy::default()
        };
        let err = policy.validate().unwrap_err();
        assert_eq!(
            err.problems,
            [
                "prod_environments must not be empty",
                "allowed_environments must not contain a blank value",
                "restricted_data_classes: \"top-secret\" is not in allowed_data_classes",
                "max_lifetime 60d is below max_ttl 90d",
                "keys.owner must not be blank",
                "keys.extended_days and keys.ttl are both \"ttl\"",
            ]
        );
        let policy = TagPolicy {
            prod_environments: strings(&["production"]),
            max_ttl: SignedDuration::ZERO,
            clock_skew: SignedDuration::from_secs(-1),
            ..TagPolicy::default()
        };
        assert_eq!(
            policy.validate().unwrap_err().problems,
            [
                "prod_environments: \"production\" is not in allowed_environments",
                "max_ttl must be positive",
                "clock_skew must not be negative",
            ]
        );
    }
}
