//! The run lock (`common::lock`) on a Lease of the fake Kubernetes API server, over real HTTP:
//! one winner per race, expiry and takeover, renewal in the background, loss noticed.

use std::sync::Arc;
use std::time::Duration;

use common::lock::{LockError, RunLock};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use testbed::fakekube::{FakeKube, Fault};

const LOCK_NS: &str = "governance-jobs";
const LOCK: &str = "ttl-teardown";
const TEN_MIN: Duration = Duration::from_secs(600);

fn t0() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().expect("timestamp")
}

fn at(minutes: i64) -> Timestamp {
    t0() + SignedDuration::from_mins(minutes)
}

async fn lock_fake() -> FakeKube {
    let fake = FakeKube::start().await.expect("fake");
    fake.insert(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOCK_NS},
    }))
    .expect("lock namespace");
    fake
}

async fn acquire(fake: &FakeKube, holder: &str, now: Timestamp) -> Result<RunLock, LockError> {
    RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        holder,
        TEN_MIN,
        now,
    )
    .await
}

fn stored_holder(fake: &FakeKube) -> Option<String> {
    fake.get("leases", Some(LOCK_NS), LOCK)
        .expect("lease exists")["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_string)
}

fn held_by(e: LockError) -> (String, Option<Timestamp>) {
    match e {
        LockError::Held { holder, until, .. } => (holder, until),
        other => panic!("expected Held, got {other:?}"),
    }
}

#[tokio::test]
async fn first_acquire_wins_and_a_second_holder_is_told_who_holds_it() {
    let fake = lock_fake().await;
    let lock = acquire(&fake, "run-1", t0()).await.expect("free lease");
    assert_eq!(lock.holder(), "run-1");
    assert_eq!(lock.lease(), "governance-jobs/ttl-teardown");
    assert_eq!(lock.valid_until(), at(10));
    let stored = fake.get("leases", Some(LOCK_NS), LOCK).expect("created");
    assert_eq!(stored["spec"]["holderIdentity"], "run-1");
    assert_eq!(stored["spec"]["leaseDurationSeconds"], 600);
    assert_eq!(
        stored["spec"]["renewTime"]
            .as_str()
            .and_then(|s| s.parse::<Timestamp>().ok()),
        Some(t0())
    );

    let e = acquire(&fake, "run-2", at(5)).await.expect_err("held");
    assert!(e.to_string().contains("held by \"run-1\""), "{e}");
    assert_eq!(held_by(e), ("run-1".to_string(), Some(at(10))));
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-1"));
}

#[tokio::test]
async fn concurrent_acquires_of_an_absent_lease_have_one_winner() {
    let fake = lock_fake().await;
    let (a, b) = tokio::join!(acquire(&fake, "run-a", t0()), acquire(&fake, "run-b", t0()));
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("exactly one must win: {a:?} / {b:?}"),
    };
    assert_eq!(held_by(loser).0, winner.holder());
    assert_eq!(stored_holder(&fake).as_deref(), Some(winner.holder()));
    let creates = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/leases"))
        .count();
    assert_eq!(
        creates, 2,
        "both saw it absent; the API refused the second create (409)"
    );
}

#[tokio::test]
async fn concurrent_takeovers_of_an_expired_lease_have_one_winner() {
    let fake = lock_fake().await;
    drop(acquire(&fake, "dead-pod", t0()).await.expect("taken"));
    let later = at(11);
    let (a, b) = tokio::join!(
        acquire(&fake, "run-a", later),
        acquire(&fake, "run-b", later)
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("exactly one must win: {a:?} / {b:?}"),
    };
    assert_eq!(held_by(loser).0, winner.holder());
    let replaces = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/leases/ttl-teardown"))
        .count();
    assert_eq!(
        replaces, 2,
        "both read the same resourceVersion; the stale replace got 409"
    );
    let stored = fake.get("leases", Some(LOCK_NS), LOCK).expect("lease");
    assert_eq!(stored["spec"]["leaseTransitions"], 1);
}

#[tokio::test]
async fn a_stale_copy_cannot_renew() {
    let fake = lock_fake().await;
    let mut first = acquire(&fake, "run-1", t0()).await.expect("taken");
    // The same run id takes it again (a retried start): the first copy is now stale.
    let mut second = acquire(&fake, "run-1", at(1)).await.expect("ours already");
    let e = first.renew(at(2)).await.expect_err("stale resourceVersion");
    assert!(matches!(e, LockError::Lost { .. }), "{e:?}");
    assert!(e.to_string().contains("409"), "{e}");
    second.renew(at(2)).await.expect("current copy renews");
    assert_eq!(second.valid_until(), at(12));
}

#[tokio::test]
async fn a_dead_holder_expires_and_is_taken_over() {
    let fake = lock_fake().await;
    let mut dead = acquire(&fake, "dead-pod", t0()).await.expect("taken");
    dead.renew(at(4))
        .await
        .expect("renewed once, then the pod died");

    let e = acquire(&fake, "run-2", at(13))
        .await
        .expect_err("renewed until 10:14");
    assert_eq!(held_by(e), ("dead-pod".to_string(), Some(at(14))));

    let mut taker = acquire(&fake, "run-2", at(14) + SignedDuration::from_secs(1))
        .await
        .expect("expired: taken over");
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-2"));
    let stored = fake.get("leases", Some(LOCK_NS), LOCK).expect("lease");
    assert_eq!(stored["spec"]["leaseTransitions"], 1);

    // The pod was not dead after all: its renewal must fail rather than steal the lease back.
    let e = dead.renew(at(15)).await.expect_err("lost");
    assert!(matches!(e, LockError::Lost { .. }), "{e:?}");
    assert!(e.to_string().contains("\"run-2\""), "{e}");
    taker.renew(at(15)).await.expect("the new holder renews");
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-2"));
}

#[tokio::test]
async fn release_frees_the_lease_at_once() {
    let fake = lock_fake().await;
    let lock = acquire(&fake, "run-1", t0()).await.expect("taken");
    lock.release().await.expect("released");
    assert_eq!(stored_holder(&fake), None);
    let next = acquire(&fake, "run-2", t0()).await.expect("free at once");
    assert_eq!(next.holder(), "run-2");
    assert_eq!(stored_holder(&fake).as_deref(), Some("run-2"));
}

#[tokio::test]
async fn release_after_losing_the_lease_reports_it() {
    let fake = lock_fake().await;
    let lost = acquire(&fake, "run-1", t0()).await.expect("taken");
    let _taker = acquire(&fake, "run-2", at(11)).await.expect("expired");
    let e = lost.release().await.expect_err("not ours any more");
    assert!(matches!(e, LockError::Lost { .. }), "{e:?}");
    assert_eq!(
        stored_holder(&fake).as_deref(),
        Some("run-2"),
        "the new holder keeps it"
    );
}

#[tokio::test]
async fn invalid_lock_arguments_are_refused_before_any_request() {
    let fake = lock_fake().await;
    let e = acquire(&fake, " ", t0()).await.expect_err("empty holder");
    assert!(matches!(e, LockError::Invalid { .. }), "{e:?}");
    let e = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-1",
        Duration::ZERO,
        t0(),
    )
    .await
    .expect_err("zero duration");
    assert!(matches!(e, LockError::Invalid { .. }), "{e:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn lock_api_failures_are_api_errors() {
    let fake = lock_fake().await;
    fake.inject(Fault::new(500).resource("leases").times(1));
    let e = acquire(&fake, "run-1", t0())
        .await
        .expect_err("server error");
    assert!(matches!(e, LockError::Api { action: "read", .. }), "{e:?}");
}

#[tokio::test]
async fn renewal_task_keeps_the_lease_and_hands_it_back() {
    let fake = lock_fake().await;
    let clock: Arc<dyn common::clock::Clock> = Arc::new(common::clock::SystemClock);
    let lock = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-1",
        Duration::from_secs(2),
        Timestamp::now(),
    )
    .await
    .expect("taken");
    let renewal = lock.spawn_renewal(clock);
    tokio::time::sleep(Duration::from_millis(3000)).await;

    // Without renewals it would have expired a second ago.
    let e = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-2",
        Duration::from_secs(2),
        Timestamp::now(),
    )
    .await
    .expect_err("kept alive");
    assert_eq!(held_by(e).0, "run-1");
    assert!(!renewal.is_lost());
    let renews = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert!(renews >= 3, "renewed every ~0.67 s, got {renews}");

    let lock = renewal.stop().await.expect("handed back");
    lock.release().await.expect("released");
    let next = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-2",
        Duration::from_secs(2),
        Timestamp::now(),
    )
    .await
    .expect("free");
    assert_eq!(next.holder(), "run-2");
}

#[tokio::test]
async fn renewal_task_notices_a_takeover() {
    let fake = lock_fake().await;
    let clock: Arc<dyn common::clock::Clock> = Arc::new(common::clock::SystemClock);
    let lock = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-1",
        Duration::from_secs(1),
        Timestamp::now(),
    )
    .await
    .expect("taken");
    let renewal = lock.spawn_renewal(clock);
    // Someone edits the lease behind the holder's back (a new resourceVersion).
    let mut stolen = fake.get("leases", Some(LOCK_NS), LOCK).expect("lease");
    stolen["spec"]["holderIdentity"] = json!("intruder");
    fake.insert(stolen).expect("overwrite");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !renewal.is_lost() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(renewal.is_lost());
    let e = renewal.stop().await.expect_err("lost");
    assert!(e.to_string().contains("\"intruder\""), "{e}");
    assert_eq!(stored_holder(&fake).as_deref(), Some("intruder"));
}

#[tokio::test]
async fn a_claim_is_not_held_once_renewals_stop_working_even_before_it_is_lost() {
    let fake = lock_fake().await;
    let clock: Arc<dyn common::clock::Clock> = Arc::new(common::clock::SystemClock);
    let lock = RunLock::acquire(
        fake.client().expect("client"),
        LOCK_NS,
        LOCK,
        "run-1",
        Duration::from_secs(3),
        Timestamp::now(),
    )
    .await
    .expect("taken");
    let renewal = lock.spawn_renewal(clock);
    assert!(renewal.is_held(), "just taken");
    // The API server stops answering: renewals fail, nothing says "lost" yet, but the claim runs
    // out; with less than a third of it left the run must stop acting.
    fake.set_unavailable(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while renewal.is_held() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!renewal.is_held(), "a claim without renewals is not held");
    let left = renewal.valid_until().duration_since(Timestamp::now());
    assert!(
        left <= SignedDuration::from_secs(1),
        "stopped with {left:?} of the claim left, at most a third of 3 s"
    );
}
