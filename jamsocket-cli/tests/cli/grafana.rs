//! `deploy/grafana-dashboard.json` only charts metrics that a real server exposes.

use crate::common::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// Every query string of the dashboard: panel targets' `expr` (rows' nested panels included)
/// and the template variables' `query`/`definition`.
fn queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query" | "definition", Value::String(text)) => {
                        out.push(text.clone())
                    }
                    _ => queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| queries(item, out)),
        _ => {}
    }
}

/// The `jamsocket_[a-z_]+` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("jamsocket_") {
        let before = rest[..at].chars().next_back();
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(ident) {
            names.push(tail[..len].to_string());
        }
        rest = &tail[len..];
    }
    names
}

/// Metric families and their types, from the `# TYPE <family> <type>` lines.
fn families(exposition: &str) -> HashMap<String, String> {
    exposition
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("# TYPE ")?.split_whitespace();
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// Whether a name used in a query is a sample of one of the families: the family itself (a
/// gauge, or a counter written with its `_total`), or the family plus the suffix its type adds.
fn exposed(name: &str, families: &HashMap<String, String>) -> bool {
    if families.contains_key(name) {
        return true;
    }
    let suffixes: [(&str, &[&str]); 5] = [
        ("_total", &["counter"]),
        ("_bucket", &["histogram", "gaugehistogram"]),
        ("_sum", &["histogram", "summary"]),
        ("_count", &["histogram", "summary"]),
        ("_created", &["counter", "histogram", "summary"]),
    ];
    suffixes.iter().any(|(suffix, types)| {
        name.strip_suffix(suffix)
            .and_then(|family| families.get(family))
            .is_some_and(|kind| types.contains(&kind.as_str()))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_only_charts_metrics_the_server_exposes() {
    let path = workspace_root().join("deploy/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()));
    assert_eq!(
        dashboard["__inputs"][0]["name"], "DS_PROMETHEUS",
        "the dashboard asks for its Prometheus data source on import"
    );
    let mut exprs = Vec::new();
    queries(&dashboard, &mut exprs);
    let names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    assert!(names.len() >= 20, "too few metrics charted: {names:?}");

    let counter = build_example("counter-service");
    let store = TempDir::new("grafana-store");
    let store = format!("sqlite:{}", store.0.join("rooms.db").display());
    let mut server = Running::start(&[
        "serve",
        &counter,
        "--port",
        "0",
        "--admin-port",
        "0",
        "--admin-token",
        "x",
        "--store",
        &store,
    ]);
    let port = server.admin_port();
    // A family with labels is exposed once it has a series: a refused handshake, a message and
    // a close frame give those of the dashboard one each.
    assert_eq!(server.handshake("..", None), 400);
    let mut client = server.ws("grafana").await;
    assert_eq!(client.recv().await, "new value: 0");
    client.send("increment").await;
    assert_eq!(client.recv().await, "new value: 1");
    client.0.close(None).await.unwrap();
    assert_eq!(client.recv().await, "close 1000");
    let (status, metrics) = http_request(port, "GET", "/metrics", None, "");
    assert_eq!(status, 200, "{metrics}");
    let families = families(&metrics);

    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !exposed(name, &families))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/grafana-dashboard.json charts metrics that /metrics does not expose: \
         {missing:?}\n/metrics:\n{metrics}"
    );
}

#[test]
fn metric_names_are_read_from_promql_and_matched_to_families() {
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(jamsocket_snapshot_write_seconds_bucket{instance=~"$instance"}[5m]))) / my_jamsocket_x"#
        ),
        ["jamsocket_snapshot_write_seconds_bucket"]
    );
    let families = families(
        "# HELP jamsocket_rooms_created Rooms created.\n\
         # TYPE jamsocket_rooms_created counter\n\
         jamsocket_rooms_created_total 3\n\
         # TYPE jamsocket_rooms gauge\n\
         # TYPE jamsocket_snapshot_write_seconds histogram\n",
    );
    for name in [
        "jamsocket_rooms_created_total",
        "jamsocket_rooms",
        "jamsocket_snapshot_write_seconds_bucket",
        "jamsocket_snapshot_write_seconds_count",
    ] {
        assert!(exposed(name, &families), "{name}");
    }
    for name in [
        "jamsocket_rooms_total",
        "jamsocket_rooms_created_bucket",
        "jamsocket_rooms_closed_total",
    ] {
        assert!(!exposed(name, &families), "{name}");
    }
    assert_eq!(dechunk("5\r\nhello\r\n3\r\n!!!\r\n0\r\n\r\n"), "hello!!!");
}
