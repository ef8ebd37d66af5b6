#!/usr/bin/env python3
"""What durable rooms cost, measured by `jamsocket-bench` in one run:

    python3 bench/durable.py              # 1,000 and 100,000 hibernated rooms, S2 3 repeats (about 15 minutes on 2 cores)
    python3 bench/durable.py --quick      # 1,000 and 2,000 rooms, S2 1 repeat (a smoke run)

(a) Hibernation. examples/counter-service as WebAssembly, served by `jamsocket serve --store
sqlite:TMP/rooms.db --shutdown-policy immediate`: `jamsocket-bench hibernate` creates rooms one
client each (each sends `increment`), lets the server's memory settle once every room has
hibernated into the store, then visits every room again and checks its reply says `new value:
2` (the state survived). Reported: first-message latency of creating and of restoring a room,
server memory empty / at the peak / hibernated, the store's size per room. Once with 1,000 rooms
and once with 100,000 (`--large-rooms`), and once with 1,000 rooms and no store as the baseline
for creation latency and memory (its rooms lose their state, so it is not checked).

(b) What a store costs the broadcast scenario S2 of bench/suite.py (100 rooms x 10 clients x
200 messages of 64 bytes, examples/broadcast-echo as WebAssembly): `jamsocket serve` with and
without `--store sqlite:TMP/...` (default snapshot interval, 1 s), alternating which goes first,
3 repeats each; medians and the ratio store / no store. The guest keeps no state of its own, but
the host saves its memory, so the store does work.

Builds what it needs (release) and writes bench/results/durable.json and durable.md.
"""
import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing suite
sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import BENCH, RELEASE, ROOT, Server, git_head, median, run  # noqa: E402

JAMSOCKET = RELEASE / "jamsocket"
S2 = ["--rooms", "100", "--clients", "10", "--messages", "200", "--payload-bytes", "64"]


def build():
    run(["cargo", "build", "--release", "-p", "jamsocket-bench", "-p", "jamsocket-cli", "--bins"], cwd=ROOT)

    def wasm(example):
        out = subprocess.run([JAMSOCKET, "build", ROOT / "examples" / example], cwd=ROOT, check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    return wasm("counter-service"), wasm("broadcast-echo")


def bench(server, args, timeout):
    cmd = [BENCH, "--url", f"ws://127.0.0.1:{server.port}"] + args + [
        "--json", "--server-pid", str(server.proc.pid), "--timeout-secs", str(timeout)]
    print("+", " ".join(map(str, cmd)), flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {out.stderr}")
    return json.loads(out.stdout)


def hibernate(counter, tmp, ports, name, rooms, store, concurrency=16):
    db = Path(tmp) / name / "rooms.db"
    db.parent.mkdir()
    port = next(ports)
    # Default --max-rooms (10,000 at once): hibernated rooms do not count, and a pool for
    # 120,000 would need more memory mappings (a guard page per stack) than vm.max_map_count.
    command = [JAMSOCKET, "serve", counter, "--port", str(port), "--shutdown-policy", "immediate"]
    args = ["hibernate", "--rooms", str(rooms), "--concurrency", str(concurrency)]
    if store:
        command += ["--store", f"sqlite:{db}"]
        args += ["--store-file", str(db), "--expect-after", "new value: 2"]
    server = Server(name, lambda port: command, port)
    try:
        # Creation and restore at a few hundred rooms/s at worst, plus the settling.
        r = bench(server, args, timeout=120 + rooms // 50)
    finally:
        server.stop()
    r["server"], r["with_store"], r["concurrency"] = name, store, concurrency
    print(f"  {name:18} {rooms:>7} rooms: create p50 {r['create']['first_message']['p50_us']} us, "
          f"restore p50 {r['restore']['first_message']['p50_us']} us, rss {r['server_rss_empty_kib']} / "
          f"{r['server_rss_peak_kib']} / {r['server_rss_hibernated_kib']} KiB, store {r['store_bytes']} B, "
          f"lost {r['lost_state']}, errors {r['errors']}", flush=True)
    return r


def broadcast(echo, tmp, ports, name, rep, args):
    db = Path(tmp) / f"{name}-{rep}" / "s2.db"
    db.parent.mkdir()
    port = next(ports)
    command = [JAMSOCKET, "serve", echo, "--port", str(port), "--max-rooms", "12000"]
    if name == "store":
        command += ["--store", f"sqlite:{db}"]
    server = Server(name, lambda port: command, port)
    try:
        r = bench(server, ["broadcast", *args], timeout=120)
    finally:
        server.stop()
    r["server"] = name
    r["store_bytes"] = sum(p.stat().st_size for p in db.parent.iterdir()) if name == "store" else None
    print(f"  {name:9} {r['deliveries_per_sec']:>10,.0f} deliveries/s, lost {r['lost_deliveries']}, "
          f"p50 {r['round_trip']['p50_us']} us, p99 {r['round_trip']['p99_us']} us, "
          f"server CPU {r['server_cpu_secs']:.2f} s", flush=True)
    return r


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2,000 large rooms, 1 repeat, S2 at a tenth")
    parser.add_argument("--large-rooms", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    large = 2000 if opts.quick else opts.large_rooms
    repeats = 1 if opts.quick else opts.repeats
    s2 = list(S2)
    if opts.quick:
        s2[5] = "20"
    counter, echo = build()
    ports = iter(range(9600, 9900))
    with tempfile.TemporaryDirectory(prefix="jamsocket-durable-") as tmp:
        print("hibernation: examples/counter-service", flush=True)
        rooms = [hibernate(counter, tmp, ports, "no-store-1000", 1000, store=False),
                 hibernate(counter, tmp, ports, "store-1000", 1000, store=True),
                 # One room at a time: latency without queueing behind other rooms.
                 hibernate(counter, tmp, ports, "no-store-1000-c1", 1000, store=False, concurrency=1),
                 hibernate(counter, tmp, ports, "store-1000-c1", 1000, store=True, concurrency=1),
                 hibernate(counter, tmp, ports, f"store-{large}", large, store=True)]
        print("broadcast S2: examples/broadcast-echo with and without a store", flush=True)
        names = ["no-store", "store"]
        casts = []
        for rep in range(repeats):
            for name in names[rep % 2:] + names[:rep % 2]:
                casts.append(broadcast(echo, tmp, ports, name, rep, s2))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    text = report(rooms, casts, repeats, opts.quick, s2)
    (out / "durable.json").write_text(json.dumps({"commit": git_head(ROOT), "quick": opts.quick,
                                                  "hibernate": rooms, "broadcast": casts}, indent=1))
    (out / "durable.md").write_text(text)
    print(text)


def ms(us):
    return f"{us / 1000:.2f}"


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def ratio(a, b, fmt="{:.2f}x"):
    return fmt.format(a / b) if a is not None and b else "n/a"


def report(rooms, casts, repeats, quick, s2):
    lines = [f"# Durable rooms ({'quick smoke run' if quick else 'full run'})", "",
             f"Measured by `python3 bench/durable.py` at `{git_head(ROOT)}` on this 2-core machine (server and "
             "load generator share the cores); raw data in `durable.json`.", "",
             "## Hibernation", "",
             "examples/counter-service as WebAssembly, `jamsocket serve --shutdown-policy immediate` with "
             "`--store sqlite:...` or none; `jamsocket-bench hibernate`, 16 rooms at a time (1 in the "
             "`-c1` rows). Latency is from "
             "starting to connect to the room's first message (its current value). Restore visits every room "
             "created; without a store they start over (state not checked). Memory is the server's resident "
             "set: empty, at the peak while creating, and once it settled after every room emptied.", "",
             "| server | rooms | create p50 / p99 (ms) | restore p50 / p99 (ms) | restore / create p50 | "
             "RSS empty / peak / hibernated (MiB) | hibernated / empty | store (bytes) | per room | lost state | errors | timed out |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rooms:
        c, s = r["create"]["first_message"], r["restore"]["first_message"]
        store = "none" if r["store_bytes"] is None else f"{r['store_bytes']:,}"
        per = "" if r["store_bytes_per_room"] is None else f"{r['store_bytes_per_room']:,.0f}"
        lost = "not checked" if r["lost_state"] is None else str(r["lost_state"])
        lines.append(f"| {r['server']} | {r['rooms']:,} | {ms(c['p50_us'])} / {ms(c['p99_us'])} | "
                     f"{ms(s['p50_us'])} / {ms(s['p99_us'])} | {ratio(s['p50_us'], c['p50_us'])} | "
                     f"{mib(r['server_rss_empty_kib'])} / {mib(r['server_rss_peak_kib'])} / "
                     f"{mib(r['server_rss_hibernated_kib'])} | {ratio(r['server_rss_hibernated_kib'], r['server_rss_empty_kib'])} | "
                     f"{store} | {per} | {lost} | {r['errors']} | {'yes' if r['timed_out'] else 'no'} |")
    base, same = rooms[0], rooms[1]
    base1, same1 = rooms[2], rooms[3]
    lines += ["", f"With a store against without, 1,000 rooms: create p50 "
              f"{ratio(same['create']['first_message']['p50_us'], base['create']['first_message']['p50_us'])}, "
              f"peak RSS {ratio(same['server_rss_peak_kib'], base['server_rss_peak_kib'])}, hibernated RSS "
              f"{ratio(same['server_rss_hibernated_kib'], base['server_rss_hibernated_kib'])}. One room at a time: "
              f"restore p50 {ms(same1['restore']['first_message']['p50_us'])} ms against creating a room without a "
              f"store {ms(base1['create']['first_message']['p50_us'])} ms "
              f"({ratio(same1['restore']['first_message']['p50_us'], base1['create']['first_message']['p50_us'])}).", ""]

    lines += [f"## Broadcast S2 with a store ({s2[1]} rooms x {s2[3]} clients x {s2[5]} messages, 64 B)", "",
              f"examples/broadcast-echo as WebAssembly, `jamsocket serve` with `--store sqlite:...` (snapshot "
              f"interval 1 s) or none; medians of {repeats} alternating run(s).", "",
              "| server | deliveries/s | lost | p50 / p99 latency (ms) | server CPU-s per million deliveries | store after (bytes) |",
              "|---|---|---|---|---|---|"]
    medians = {}
    for name in ("no-store", "store"):
        sr = [r for r in casts if r["server"] == name]
        dps = median(sr, lambda r: r["deliveries_per_sec"])
        cpu = median(sr, lambda r: r["server_cpu_secs"] / max(r["received_deliveries"], 1) * 1e6)
        medians[name] = (dps, cpu)
        store = "" if name == "no-store" else f"{median(sr, lambda r: r['store_bytes']):,.0f}"
        lines.append(f"| {name} | {dps:,.0f} | {sum(r['lost_deliveries'] for r in sr)} | "
                     f"{median(sr, lambda r: r['round_trip']['p50_us']) / 1000:.1f} / "
                     f"{median(sr, lambda r: r['round_trip']['p99_us']) / 1000:.1f} | {cpu:.2f} | {store} |")
    lines += ["", f"Store / no store: deliveries/s {ratio(medians['store'][0], medians['no-store'][0])}, "
              f"server CPU per delivery {ratio(medians['store'][1], medians['no-store'][1])}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
