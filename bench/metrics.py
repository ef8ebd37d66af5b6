#!/usr/bin/env python3
"""What Prometheus metrics cost: broadcast scenarios 1-3 of the benchmark suite (bench/suite.py)
with metrics on, as a ratio to metrics off, measured in one run.

    python3 bench/metrics.py              # full sizes, 5 repeats (about 10 minutes on 2 cores)
    python3 bench/metrics.py --quick      # tiny sizes, 1 repeat (a smoke run)
    python3 bench/metrics.py --no-build   # use the release binaries already built

Four servers of examples/broadcast-echo: `native` (its `serve_native` example), `native+metrics`
(the same with `ADMIN_PORT`, which calls `Server::with_admin` and so turns metrics on), `wasm`
(`jamsocket serve <module>`) and `wasm+metrics` (with `--admin-port`). Without an admin
listener the server collects no metrics at all. Each repeat runs the four in turn, starting
with a different one each time, as suite.py does.

While a "+metrics" server runs, a thread scrapes its `/metrics` once a second (more often than
Prometheus usually would), and the run fails if a scrape fails or
`jamsocket_messages_received_total` did not grow. Scraping is part of what is measured: it
costs the server CPU.

The machines this runs on are noisy, so each metrics-on run is paired with the metrics-off run
of the same server kind, scenario and repeat: the tables give the median of those per-repeat
ratios (deliveries/s on / off: higher is better, target >= 0.97x; server CPU per delivery
on / off: lower is better) and every per-repeat ratio. Writes bench/results/metrics.md and
metrics.json and prints the table.
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402  (the suite's build, servers and bench runner)

ROOT, RELEASE = suite.ROOT, suite.RELEASE
KINDS = ("native", "wasm")
TARGET = 0.97
SCRAPE_INTERVAL_SECS = 1.0
RECEIVED = "jamsocket_messages_received_total"


def build(skip_cargo):
    if not skip_cargo:
        suite.run(["cargo", "build", "--release", "-p", "jamsocket-bench", "-p", "jamsocket-cli", "--bins",
                   "-p", "broadcast-echo", "--example", "serve_native"], cwd=ROOT)
    out = subprocess.run([RELEASE / "jamsocket", "build", ROOT / "examples/broadcast-echo"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def server_commands(wasm):
    """Commands by server name; each takes the client port and the admin port. `env` execs the
    server, so the pid suite.Server measures is the server's own."""
    def native(port, admin):
        return [RELEASE / "examples" / "serve_native"]

    def native_metrics(port, admin):
        return ["env", f"ADMIN_PORT={admin}", RELEASE / "examples" / "serve_native"]

    def wasm_server(port, admin):
        return [RELEASE / "jamsocket", "serve", wasm, "--port", str(port), "--max-rooms", "12000"]

    def wasm_metrics(port, admin):
        return wasm_server(port, admin) + ["--admin-port", str(admin)]

    return {"native": native, "native+metrics": native_metrics,
            "wasm": wasm_server, "wasm+metrics": wasm_metrics}


class Scraper(threading.Thread):
    """Scrapes `/metrics` every SCRAPE_INTERVAL_SECS until stopped, remembering the sum of
    `jamsocket_messages_received_total` over its labels at each successful scrape."""

    def __init__(self, admin_port):
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{admin_port}/metrics"
        self.received = []
        self.failures = []
        self.halt = threading.Event()

    def scrape(self):
        try:
            text = urllib.request.urlopen(self.url, timeout=5).read().decode()
        except Exception as err:  # noqa: BLE001 (any failure is reported, not raised)
            self.failures.append(str(err))
            return
        samples = re.findall(rf"^{RECEIVED}(?:{{[^}}]*}})? (\S+)", text, re.MULTILINE)
        if not samples:
            self.failures.append(f"no {RECEIVED} in the scrape")
            return
        self.received.append(sum(float(v) for v in samples))

    def run(self):
        while not self.halt.wait(SCRAPE_INTERVAL_SECS):
            self.scrape()

    def stop(self):
        self.halt.set()
        self.join()
        self.scrape()  # the last one, after the run

    def check(self):
        if self.failures:
            raise RuntimeError(f"{len(self.failures)} scrape(s) of {self.url} failed, first: {self.failures[0]}")
        if len(self.received) < 2 or self.received[-1] <= self.received[0]:
            raise RuntimeError(f"{RECEIVED} did not grow at {self.url}: {self.received}")


def wait_for_metrics(port):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
            return
        except Exception:  # noqa: BLE001 (not up yet)
            time.sleep(0.05)
    raise RuntimeError(f"the admin listener did not start on port {port}")


def measure(name, command, port, admin, args):
    server = suite.Server(name, lambda p: command(p, admin), port)
    scraper = None
    try:
        if name.endswith("+metrics"):
            wait_for_metrics(admin)
            scraper = Scraper(admin)
            scraper.scrape()  # before the run
            scraper.start()
        r = suite.bench(server, args)
        if scraper:
            scraper.stop()
            scraper.check()
            r["scrapes"] = len(scraper.received)
            r["messages_received_counted"] = scraper.received[-1] - scraper.received[0]
    finally:
        if scraper and scraper.is_alive():
            scraper.halt.set()
        server.stop()
    return r


def cpu_per_delivery(r):
    return r["server_cpu_secs"] / max(r["received_deliveries"], 1)


def ratios(results, label, kind):
    """Per repeat: (deliveries/s on / off, CPU per delivery on / off)."""
    pairs = []
    by = {(r["server"], r["repeat"]): r for r in results if r["label"] == label}
    for rep in sorted({r["repeat"] for r in results}):
        off, on = by.get((kind, rep)), by.get((f"{kind}+metrics", rep))
        if not off or not on:
            continue
        cpu_off, cpu_on = cpu_per_delivery(off), cpu_per_delivery(on)
        # A quick run's CPU time can round to 0: no ratio then.
        pairs.append((on["deliveries_per_sec"] / off["deliveries_per_sec"],
                      cpu_on / cpu_off if cpu_off and cpu_on else float("nan")))
    return pairs


def middle(values):
    """Median of the measured values (NaN, "too small to measure", left out)."""
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def geomean(values):
    values = [v for v in values if not math.isnan(v)]
    return statistics.geometric_mean(values) if values else float("nan")


def summarise(results, labels):
    rows = []
    for label in labels:
        for kind in KINDS:
            pairs = ratios(results, label, kind)
            of = lambda name: [r for r in results if r["label"] == label and r["server"] == name]  # noqa: E731
            rows.append({
                "scenario": label, "server": kind,
                "deliveries_per_sec_off": suite.median(of(kind), lambda r: r["deliveries_per_sec"]),
                "deliveries_per_sec_on": suite.median(of(f"{kind}+metrics"), lambda r: r["deliveries_per_sec"]),
                "throughput_ratio": middle(p[0] for p in pairs),
                "throughput_ratios": [p[0] for p in pairs],
                "cpu_per_delivery_ratio": middle(p[1] for p in pairs),
                "cpu_per_delivery_ratios": [p[1] for p in pairs],
                "lost_deliveries": sum(r["lost_deliveries"] for r in of(kind) + of(f"{kind}+metrics")),
                "scrapes": sum(r.get("scrapes", 0) for r in of(f"{kind}+metrics")),
            })
    return rows


def report(rows, repeats, quick):
    def cell(ratio, higher_is_better):
        if math.isnan(ratio):
            return "n/a"
        worse = ratio < TARGET if higher_is_better else ratio > 1 / TARGET
        return f"**{ratio:.3f}x**" if worse else f"{ratio:.3f}x"

    def each(values):
        return " ".join("n/a" if math.isnan(v) else f"{v:.2f}" for v in values)

    lines = [f"# Metrics overhead ({'quick smoke run' if quick else 'full run'})", "",
             f"Broadcast scenarios 1-3 of `bench/suite.py`, {repeats} repeat(s), four servers per repeat "
             "in rotating order, one run on this 2-core machine (server and load generator share the "
             "cores). \"+metrics\" servers have the admin listener on (`Server::with_admin` / `jamsocket "
             "serve --admin-port`), which turns metrics collection on, and are scraped once a second "
             "during the run; the others collect no metrics. Each ratio pairs the metrics-on run with "
             "the metrics-off run of the same repeat; the table gives the median of those ratios, then "
             "each repeat's. Deliveries/s: higher is better, target >= "
             f"{TARGET}x. CPU per delivery: lower is better. Ratios more than 3% worse than even are in "
             "bold; n/a: CPU time too small to measure (/proc counts 10 ms ticks). Generated by `python3 bench/metrics.py`; raw data in `metrics.json`.", "",
             "| scenario | server | deliveries/s off / on | deliveries/s ratio | per repeat | "
             "server CPU per delivery ratio | per repeat | lost | scrapes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['scenario']} | {row['server']} | {row['deliveries_per_sec_off']:,.0f} / "
            f"{row['deliveries_per_sec_on']:,.0f} | {cell(row['throughput_ratio'], True)} | "
            f"{each(row['throughput_ratios'])} | {cell(row['cpu_per_delivery_ratio'], False)} | "
            f"{each(row['cpu_per_delivery_ratios'])} | {row['lost_deliveries']} | {row['scrapes']} |")
    every = [x for row in rows for x in row["throughput_ratios"]]
    cpu = [x for row in rows for x in row["cpu_per_delivery_ratios"]]
    lines += ["", f"Over all {len(every)} pairs: deliveries/s ratio median {middle(every):.3f}x "
              f"(geometric mean {geomean(every):.3f}x), CPU per delivery ratio median "
              f"{middle(cpu):.3f}x (geometric mean {geomean(cpu):.3f}x).", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-build", action="store_true",
                        help="skip `cargo build` (still builds the module with target/release/jamsocket)")
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    scale = 10 if opts.quick else 1
    repeats = 1 if opts.quick else opts.repeats
    broadcasts = {  # scenarios 1-3 of suite.py
        "1 room x 100 clients x 200 msgs": ["--rooms", "1", "--clients", str(100 // scale), "--messages", str(200 // scale)],
        "100 rooms x 10 clients x 200 msgs": ["--rooms", str(100 // scale), "--clients", "10", "--messages", str(200 // scale)],
        "1000 rooms x 2 clients x 100 msgs": ["--rooms", str(1000 // scale), "--clients", "2", "--messages", str(100 // scale)],
    }
    commands = server_commands(build(opts.no_build))
    names = list(commands)
    load_start = os.getloadavg()[0]
    ports = iter(range(19300, 19700, 2))  # each server: client port, admin port
    results = []
    for label, args in broadcasts.items():
        print(f"broadcast {label}", flush=True)
        for rep in range(repeats):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                port = next(ports)
                r = measure(name, commands[name], port, port + 1, ["broadcast", *args, "--payload-bytes", "64"])
                r["label"], r["repeat"] = label, rep
                if r.get("timed_out") or r["lost_deliveries"]:
                    print(f"  warning: {name} timed out or lost deliveries", flush=True)
                results.append(r)
    rows = summarise(results, list(broadcasts))
    text = report(rows, repeats, opts.quick)
    # Other work on the machine shows here: the servers and the load generator share its cores.
    text += (f"Load average (1 min) at the start and the end of the run: {load_start:.1f}, "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"summary": rows, "runs": results}, indent=1))
    (out / "metrics.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
