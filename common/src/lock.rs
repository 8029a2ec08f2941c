//! One acting run at a time: a run lock on a `coordination.k8s.io/v1` Lease.
//!
//! The harness owns the lock of a run ([`crate::harness`]: a job names the Lease it needs with
//! [`crate::harness::Job::run_lock`]); the job body only asks [`RunLockHandle::check`] before each
//! side effect. The Lease records who holds it (`holderIdentity`, the run id), when they last said so
//! (`renewTime`) and for how long that counts (`leaseDurationSeconds`). A run takes a free or
//! expired Lease, renews it while it works (by hand with [`RunLock::renew`], or with
//! [`RunLock::spawn_renewal`]) and releases it at the end. A run whose pod dies simply stops
//! renewing: the Lease expires `leaseDurationSeconds` after its last renewal and the next run
//! takes it over. Nothing here deletes the Lease.
//!
//! Every write names the `resourceVersion` it read, so two runs racing for the same Lease cannot
//! both win: the API server answers the slower one 409, which becomes [`LockError::Held`] (while
//! acquiring) or [`LockError::Lost`] (while renewing or releasing).
//!
//! Time is passed in: [`RunLock::acquire`] and [`RunLock::renew`] take `now`, and the renewal task
//! reads a [`Clock`]. Give them **real** time (`SystemClock`) even in a `--now` what-if run: the
//! Lease is about the wall clock other runs see, not about the instant the plan is evaluated at
//! (the harness does).
//! Expiry compares the holder's `renewTime` (written with its clock) with our `now`, so clocks
//! that disagree by more than a small fraction of the duration make takeovers early or late; the
//! duration (minutes) dwarfs ordinary NTP skew.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::clock::Clock;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Why the lock could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the Lease (or won the race for it just now).
    #[error("lease {lease} is held by {holder:?} until {}", until_text(.until))]
    Held {
        /// `namespace/name` of the Lease.
        lease: String,
        /// The current holder's identity (its run id), `unknown` if it could not be read.
        holder: String,
        /// When the holder's claim runs out unless renewed, when known.
        until: Option<Timestamp>,
    },
    /// The Lease changed under a holder (taken over after it expired, edited, or deleted): the
    /// holder must stop deleting.
    #[error("lease {lease} was lost: {detail}")]
    Lost {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What was found instead.
        detail: String,
    },
    /// The arguments cannot make a lock (empty holder, zero duration).
    #[error("lease {lease}: {message}")]
    Invalid {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What is wrong.
        message: String,
    },
    /// The API call failed for another reason.
    #[error("lease {lease}: {action}: {}", crate::clients::describe_kube_error(.source))]
    Api {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What was attempted (`read`, `create`, `replace`).
        action: &'static str,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

fn until_text(until: &Option<Timestamp>) -> String {
    until.map_or_else(|| "an unknown time".to_string(), |t| t.to_string())
}

/// A held run lock. Dropping it does not release the Lease (that needs an API call): call
/// [`RunLock::release`], or let the Lease expire.
#[derive(Debug)]
pub struct RunLock {
    api: Api<Lease>,
    lease_id: String,
    name: String,
    holder: String,
    duration: Duration,
    /// The Lease as last written by us; its `resourceVersion` guards the next write.
    lease: Lease,
}

impl RunLock {
    /// Takes the Lease `namespace/name` for `holder` (the run id) for `duration`, at `now`.
    ///
    /// Absent → created (a concurrent creator makes this [`LockError::Held`]). Held by another
    /// holder whose `renewTime + leaseDurationSeconds` is after `now` → `Held`. Free (empty
    /// holder), expired, or already ours → replaced with the `resourceVersion` read (a concurrent
    /// writer makes this `Held`). A Lease with a holder but neither `renewTime` nor
    /// `acquireTime` counts as expired. `leaseDurationSeconds` is `duration` rounded up to whole
    /// seconds.
    pub async fn acquire(
        client: kube::Client,
        namespace: &str,
        name: &str,
        holder: &str,
        duration: Duration,
        now: Timestamp,
    ) -> Result<RunLock, LockError> {
        let lease_id = format!("{namespace}/{name}");
        if holder.trim().is_empty() {
            return Err(LockError::Invalid {
                lease: lease_id,
                message: "the holder identity must not be empty (an empty holder means free)"
                    .to_string(),
            });
        }
        let seconds = lease_seconds(duration).ok_or_else(|| LockError::Invalid {
            lease: lease_id.clone(),
            message: format!(
                "duration must be between 1s and {}s, got {duration:?}",
                i32::MAX
            ),
        })?;
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let api_err = |action: &'static str| {
            let lease = lease_id.clone();
            move |source| LockError::Api {
                lease,
                action,
                source,
            }
        };
        let current = api.get_opt(name).await.map_err(api_err("read"))?;
        let lock = |lease: Lease| RunLock {
            api: api.clone(),
            lease_id: lease_id.clone(),
            name: name.to_string(),
            holder: holder.to_string(),
            duration,
            lease,
        };

        let Some(current) = current else {
            let fresh = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    namespace: Some(namespace.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(holder.to_string()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_duration_seconds: Some(seconds),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &fresh).await {
                Ok(created) => Ok(lock(created)),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    Err(held_now(&api, &lease_id, name).await)
                }
                Err(e) => Err(api_err("create")(e)),
            };
        };

        let spec = current.spec.clone().unwrap_or_default();
        let current_holder = spec.holder_identity.clone().unwrap_or_default();
        if !current_holder.is_empty()
            && current_holder != holder
            && let Some(until) = held_until(&spec, seconds)
            && until > now
        {
            return Err(LockError::Held {
                lease: lease_id,
                holder: current_holder,
                until: Some(until),
            });
        }
        let mut taken = current.clone();
        let changes_hands = current_holder != holder;
        taken.spec = Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            acquire_time: if changes_hands {
                Some(MicroTime(now))
            } else {
                spec.acquire_time.clone().or(Some(MicroTime(now)))
            },
            renew_time: Some(MicroTime(now)),
            lease_duration_seconds: Some(seconds),
            lease_transitions: Some(
                spec.lease_transitions.unwrap_or(0)
                    + i32::from(changes_hands && !current_holder.is_empty()),
            ),
            ..spec
        });
        match api.replace(name, &PostParams::default(), &taken).await {
            Ok(replaced) => Ok(lock(replaced)),
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                Err(held_now(&api, &lease_id, name).await)
            }
            Err(e) => Err(api_err("replace")(e)),
        }
    }

    /// Extends the claim: `renewTime = now`, written with the `resourceVersion` of our last
    /// write. 409 (someone else wrote the Lease since) or 404 (it was deleted) → [`LockError::Lost`].
    pub async fn renew(&mut self, now: Timestamp) -> Result<(), LockError> {
        let mut next = self.lease.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.renew_time = Some(MicroTime(now));
        }
        match self.write(next, "renew").await? {
            Some(written) => {
                self.lease = written;
                Ok(())
            }
            None => Err(LockError::Lost {
                lease: self.lease_id.clone(),
                detail: "it was deleted".to_string(),
            }),
        }
    }

    /// Frees the Lease at once: clears `holderIdentity` (with our `resourceVersion`), so the next
    /// run need not wait for it to expire. 409 → [`LockError::Lost`] (it was no longer ours);
    /// an already deleted Lease counts as released.
    pub async fn release(self) -> Result<(), LockError> {
        let mut next = self.lease.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.holder_identity = None;
        }
        self.write(next, "release").await.map(|_| ())
    }

    /// Renews every `duration / 3` with `clock`'s time until stopped, in a task of its own; after
    /// a failed renewal it tries again sooner (every `duration / 12`). [`Renewal::is_held`] says
    /// whether the claim can still be relied on: false once the Lease was lost (someone else wrote
    /// it), or once less than a third of the duration is left of the last successful renewal —
    /// so a renewal call that hangs cannot keep a run acting on an expired claim.
    /// [`Renewal::stop`] gives the lock back for [`RunLock::release`]. Dropping the [`Renewal`]
    /// stops renewing without releasing.
    pub fn spawn_renewal(self, clock: Arc<dyn Clock>) -> Renewal {
        let lost = Arc::new(AtomicBool::new(false));
        let valid_until = Arc::new(AtomicI64::new(self.valid_until().as_millisecond()));
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let period = (self.duration / 3).max(Duration::from_millis(10));
        let retry = (self.duration / 12).max(Duration::from_millis(10));
        let flag = lost.clone();
        let until = valid_until.clone();
        let lock_id = self.lease_id.clone();
        let margin = self.duration / 3;
        let mut lock = self;
        let task = tokio::spawn(async move {
            let mut wait = period;
            loop {
                tokio::select! {
                    // A stop, or a dropped `Renewal` (the sender goes with it).
                    _ = &mut stop_rx => return Ok(lock),
                    () = tokio::time::sleep(wait) => {}
                }
                match lock.renew(clock.now()).await {
                    Ok(()) => {
                        until.store(lock.valid_until().as_millisecond(), Ordering::SeqCst);
                        wait = period;
                        tracing::debug!(lease = %lock.lease_id, valid_until = %lock.valid_until(), "run lock renewed");
                    }
                    Err(e @ LockError::Lost { .. }) => {
                        flag.store(true, Ordering::SeqCst);
                        tracing::error!(error = %e, "run lock lost");
                        return Err(e);
                    }
                    Err(e) => {
                        let now = clock.now();
                        if now >= lock.valid_until() {
                            flag.store(true, Ordering::SeqCst);
                            let lost = LockError::Lost {
                                lease: lock.lease_id.clone(),
                                detail: format!(
                                    "renewals failed until the claim expired at {} (last error: {e})",
                                    lock.valid_until()
                                ),
                            };
                            tracing::error!(error = %lost, "run lock lost");
                            return Err(lost);
                        }
                        wait = retry;
                        tracing::warn!(error = %e, "run lock renewal failed; retrying");
                    }
                }
            }
        });
        Renewal {
            lease_id: lock_id,
            lost,
            valid_until,
            margin,
            clock_for_checks: None,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// The holder identity (run id) this lock was taken for.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// `namespace/name` of the Lease.
    pub fn lease(&self) -> &str {
        &self.lease_id
    }

    /// When the claim runs out unless renewed: the last written `renewTime` plus the duration.
    pub fn valid_until(&self) -> Timestamp {
        let spec = self.lease.spec.clone().unwrap_or_default();
        let seconds = spec.lease_duration_seconds.unwrap_or(0);
        held_until(&spec, seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Replaces the Lease with `next` (carrying our last `resourceVersion`); `None` when the
    /// Lease no longer exists.
    async fn write(&self, next: Lease, action: &'static str) -> Result<Option<Lease>, LockError> {
        match self
            .api
            .replace(&self.name, &PostParams::default(), &next)
            .await
        {
            Ok(written) => Ok(Some(written)),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let detail = match self.api.get_opt(&self.name).await {
                    Ok(Some(l)) => {
                        let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
                        format!(
                            "it was changed by someone else; holder is now {h:?} ({action} got 409 {})",
                            s.reason
                        )
                    }
                    Ok(None) => "it was deleted".to_string(),
                    Err(_) => format!(
                        "it was changed by someone else ({action} got 409 {})",
                        s.reason
                    ),
                };
                Err(LockError::Lost {
                    lease: self.lease_id.clone(),
                    detail,
                })
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(source) => Err(LockError::Api {
                lease: self.lease_id.clone(),
                action,
                source,
            }),
        }
    }
}

/// The renewal task started by [`RunLock::spawn_renewal`]. Dropping it stops renewing (the
/// Lease then expires on its own).
#[derive(Debug)]
pub struct Renewal {
    lease_id: String,
    lost: Arc<AtomicBool>,
    /// Unix milliseconds of the last successfully written `renewTime + duration`.
    valid_until: Arc<AtomicI64>,
    /// How much of the claim must be left for it to count as held.
    margin: Duration,
    /// The clock [`Renewal::is_held`] compares with (the system clock when `None`).
    clock_for_checks: Option<Arc<dyn Clock>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<RunLock, LockError>>>,
}

impl Renewal {
    /// True once the lock is known to be lost (someone else wrote the Lease, or renewals failed
    /// until it expired).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Whether the claim can still be relied on *now*: not lost, and more than a third of the
    /// duration left of the last successful renewal. Check it before every side effect.
    pub fn is_held(&self) -> bool {
        if self.is_lost() {
            return false;
        }
        let now = match &self.clock_for_checks {
            Some(c) => c.now(),
            None => Timestamp::now(),
        };
        let margin = i64::try_from(self.margin.as_millis()).unwrap_or(i64::MAX);
        now.as_millisecond().saturating_add(margin) < self.valid_until.load(Ordering::SeqCst)
    }

    /// When the claim runs out unless renewed again.
    pub fn valid_until(&self) -> Timestamp {
        Timestamp::from_millisecond(self.valid_until.load(Ordering::SeqCst))
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// `namespace/name` of the Lease.
    pub fn lease(&self) -> &str {
        &self.lease_id
    }

    /// Makes [`Renewal::is_held`] read `clock` instead of the system clock (tests).
    #[doc(hidden)]
    pub fn with_check_clock(mut self, clock: Arc<dyn Clock>) -> Renewal {
        self.clock_for_checks = Some(clock);
        self
    }

    /// Stops renewing and gives the lock back (to [`RunLock::release`] it), or the error that
    /// ended the renewals ([`LockError::Lost`]).
    pub async fn stop(mut self) -> Result<RunLock, LockError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let task = self
            .task
            .take()
            .expect("a renewal's task is taken only by stop");
        match task.await {
            Ok(result) => result,
            // The task never panics by design; if it did, the lock is as good as lost.
            Err(join) => Err(LockError::Lost {
                lease: self.lease_id.clone(),
                detail: format!("the renewal task failed: {join}"),
            }),
        }
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `duration` as whole seconds, rounded up; `None` if zero or beyond `i32`.
fn lease_seconds(duration: Duration) -> Option<i32> {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).ok().filter(|s| *s > 0)
}

/// `renewTime` (else `acquireTime`) plus `leaseDurationSeconds` (else `fallback_seconds`).
fn held_until(spec: &LeaseSpec, fallback_seconds: i32) -> Option<Timestamp> {
    let last = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let seconds = spec.lease_duration_seconds.unwrap_or(fallback_seconds);
    last.checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .ok()
}

/// The [`LockError::Held`] to report after losing a race: re-reads the Lease for its holder.
async fn held_now(api: &Api<Lease>, lease_id: &str, name: &str) -> LockError {
    let (holder, until) = match api.get_opt(name).await {
        Ok(Some(l)) => {
            let spec = l.spec.unwrap_or_default();
            let holder = spec
                .holder_identity
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "unknown".to_string());
            (holder, held_until(&spec, 0))
        }
        _ => ("unknown".to_string(), None),
    };
    LockError::Held {
        lease: lease_id.to_string(),
        holder,
        until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_seconds_round_up_and_reject_zero() {
        assert_eq!(lease_seconds(Duration::from_secs(900)), Some(900));
        assert_eq!(lease_seconds(Duration::from_millis(1500)), Some(2));
        assert_eq!(lease_seconds(Duration::ZERO), None);
    }

    #[test]
    fn held_until_prefers_renew_time() {
        let t = |s: &str| MicroTime(s.parse().expect("timestamp"));
        let spec = LeaseSpec {
            acquire_time: Some(t("2026-01-01T00:00:00Z")),
            renew_time: Some(t("2026-01-01T00:10:00Z")),
            lease_duration_seconds: Some(60),
            ..LeaseSpec::default()
        };
        assert_eq!(
            held_until(&spec, 0).map(|t| t.to_string()).as_deref(),
            Some("2026-01-01T00:11:00Z")
        );
        assert_eq!(held_until(&LeaseSpec::default(), 60), None);
    }
}
