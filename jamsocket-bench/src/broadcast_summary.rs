//! The broadcast runs of a suite result file (`bench/results/latest.json`), reduced to one
//! median per scenario and server: what `jamsocket-bench chart` draws.

use anyhow::{bail, Context};
use serde::Deserialize;

/// One run as `bench/suite.py` records it: a `jamsocket-bench --json` report plus the
/// `server` and `label` the suite adds. Only what the chart needs; other fields are ignored.
#[derive(Debug, Deserialize)]
struct SuiteRun {
    scenario: String,
    server: String,
    label: String,
    payload_bytes: Option<u64>,
    deliveries_per_sec: Option<f64>,
    round_trip: Option<RoundTrip>,
}

#[derive(Debug, Deserialize)]
struct RoundTrip {
    p50_us: u64,
    p99_us: u64,
}

/// Medians over the repeated runs of one server in one scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub deliveries_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub runs: usize,
}

/// The broadcast scenarios (in the order the suite ran them) by the servers (in the order they
/// first appear), each cell the medians of that server's runs of that scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastSummary {
    pub scenarios: Vec<String>,
    pub servers: Vec<String>,
    /// `cells[scenario][server]`; `None` where a server has no run of a scenario.
    pub cells: Vec<Vec<Option<Cell>>>,
    /// The message size, when every run used the same.
    pub payload_bytes: Option<u64>,
}

impl BroadcastSummary {
    /// Reads the suite's JSON: an array of run reports.
    pub fn from_json(json: &str) -> anyhow::Result<Self> {
        let runs: Vec<SuiteRun> = serde_json::from_str(json)
            .context("expected the JSON array of run reports that bench/suite.py writes")?;
        Self::from_runs(runs)
    }

    fn from_runs(runs: Vec<SuiteRun>) -> anyhow::Result<Self> {
        let mut broadcasts = Vec::new();
        for run in runs.into_iter().filter(|run| run.scenario == "broadcast") {
            let (Some(deliveries_per_sec), Some(round_trip)) =
                (run.deliveries_per_sec, &run.round_trip)
            else {
                bail!(
                    "the broadcast run of `{}` in `{}` has no deliveries_per_sec or round_trip",
                    run.server,
                    run.label
                );
            };
            let sample = Sample {
                deliveries_per_sec,
                p50_us: round_trip.p50_us,
                p99_us: round_trip.p99_us,
            };
            broadcasts.push((run, sample));
        }
        if broadcasts.is_empty() {
            bail!("no broadcast runs to chart");
        }
        let scenarios = first_appearances(broadcasts.iter().map(|(run, _)| &run.label));
        let servers = first_appearances(broadcasts.iter().map(|(run, _)| &run.server));
        let cells = scenarios
            .iter()
            .map(|scenario| {
                servers
                    .iter()
                    .map(|server| {
                        let samples: Vec<Sample> = broadcasts
                            .iter()
                            .filter(|(run, _)| &run.label == scenario && &run.server == server)
                            .map(|(_, sample)| *sample)
                            .collect();
                        Cell::of(&samples)
                    })
                    .collect()
            })
            .collect();
        let mut sizes = broadcasts.iter().map(|(run, _)| run.payload_bytes);
        let first = sizes.next().flatten();
        let payload_bytes = first.filter(|_| sizes.all(|size| size == first));
        Ok(BroadcastSummary {
            scenarios,
            servers,
            cells,
            payload_bytes,
        })
    }

    /// The most runs behind any one cell (the suite's repeat count).
    pub fn runs_per_cell(&self) -> usize {
        self.cells().map(|cell| cell.runs).max().unwrap_or(0)
    }

    /// The highest deliveries/s of any cell.
    pub fn max_deliveries_per_sec(&self) -> f64 {
        self.cells()
            .map(|cell| cell.deliveries_per_sec)
            .fold(0.0, f64::max)
    }

    /// The highest p99 round trip of any cell, in milliseconds.
    pub fn max_p99_ms(&self) -> f64 {
        self.cells().map(|cell| cell.p99_ms).fold(0.0, f64::max)
    }

    fn cells(&self) -> impl Iterator<Item = &Cell> {
        self.cells.iter().flatten().flatten()
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    deliveries_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

impl Cell {
    fn of(samples: &[Sample]) -> Option<Cell> {
        if samples.is_empty() {
            return None;
        }
        let median_of = |value: fn(&Sample) -> f64| median(samples.iter().map(value).collect());
        Some(Cell {
            deliveries_per_sec: median_of(|s| s.deliveries_per_sec),
            p50_ms: median_of(|s| s.p50_us as f64) / 1000.0,
            p99_ms: median_of(|s| s.p99_us as f64) / 1000.0,
            runs: samples.len(),
        })
    }
}

/// The median (the mean of the middle two for an even count), as Python's
/// `statistics.median`, which the suite's Markdown report uses. `values` must not be empty.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Distinct values in the order they first appear.
fn first_appearances<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut distinct: Vec<String> = Vec::new();
    for value in values {
        if !distinct.contains(value) {
            distinct.push(value.clone());
        }
    }
    distinct
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn broadcast(
        label: &str,
        server: &str,
        dps: f64,
        p50_us: u64,
        p99_us: u64,
    ) -> serde_json::Value {
        json!({
            "scenario": "broadcast",
            "label": label,
            "server": server,
            "payload_bytes": 64,
            "deliveries_per_sec": dps,
            "round_trip": {"count": 10, "p50_us": p50_us, "p90_us": 0, "p99_us": p99_us, "max_us": 0},
            "lost_deliveries": 0
        })
    }

    fn summary(runs: Vec<serde_json::Value>) -> anyhow::Result<BroadcastSummary> {
        BroadcastSummary::from_json(&serde_json::Value::Array(runs).to_string())
    }

    #[test]
    fn takes_medians_per_scenario_and_server_in_suite_order() {
        let s = summary(vec![
            broadcast("big room", "native", 100.0, 1000, 9000),
            broadcast("big room", "wasm", 90.0, 2000, 8000),
            broadcast("big room", "native", 300.0, 3000, 7000),
            broadcast("big room", "native", 200.0, 2000, 8000),
            broadcast("many rooms", "wasm", 50.0, 1500, 2500),
            json!({"scenario": "idle", "label": "idle", "server": "node", "held": 10}),
            broadcast("many rooms", "native", 10.0, 1000, 2000),
            broadcast("many rooms", "native", 20.0, 2000, 3000),
        ])
        .unwrap();
        assert_eq!(s.scenarios, ["big room", "many rooms"]);
        assert_eq!(
            s.servers,
            ["native", "wasm"],
            "idle's node is not a broadcast server"
        );
        let cell = |scenario: usize, server: usize| s.cells[scenario][server].unwrap();
        assert_eq!(
            cell(0, 0),
            Cell {
                deliveries_per_sec: 200.0,
                p50_ms: 2.0,
                p99_ms: 8.0,
                runs: 3
            }
        );
        assert_eq!(cell(0, 1).runs, 1);
        assert_eq!(cell(0, 1).p99_ms, 8.0);
        // An even count takes the mean of the middle two, as the Markdown report does.
        assert_eq!(cell(1, 0).deliveries_per_sec, 15.0);
        assert_eq!(cell(1, 0).p50_ms, 1.5);
        assert_eq!(cell(1, 0).p99_ms, 2.5);
        assert_eq!(s.runs_per_cell(), 3);
        assert_eq!(s.max_deliveries_per_sec(), 200.0);
        assert_eq!(s.max_p99_ms(), 8.0);
        assert_eq!(s.payload_bytes, Some(64));
    }

    #[test]
    fn a_server_missing_from_a_scenario_leaves_an_empty_cell() {
        let s = summary(vec![
            broadcast("a", "native", 1.0, 1, 1),
            broadcast("a", "node", 1.0, 1, 1),
            broadcast("b", "node", 1.0, 1, 1),
        ])
        .unwrap();
        assert_eq!(s.servers, ["native", "node"]);
        assert!(s.cells[1][0].is_none());
        assert!(s.cells[1][1].is_some());
    }

    #[test]
    fn mixed_payload_sizes_have_no_single_size() {
        let mut other = broadcast("b", "native", 1.0, 1, 1);
        other["payload_bytes"] = json!(128);
        let s = summary(vec![broadcast("a", "native", 1.0, 1, 1), other]).unwrap();
        assert_eq!(s.payload_bytes, None);
    }

    #[test]
    fn refuses_files_without_broadcast_runs() {
        let err = summary(vec![
            json!({"scenario": "churn", "label": "c", "server": "n"}),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("no broadcast runs"), "{err}");
        let err = BroadcastSummary::from_json("{\"scenario\": \"broadcast\"}").unwrap_err();
        assert!(format!("{err:#}").contains("JSON array"), "{err:#}");
    }

    #[test]
    fn refuses_a_broadcast_run_without_numbers() {
        let mut run = broadcast("a", "wasm", 1.0, 1, 1);
        run.as_object_mut().unwrap().remove("round_trip");
        let err = summary(vec![run]).unwrap_err();
        assert!(err.to_string().contains("`wasm` in `a`"), "{err}");
    }

    #[test]
    fn reads_the_committed_suite_results() {
        let json = include_str!("../../bench/results/latest.json");
        let s = BroadcastSummary::from_json(json).unwrap();
        assert_eq!(s.servers, ["native", "wasm", "node"]);
        assert!(!s.scenarios.is_empty());
        assert!(s.cells.iter().flatten().all(Option::is_some));
    }
}
