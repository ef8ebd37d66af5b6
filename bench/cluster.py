#!/usr/bin/env python3
"""Cluster benchmarks on this machine: a redis-server, `jamsocket serve --cluster` nodes of
examples/broadcast-echo, and jamsocket-bench, all on loopback.

1. Forwarding overhead: scenario 2 of bench/suite.py (100 rooms x 10 clients x 200 msgs) with
   every client connected to node A (the rooms' owner: direct) and then with every client
   connected to node B, which forwards each one to A (the rooms are created on A first, under
   the same run id). Reports deliveries/s and the CPU of both nodes per delivery, and the ratio
   forwarded/direct, over several alternating pairs.
2. Redis operations per second at steady state with 3 nodes, for 100 and for 10,000 live rooms
   (one idle client each): heartbeats are per node, so the rate must not grow with the rooms.
3. Routing accuracy through HAProxy (deploy/haproxy.cfg): the share of connections that reach
   their room's owner without forwarding, from HAProxy's per-server session counts and the
   directory's owners.

Usage: python3 bench/cluster.py [--pairs 3] [--scale 1] [--only forwarding|redis|routing]
                                [--jamsocket PATH (another build of the binary, say last week's)]
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
BENCH = RELEASE / "jamsocket-bench"
JAMSOCKET = RELEASE / "jamsocket"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_secs(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="jamsocket-bench-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.time() + 10
        while self.cli("PING") != "PONG":
            if time.time() > deadline:
                sys.exit("redis-server did not start")
            time.sleep(0.05)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return out.stdout.strip()

    def commands(self):
        stats = self.cli("INFO", "stats")
        return int(re.search(r"total_commands_processed:(\d+)", stats).group(1))

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node:
    def __init__(self, wasm, redis):
        self.port = free_port()
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [JAMSOCKET, "serve", wasm, "--host", "127.0.0.1", "--port", str(self.port),
             "--cluster", redis.url, "--max-rooms", "12000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 30
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=1).read() == b"ok":
                    return
            except Exception:
                if time.time() > deadline:
                    sys.exit(f"node on port {self.port} did not start")
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def bench(port, run_id, args, timeout=180):
    cmd = [BENCH, "--url", f"ws://127.0.0.1:{port}", "--run-id", run_id, "--json",
           "--timeout-secs", str(timeout), *args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 2):
        sys.exit(f"{' '.join(map(str, cmd))} failed: {out.stderr}")
    return json.loads(out.stdout)


def forwarding(wasm, pairs, scale):
    redis = Redis()
    a, b = Node(wasm, redis), Node(wasm, redis)
    shape = ["broadcast", "--rooms", str(100 // scale), "--clients", "10", "--messages", str(200 // scale)]
    rows = {"direct": [], "forwarded": []}
    try:
        for pair in range(pairs):
            for kind in ("direct", "forwarded"):
                run_id = f"{kind}{pair}"
                if kind == "forwarded":
                    # Create the rooms on A, then load them through B.
                    bench(a.port, run_id, ["broadcast", "--rooms", str(100 // scale), "--clients", "1", "--messages", "1"])
                port = a.port if kind == "direct" else b.port
                before = cpu_secs(a.proc.pid) + cpu_secs(b.proc.pid)
                r = bench(port, run_id, shape)
                cpu = cpu_secs(a.proc.pid) + cpu_secs(b.proc.pid) - before
                delivered = r["received_deliveries"]
                rows[kind].append((r["deliveries_per_sec"], cpu / max(delivered, 1) * 1e6, r["lost_deliveries"]))
                print(f"  {kind:9} pair {pair}: {r['deliveries_per_sec']:>10,.0f} deliveries/s, "
                      f"{cpu / max(delivered, 1) * 1e6:6.2f} us CPU (both nodes) per delivery, "
                      f"{r['lost_deliveries']} lost", flush=True)
    finally:
        a.stop()
        b.stop()
        redis.stop()
    rate = [f[0] / d[0] for d, f in zip(rows["direct"], rows["forwarded"])]
    cost = [f[1] / d[1] for d, f in zip(rows["direct"], rows["forwarded"])]
    print(f"forwarded / direct: deliveries/s {statistics.median(rate):.2f}x "
          f"(pairs {', '.join(f'{x:.2f}' for x in rate)}), CPU per delivery {statistics.median(cost):.2f}x "
          f"(pairs {', '.join(f'{x:.2f}' for x in cost)})", flush=True)


def redis_ops(wasm, scale):
    redis = Redis()
    nodes = [Node(wasm, redis) for _ in range(3)]
    try:
        for rooms in (100, 10000 // scale):
            per_node = rooms // 3
            holders = [subprocess.Popen(
                [BENCH, "--url", f"ws://127.0.0.1:{n.port}", "--timeout-secs", "120",
                 "idle", "--rooms", str(per_node), "--clients", "1", "--hold-secs", "20"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in nodes]
            # Let the rooms open (one claim each), then count what the steady state costs.
            time.sleep(8)
            start, t0 = redis.commands(), time.time()
            time.sleep(10)
            ops = (redis.commands() - start - 2) / (time.time() - t0)  # minus our two INFOs
            print(f"  {per_node * 3:>6} live rooms on 3 nodes: {ops:.2f} Redis commands/s "
                  f"({ops / 3:.2f} per node)", flush=True)
            for h in holders:
                h.wait()
    finally:
        for n in nodes:
            n.stop()
        redis.stop()


def routing(wasm, scale):
    redis = Redis()
    nodes = [Node(wasm, redis) for _ in range(3)]
    folder = tempfile.mkdtemp(prefix="jamsocket-bench-haproxy-")
    stats = f"{folder}/stats.sock"
    port = free_port()
    config = []
    for line in (ROOT / "deploy/haproxy.cfg").read_text().splitlines():
        if line.strip().startswith("server "):
            continue
        if line.strip().startswith("bind "):
            line = f"    bind 127.0.0.1:{port}"
        config.append(line)
        if line.strip() == "global":
            config.append(f"    stats socket {stats}")
    config += [f"    server n{n.port} 127.0.0.1:{n.port} check" for n in nodes]
    Path(f"{folder}/haproxy.cfg").write_text("\n".join(config) + "\n")
    haproxy = subprocess.Popen(["haproxy", "-f", f"{folder}/haproxy.cfg", "-db"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1)
                break
            except Exception:
                if time.time() > deadline:
                    sys.exit("haproxy did not start")
                time.sleep(0.05)
        rooms, clients = 300 // scale, 5
        bench(port, "routing", ["broadcast", "--rooms", str(rooms), "--clients", str(clients), "--messages", "10"])
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(stats)
            s.sendall(b"show stat\n")
            table = b""
            while chunk := s.recv(65536):
                table += chunk
        lines = table.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        sessions = {}
        for row in lines[1:]:
            cells = dict(zip(header, row.split(",")))
            if cells.get("pxname") == "nodes" and cells.get("svname", "").startswith("n") and cells["svname"] != "nodes":
                sessions[int(cells["svname"][1:])] = int(cells["stot"])
        owned = {n.port: 0 for n in nodes}
        for i in range(rooms):
            owner = redis.cli("GET", f"jamsocket:owner:bench-routing-broadcast-{i}")
            owned[int(owner.split()[0].rsplit("-", 1)[0].rsplit(":", 1)[1])] += 1
        direct = sum(min(sessions.get(p, 0), owned[p] * clients) for p in owned)
        total = sum(sessions.values())
        print(f"  {total} connections through HAProxy to {rooms} rooms: {direct / total:.1%} reached "
              f"the room's owner directly (sessions per node {sessions}, rooms per node {owned})", flush=True)
    finally:
        haproxy.terminate()
        haproxy.wait()
        for n in nodes:
            n.stop()
        redis.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--only", choices=["forwarding", "redis", "routing"])
    parser.add_argument("--jamsocket", help="the jamsocket binary the nodes run (default: this build's)")
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "-p", "jamsocket-bench", "-p", "jamsocket-cli", "--bins"],
                   cwd=ROOT, check=True)
    wasm = subprocess.run([RELEASE / "jamsocket", "build", ROOT / "examples/broadcast-echo"],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    if args.jamsocket:
        global JAMSOCKET
        JAMSOCKET = Path(args.jamsocket).resolve()
    if args.only in (None, "forwarding"):
        print("forwarding overhead (scenario 2)", flush=True)
        forwarding(wasm, args.pairs, args.scale)
    if args.only in (None, "redis"):
        print("Redis commands at steady state", flush=True)
        redis_ops(wasm, args.scale)
    if args.only in (None, "routing"):
        print("routing accuracy through HAProxy (deploy/haproxy.cfg)", flush=True)
        routing(wasm, args.scale)


if __name__ == "__main__":
    main()
