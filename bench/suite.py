#!/usr/bin/env python3
"""The benchmark suite: our native server, our WebAssembly server (the same service) and a
Node.js `ws` baseline, measured in one run by `jamsocket-bench`, in alternating order.

    python3 bench/suite.py            # full sizes, 3 repeats (about 10 minutes on 2 cores)
    python3 bench/suite.py --quick    # tiny sizes, 1 repeat (a smoke run)
    python3 bench/suite.py --baseline /work/before   # also an older build: native-before, wasm-before

The service is examples/broadcast-echo (every message broadcast verbatim to its room), served
natively by its `serve_native` example and as WebAssembly by `jamsocket serve`; the Node.js
server in bench/node-baseline does the same. Builds what it needs (release), writes
bench/results/latest.json, latest.md and latest.svg (the broadcast chart, drawn by
`jamsocket-bench chart`).

`--baseline DIR` takes another checkout of this repository, already built in release in its own
DIR/target (`cargo build --release -p jamsocket-cli --bins -p broadcast-echo --example
serve_native`), and adds its servers as native-before and wasm-before (the wasm one serving the
same service, built by the baseline, since a host refuses guests of a newer ABI). Such a run
writes bench/results/vs-baseline.{json,md,svg} instead of
latest.*, with a table of this build against the baseline.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
BENCH = RELEASE / "jamsocket-bench"


def run(cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def build():
    run(["cargo", "build", "--release", "-p", "jamsocket-bench", "-p", "jamsocket-cli", "--bins",
         "-p", "broadcast-echo", "--example", "serve_native"], cwd=ROOT)
    out = subprocess.run([RELEASE / "jamsocket", "build", ROOT / "examples/broadcast-echo"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    wasm = out.stdout.strip()
    node_dir = ROOT / "bench" / "node-baseline"
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir)
    return wasm


def server_commands(wasm, baseline=None):
    # serve_native reads its port from PORT, which every server gets (see Server).
    def native(release):
        return lambda port: [release / "examples" / "serve_native"]

    def wasm_server(release, module=wasm):
        return lambda port: [release / "jamsocket", "serve", module, "--port", str(port),
                             "--max-rooms", "12000"]

    before = None
    if baseline:
        before = Path(baseline).resolve() / "target" / "release"
        for binary in (before / "examples" / "serve_native", before / "jamsocket"):
            if not binary.is_file():
                sys.exit(f"error: {binary} is missing; build the baseline first: cd {baseline} && "
                         f"CARGO_TARGET_DIR={before.parent} cargo build --release -p jamsocket-cli "
                         "--bins -p broadcast-echo --example serve_native")
    # Each baseline server right after its counterpart, so that the two run close together.
    commands = {"native": native(RELEASE)}
    if before:
        commands["native-before"] = native(before)
    commands["wasm"] = wasm_server(RELEASE)
    if before:
        # The baseline's own build of the module: a host refuses guests of a newer ABI.
        out = subprocess.run([before / "jamsocket", "build", Path(baseline) / "examples/broadcast-echo"],
                             check=True, capture_output=True, text=True)
        commands["wasm-before"] = wasm_server(before, out.stdout.strip())
    commands["node"] = lambda port: ["node", ROOT / "bench/node-baseline/server.mjs", str(port)]
    return commands


class Server:
    def __init__(self, name, command, port):
        self.name, self.port = name, port
        env = dict(os.environ, RUST_LOG="warn", PORT=str(port))
        self.proc = subprocess.Popen(command(port), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                import urllib.request
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1).read() == b"ok":
                    return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"{name} server did not start on port {port}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench(server, args, timeout=120):
    cmd = [BENCH, "--url", f"ws://127.0.0.1:{server.port}"] + args + [
        "--json", "--server-pid", str(server.proc.pid), "--timeout-secs", str(timeout)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {out.stderr}")
    result = json.loads(out.stdout)
    result["server"] = server.name
    print(f"  {server.name:13} {args[0]:9} {summary(result)}", flush=True)
    return result


def summary(r):
    if r["scenario"] == "broadcast":
        return (f"{r['deliveries_per_sec']:>10,.0f} deliveries/s, lost {r['lost_deliveries']}, "
                f"p50 {r['round_trip']['p50_us']} us, p99 {r['round_trip']['p99_us']} us, "
                f"server CPU {r['server_cpu_secs']:.2f} s")
    if r["scenario"] == "idle":
        return f"{r['held']} held, {r['server_kib_per_connection']:.1f} KiB/connection"
    return (f"{r['rooms_per_sec']:>8,.0f} rooms/s, first reply p50 {r['first_reply']['p50_us']} us, "
            f"p99 {r['first_reply']['p99_us']} us, failed {r['failed']}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", metavar="DIR",
                        help="a checkout of an older version, built in release in DIR/target")
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    scale = 10 if opts.quick else 1
    repeats = 1 if opts.quick else opts.repeats
    broadcasts = {
        "1 room x 100 clients x 200 msgs": ["--rooms", "1", "--clients", str(100 // scale), "--messages", str(200 // scale)],
        "100 rooms x 10 clients x 200 msgs": ["--rooms", str(100 // scale), "--clients", "10", "--messages", str(200 // scale)],
        "1000 rooms x 2 clients x 100 msgs": ["--rooms", str(1000 // scale), "--clients", "2", "--messages", str(100 // scale)],
    }
    wasm = build()
    commands = server_commands(wasm, opts.baseline)
    names = list(commands)
    results = []
    ports = iter(range(9300, 9600))

    def order(rep):  # alternate who goes first
        return names[rep % len(names):] + names[:rep % len(names)]

    for label, args in broadcasts.items():
        print(f"broadcast {label}", flush=True)
        for rep in range(repeats):
            for name in order(rep):
                server = Server(name, commands[name], next(ports))
                try:
                    r = bench(server, ["broadcast", *args, "--payload-bytes", "64"])
                finally:
                    server.stop()
                r["label"] = label
                results.append(r)

    # Scenario 2 again, with one client in a room of its own sending as fast as it can.
    flood_label = "100 rooms x 10 clients x 200 msgs, 1 flooder"
    print(f"broadcast {flood_label}", flush=True)
    for rep in range(repeats):
        for name in order(rep):
            server = Server(name, commands[name], next(ports))
            try:
                r = bench(server, ["broadcast", *broadcasts["100 rooms x 10 clients x 200 msgs"],
                                   "--payload-bytes", "64", "--flooders", "1"])
            finally:
                server.stop()
            r["label"] = flood_label
            results.append(r)

    idle_rooms, idle_clients = (1000 // scale, 10)
    print(f"idle {idle_rooms * idle_clients} connections over {idle_rooms} rooms", flush=True)
    for rep in range(repeats):
        for name in order(rep):
            server = Server(name, commands[name], next(ports))
            try:
                r = bench(server, ["idle", "--rooms", str(idle_rooms), "--clients", str(idle_clients), "--hold-secs", "3"])
            finally:
                server.stop()
            r["label"] = f"{idle_rooms * idle_clients} idle connections"
            results.append(r)

    print("wasm idle rooms (one client each)", flush=True)
    for rep in range(repeats):
        for name in order(rep):
            server = Server(name, commands[name], next(ports))
            try:
                r = bench(server, ["idle", "--rooms", str(10000 // scale), "--clients", "1", "--hold-secs", "3"])
            finally:
                server.stop()
            r["label"] = f"{10000 // scale} rooms, 1 client each"
            results.append(r)

    for concurrency in (1, 16):
        print(f"churn 2000 rooms at concurrency {concurrency}", flush=True)
        for rep in range(repeats):
            for name in order(rep):
                server = Server(name, commands[name], next(ports))
                try:
                    r = bench(server, ["churn", "--rooms", str(2000 // scale), "--concurrency", str(concurrency)])
                finally:
                    server.stop()
                r["label"] = f"churn, concurrency {concurrency}"
                results.append(r)

    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stem = "vs-baseline" if opts.baseline else "latest"
    text = report(results, names, repeats, opts.quick, stem)
    if opts.baseline:
        text += "\n" + baseline_report(results, opts.baseline)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    (out / f"{stem}.md").write_text(text)
    run([BENCH, "chart", out / f"{stem}.json", out / f"{stem}.svg"])
    print(text)


def median(rows, f):
    values = [f(r) for r in rows]
    return statistics.median(values) if values else float("nan")


def report(results, names, repeats, quick, stem):
    lines = [f"# Benchmark results ({'quick smoke run' if quick else 'full suite'})", "",
             f"Medians of {repeats} alternating run(s) per cell, measured in one run on this 2-core machine "
             "(server and load generator share the cores). Ratios are against the Node.js `ws` "
             f"baseline of the same run. Generated by `python3 bench/suite.py`; raw data in `{stem}.json`.", "",
             f"![Broadcast deliveries per second and round-trip latency (p50, p99) per server]({stem}.svg)", ""]
    labels = list(dict.fromkeys(r["label"] for r in results))
    for label in labels:
        rows = [r for r in results if r["label"] == label]
        kind = rows[0]["scenario"]
        lines += [f"## {label}", ""]
        if kind == "broadcast":
            lines += ["| server | deliveries/s | vs node | lost | p50 / p99 latency (ms) | server CPU-s per million deliveries |",
                      "|---|---|---|---|---|---|"]
            base = median([r for r in rows if r["server"] == "node"], lambda r: r["deliveries_per_sec"])
            for name in names:
                sr = [r for r in rows if r["server"] == name]
                dps = median(sr, lambda r: r["deliveries_per_sec"])
                cpu = median(sr, lambda r: r["server_cpu_secs"] / max(r["received_deliveries"], 1) * 1e6)
                lines.append(f"| {name} | {dps:,.0f} | {dps / base:.2f}x | {sum(r['lost_deliveries'] for r in sr)} | "
                             f"{median(sr, lambda r: r['round_trip']['p50_us']) / 1000:.1f} / "
                             f"{median(sr, lambda r: r['round_trip']['p99_us']) / 1000:.1f} | {cpu:.2f} |")
        elif kind == "idle":
            lines += ["| server | held | server KiB per connection |", "|---|---|---|"]
            for name in names:
                sr = [r for r in rows if r["server"] == name]
                lines.append(f"| {name} | {median(sr, lambda r: r['held']):.0f} | "
                             f"{median(sr, lambda r: r['server_kib_per_connection']):.1f} |")
        else:
            lines += ["| server | rooms/s | vs node | first reply p50 / p99 (ms) | failed |", "|---|---|---|---|---|"]
            base = median([r for r in rows if r["server"] == "node"], lambda r: r["rooms_per_sec"])
            for name in names:
                sr = [r for r in rows if r["server"] == name]
                rps = median(sr, lambda r: r["rooms_per_sec"])
                lines.append(f"| {name} | {rps:,.0f} | {rps / base:.2f}x | "
                             f"{median(sr, lambda r: r['first_reply']['p50_us']) / 1000:.2f} / "
                             f"{median(sr, lambda r: r['first_reply']['p99_us']) / 1000:.2f} | "
                             f"{sum(r['failed'] for r in sr)} |")
        lines.append("")
    flooded = [r for r in results if r.get("flood")]
    if flooded:
        quiet_label = "100 rooms x 10 clients x 200 msgs"
        lines += ["## What one flooder costs the other rooms", "",
                  f"Round-trip p99 of the {quiet_label} scenario with one extra client flooding a room "
                  "of its own, against the same scenario without it (no message rate limit configured, "
                  "so only a server's default limits apply; the flooder runs in the load generator's "
                  "process, so it also takes load-generator CPU). Flood messages/s is over the whole run; "
                  "a flooder closed by the server stops sending.", "",
                  "| server | p99 without (ms) | p99 with a flooder (ms) | ratio | flood messages/s | flooders closed by the server |",
                  "|---|---|---|---|---|---|"]
        for name in names:
            quiet = [r for r in results if r["label"] == quiet_label and r["server"] == name]
            loud = [r for r in flooded if r["server"] == name]
            if not quiet or not loud:
                continue
            p99_quiet = median(quiet, lambda r: r["round_trip"]["p99_us"]) / 1000
            p99_loud = median(loud, lambda r: r["round_trip"]["p99_us"]) / 1000
            rate = median(loud, lambda r: r["flood"]["messages_sent"] / max(r["elapsed_secs"], 1e-9))
            closed = sum(r["flood"]["closed_by_server"] for r in loud)
            flooders = sum(r["flood"]["flooders"] for r in loud)
            lines.append(f"| {name} | {p99_quiet:.1f} | {p99_loud:.1f} | {p99_loud / p99_quiet:.2f}x | {rate:,.0f} | "
                         f"{closed} of {flooders} |")
        lines.append("")
    return "\n".join(lines)


def baseline_report(results, baseline):
    """This build against the baseline: one row per scenario and server, each cell the median of
    this build over the median of the baseline (higher is better for rates, lower for the rest)."""
    metrics = {
        "broadcast": [("deliveries/s", lambda r: r["deliveries_per_sec"], True),
                      ("p99", lambda r: r["round_trip"]["p99_us"], False),
                      ("CPU per delivery", lambda r: r["server_cpu_secs"] / max(r["received_deliveries"], 1), False)],
        "idle": [("KiB per connection", lambda r: r["server_kib_per_connection"], False)],
        "churn": [("rooms/s", lambda r: r["rooms_per_sec"], True)],
    }
    columns = [name for kind in metrics.values() for name, _, _ in kind]
    lines = ["## This build vs baseline", "",
             f"Baseline: `{baseline}` at `{git_head(baseline)}`; this build: `{git_head(ROOT)}`. Each cell is "
             "this build's median over the baseline's median, both measured in this run. Higher is better "
             "for deliveries/s and rooms/s, lower for the rest; cells more than 3% worse are in bold.", "",
             "| scenario | server | " + " | ".join(columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for label in dict.fromkeys(r["label"] for r in results):
        rows = [r for r in results if r["label"] == label]
        kind = rows[0]["scenario"]
        for name in ("native", "wasm"):
            now = [r for r in rows if r["server"] == name]
            before = [r for r in rows if r["server"] == f"{name}-before"]
            cells = dict.fromkeys(columns, "")
            for metric, value, higher_is_better in metrics[kind]:
                if median(before, value) == 0:  # too small to measure (a quick run's CPU time)
                    cells[metric] = "n/a"
                    continue
                ratio = median(now, value) / median(before, value)
                worse = ratio < 0.97 if higher_is_better else ratio > 1 / 0.97
                cells[metric] = f"**{ratio:.2f}x**" if worse else f"{ratio:.2f}x"
            lines.append(f"| {label} | {name} | " + " | ".join(cells.values()) + " |")
    lines.append("")
    return "\n".join(lines)


def git_head(path):
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path, check=True,
                          capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
