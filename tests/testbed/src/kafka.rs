//! Kafka for tests: a real broker ([`Tansu`]) that can be stopped mid-run, a consumer helper
//! ([`consume_all`]) that reads a topic back without joining a group, and librdkafka's in-process
//! mock cluster ([`mock_cluster`]) for tests that need no separate process.
//!
//! Observed behaviour of tansu 0.6.0 (`--storage-engine memory://tansu/`):
//! - It listens on exactly one port (`--listener-url`); nothing else (no metrics port) needs a
//!   free port. `--advertised-listener-url` must name the same address or clients follow the
//!   default advertisement (`localhost:9092`).
//! - It loads a `.env` file from its working directory (dotenv), so we start it in a temporary
//!   directory: a stray `.env` could otherwise change its storage or listener.
//! - Topics are not created on first produce (the produce times out): create them first with
//!   [`Tansu::create_topic`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::process::{Error, ManagedProcess, Result, free_port, gov_cache, locate};

/// How long tansu may take to answer its first metadata request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a created topic may take to show all its partitions in the metadata.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// A message read back by [`consume_all`]: key (if any) and payload (empty if null).
pub type Record = (Option<Vec<u8>>, Vec<u8>);

/// A running tansu broker with in-memory storage, stopped when dropped.
#[derive(Debug)]
pub struct Tansu {
    // Declared before `dir` so the broker stops before its working directory is removed.
    process: ManagedProcess,
    bootstrap: String,
    dir: tempfile::TempDir,
}

impl Tansu {
    /// Starts `tansu broker` on a free loopback port with in-memory storage and waits until a
    /// metadata request succeeds.
    ///
    /// The binary is `$GOV_TANSU`, else `$GOV_CACHE/tansu-0.6.0/bin/tansu`.
    pub async fn start() -> Result<Tansu> {
        Tansu::start_advertising(None).await
    }

    /// Like [`start`](Self::start), but advertising `127.0.0.1:advertised_port` in metadata
    /// (when given): the port of a TLS or SASL front such as stunnel, so that clients keep
    /// going through it after bootstrap. The readiness probe asks tansu directly.
    pub async fn start_advertising(advertised_port: Option<u16>) -> Result<Tansu> {
        let program = locate("tansu", "GOV_TANSU", tansu_path())?;
        let dir = tempfile::Builder::new()
            .prefix("testbed-tansu-")
            .tempdir()
            .map_err(|source| Error::Io {
                service: "tansu".into(),
                action: "create its working directory".into(),
                source,
            })?;
        let port = free_port()?;
        let listener = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{}", advertised_port.unwrap_or(port));
        let mut process = ManagedProcess::spawn_in(
            "tansu",
            Some(dir.path()),
            &program,
            [
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            &[],
        )?;
        // Nothing to flush in memory, and tansu's graceful shutdown takes 1.7 s idle and more
        // than 3 s with a client connected: kill it outright (on drop too).
        process.set_stop_grace(Duration::ZERO);
        let bootstrap = format!("127.0.0.1:{port}");
        process
            .wait_until("a metadata request succeeds", START_TIMEOUT, || {
                let bootstrap = bootstrap.clone();
                async move {
                    // A refused connection fails fast here instead of in librdkafka's retries.
                    tokio::net::TcpStream::connect(&bootstrap)
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    fetch_metadata(&bootstrap, &[], None, Duration::from_secs(2))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            })
            .await?;
        Ok(Tansu {
            process,
            bootstrap,
            dir,
        })
    }

    /// The `bootstrap.servers` value, e.g. `127.0.0.1:40123`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// Creates `name` with `partitions` partitions (replication 1) through the Admin API and
    /// waits until the metadata shows all of them.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        create_topic(&self.bootstrap, &[], name, partitions).await
    }

    /// Kills the broker (SIGKILL, like a crash), e.g. to test a job whose broker goes away
    /// mid-run. Clients see refused connections from then on. Topics and messages are lost:
    /// storage is in memory. Calling it again does nothing.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Freezes the broker (SIGSTOP): connections stay open and nothing is answered, as in a
    /// network partition or a broker stuck in a pause. Unlike [`Tansu::stop`] it keeps what it
    /// stored: [`Tansu::thaw`] resumes it as it was.
    pub fn freeze(&self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGSTOP, "freeze")
    }

    /// Resumes a frozen broker (SIGCONT).
    pub fn thaw(&self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGCONT, "thaw")
    }

    fn signal(&self, signal: nix::sys::signal::Signal, what: &str) -> Result<()> {
        let unexpected = |detail: String| Error::Unexpected {
            service: "tansu".into(),
            action: what.into(),
            detail,
        };
        let pid = self
            .process
            .pid()
            .ok_or_else(|| unexpected("the broker is not running".into()))?;
        let pid = i32::try_from(pid).map_err(|e| unexpected(e.to_string()))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .map_err(|e| unexpected(e.to_string()))
    }

    /// The underlying process, e.g. for its log.
    pub fn process(&self) -> &ManagedProcess {
        &self.process
    }

    /// The broker's working directory (empty with in-memory storage).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

/// Creates `name` with `partitions` partitions (replication 1) through the Admin API of the
/// cluster at `bootstrap`, with extra client properties `props` (security settings for a
/// secured listener), and waits until the metadata shows all of them.
pub async fn create_topic(
    bootstrap: &str,
    props: &[(String, String)],
    name: &str,
    partitions: i32,
) -> Result<()> {
    let action = format!("create topic {name} with {partitions} partition(s)");
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap, props)
        .create()
        .map_err(|source| kafka_error("kafka", &action, source))?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|source| kafka_error("kafka", &action, source))?;
    for result in results {
        if let Err((topic, code)) = result {
            return Err(Error::Unexpected {
                service: "kafka".into(),
                action,
                detail: format!("topic {topic}: {code}"),
            });
        }
    }
    let started = Instant::now();
    loop {
        let seen = fetch_metadata(bootstrap, props, Some(name), Duration::from_secs(5))
            .await
            .map(|topics| {
                topics
                    .into_iter()
                    .find(|(topic, _)| topic == name)
                    .map_or(0, |(_, partitions)| partitions.len())
            });
        match seen {
            Ok(n) if i32::try_from(n) == Ok(partitions) => return Ok(()),
            _ if started.elapsed() > TOPIC_TIMEOUT => {
                return Err(Error::Unexpected {
                    service: "kafka".into(),
                    action,
                    detail: format!(
                        "metadata still shows {seen:?} partition(s) after {TOPIC_TIMEOUT:?}"
                    ),
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn tansu_path() -> PathBuf {
    std::env::var_os("GOV_TANSU")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| gov_cache().join("tansu-0.6.0/bin/tansu"))
}

fn kafka_error(service: &str, action: &str, source: KafkaError) -> Error {
    Error::Kafka {
        service: service.into(),
        action: action.into(),
        source: Box::new(source),
    }
}

/// A client config for `bootstrap` with extra properties `props`.
fn client_config(bootstrap: &str, props: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (k, v) in props {
        config.set(k, v);
    }
    config
}

/// Topic names with their partition ids, from a metadata request (blocking librdkafka call run
/// off the async runtime).
async fn fetch_metadata(
    bootstrap: &str,
    props: &[(String, String)],
    topic: Option<&str>,
    timeout: Duration,
) -> Result<Vec<(String, Vec<i32>)>> {
    let config = client_config(bootstrap, props);
    let bootstrap = bootstrap.to_owned();
    let topic = topic.map(str::to_owned);
    let action = format!("fetch metadata from {bootstrap}");
    let blocking_action = action.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config
            .create()
            .map_err(|source| kafka_error("kafka", &blocking_action, source))?;
        let metadata = consumer
            .fetch_metadata(topic.as_deref(), timeout)
            .map_err(|source| kafka_error("kafka", &blocking_action, source))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| {
                let ids = t.partitions().iter().map(|p| p.id()).collect();
                (t.name().to_owned(), ids)
            })
            .collect())
    })
    .await
    .unwrap_or_else(|join| {
        Err(Error::Unexpected {
            service: "kafka".into(),
            action,
            detail: format!("metadata task failed: {join}"),
        })
    })
}

/// Reads `topic` from the beginning of every partition until `expected_count` messages have
/// arrived or `timeout` has passed, and returns what arrived (possibly fewer: assert the count).
///
/// The consumer `assign()`s the partitions explicitly instead of joining a group, which skips
/// the group join (seconds); it still sets a unique `group.id` (librdkafka wants one) and commits
/// nothing. Messages come in partition order, not in global produce order. To check that *no
/// more* than `n` messages exist, ask for `n + 1` with a short timeout.
pub async fn consume_all(
    bootstrap: &str,
    topic: &str,
    expected_count: usize,
    timeout: Duration,
) -> Result<Vec<Record>> {
    consume_all_with(bootstrap, &[], topic, expected_count, timeout).await
}

/// [`consume_all`] with extra client properties `props`, e.g. the security settings of a
/// secured listener ([`crate::securekafka::SecureKafka::client_props`]).
pub async fn consume_all_with(
    bootstrap: &str,
    props: &[(String, String)],
    topic: &str,
    expected_count: usize,
    timeout: Duration,
) -> Result<Vec<Record>> {
    let started = Instant::now();
    let partitions = fetch_metadata(bootstrap, props, Some(topic), timeout)
        .await?
        .into_iter()
        .find(|(name, _)| name == topic)
        .map(|(_, partitions)| partitions)
        .filter(|partitions| !partitions.is_empty())
        .ok_or_else(|| Error::Unexpected {
            service: "kafka".into(),
            action: format!("consume {topic} from {bootstrap}"),
            detail: "the topic does not exist (no partitions in the metadata)".into(),
        })?;
    let mut config = client_config(bootstrap, props);
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    let action = format!("consume {topic} from {bootstrap}");
    let join_action = action.clone();
    tokio::task::spawn_blocking(move || {
        let error = |source| kafka_error("kafka", &action, source);
        let consumer: BaseConsumer = config
            .set("group.id", format!("testbed-{}", uuid::Uuid::now_v7()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Shorter waits and backoffs than librdkafka's defaults: measured against tansu,
            // reading 5 messages takes 0.6 s instead of 1.1 s.
            .set("fetch.wait.max.ms", "50")
            .set("fetch.error.backoff.ms", "50")
            .set("fetch.queue.backoff.ms", "10")
            .create()
            .map_err(error)?;
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            assignment
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .map_err(error)?;
        }
        consumer.assign(&assignment).map_err(error)?;
        let mut records = Vec::new();
        while records.len() < expected_count {
            let Some(left) = timeout.checked_sub(started.elapsed()) else {
                break;
            };
            match consumer.poll(left.min(Duration::from_millis(200))) {
                Some(Ok(message)) => records.push((
                    message.key().map(<[u8]>::to_vec),
                    message.payload().unwrap_or_default().to_vec(),
                )),
                // Transient (a broker reconnecting): librdkafka retries by itself.
                Some(Err(e)) => tracing::debug!(error = %e, %topic, "consume_all: poll error"),
                None => {}
            }
        }
        Ok(records)
    })
    .await
    .unwrap_or_else(|join| {
        Err(Error::Unexpected {
            service: "kafka".into(),
            action: join_action,
            detail: format!("consumer task failed: {join}"),
        })
    })
}

/// Starts librdkafka's in-process mock cluster (3 brokers) with the given `(topic, partitions)`
/// created at replication 3. Its [`bootstrap_servers`](MockCluster::bootstrap_servers) work for
/// producers and for [`consume_all`]; the Admin API does not (create topics here). The brokers
/// stop when the returned value drops.
pub fn mock_cluster(
    topics: &[(&str, i32)],
) -> Result<MockCluster<'static, DefaultProducerContext>> {
    let action = "start the mock cluster";
    let cluster = MockCluster::new(3).map_err(|e| kafka_error("mock kafka", action, e))?;
    for (topic, partitions) in topics {
        cluster
            .create_topic(topic, *partitions, 3)
            .map_err(|e| kafka_error("mock kafka", &format!("create topic {topic}"), e))?;
    }
    Ok(cluster)
}
