//! Bad data and failing sources: clear errors and findings, never a crash, never a wrong
//! number. (A quota of 0 and a hostile tenant name are part of the weekly run's fixture.)

use serde_json::Value;

use crate::{Env, NOW, result_event, run, tenants, text};

fn reports_since(events: &[Value], skip: usize) -> Vec<Value> {
    events[skip..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sources_make_partial_runs_with_no_invented_figures() {
    let env = Env::start(tenants()).await;
    let mut seen = 0;
    let go = |config: std::path::PathBuf| {
        let dir = env.dir.path().to_path_buf();
        async move {
            let c = config.display().to_string();
            run(&dir, &["--config", &c, "--now", NOW, "--output", "json"]).await
        }
    };

    // Prometheus answers 400 (a selector it cannot parse): the API figures are unknown, the
    // rest is still reported.
    let bad_regex = env.config(
        "regex.yaml",
        &env.prom.url(),
        "    metrics: {failed_selector: 'code=~\"(5..\"'}\n",
        "",
    );
    let out = go(bad_regex).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "partial: {stderr}");
    let event = result_event(&out);
    assert_eq!(event["status"], "partial");
    let error = event["errors"][0].as_str().expect("an error");
    assert!(
        error.contains("400") && error.contains("bad_data"),
        "{error}"
    );
    assert!(
        error.starts_with(&format!("prometheus {}", env.prom.url())),
        "{error}"
    );
    let reports = env.events("tenant-usage-report", seen + 4).await;
    let run1 = reports_since(&reports, seen);
    seen = reports.len();
    assert_eq!(run1.len(), 4, "every tenant is still reported");
    for r in &run1 {
        assert!(
            r["api"].is_null(),
            "no figures from a failed source: {:#}",
            r["api"]
        );
        assert_eq!(r["api_source"]["state"], "failed");
        assert!(
            r["quotas"]
                .as_array()
                .is_some_and(|q| q.iter().all(|q| q["dimension"] != "api_calls_per_month")),
            "no rate quota state without usage"
        );
    }
    let acme = run1
        .iter()
        .find(|r| r["tenant"]["slug"] == "acme")
        .expect("acme");
    assert!(
        acme["quotas"]
            .as_array()
            .is_some_and(|q| q.iter().any(|q| q["dimension"] == "kafka_connectors")),
        "Kafka Connect is still reported"
    );
    assert!(
        !event["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["type"] == "no_usage_data")),
        "a failed source is an error, not 'no data'"
    );

    // Prometheus never answers: a timeout, the same way.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}", silent.local_addr().expect("addr"));
    let out = go(env.config("silent.yaml", &silent_url, "", "")).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let event = result_event(&out);
    assert_eq!(event["status"], "partial");
    assert!(
        event["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e.as_str().is_some_and(|e| e
                .starts_with(&format!("prometheus {silent_url}: query "))
                && e.ends_with(": timed out")))),
        "{:#}",
        event["errors"]
    );
    drop(silent);
    let reports = env.events("tenant-usage-report", seen + 4).await;
    assert!(
        reports_since(&reports, seen)
            .iter()
            .all(|r| r["api"].is_null())
    );
    seen = reports.len();

    // Kafka Connect answers 503: its quotas are absent, the API figures are there.
    env.connect.fail_with(Some(503));
    let out = go(env.config("connect.yaml", &env.prom.url(), "", "")).await;
    env.connect.fail_with(None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let event = result_event(&out);
    assert!(
        event["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("kafka connect") && e.contains("503")),
        "{:#}",
        event["errors"]
    );
    let reports = env.events("tenant-usage-report", seen + 4).await;
    let run3 = reports_since(&reports, seen);
    for r in &run3 {
        assert_eq!(r["connect"]["source"]["state"], "failed");
        assert!(
            r["quotas"]
                .as_array()
                .is_some_and(|q| q.iter().all(|q| q["dimension"] != "kafka_connectors"))
        );
    }
    assert!(
        run3.iter()
            .any(|r| r["api"]["calls"].as_u64().is_some_and(|c| c > 0))
    );

    // PostgreSQL unreachable: nothing to report, a failure naming the server (and no password).
    let down = env.config("down.yaml", &env.prom.url(), "", "");
    let text_down = std::fs::read_to_string(&down)
        .expect("config")
        .replace(&format!("port: {}", env.pg.port()), "port: 1");
    std::fs::write(&down, text_down).expect("config");
    let out = go(down).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let event = result_event(&out);
    assert_eq!(event["status"], "failure");
    assert!(
        event["errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("postgres 127.0.0.1:1/postgres: connect")),
        "{:#}",
        event["errors"]
    );

    // A database without the schema: told to apply migrations/.
    env.pg
        .execute("postgres", "CREATE DATABASE empty")
        .await
        .expect("create db");
    env.pg
        .execute(
            "empty",
            &format!(
                "CREATE ROLE empty_reader LOGIN PASSWORD '{}'",
                crate::READER_PASSWORD
            ),
        )
        .await
        .expect("role");
    let empty = env.config("empty.yaml", &env.prom.url(), "", "");
    let text_empty = std::fs::read_to_string(&empty).expect("config").replace(
        "dbname: postgres, user: usage_reader",
        "dbname: empty, user: empty_reader",
    );
    std::fs::write(&empty, text_empty).expect("config");
    let out = go(empty).await;
    let event = result_event(&out);
    assert!(
        event["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("apply migrations/")),
        "{:#}",
        event["errors"]
    );
}
