//! The rotation of one secret, step by step (see [`crate::journal::Step`]), with the journal
//! written before every step so that a run that dies anywhere is resumed by the next one with
//! the same rotation id and the same pending value.
//!
//! Failure handling depends on how far the rotation got:
//! - before the main Vault path is written (set, test, a check-and-set conflict at promote): the
//!   target is restored where it was changed, the pending value deleted, the rotation marked
//!   failed; consumers never saw the new value;
//! - after it (a Secret that cannot be written, a rollout that fails or times out): **rollback**:
//!   the target restored, Vault written back to the previous version's data, the Secrets back,
//!   the consumers restarted again, the rotation marked failed;
//! - a restore (or a rollback of the target, Vault or a Secret) that itself fails leaves the
//!   journal in progress, so the next run resumes and finishes it (rather than forgetting a
//!   target that holds a value Vault does not).
//!
//! Every failure tells the owner and on-call, and publishes `secret-rotation-failed`.

use std::time::Duration;

use common::config::Email;
use common::event::{AlertSent, Severity};
use common::harness::{LockLost, RunContext};
use common::notify::Notification;
use jiff::Timestamp;
use serde_json::json;

use crate::config::{RotationConfig, SecretDecl, VaultPath};
use crate::journal::{Journal, State, Step};
use crate::kube::{Kube, Workload};
use crate::targets::Target;
use crate::value::{self, Data};
use crate::vault::{Metadata, Vault, VaultError};

/// What every rotation of a run shares.
pub struct Env<'a> {
    /// Vault.
    pub vault: &'a Vault,
    /// Kubernetes, when any secret has Secrets or consumers.
    pub kube: Option<&'a Kube>,
    /// Where pending values live under each mount.
    pub pending_prefix: &'a str,
    /// Consumers restarted at once.
    pub wave: usize,
    /// Grace period before the old credential is retired.
    pub grace: Duration,
    /// The hidden `--pause-after` test hook.
    pub pause_after: Option<Step>,
    /// On-call recipients of failure alerts (the config's `notify.email_to`).
    pub on_call: &'a [Email],
}

/// How a rotation ended in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Result_ {
    /// Finished: the new value is in Vault and every consumer runs on it.
    Rotated {
        /// The KV version written.
        version: u64,
    },
    /// Failed and undone.
    Failed {
        /// Where.
        step: Step,
        /// Why.
        reason: String,
        /// Whether a rollback ran (the failure came after Vault was written), and whether every
        /// consumer came back up on the old value.
        rolled_back: Option<bool>,
    },
    /// Stopped half-way and left in progress for the next run (a restore that failed, a lost
    /// lock, a journal write refused).
    Interrupted {
        /// Where.
        step: Step,
        /// Why.
        reason: String,
    },
    /// The old credential of an earlier rotation was retired.
    Retired,
}

/// What the run reports about one rotation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The rotation.
    pub rotation_id: String,
    /// The last step it reached.
    pub reached: Step,
    /// How it ended.
    pub result: Result_,
    /// Whether it resumed an interrupted rotation.
    pub resumed: bool,
    /// The consumers it restarted (or found).
    pub consumers: Vec<String>,
    /// Whether the old credential died when the new one was set.
    pub disruptive: bool,
    /// Alerts it sent.
    pub alerts: Vec<AlertSent>,
    /// An event that Kafka did not acknowledge: the run must stop acting.
    pub audit_failure: Option<String>,
    /// The run lock was lost: the run must stop acting.
    pub lock_lost: Option<LockLost>,
}

/// Why a step did not complete.
enum Stop {
    /// Nothing (or nothing that matters) changed yet: undo the target, mark failed.
    Fail {
        step: Step,
        reason: String,
        /// The target refused the value: no restore is needed.
        rejected: bool,
    },
    /// Vault has the new value: roll everything back.
    Rollback { step: Step, reason: String },
    /// Leave the journal as it is for the next run.
    Interrupted { step: Step, reason: String },
    /// Kafka did not acknowledge an audit event.
    Audit(String),
    /// The run lock is gone.
    Lock(LockLost),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Fail { step, reason, .. }
            | Stop::Rollback { step, reason }
            | Stop::Interrupted { step, reason } => write!(f, "{step}: {reason}"),
            Stop::Audit(reason) => f.write_str(reason),
            Stop::Lock(lost) => write!(f, "{lost}"),
        }
    }
}

/// One rotation in progress.
struct Rotation<'r, 'c> {
    ctx: &'r RunContext<'c, RotationConfig>,
    env: &'r Env<'r>,
    decl: &'r SecretDecl,
    target: &'r Target,
    journal: Journal,
    metadata_cas: Option<u64>,
    rotation_id: String,
    field: String,
    pending: VaultPath,
    old: Option<Data>,
    new: Option<Data>,
    consumers: Vec<Workload>,
    outcome: Outcome,
}

/// The path of a rotation's pending value: `<mount>/<prefix>/<path>/<rotation id>`.
pub fn pending_path(vp: &VaultPath, prefix: &str, rotation_id: &str) -> VaultPath {
    VaultPath {
        mount: vp.mount.clone(),
        path: format!("{}/{}/{rotation_id}", prefix.trim_matches('/'), vp.path),
    }
}

fn vault_err(step: Step, e: VaultError) -> Stop {
    Stop::Interrupted {
        step,
        reason: e.to_string(),
    }
}

/// Rotates (or resumes rotating) one secret. `consumers` were found by the plan.
pub async fn rotate(
    ctx: &RunContext<'_, RotationConfig>,
    env: &Env<'_>,
    decl: &SecretDecl,
    target: &Target,
    meta: &Metadata,
    consumers: Vec<Workload>,
) -> Outcome {
    let journal = Journal::from_metadata(&meta.custom);
    let (rotation_id, start, resumed) = match (journal.in_progress(), &journal.rotation_id) {
        (Some(step), Some(id)) => (id.clone(), step, true),
        _ => (uuid::Uuid::now_v7().to_string(), Step::Journal, false),
    };
    let mut r = Rotation {
        ctx,
        env,
        decl,
        target,
        metadata_cas: meta.metadata_version,
        pending: pending_path(&decl.vault, env.pending_prefix, &rotation_id),
        field: decl.value_field(),
        old: None,
        new: None,
        outcome: Outcome {
            rotation_id: rotation_id.clone(),
            reached: start,
            result: Result_::Interrupted {
                step: start,
                reason: "not started".into(),
            },
            resumed,
            consumers: consumers.iter().map(ToString::to_string).collect(),
            disruptive: target_disruptive(decl),
            alerts: Vec::new(),
            audit_failure: None,
            lock_lost: None,
        },
        consumers,
        rotation_id,
        journal,
    };
    if resumed {
        tracing::info!(secret = %decl.name, rotation_id = %r.rotation_id, step = %start, "resuming an interrupted rotation");
    }
    let result = r.drive(start, meta.current_version).await;
    match result {
        Ok(version) => r.outcome.result = Result_::Rotated { version },
        Err(stop) => r.stopped(stop).await,
    }
    r.outcome
}

/// Whether an interruption at `step` means the rotation never started: its first journal write
/// (the only write of the journal step) did not happen, so there is nothing to resume.
pub fn not_started(step: Step, resumed: bool) -> bool {
    step == Step::Journal && !resumed
}

fn target_disruptive(decl: &SecretDecl) -> bool {
    decl.target.as_ref().is_some_and(|t| t.disruptive())
}

impl Rotation<'_, '_> {
    fn check_lock(&self) -> Result<(), Stop> {
        self.ctx.check_lock().map_err(Stop::Lock)
    }

    /// Writes the journal in `state` (check-and-set on the metadata version where the server
    /// has one).
    async fn journal_to(&mut self, state: State, step: Step) -> Result<(), Stop> {
        self.check_lock()?;
        self.journal.state = state;
        self.journal.rotated_by = Some(format!("secret-rotation/{}", self.ctx.run_id));
        self.env
            .vault
            .write_metadata(
                &self.decl.vault,
                &self.journal.to_metadata(),
                self.metadata_cas,
            )
            .await
            .map_err(|e| match e {
                VaultError::CasMismatch { .. } => Stop::Interrupted {
                    step,
                    reason: "the journal was changed by someone else (another rotation?)".into(),
                },
                other => vault_err(step, other),
            })?;
        if let Some(v) = &mut self.metadata_cas {
            *v += 1;
        }
        Ok(())
    }

    /// The test hook: stops here until killed.
    async fn after(&mut self, step: Step) {
        self.outcome.reached = step;
        if self.env.pause_after == Some(step) {
            tracing::warn!(secret = %self.decl.name, %step, rotation_id = %self.rotation_id, "paused after step (--pause-after): waiting to be killed");
            std::future::pending::<()>().await;
        }
    }

    async fn emit(&self, event_type: &str, data: serde_json::Value) -> Result<(), Stop> {
        self.ctx
            .emit(event_type, &self.decl.vault.resource(), data)
            .await
            .map(drop)
            .map_err(|e| Stop::Audit(format!("{event_type} event for {}: {e}", self.decl.name)))
    }

    fn event_base(&self) -> serde_json::Value {
        json!({
            "rotation_id": self.rotation_id,
            "resource": self.decl.vault.resource(),
            "secret": self.decl.name,
            "secret_type": self.decl.kind.as_str(),
            "owner": self.decl.owner.as_str(),
            "target": self.target.describe(),
        })
    }

    async fn old_data(&mut self, step: Step) -> Result<Data, Stop> {
        if let Some(d) = &self.old {
            return Ok(d.clone());
        }
        let version = self
            .journal
            .previous_version
            .ok_or_else(|| Stop::Interrupted {
                step,
                reason: "the journal has no previous version".into(),
            })?;
        let (data, _) = self
            .env
            .vault
            .read(&self.decl.vault, Some(version))
            .await
            .map_err(|e| vault_err(step, e))?
            .ok_or_else(|| Stop::Interrupted {
                step,
                reason: format!("version {version} of {} is gone", self.decl.vault),
            })?;
        self.old = Some(data.clone());
        Ok(data)
    }

    async fn pending_data(&mut self, step: Step) -> Result<Option<Data>, Stop> {
        if let Some(d) = &self.new {
            return Ok(Some(d.clone()));
        }
        let found = self
            .env
            .vault
            .read(&self.pending, None)
            .await
            .map_err(|e| vault_err(step, e))?
            .map(|(d, _)| d);
        self.new = found.clone();
        Ok(found)
    }

    /// Keeps `data` as the pending value: create-only, so a second writer (or a retry) can never
    /// replace it; losing the race means reading the winner's.
    async fn keep_pending(&mut self, data: Data, step: Step) -> Result<Data, Stop> {
        self.check_lock()?;
        match self.env.vault.write(&self.pending, &data, 0).await {
            Ok(_) => {
                self.new = Some(data.clone());
                Ok(data)
            }
            Err(VaultError::CasMismatch { .. }) => {
                self.new = None;
                self.pending_data(step)
                    .await?
                    .ok_or_else(|| Stop::Interrupted {
                        step,
                        reason: "the pending value exists but cannot be read".into(),
                    })
            }
            Err(e) => Err(vault_err(step, e)),
        }
    }

    fn new_data(&self, step: Step) -> Result<Data, Stop> {
        self.new.clone().ok_or_else(|| Stop::Interrupted {
            step,
            reason: "no pending value".into(),
        })
    }

    fn marker(version: u64, rotation_id: &str) -> String {
        format!("{rotation_id}/{version}")
    }

    /// Runs the steps from `start`; the KV version written on success.
    async fn drive(&mut self, start: Step, current_version: u64) -> Result<u64, Stop> {
        self.ctx.acted();
        let mut step = start;
        loop {
            step = match step {
                Step::Journal => {
                    self.check_lock()?;
                    let j = &mut self.journal;
                    j.rotation_id = Some(self.rotation_id.clone());
                    j.started_at = Some(self.ctx.clock.now());
                    j.previous_version = Some(current_version);
                    j.promoted_version = None;
                    j.failed_step = None;
                    j.failure = None;
                    j.retire_after = None;
                    j.retire_state = None;
                    j.retire_ref = None;
                    self.journal_to(State::InProgress(Step::Create), Step::Journal)
                        .await?;
                    self.after(Step::Journal).await;
                    Step::Create
                }
                Step::Create => {
                    let old = self.old_data(Step::Create).await?;
                    if self.pending_data(Step::Create).await?.is_none()
                        && !self.target.generates_value()
                    {
                        let rules = self
                            .decl
                            .target
                            .as_ref()
                            .and_then(|t| t.rules())
                            .ok_or_else(|| Stop::Fail {
                                step: Step::Create,
                                reason: "no rules for a value of this target".into(),
                                rejected: true,
                            })?;
                        let len = self.decl.length.unwrap_or_else(|| rules.default_len());
                        let value =
                            value::generate(&rules, len).map_err(|e| Stop::Interrupted {
                                step: Step::Create,
                                reason: e.to_string(),
                            })?;
                        let data =
                            self.target
                                .new_data(&old, &self.field, value, &self.rotation_id);
                        self.keep_pending(data, Step::Create).await?;
                    }
                    self.after(Step::Create).await;
                    self.journal_to(State::InProgress(Step::Set), Step::Create)
                        .await?;
                    Step::Set
                }
                Step::Set => {
                    let old = self.old_data(Step::Set).await?;
                    // The write-ahead audit: acknowledged before the credential changes.
                    let mut intent = self.event_base();
                    intent["phase"] = json!("intent");
                    intent["resumed"] = json!(self.outcome.resumed);
                    intent["disruptive"] = json!(self.outcome.disruptive);
                    intent["consumers"] = json!(self.outcome.consumers);
                    self.emit("secret-rotation", intent).await?;
                    self.check_lock()?;
                    if self.target.generates_value() {
                        self.set_generated(&old).await?;
                    } else {
                        let new = match self.pending_data(Step::Set).await? {
                            Some(n) => n,
                            None => {
                                return Err(Stop::Interrupted {
                                    step: Step::Set,
                                    reason: "no pending value".into(),
                                });
                            }
                        };
                        if let Err(e) = self.target.set(&new, &self.field).await {
                            return Err(Stop::Fail {
                                step: Step::Set,
                                reason: e.to_string(),
                                rejected: e.rejected,
                            });
                        }
                    }
                    self.after(Step::Set).await;
                    self.journal_to(State::InProgress(Step::Test), Step::Set)
                        .await?;
                    Step::Test
                }
                Step::Test => {
                    self.old_data(Step::Test).await?;
                    self.pending_data(Step::Test).await?;
                    let new = self.new_data(Step::Test)?;
                    if let Err(e) = self.target.test(&new, &self.field).await {
                        return Err(Stop::Fail {
                            step: Step::Test,
                            reason: e.to_string(),
                            rejected: false,
                        });
                    }
                    self.after(Step::Test).await;
                    self.journal_to(State::InProgress(Step::Promote), Step::Test)
                        .await?;
                    Step::Promote
                }
                Step::Promote => {
                    self.old_data(Step::Promote).await?;
                    self.pending_data(Step::Promote).await?;
                    let new = self.new_data(Step::Promote)?;
                    let version = self.promote(&new).await?;
                    self.journal.promoted_version = Some(version);
                    self.after(Step::Promote).await;
                    self.journal_to(State::InProgress(Step::Propagate), Step::Promote)
                        .await?;
                    Step::Propagate
                }
                Step::Propagate => {
                    self.pending_data(Step::Propagate).await?;
                    let new = self.promoted_data(Step::Propagate).await?;
                    let version = self.promoted_version(Step::Propagate)?;
                    self.propagate(&new, version, Step::Propagate)
                        .await
                        .map_err(|reason| Stop::Rollback {
                            step: Step::Propagate,
                            reason,
                        })?;
                    self.after(Step::Propagate).await;
                    self.journal_to(State::InProgress(Step::Restart), Step::Propagate)
                        .await?;
                    Step::Restart
                }
                Step::Restart => {
                    let version = self.promoted_version(Step::Restart)?;
                    let marker = Self::marker(version, &self.rotation_id);
                    self.restart_all(&marker, false)
                        .await
                        .map_err(|reason| Stop::Rollback {
                            step: Step::Restart,
                            reason,
                        })?;
                    self.after(Step::Restart).await;
                    self.journal_to(State::InProgress(Step::Finish), Step::Restart)
                        .await?;
                    Step::Finish
                }
                Step::Finish => {
                    let version = self.promoted_version(Step::Finish)?;
                    let old = self.old_data(Step::Finish).await?;
                    let mut done = self.event_base();
                    done["phase"] = json!("outcome");
                    done["vault_version"] = json!(version);
                    done["consumers_restarted"] = json!(self.outcome.consumers);
                    done["resumed"] = json!(self.outcome.resumed);
                    self.emit("secret-rotated", done).await?;
                    self.drop_pending(Step::Finish).await?;
                    let now = self.ctx.clock.now();
                    let retire = self.target.retire_ref(&old);
                    let j = &mut self.journal;
                    j.last_rotated = Some(now);
                    j.retire_after = retire.as_ref().map(|_| add(now, self.env.grace));
                    j.retire_state = retire.as_ref().map(|_| "pending".to_string());
                    j.retire_ref = retire;
                    self.journal_to(State::Finished, Step::Finish).await?;
                    self.after(Step::Finish).await;
                    return Ok(version);
                }
                Step::Rollback => {
                    let (step, reason) = (
                        self.journal.failed_step.unwrap_or(Step::Restart),
                        self.journal
                            .failure
                            .clone()
                            .unwrap_or_else(|| "rollback interrupted".into()),
                    );
                    return Err(Stop::Rollback { step, reason });
                }
                Step::Classify | Step::Retire => {
                    return Err(Stop::Interrupted {
                        step,
                        reason: "not a rotation step".into(),
                    });
                }
            };
        }
    }

    /// Keycloak makes the value: regenerate once, and keep its answer pending. A resumed run
    /// that finds no pending value asks Keycloak for its current secret first: if it is no
    /// longer the old one, the regeneration happened and its value is the pending one.
    async fn set_generated(&mut self, old: &Data) -> Result<(), Stop> {
        if self.pending_data(Step::Set).await?.is_some() {
            return Ok(());
        }
        let fail = |e: crate::targets::TargetError| Stop::Fail {
            step: Step::Set,
            reason: e.to_string(),
            rejected: true,
        };
        let old_value = value::field(old, &self.field).map(String::from);
        let current = self
            .target
            .current_value()
            .await
            .map_err(|e| Stop::Interrupted {
                step: Step::Set,
                reason: e.to_string(),
            })?;
        let value = match current {
            Some(c) if old_value.as_deref() != Some(secrecy::ExposeSecret::expose_secret(&c)) => c,
            _ => self.target.regenerate().await.map_err(fail)?,
        };
        if let Target::Keycloak(k) = self.target
            && let Ok(false) = k.has_rotated().await
        {
            tracing::warn!(secret = %self.decl.name, "the realm keeps no rotated secret: the old client secret stopped working at once");
            self.outcome.disruptive = true;
        }
        let data = self
            .target
            .new_data(old, &self.field, value, &self.rotation_id);
        self.keep_pending(data, Step::Set).await?;
        Ok(())
    }

    /// Step 6a: the main path, check-and-set on the version read when the rotation started. A
    /// newer version that is already our value means a resumed run promoted it before; any other
    /// newer version is someone else's write.
    async fn promote(&mut self, new: &Data) -> Result<u64, Stop> {
        self.check_lock()?;
        let previous = self.journal.previous_version.unwrap_or(0);
        let conflict = || Stop::Fail {
            step: Step::Promote,
            reason: format!(
                "{} was written by someone else since version {previous}: not promoted",
                self.decl.vault
            ),
            rejected: false,
        };
        let (current, version) = self
            .env
            .vault
            .read(&self.decl.vault, None)
            .await
            .map_err(|e| vault_err(Step::Promote, e))?
            .ok_or_else(conflict)?;
        if version != previous {
            return if value::same(&current, new) {
                Ok(version)
            } else {
                Err(conflict())
            };
        }
        match self.env.vault.write(&self.decl.vault, new, previous).await {
            Ok(v) => Ok(v),
            Err(VaultError::CasMismatch { .. }) => Err(conflict()),
            Err(e) => Err(vault_err(Step::Promote, e)),
        }
    }

    fn promoted_version(&self, step: Step) -> Result<u64, Stop> {
        self.journal
            .promoted_version
            .ok_or_else(|| Stop::Interrupted {
                step,
                reason: "the journal has no promoted version".into(),
            })
    }

    /// The promoted data: the pending value, or (once it is deleted) the promoted version.
    async fn promoted_data(&mut self, step: Step) -> Result<Data, Stop> {
        if let Some(d) = &self.new {
            return Ok(d.clone());
        }
        let version = self.promoted_version(step)?;
        let (data, _) = self
            .env
            .vault
            .read(&self.decl.vault, Some(version))
            .await
            .map_err(|e| vault_err(step, e))?
            .ok_or_else(|| Stop::Interrupted {
                step,
                reason: format!("version {version} of {} is gone", self.decl.vault),
            })?;
        self.new = Some(data.clone());
        Ok(data)
    }

    async fn propagate(&mut self, data: &Data, version: u64, step: Step) -> Result<(), String> {
        if self.decl.kubernetes.is_empty() {
            return Ok(());
        }
        let kube = self.env.kube.ok_or("no kubernetes access configured")?;
        for s in &self.decl.kubernetes {
            self.ctx.check_lock().map_err(|e| e.to_string())?;
            let how = kube
                .propagate(s, data, &self.rotation_id, version, self.ctx.clock.now())
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(secret = %self.decl.name, kube_secret = %format!("{}/{}", s.namespace, s.name), ?how, %step, "secret propagated");
        }
        Ok(())
    }

    /// Restarts the consumers for `marker` in waves, each wave verified before the next. On the
    /// way forward the first failure stops (and triggers the rollback); a rollback
    /// (`best_effort`) restarts every consumer whatever fails, and reports what did.
    async fn restart_all(&mut self, marker: &str, best_effort: bool) -> Result<(), String> {
        if self.consumers.is_empty() {
            return Ok(());
        }
        let kube = self.env.kube.ok_or("no kubernetes access configured")?;
        let consumers = self.consumers.clone();
        let mut problems = Vec::new();
        for wave in consumers.chunks(self.env.wave.max(1)) {
            let mut restarted = Vec::new();
            for w in wave {
                self.ctx.check_lock().map_err(|e| e.to_string())?;
                match kube.restart(w, marker, self.ctx.clock.now()).await {
                    Ok(patched) => {
                        tracing::info!(secret = %self.decl.name, consumer = %w, patched, "consumer restarted");
                        restarted.push(w.clone());
                    }
                    Err(e) if best_effort => problems.push(e.to_string()),
                    Err(e) => return Err(e.to_string()),
                }
            }
            match kube.verify(&restarted).await {
                Ok(()) => {
                    tracing::info!(secret = %self.decl.name, wave = ?restarted.iter().map(ToString::to_string).collect::<Vec<_>>(), "wave verified");
                }
                Err(e) if best_effort => problems.push(e.to_string()),
                Err(e) => return Err(e.to_string()),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    async fn drop_pending(&self, step: Step) -> Result<(), Stop> {
        self.env
            .vault
            .delete_all(&self.pending)
            .await
            .map_err(|e| vault_err(step, e))
    }

    /// Handles a step that did not complete.
    async fn stopped(&mut self, stop: Stop) {
        match stop {
            Stop::Lock(lost) => {
                let step = self.outcome.reached;
                self.outcome.result = Result_::Interrupted {
                    step,
                    reason: lost.to_string(),
                };
                self.outcome.lock_lost = Some(lost);
            }
            Stop::Audit(reason) => {
                self.outcome.result = Result_::Interrupted {
                    step: self.outcome.reached,
                    reason: reason.clone(),
                };
                self.outcome.audit_failure = Some(reason);
            }
            Stop::Interrupted { step, reason } => {
                tracing::error!(secret = %self.decl.name, %step, %reason, "rotation interrupted; the next run resumes it");
                self.outcome.reached = step;
                self.outcome.result = Result_::Interrupted {
                    step,
                    reason: reason.clone(),
                };
                let what = if not_started(step, self.outcome.resumed) {
                    "stopped before any credential changed (the journal could not be written; the next run tries again)"
                } else {
                    "interrupted, to be resumed by the next run"
                };
                self.alert(step, &format!("{what}: {reason}")).await;
            }
            Stop::Fail {
                step,
                reason,
                rejected,
            } => self.fail(step, reason, rejected).await,
            Stop::Rollback { step, reason } => self.rollback(step, reason).await,
        }
    }

    /// A failure before Vault was written: restore the target, drop the pending value, mark
    /// the rotation failed.
    async fn fail(&mut self, step: Step, reason: String, rejected: bool) {
        tracing::error!(secret = %self.decl.name, %step, %reason, "rotation failed");
        self.outcome.reached = step;
        let mut note = reason.clone();
        if step >= Step::Set && !rejected {
            let old = self.old.clone();
            let new = self.new.clone();
            if let (Some(old), Some(new)) = (old, new)
                && let Err(e) = self.target.restore(&old, &new, &self.field).await
            {
                // The target may hold a value Vault does not: keep the journal in progress so
                // the next run resumes with the same pending value.
                let why = format!("{reason}; restoring the old value failed: {e}");
                self.outcome.result = Result_::Interrupted {
                    step,
                    reason: why.clone(),
                };
                self.alert(step, &why).await;
                return;
            }
            note = format!("{reason}; the old value was restored");
        }
        self.finish_failed(step, note, None).await;
    }

    async fn finish_failed(&mut self, step: Step, reason: String, rolled_back: Option<bool>) {
        if let Err(e) = self.drop_pending(step).await {
            tracing::warn!(secret = %self.decl.name, error = %e, "pending value not deleted");
        }
        self.journal.failed_step = Some(step);
        self.journal.failure = Some(reason.clone());
        if let Err(Stop::Interrupted { reason: why, .. }) =
            self.journal_to(State::Failed, step).await
        {
            tracing::error!(secret = %self.decl.name, %why, "the failure could not be journaled");
        }
        let mut event = self.event_base();
        event["phase"] = json!("outcome");
        event["step"] = json!(step.as_str());
        event["reason"] = json!(reason);
        event["rolled_back"] = json!(rolled_back.is_some());
        if let Some(recovered) = rolled_back {
            event["consumers_recovered"] = json!(recovered);
        }
        if let Err(Stop::Audit(why)) = self.emit("secret-rotation-failed", event).await {
            self.outcome.audit_failure = Some(why);
        }
        self.outcome.result = Result_::Failed {
            step,
            reason: reason.clone(),
            rolled_back,
        };
        self.alert(step, &reason).await;
    }

    /// A failure after Vault was written: undo everything, in the order that keeps a consumer
    /// from ever holding a dead credential: the target accepts the old value again first, then
    /// Vault and the Secrets hold it, then the consumers restart on it.
    async fn rollback(&mut self, step: Step, reason: String) {
        tracing::error!(secret = %self.decl.name, %step, %reason, "rolling back");
        self.outcome.reached = Step::Rollback;
        self.journal.failed_step = Some(step);
        self.journal.failure = Some(reason.clone());
        if let Err(Stop::Interrupted { reason: why, .. } | Stop::Fail { reason: why, .. }) = self
            .journal_to(State::InProgress(Step::Rollback), Step::Rollback)
            .await
        {
            self.outcome.result = Result_::Interrupted {
                step: Step::Rollback,
                reason: why,
            };
            return;
        }
        let mut problems = Vec::new();
        let old = match self.old_data(Step::Rollback).await {
            Ok(o) => o,
            Err(_) => {
                let why =
                    format!("{reason}; rollback impossible: the previous version cannot be read");
                self.outcome.result = Result_::Interrupted {
                    step: Step::Rollback,
                    reason: why.clone(),
                };
                self.alert(Step::Rollback, &why).await;
                return;
            }
        };
        let new = self.promoted_data(Step::Rollback).await.ok();
        if let Some(new) = &new
            && let Err(e) = self.target.restore(&old, new, &self.field).await
        {
            problems.push(format!("target: {e}"));
        }
        // Vault back to the old data (a new version, check-and-set on the current one).
        let restored_version = match self.env.vault.read(&self.decl.vault, None).await {
            Ok(Some((current, v))) if value::same(&current, &old) => Some(v),
            Ok(Some((_, v))) => match self.env.vault.write(&self.decl.vault, &old, v).await {
                Ok(w) => Some(w),
                Err(e) => {
                    problems.push(format!("vault: {e}"));
                    None
                }
            },
            Ok(None) => {
                problems.push(format!("vault: {} is gone", self.decl.vault));
                None
            }
            Err(e) => {
                problems.push(format!("vault: {e}"));
                None
            }
        };
        if let Some(v) = restored_version
            && let Err(e) = self.propagate(&old, v, Step::Rollback).await
        {
            problems.push(format!("kubernetes secrets: {e}"));
        }
        if !problems.is_empty() {
            // The target, Vault or a Secret does not hold the old value yet: consumers could be
            // left on a dead credential. Stay in the rollback step so the next run finishes it.
            let why = format!(
                "{reason}; rollback incomplete, the next run retries it: {}",
                problems.join("; ")
            );
            self.outcome.result = Result_::Interrupted {
                step: Step::Rollback,
                reason: why.clone(),
            };
            self.alert(Step::Rollback, &why).await;
            return;
        }
        // Everything holds the old value again: restart every consumer on it. A consumer whose
        // rollout fails now fails for its own reasons (its pods, not the credential): reported,
        // not retried by the next run.
        let marker = Self::marker(restored_version.unwrap_or_default(), &self.rotation_id);
        let consumers = self.restart_all(&marker, true).await;
        let summary = match &consumers {
            Ok(()) => format!("{reason}; rolled back to the previous value"),
            Err(e) => format!(
                "{reason}; rolled back to the previous value, but not every consumer came back up: {e}"
            ),
        };
        self.finish_failed(step, summary, Some(consumers.is_ok()))
            .await;
    }

    /// Tells the owner and on-call (critical: email, chat, pager).
    async fn alert(&mut self, step: Step, reason: &str) {
        let subject = format!(
            "[secret-rotation] rotation of {} failed at {step}",
            self.decl.name
        );
        let text = format!(
            "The rotation of {name} ({resource}, {kind}) stopped at step {step}.\n\n\
             Why: {reason}\n\nRotation id: {id}\nTarget: {target}\nConsumers: {consumers}\n\n\
             The secret value is not in this message; Vault holds the value consumers use.\n",
            name = self.decl.name,
            resource = self.decl.vault.resource(),
            kind = self.decl.kind,
            id = self.rotation_id,
            target = self.target.describe(),
            consumers = if self.outcome.consumers.is_empty() {
                "none".to_string()
            } else {
                self.outcome.consumers.join(", ")
            },
        );
        let mut to = vec![self.decl.owner.clone()];
        to.extend(self.env.on_call.iter().cloned());
        let n = Notification {
            severity: Severity::Critical,
            subject,
            text,
            html: None,
            email_to: to,
            dedup_key: Some(format!("secret-rotation/{}", self.rotation_id)),
        };
        self.ctx.acted();
        let sent = self.ctx.notifier.send(&n, self.ctx.clock).await;
        self.outcome.alerts.extend(sent);
    }
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Step 9: retires the old credential of a finished rotation whose grace period is over.
pub async fn retire(
    ctx: &RunContext<'_, RotationConfig>,
    env: &Env<'_>,
    decl: &SecretDecl,
    target: &Target,
    meta: &Metadata,
) -> Outcome {
    let mut journal = Journal::from_metadata(&meta.custom);
    let rotation_id = journal.rotation_id.clone().unwrap_or_default();
    let mut outcome = Outcome {
        rotation_id: rotation_id.clone(),
        reached: Step::Retire,
        result: Result_::Retired,
        resumed: false,
        consumers: Vec::new(),
        disruptive: false,
        alerts: Vec::new(),
        audit_failure: None,
        lock_lost: None,
    };
    if let Err(lost) = ctx.check_lock() {
        outcome.result = Result_::Interrupted {
            step: Step::Retire,
            reason: lost.to_string(),
        };
        outcome.lock_lost = Some(lost);
        return outcome;
    }
    ctx.acted();
    let retire_ref = journal.retire_ref.clone().unwrap_or_default();
    let event = json!({
        "phase": "retire",
        "rotation_id": rotation_id,
        "resource": decl.vault.resource(),
        "secret": decl.name,
        "secret_type": decl.kind.as_str(),
        "target": target.describe(),
        "retired": retire_ref,
    });
    if let Err(e) = ctx
        .emit("secret-rotation", &decl.vault.resource(), event)
        .await
    {
        let why = format!("secret-rotation retire event for {}: {e}", decl.name);
        outcome.result = Result_::Interrupted {
            step: Step::Retire,
            reason: why.clone(),
        };
        outcome.audit_failure = Some(why);
        return outcome;
    }
    if let Err(e) = target.retire(&retire_ref).await {
        outcome.result = Result_::Interrupted {
            step: Step::Retire,
            reason: e.to_string(),
        };
        return outcome;
    }
    journal.retire_state = Some("done".into());
    journal.rotated_by = Some(format!("secret-rotation/{}", ctx.run_id));
    if let Err(e) = env
        .vault
        .write_metadata(&decl.vault, &journal.to_metadata(), meta.metadata_version)
        .await
    {
        outcome.result = Result_::Interrupted {
            step: Step::Retire,
            reason: format!("retired, but not journaled: {e}"),
        };
    }
    outcome
}
