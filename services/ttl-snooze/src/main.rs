//! `ttl-snooze`: the HTTP service behind the snooze links of the TTL teardown warning emails.
//! All behaviour lives in the library; this binary loads the config, the whitelist, the keys,
//! builds the providers, the Kafka publisher and the Lease client, and serves until SIGTERM or
//! ctrl-c.
//!
//! Exit codes: 0 after a clean shutdown, 1 when serving failed, 2 when refused at start (bad
//! config or whitelist, no `job.snooze`, unusable keys, no Kafka brokers, address not
//! bindable).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Parser;
use common::clock::SystemClock;
use common::config::{SourceMap, relative_to};
use common::kafka::Publisher;
use common::logging::{self, LogFormat};
use ttl_snooze::{AppState, Backends};
use ttl_teardown::config::TtlConfig;
use ttl_teardown::snooze::token::Keyring;

/// Serve the snooze links of the TTL teardown warning emails.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The TTL teardown job's YAML config file (its `job.snooze` section is required)
    #[arg(long, short = 'c', env = "GOV_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on [default: job.snooze.listen]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, value_name = "FORMAT")]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let (listener, state) = match start(&args).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "refusing to start");
                eprintln!("ttl-snooze: {e:#}");
                return ExitCode::from(2);
            }
        };
        match ttl_snooze::serve(listener, state).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "serving failed");
                ExitCode::from(1)
            }
        }
    })
}

/// Everything that may refuse the start, before the port is served.
async fn start(args: &Args) -> anyhow::Result<(tokio::net::TcpListener, AppState)> {
    let file = args.config.display().to_string();
    let config = common::config::load_job_config::<TtlConfig>(&args.config)?;
    let problems = config.job.validate();
    if !problems.is_empty() {
        bail!(
            "invalid config\n{}",
            SourceMap::read(&args.config).errors(&problems)
        );
    }
    let Some(snooze) = config.job.snooze.clone() else {
        bail!(
            "{file}: job.snooze: required by ttl-snooze (keys_dir, active_key, base_url, listen)"
        );
    };
    let keys_dir = relative_to(&args.config, &snooze.keys_dir);
    let keyring = Keyring::load(&keys_dir, &snooze.active_key)?;
    if config.kafka.brokers.is_empty() {
        bail!(
            "{file}: kafka.brokers: ttl-snooze needs a durable Kafka (every snooze publishes resource-ttl-extended before it is confirmed); set kafka.brokers or GOV_KAFKA_BROKERS"
        );
    }
    // The TTL job's own whitelist: what it protects, no link can extend. Fail closed.
    let whitelist_path = relative_to(&args.config, &config.job.whitelist);
    let whitelist = whitelist::Whitelist::load(&whitelist_path).with_context(|| {
        format!(
            "whitelist {} is not usable, refusing to start",
            whitelist_path.display()
        )
    })?;
    let publisher = Publisher::from_config(&config.kafka)?;
    let providers = ttl_teardown::job::connect(&config).await?;
    let lease_client = common::clients::kube_client(&config.kubernetes)
        .await
        .context("a Kubernetes client for the per-resource apply leases")?;
    let listen = args.listen.clone().unwrap_or(snooze.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        listen = %listen,
        events = %publisher.describe(),
        keys = ?keyring,
        base_url = snooze.base_url.as_str(),
        "ttl-snooze serving"
    );
    let backends = Backends {
        providers,
        publisher,
        keyring,
        whitelist,
        lease_client,
    };
    let state = AppState::new(&config, backends, Arc::new(SystemClock));
    Ok((listener, state))
}
