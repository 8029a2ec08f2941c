//! `governance-jobs`: operator tools over the jobs' published results. `summary` rolls a
//! sharded run's result events up from Kafka (see `common::rollup`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use common::config::{JobConfig, load_job_config};
use common::kafka::{Publisher, RESULT_EVENT_TYPE};

#[derive(Parser)]
#[command(version, about = "Tools over the governance jobs' published results")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole of a sharded run: reads the shards' result events back from Kafka (the newest
    /// per shard within --since), prints each shard's status, deletions and cost avoided, the
    /// totals, and which shards have no event. Exit 0 when every shard is present and
    /// succeeded, 1 otherwise, 2 when it cannot read.
    Summary {
        /// A config file of the job (its kafka: section is used, GOV_KAFKA_* apply)
        #[arg(long, short = 'c', env = "GOV_CONFIG", value_name = "FILE")]
        config: PathBuf,
        /// The job whose shards to roll up
        #[arg(long, default_value = "ttl-teardown")]
        job: String,
        /// How far back to read, e.g. 6h
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: Duration,
        /// How long to wait for the broker
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Summary {
        config,
        job,
        since,
        timeout,
        output,
    } = cli.command;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let loaded: JobConfig<serde::de::IgnoredAny> = match load_job_config(&config) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: invalid config\n{e}");
                return ExitCode::from(2);
            }
        };
        let topic = match Publisher::for_run(&loaded.kafka) {
            Ok(p) => p.topic_for(RESULT_EVENT_TYPE),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        match common::rollup::read(&loaded.kafka, &topic, &job, since, timeout).await {
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
            Ok(None) => {
                eprintln!(
                    "no sharded result event of {job} on {topic} within {}",
                    humantime::format_duration(since)
                );
                ExitCode::from(1)
            }
            Ok(Some(r)) => {
                match output {
                    Format::Table => print!("{}", common::rollup::table(&r)),
                    Format::Json => match serde_json::to_string_pretty(&r) {
                        Ok(j) => println!("{j}"),
                        Err(e) => eprintln!("error: {e}"),
                    },
                }
                ExitCode::from(if r.is_success() { 0 } else { 1 })
            }
        }
    })
}
