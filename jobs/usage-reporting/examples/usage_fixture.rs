//! Benchmark helper: starts the services a usage report reads — PostgreSQL with the schema and N
//! tenants (default 200), Prometheus with 8 days of backfilled gateway metrics for them, the
//! Kafka Connect stand-in, a Pushgateway, an SMTP sink and librdkafka's mock Kafka cluster —
//! writes `DIR/config.yaml` and `DIR/maildir` (the sink's Maildir path), then serves until
//! SIGTERM or Ctrl-C (and stops every service on the way out).
//!
//! ```sh
//! cargo run -p usage-reporting --example usage_fixture -- DIR [N]
//! ```
//!
//! The run to benchmark is the weekly report as of 2026-11-30T02:00:00Z with `GOV_CONTROL_PLANE_PASSWORD`
//! from `DIR/password`.

#[path = "../tests/support/fixture.rs"]
mod fixture;

use std::path::PathBuf;

use fixture::{TenantSpec, World};
use testbed::kafka::mock_cluster;
use testbed::kafka_connect::ConnectStandIn;
use testbed::postgres::Postgres;
use testbed::prometheus::Prometheus;
use testbed::pushgateway::Pushgateway;
use testbed::smtp::SmtpSink;

/// 2026-11-22T00:00:00Z.
const START: i64 = 1_795_305_600;

fn tenants(n: usize) -> Vec<TenantSpec> {
    (0..n)
        .map(|i| {
            let slug = format!("t{i:03}");
            let mut t = TenantSpec::new(&slug, &format!("Tenant {i} — Ünïcode #{i}"));
            t.has_errors = i % 5 != 0;
            if i % 7 == 3 {
                t.quotas.push(("api_calls_per_month".into(), 800.0));
            }
            if i % 11 == 5 {
                t.reset_at = Some(100);
            }
            t.connectors = (0..i % 4)
                .map(|c| {
                    let tasks = if c == 1 {
                        vec!["RUNNING".to_string(), "FAILED".to_string()]
                    } else {
                        vec!["RUNNING".to_string()]
                    };
                    (format!("conn{c}"), "RUNNING".to_string(), tasks)
                })
                .collect();
            t
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: usage_fixture DIR [N]"))?,
    );
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let password = "bench-reader-password";

    // Hourly samples keep the backfill of 200 tenants to ~1.4 million samples.
    let world = World::generate(START, 3_600, 8 * 24, tenants(n));
    let om = world.openmetrics();
    eprintln!("backfilling {} samples for {n} tenants", om.samples());
    let pg = Postgres::start().await?;
    for (name, sql) in usage_reporting::controlplane::MIGRATIONS {
        pg.execute("postgres", sql)
            .await
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    }
    pg.execute("postgres", &world.control_plane_sql(password))
        .await?;
    let prom = Prometheus::start_with(Some(&om.finish()), None).await?;
    let pgw = Pushgateway::start().await?;
    let smtp = SmtpSink::start().await?;
    let kafka = mock_cluster(&[("security-job-results", 1), ("tenant-usage-report", 3)])?;
    let connect = ConnectStandIn::start(world.connectors()).await?;

    let config = format!(
        "kafka:\n  brokers: [\"{kafka}\"]\n  delivery_timeout: 30s\n\
         pushgateway:\n  url: {pgw}\n\
         notify:\n  smtp: {{host: 127.0.0.1, port: {smtp}, tls: none, from: \"Reports <reports@platform.example.com>\", timeout: 60s}}\n  email_to: [platform@platform.example.com]\n\
         job:\n  postgres: {{host: 127.0.0.1, port: {pg}, dbname: postgres, user: usage_reader, tls: off, timeout: 30s}}\n\
         \x20 prometheus: {{url: {prom}, timeout: 60s}}\n\
         \x20 kafka_connect: {{url: {connect}, timeout: 10s}}\n",
        kafka = kafka.bootstrap_servers(),
        pgw = pgw.url(),
        smtp = smtp.port(),
        pg = pg.port(),
        prom = prom.url(),
        connect = connect.url(),
    );
    std::fs::write(dir.join("password"), password)?;
    std::fs::write(dir.join("maildir"), smtp.maildir().display().to_string())?;
    // Written last and renamed into place, so the script can wait for the file.
    std::fs::write(dir.join("config.yaml.tmp"), config)?;
    std::fs::rename(dir.join("config.yaml.tmp"), dir.join("config.yaml"))?;
    eprintln!("serving {n} tenants; config in {}", dir.display());

    // Return normally on a signal, so every service is stopped by its handle's drop.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("stopping");
    drop((connect, kafka, smtp, pgw, prom, pg));
    Ok(())
}
