//! Each test bed service, started for real and given one round trip.
//!
//! These tests need the programs `.ci/setup` installs; a missing one fails the test with a
//! message saying so (nothing here is skipped).

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use testbed::kafka::{Tansu, consume_all, mock_cluster};
use testbed::kafka_connect::{ConnectStandIn, ConnectorSpec};
use testbed::moto::Moto;
use testbed::openbao::OpenBao;
use testbed::postgres::Postgres;
use testbed::process::{Error, ManagedProcess, free_port};
use testbed::prometheus::{MetricType, OpenMetrics, Prometheus};
use testbed::pushgateway::Pushgateway;
use testbed::smtp::SmtpSink;

#[tokio::test]
async fn moto_answers_ec2_queries_and_resets() -> Result<()> {
    let moto = Moto::start().await?;
    let regions = moto
        .query(
            "ec2",
            &[("Action", "DescribeRegions"), ("Version", "2016-11-15")],
        )
        .await?;
    ensure!(
        regions.contains("<regionName>us-east-1</regionName>"),
        "DescribeRegions lacks us-east-1: {regions}"
    );

    let created = moto
        .query(
            "ec2",
            &[
                ("Action", "CreateSecurityGroup"),
                ("Version", "2016-11-15"),
                ("GroupName", "testbed-sg"),
                ("GroupDescription", "made by services.rs"),
            ],
        )
        .await?;
    ensure!(created.contains("<groupId>sg-"), "no group id: {created}");
    let describe = [
        ("Action", "DescribeSecurityGroups"),
        ("Version", "2016-11-15"),
        ("Filter.1.Name", "group-name"),
        ("Filter.1.Value.1", "testbed-sg"),
    ];
    let found = moto.query("ec2", &describe).await?;
    ensure!(
        found.contains("made by services.rs"),
        "not described: {found}"
    );

    // The recorder: what moto received, for asserting calls whose effect moto does not model.
    moto.start_recording().await?;
    moto.query(
        "ec2",
        &[
            ("Action", "DeleteSecurityGroup"),
            ("Version", "2016-11-15"),
            ("GroupName", "testbed-sg"),
        ],
    )
    .await?;
    moto.stop_recording().await?;
    moto.query("ec2", &describe).await?;
    let recorded = moto.recorded()?;
    ensure!(recorded.len() == 1, "one request recorded: {recorded:?}");
    ensure!(
        recorded[0].method == "POST" && recorded[0].service() == Some("ec2"),
        "{recorded:?}"
    );
    ensure!(
        recorded[0]
            .body_text()
            .contains("Action=DeleteSecurityGroup&Version=2016-11-15&GroupName=testbed-sg"),
        "{:?}",
        recorded[0].body_text()
    );

    moto.reset().await?;
    let after_reset = moto.query("ec2", &describe).await?;
    ensure!(
        !after_reset.contains("testbed-sg"),
        "reset kept the group: {after_reset}"
    );
    Ok(())
}

#[tokio::test]
async fn tansu_round_trips_messages_and_fails_fast_once_stopped() -> Result<()> {
    let mut broker = Tansu::start().await?;
    broker.create_topic("governance-events", 3).await?;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000")
        .create()?;
    let sent: Vec<(String, String)> = (0..5)
        .map(|i| (format!("run-{i}"), format!(r#"{{"run":{i},"deleted":[]}}"#)))
        .collect();
    let first = Instant::now();
    for (key, payload) in &sent {
        producer
            .send(
                FutureRecord::to("governance-events")
                    .key(key)
                    .payload(payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("produce {key}"))?;
    }
    eprintln!("tansu: 5 idempotent produces took {:?}", first.elapsed());

    let received = consume_all(
        &broker.bootstrap(),
        "governance-events",
        sent.len(),
        Duration::from_secs(20),
    )
    .await?;
    let received: HashSet<(String, String)> = received
        .into_iter()
        .map(|(key, payload)| {
            (
                String::from_utf8_lossy(&key.unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(&payload).into_owned(),
            )
        })
        .collect();
    ensure!(
        received == sent.iter().cloned().collect(),
        "consumed {received:?}, produced {sent:?}"
    );

    // A job whose broker dies mid-run must get an error within its delivery timeout, not hang.
    broker.stop();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "3000")
        .create()?;
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        producer.send(
            FutureRecord::to("governance-events")
                .key("late")
                .payload("late"),
            Duration::from_secs(1),
        ),
    )
    .await
    .context("produce to a stopped broker hung for 10 s")?;
    let waited = started.elapsed();
    ensure!(
        outcome.is_err(),
        "produce to a stopped broker succeeded: {outcome:?}"
    );
    ensure!(
        waited < Duration::from_secs(5),
        "produce to a stopped broker took {waited:?} to fail"
    );
    Ok(())
}

#[tokio::test]
async fn postgres_checks_passwords_for_real_and_cleans_up() -> Result<()> {
    let pg = Postgres::start().await.context("start postgres")?;
    // One statement per call: several in one batch share a transaction, and CREATE DATABASE
    // refuses to run inside one.
    pg.execute("postgres", "CREATE ROLE app LOGIN PASSWORD 'first-secret'")
        .await?;
    pg.execute("postgres", "CREATE DATABASE shop OWNER app")
        .await?;
    ensure!(pg.can_login("app", "first-secret", "shop").await);
    ensure!(
        !pg.can_login("app", "wrong", "shop").await,
        "scram-sha-256 on TCP: a wrong password is refused"
    );
    pg.execute("postgres", "ALTER ROLE app PASSWORD 'second-secret';")
        .await?;
    ensure!(pg.can_login("app", "second-secret", "shop").await);
    ensure!(!pg.can_login("app", "first-secret", "shop").await);
    let client = pg.superuser("shop").await?;
    let row = client.query_one("SELECT current_database()", &[]).await?;
    ensure!(row.get::<_, String>(0) == "shop");
    let dir = pg.dir().to_path_buf();
    drop(client);
    drop(pg);
    ensure!(
        !dir.exists(),
        "the cluster's directory goes with the handle"
    );
    Ok(())
}

#[tokio::test]
async fn openbao_serves_kv2_with_check_and_set() -> Result<()> {
    let bao = OpenBao::start().await.context("start openbao")?;
    let post = reqwest::Method::POST;
    let v1 = bao
        .request(
            post.clone(),
            "secret/data/app/api-key",
            Some(serde_json::json!({"options": {"cas": 0}, "data": {"value": "one"}})),
        )
        .await?;
    ensure!(v1["data"]["version"] == 1, "{v1}");
    let stale = bao
        .request(
            post,
            "secret/data/app/api-key",
            Some(serde_json::json!({"options": {"cas": 0}, "data": {"value": "two"}})),
        )
        .await;
    let e = stale.expect_err("cas=0 on an existing secret is refused");
    ensure!(e.to_string().contains("check-and-set"), "{e}");
    let read = bao
        .request(reqwest::Method::GET, "secret/data/app/api-key", None)
        .await?;
    ensure!(read["data"]["data"]["value"] == "one", "{read}");
    Ok(())
}

#[tokio::test]
async fn mock_cluster_round_trips_through_consume_all() -> Result<()> {
    let cluster = mock_cluster(&[("events", 3)])?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()?;
    for i in 0..3 {
        producer
            .send(
                FutureRecord::to("events")
                    .key(&format!("k{i}"))
                    .payload(&format!("p{i}")),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let mut received = consume_all(
        &cluster.bootstrap_servers(),
        "events",
        3,
        Duration::from_secs(20),
    )
    .await?;
    received.sort();
    let expected: Vec<(Option<Vec<u8>>, Vec<u8>)> = (0..3)
        .map(|i| {
            (
                Some(format!("k{i}").into_bytes()),
                format!("p{i}").into_bytes(),
            )
        })
        .collect();
    assert_eq!(received, expected);
    Ok(())
}

#[tokio::test]
async fn pushgateway_stores_a_pushed_group() -> Result<()> {
    let gateway = Pushgateway::start().await?;
    let body = "# HELP gov_resources_deleted_total Resources deleted by the run.\n\
                # TYPE gov_resources_deleted_total counter\n\
                gov_resources_deleted_total{kind=\"ec2_instance\"} 3\n\
                gov_resources_deleted_total{kind=\"rds_instance\"} 1\n\
                # TYPE gov_run_dry gauge\n\
                gov_run_dry 0\n";
    let response = reqwest::Client::new()
        .put(format!(
            "{}/metrics/job/ttl-teardown/environment/test",
            gateway.url()
        ))
        .body(body)
        .send()
        .await?;
    ensure!(
        response.status().is_success(),
        "push failed: {}",
        response.status()
    );

    let group = [("job", "ttl-teardown"), ("environment", "test")];
    let ec2 = gateway
        .find_metric(
            &group,
            "gov_resources_deleted_total",
            &[("kind", "ec2_instance")],
        )
        .await?
        .context("no ec2_instance sample")?;
    assert_eq!(ec2.value, 3.0);
    assert_eq!(ec2.metric_type, "COUNTER");
    assert_eq!(ec2.help.as_deref(), Some("Resources deleted by the run."));
    assert_eq!(ec2.labels["job"], "ttl-teardown");
    assert_eq!(ec2.labels["environment"], "test");
    let rds = gateway
        .find_metric(
            &group,
            "gov_resources_deleted_total",
            &[("kind", "rds_instance")],
        )
        .await?
        .context("no rds_instance sample")?;
    assert_eq!(rds.value, 1.0);
    let dry = gateway
        .find_metric(&group, "gov_run_dry", &[])
        .await?
        .context("no gov_run_dry")?;
    assert_eq!((dry.value, dry.metric_type.as_str()), (0.0, "GAUGE"));
    Ok(())
}

/// One SMTP command and the reply code it must get.
fn smtp_step(reader: &mut BufReader<TcpStream>, command: Option<&str>, expect: &str) -> Result<()> {
    if let Some(command) = command {
        reader.get_mut().write_all(command.as_bytes())?;
    }
    // Multi-line replies continue with "250-"; the last line has a space after the code.
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        ensure!(
            line.starts_with(expect),
            "after {command:?} expected {expect}, got {line:?}"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

#[tokio::test]
async fn smtp_sink_captures_a_raw_smtp_message() -> Result<()> {
    let sink = SmtpSink::start().await?;
    let port = sink.port();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut smtp = BufReader::new(stream);
        smtp_step(&mut smtp, None, "220")?;
        smtp_step(&mut smtp, Some("HELO testbed\r\n"), "250")?;
        smtp_step(&mut smtp, Some("MAIL FROM:<bot@example.org>\r\n"), "250")?;
        smtp_step(&mut smtp, Some("RCPT TO:<ops@example.org>\r\n"), "250")?;
        smtp_step(&mut smtp, Some("RCPT TO:<audit@example.org>\r\n"), "250")?;
        smtp_step(&mut smtp, Some("DATA\r\n"), "354")?;
        smtp_step(
            &mut smtp,
            Some(
                "From: Governance Bot <bot@example.org>\r\nTo: ops@example.org\r\n\
                 Subject: 2 instances deleted\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                 i-1\r\n..leading dot\r\n.\r\n",
            ),
            "250",
        )?;
        smtp_step(&mut smtp, Some("QUIT\r\n"), "221")?;
        Ok(())
    })
    .await??;

    let mails = sink.wait_for(1, Duration::from_secs(10)).await?;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.subject().as_deref(), Some("2 instances deleted"));
    assert_eq!(mail.from(), ["bot@example.org"]);
    assert_eq!(mail.to(), ["ops@example.org"]);
    assert_eq!(mail.envelope_from().as_deref(), Some("bot@example.org"));
    assert_eq!(mail.envelope_to(), ["ops@example.org", "audit@example.org"]);
    // Dot-stuffing undone, body intact.
    assert_eq!(
        mail.text_body().as_deref().map(str::trim_end),
        Some("i-1\n.leading dot")
    );
    assert_eq!(mail.html_body(), None);
    Ok(())
}

#[tokio::test]
async fn smtp_sink_with_starttls_takes_mail_from_lettre() -> Result<()> {
    use lettre::message::{Mailbox, MultiPart};
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let dir = tempfile::tempdir()?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem())?;
    std::fs::write(&key, certified.signing_key.serialize_pem())?;
    let sink = SmtpSink::start_tls(&cert, &key).await?;
    assert!(sink.requires_starttls());

    let port = sink.port();
    let refused = tokio::task::spawn_blocking(move || -> Result<()> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut smtp = BufReader::new(stream);
        smtp_step(&mut smtp, None, "220")?;
        smtp_step(&mut smtp, Some("EHLO testbed\r\n"), "250")?;
        smtp_step(&mut smtp, Some("MAIL FROM:<bot@example.org>\r\n"), "530")
    });
    refused.await?.context("plain MAIL must be refused")?;

    let tls = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(certified.cert.pem().as_bytes())?)
        .build_rustls()?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(sink.host())
        .port(sink.port())
        .tls(Tls::Required(tls))
        .timeout(Some(Duration::from_secs(10)))
        .build();
    let message = Message::builder()
        .from("Governance Bot <bot@example.org>".parse::<Mailbox>()?)
        .to("ops@example.org".parse::<Mailbox>()?)
        .subject("Teardown report ✓")
        .multipart(MultiPart::alternative_plain_html(
            "3 deleted".to_owned(),
            "<p>3 deleted</p>".to_owned(),
        ))?;
    transport.send(message).await?;

    let mails = sink.wait_for(1, Duration::from_secs(10)).await?;
    let mail = &mails[0];
    assert_eq!(mail.subject().as_deref(), Some("Teardown report ✓"));
    assert_eq!(mail.to(), ["ops@example.org"]);
    assert!(
        mail.content_type()
            .is_some_and(|c| c.starts_with("multipart/alternative")),
        "{:?}",
        mail.content_type()
    );
    assert_eq!(
        mail.text_body().as_deref().map(str::trim),
        Some("3 deleted")
    );
    assert_eq!(
        mail.html_body().as_deref().map(str::trim),
        Some("<p>3 deleted</p>")
    );
    Ok(())
}

/// Whether `pid` is a live process; zombies count as gone (our PID 1 may never reap orphans).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself contain spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // Fields after the command name: state, ppid, pgrp, …
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                    .and_then(|pgrp| pgrp.parse::<u32>().ok())
                    == Some(pgid)
            })
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Waits until the group led by `pgid` holds two `sleep`s, and returns its live members.
async fn members_once_both_sleeps_run(pgid: u32) -> Result<Vec<u32>> {
    // The shell plus two sleeps (or the two sleeps alone, if the shell execs the last command).
    let started = Instant::now();
    loop {
        let members = group_members(pgid);
        let sleeps = members
            .iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            })
            .count();
        if sleeps == 2 {
            return Ok(members);
        }
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "expected two sleeps in group {pgid}, found {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn dropping_a_managed_process_kills_its_whole_group() -> Result<()> {
    let process = ManagedProcess::spawn(
        "sleepers",
        Path::new("/bin/sh"),
        ["-c", "sleep 300 & sleep 300"],
        &[],
    )?;
    let members = members_once_both_sleeps_run(process.pid().context("no pid")?).await?;

    drop(process);
    let still_alive: Vec<u32> = members.iter().copied().filter(|pid| alive(*pid)).collect();
    ensure!(
        still_alive.is_empty(),
        "{still_alive:?} of {members:?} survived the drop"
    );
    Ok(())
}

#[tokio::test]
async fn stop_escalates_to_sigkill_for_a_group_that_ignores_sigterm() -> Result<()> {
    // An ignored signal stays ignored across fork and exec, so the sleeps ignore SIGTERM too.
    let mut process = ManagedProcess::spawn(
        "stubborn",
        Path::new("/bin/sh"),
        ["-c", "trap '' TERM; sleep 300 & sleep 300"],
        &[],
    )?;
    let grace = Duration::from_millis(300);
    process.set_stop_grace(grace);
    let members = members_once_both_sleeps_run(process.pid().context("no pid")?).await?;

    let started = Instant::now();
    process.stop();
    let took = started.elapsed();
    let still_alive: Vec<u32> = members.iter().copied().filter(|pid| alive(*pid)).collect();
    ensure!(
        still_alive.is_empty(),
        "{still_alive:?} of {members:?} survived stop()"
    );
    ensure!(
        took >= grace && took < grace + Duration::from_secs(2),
        "stop took {took:?}: it should wait out the {grace:?} grace, then SIGKILL"
    );
    ensure!(process.pid().is_none(), "a stopped process has no pid");
    Ok(())
}

#[tokio::test]
async fn a_service_that_exits_early_reports_its_command_and_log() -> Result<()> {
    let process = ManagedProcess::spawn(
        "doomed",
        Path::new("/bin/sh"),
        ["-c", "echo 'bind: address already in use' >&2; exit 3"],
        &[],
    )?;
    let error = process
        .wait_until("never", Duration::from_secs(10), || async {
            Err::<(), _>("not yet")
        })
        .await
        .expect_err("the process exited, so waiting must fail");
    assert!(matches!(error, Error::Exited { .. }), "{error:?}");
    let message = error.to_string();
    for part in [
        "doomed",
        "exit code 3",
        "echo 'bind",
        "address already in use",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    Ok(())
}

#[tokio::test]
async fn a_service_that_never_gets_ready_times_out_with_its_log() -> Result<()> {
    let process = ManagedProcess::spawn(
        "sluggish",
        Path::new("/bin/sh"),
        ["-c", "echo warming up; exec sleep 300"],
        &[],
    )?;
    let started = Instant::now();
    let error = process
        .wait_until("the port opens", Duration::from_millis(500), || async {
            Err::<(), _>("connection refused")
        })
        .await
        .expect_err("the probe never succeeds");
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = error.to_string();
    for part in [
        "sluggish",
        "the port opens",
        "connection refused",
        "warming up",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    Ok(())
}

#[tokio::test]
async fn prometheus_serves_backfilled_history_with_exact_increases() -> Result<()> {
    // Two days of a counter sampled every 5 minutes from 0, +3 per sample, restarting (from 0)
    // once in the middle; and a histogram of 10 observations per sample.
    let start = 1_795_132_800; // 2026-11-19T00:00:00Z
    let step = 300;
    let samples = 2 * 86_400 / step;
    let mut om = OpenMetrics::new();
    om.family("requests", MetricType::Counter);
    let mut value = 0.0;
    let mut total = 0.0;
    for i in 0..=samples {
        if i > 0 {
            if i == samples / 2 {
                value = 0.0; // the restart: the scrape after it sees only what came since
            }
            value += 3.0;
            total += 3.0;
        }
        om.sample(
            "requests_total",
            &[("tenant", "acme")],
            value,
            start + i * step,
        );
    }
    om.family("latency_seconds", MetricType::Histogram);
    for i in 0..=samples {
        let n = (i * 10) as f64;
        let t = start + i * step;
        for (le, share) in [("0.1", 0.5), ("0.5", 0.9), ("+Inf", 1.0)] {
            om.sample(
                "latency_seconds_bucket",
                &[("tenant", "acme"), ("le", le)],
                n * share,
                t,
            );
        }
        om.sample("latency_seconds_sum", &[("tenant", "acme")], n * 0.12, t);
        om.sample("latency_seconds_count", &[("tenant", "acme")], n, t);
    }
    let prom = Prometheus::start_with(Some(&om.finish()), None).await?;
    let end = start + samples * step;
    let got = prom
        .query_values(
            "sum by (tenant) (increase(requests_total[172800s]))",
            end,
            "tenant",
        )
        .await?;
    ensure!(
        got == vec![("acme".to_string(), total)],
        "increase over the reset: {got:?}"
    );
    let resets = prom
        .query_values(
            "sum by (tenant) (resets(requests_total[172800s]))",
            end,
            "tenant",
        )
        .await?;
    ensure!(resets == vec![("acme".to_string(), 1.0)], "{resets:?}");
    // 90 % of the observations are <= 0.5 and 50 % <= 0.1: P95 lies in (0.5, +Inf], answered
    // as the last finite bound; P75 interpolates inside (0.1, 0.5].
    let p75 = prom
        .query_values(
            "histogram_quantile(0.75, sum by (tenant, le) (increase(latency_seconds_bucket[172800s])))",
            end,
            "tenant",
        )
        .await?;
    ensure!(p75.len() == 1 && (p75[0].1 - 0.35).abs() < 1e-9, "{p75:?}");
    Ok(())
}

#[tokio::test]
async fn kafka_connect_stand_in_answers_the_documented_shapes() -> Result<()> {
    let connect = ConnectStandIn::start(vec![
        ConnectorSpec::new(
            "sales.orders-sink",
            "sink",
            "RUNNING",
            &["RUNNING", "FAILED"],
        ),
        ConnectorSpec::new("hr.people-source", "source", "PAUSED", &[]),
    ])
    .await?;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", connect.url())).send();
    let names: serde_json::Value = get("/connectors").await?.json().await?;
    ensure!(
        names == serde_json::json!(["hr.people-source", "sales.orders-sink"]),
        "{names}"
    );
    let expanded: serde_json::Value = get("/connectors?expand=status&expand=info")
        .await?
        .json()
        .await?;
    let sales = &expanded["sales.orders-sink"];
    ensure!(
        sales["status"]["connector"]["state"] == "RUNNING",
        "{expanded}"
    );
    ensure!(
        sales["status"]["tasks"][1]["state"] == "FAILED",
        "{expanded}"
    );
    ensure!(
        sales["status"]["tasks"][1]["trace"]
            .as_str()
            .is_some_and(|t| t.starts_with("org.apache.kafka.connect.errors.ConnectException")),
        "{expanded}"
    );
    ensure!(
        sales["info"]["tasks"][0]
            == serde_json::json!({"connector": "sales.orders-sink", "task": 0}),
        "{expanded}"
    );
    ensure!(
        sales["info"]["type"] == "sink" && sales["status"]["type"] == "sink",
        "{expanded}"
    );
    let only_status: serde_json::Value = get("/connectors?expand=status").await?.json().await?;
    ensure!(
        only_status["hr.people-source"].get("info").is_none(),
        "{only_status}"
    );
    let missing = get("/connectors/nope/status").await?;
    ensure!(missing.status() == 404, "{}", missing.status());
    let body: serde_json::Value = missing.json().await?;
    ensure!(body["error_code"] == 404, "{body}");
    connect.fail_with(Some(503));
    ensure!(get("/connectors?expand=status").await?.status() == 503);
    ensure!(connect.requests().len() == 4, "{:?}", connect.requests());
    Ok(())
}

#[test]
fn free_ports_are_bindable_and_not_handed_out_twice() -> Result<()> {
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect::<Result<_, _>>()?;
    let distinct: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len(), "{ports:?}");
    std::net::TcpListener::bind(("127.0.0.1", ports[0]))?;
    Ok(())
}

#[test]
fn a_missing_program_names_itself_and_the_setup_script() {
    let error = testbed::process::locate(
        "tansu",
        "GOV_TANSU",
        "/nonexistent/tansu-0.6.0/bin/tansu".into(),
    )
    .expect_err("the path does not exist");
    let message = error.to_string();
    for part in [
        "tansu",
        "/nonexistent/tansu-0.6.0/bin/tansu",
        "GOV_TANSU",
        "bash .ci/setup",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}
