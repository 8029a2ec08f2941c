//! The warning stages and the record of the last warning sent, `stage@deadline@sent_at`: the
//! format of the job's own `ttl-notified-stage` tag. It lives apart from the policy so that the
//! tag parser (`tags`) and the policy (`policy`, which decides the stage) both use it without
//! depending on each other.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How close a resource is to its deadline. Ordered: `Ok < Warn48h < Warn24h < Expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    /// More than 48 hours left.
    #[serde(rename = "ok")]
    Ok,
    /// 48 hours or less left.
    #[serde(rename = "warn-48h")]
    Warn48h,
    /// 24 hours or less left.
    #[serde(rename = "warn-24h")]
    Warn24h,
    /// The deadline has passed (`now >= deadline`).
    #[serde(rename = "expired")]
    Expired,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 4] = [Stage::Ok, Stage::Warn48h, Stage::Warn24h, Stage::Expired];

    /// The stable name: `ok`, `warn-48h`, `warn-24h` or `expired` (as serialized).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn48h => "warn-48h",
            Self::Warn24h => "warn-24h",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the stage names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage {0:?}, expected ok, warn-48h, warn-24h or expired")]
pub struct ParseStageError(String);

impl FromStr for Stage {
    type Err = ParseStageError;

    /// Exact, case-sensitive match on [`Stage::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| ParseStageError(s.to_owned()))
    }
}

/// The warning last recorded on a resource, the deadline it was about and when it was sent.
/// Its tag value is `stage@deadline@sent_at`, e.g.
/// `warn-48h@2026-11-25T10:00:00Z@2026-11-23T10:05:00Z`; `stage@deadline` (without the time
/// sent, as older versions wrote it) is read too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotifiedStage {
    /// The warning that was sent.
    pub stage: Stage,
    /// The deadline the warning was about; a record for any other deadline is ignored.
    pub deadline: Timestamp,
    /// When it was sent (the run's evaluation instant); `None` in a record of an older version.
    pub sent_at: Option<Timestamp>,
}

impl fmt::Display for NotifiedStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.stage, self.deadline)?;
        match self.sent_at {
            Some(sent) => write!(f, "@{sent}"),
            None => Ok(()),
        }
    }
}

/// A notified-stage tag value that is not `stage@deadline[@sent_at]`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParseNotifiedStageError {
    /// No `@` separator.
    #[error(
        "expected <stage>@<deadline>[@<sent at>] such as warn-48h@2026-11-25T10:00:00Z@2026-11-23T10:05:00Z"
    )]
    MissingSeparator,
    /// The part before `@` is not a stage name.
    #[error(transparent)]
    Stage(#[from] ParseStageError),
    /// A part after `@` is not a timestamp with an offset.
    #[error("invalid timestamp {text:?}")]
    Deadline {
        /// The text that is not a timestamp.
        text: String,
        /// Why jiff rejected it.
        #[source]
        source: jiff::Error,
    },
}

impl FromStr for NotifiedStage {
    type Err = ParseNotifiedStageError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_notified_tag_value(s)
    }
}

/// The notified-stage tag value recording that `stage` was sent at `sent_at` for `deadline`,
/// e.g. `warn-48h@2026-11-25T10:00:00Z@2026-11-23T10:05:00Z`. Timestamps are printed
/// losslessly (fractional seconds when there are any) so that they parse back to the very same
/// instants.
pub fn notified_tag_value(stage: Stage, deadline: Timestamp, sent_at: Timestamp) -> String {
    NotifiedStage {
        stage,
        deadline,
        sent_at: Some(sent_at),
    }
    .to_string()
}

/// Parses a value written by [`notified_tag_value`]: an exact stage name, `@`, an RFC 3339
/// deadline with an offset, and optionally `@` and the RFC 3339 time it was sent.
pub fn parse_notified_tag_value(value: &str) -> Result<NotifiedStage, ParseNotifiedStageError> {
    let (stage, rest) = value
        .split_once('@')
        .ok_or(ParseNotifiedStageError::MissingSeparator)?;
    let stage = stage.parse()?;
    let (deadline, sent_at) = match rest.split_once('@') {
        Some((deadline, sent)) => (deadline, Some(sent)),
        None => (rest, None),
    };
    let time = |text: &str| {
        text.parse::<Timestamp>()
            .map_err(|source| ParseNotifiedStageError::Deadline {
                text: text.to_owned(),
                source,
            })
    };
    Ok(NotifiedStage {
        stage,
        deadline: time(deadline)?,
        sent_at: sent_at.map(time).transpose()?,
    })
}
