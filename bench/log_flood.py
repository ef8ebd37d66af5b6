#!/usr/bin/env python3
"""What a guest printing in a loop costs: the size of the server's log and the other rooms'
throughput and latency, with and without one room flooding its stdout.

    python3 bench/log_flood.py              # full size, 3 repeats (about 2 minutes on 2 cores)
    python3 bench/log_flood.py --quick      # tiny size, 1 repeat (a smoke run)
    python3 bench/log_flood.py --no-build   # use the release binaries already built

The WebAssembly host logs each line a guest prints to stdout or stderr as a `tracing` event
tagged with its room (`room_id`), and rate-limits each room's lines (jamsocket-wasm-host's
`output_budget.rs`: by default 100 lines/s with a burst of 2 s, lines cut at 1 KiB, and one
"N lines of guest output dropped" summary a second at most).

Each repeat serves examples/conformance-service with `jamsocket serve` (default log filter, log
on stderr, captured to a file) twice, in alternating order:
- baseline: `jamsocket-bench broadcast` of scenario 2 of bench/suite.py (100 rooms x 10
  clients x 200 messages of 64 bytes, sent as `all:<text>`, which the service broadcasts);
- flood: the same, while one more client, alone in a room of its own, sends `print:100000`
  (the guest prints 100,000 lines of 100 bytes with `println!`) followed by a marker message
  whose echo tells that the prints are done, over and over from before the broadcast run
  starts until it ends. That client is this script's own small WebSocket client.

Reported: the bytes the server wrote to stderr per second of flood (over the whole flood, and
during the broadcast run only), the lines the guest printed against those logged (the rest
were dropped by the budget; the dropped counts of the summaries should make up the
difference), the other rooms' deliveries/s and round-trip p99 with the flood as a ratio to
without, and the server's CPU. Writes bench/results/log-flood.md (with every run's numbers) and
prints it; `--keep-logs DIR` keeps the servers' logs.
"""
import argparse
import base64
import os
import re
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402  (the suite's servers and bench runner)

ROOT, RELEASE = suite.ROOT, suite.RELEASE
PRINT_LINES = 100_000
GUEST_TARGET = "jamsocket_wasm_host::guest"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DROPPED = re.compile(r"(\d+) lines of guest output dropped")


def build(skip_cargo):
    if not skip_cargo:
        suite.run(["cargo", "build", "--release", "-p", "jamsocket-bench", "-p", "jamsocket-cli", "--bins"],
                  cwd=ROOT)
    out = subprocess.run([RELEASE / "jamsocket", "build", ROOT / "examples/conformance-service"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def serve_command(wasm, log):
    """`jamsocket serve` with its default log filter (suite.Server sets RUST_LOG=warn, which
    would hide guest output) and its stderr in `log`; `sh` and `env` exec the server, so the
    pid suite.Server measures is the server's own."""
    return lambda port: ["sh", "-c", 'exec env -u RUST_LOG "$@" 2>"$0"', log,
                         RELEASE / "jamsocket", "serve", wasm, "--port", str(port), "--max-rooms", "12000"]


class WebSocket:
    """Just enough of a WebSocket client (RFC 6455) for the flooder: text frames out (masked),
    text frames in (unfragmented), pings answered."""

    def __init__(self, port, path, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head.splitlines()[0].decode()}")

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _send(self, opcode, payload):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text):
        self._send(0x1, text.encode())

    def recv(self):
        """The next text message; answers pings on the way; raises on close."""
        while True:
            first, second = self._take(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8))[0]
            payload = self._take(n)
            opcode = first & 0x0F
            if opcode == 0x1:
                return payload.decode()
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise RuntimeError(f"the server closed the connection: {payload[:2].hex()} {payload[2:]!r}")

    def close(self):
        try:
            self._send(0x8, struct.pack("!H", 1000))
        finally:
            self.sock.close()


class Flooder(threading.Thread):
    """Alone in room `room`: sends `print:<lines>` then a marker, waits for the marker's echo
    (so the guest finished printing), and again, until stopped. Stopping lets the round in
    progress finish, so that every round counted was printed in full."""

    def __init__(self, port, room, lines):
        super().__init__(daemon=True)
        self.port, self.room, self.lines = port, room, lines
        self.rounds = 0
        self.round_secs = []
        self.started_at = self.ended_at = None
        self.first_round_done = threading.Event()
        self.halt = threading.Event()
        self.error = None

    def run(self):
        try:
            ws = WebSocket(self.port, f"/ws/{self.room}")
            ws.recv()  # welcome <room> <id>
            self.started_at = time.time()
            while not self.halt.is_set():
                began = time.time()
                marker = f"round {self.rounds} done"
                ws.send(f"print:{self.lines}")
                ws.send(marker)
                while ws.recv() != f"echo:{marker}":
                    pass
                self.rounds += 1
                self.round_secs.append(time.time() - began)
                self.first_round_done.set()
            self.ended_at = time.time()
            ws.close()
        except Exception as err:  # noqa: BLE001 (reported by the main thread)
            self.error = err
            self.first_round_done.set()

    def stop(self):
        self.halt.set()
        self.join()
        if self.error:
            raise RuntimeError(f"the flooder failed: {self.error}")


def cpu_secs(pid):
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def guest_log(log, room):
    """(lines logged from `room`'s guest, lines its budget summaries say were dropped, bytes of
    the log those lines and summaries take, colour codes included)."""
    logged = dropped = size = 0
    for raw in log.read_bytes().splitlines(keepends=True):
        line = ANSI.sub("", raw.decode(errors="replace"))
        if GUEST_TARGET not in line or f'room_id="{room}"' not in line:
            continue
        size += len(raw)
        found = DROPPED.search(line)
        if found:
            dropped += int(found.group(1))
        else:
            logged += 1
    return logged, dropped, size


def run_once(wasm, port, args, flood, logdir, rep):
    log = Path(logdir) / f"{'flood' if flood else 'baseline'}-{rep}.log"
    server = suite.Server("flood" if flood else "baseline", serve_command(wasm, log), port)
    room = f"log-flood-{rep}"
    flooder = None
    r = {}
    try:
        if flood:
            flooder = Flooder(port, room, PRINT_LINES)
            flood_bytes0, flood_cpu0 = log.stat().st_size, cpu_secs(server.proc.pid)
            flooder.start()
            flooder.first_round_done.wait(timeout=120)
            if flooder.error:
                raise RuntimeError(f"the flooder failed: {flooder.error}")
        bench_bytes0, bench_t0 = log.stat().st_size, time.time()
        r = suite.bench(server, args)
        r["stderr_bytes_per_sec_bench"] = (log.stat().st_size - bench_bytes0) / (time.time() - bench_t0)
        if flooder:
            flooder.stop()
            secs = flooder.ended_at - flooder.started_at
            r["flood"] = {
                "secs": secs,
                "rounds": flooder.rounds,
                "round_secs_median": sorted(flooder.round_secs)[len(flooder.round_secs) // 2],
                "lines_printed": flooder.rounds * PRINT_LINES,
                "stderr_bytes": log.stat().st_size - flood_bytes0,
                "stderr_bytes_per_sec": (log.stat().st_size - flood_bytes0) / secs,
                "server_cpu_cores": (cpu_secs(server.proc.pid) - flood_cpu0) / secs,
            }
    finally:
        if flooder and flooder.is_alive():
            flooder.halt.set()
        server.stop()
    r["stderr_bytes_total"] = log.stat().st_size
    if flood:
        # After the server stopped: the room's last summary is logged when the room goes away.
        logged, dropped, size = guest_log(log, room)
        f = r["flood"]
        f.update(lines_logged=logged, lines_dropped=dropped, room_log_bytes=size,
                 room_log_bytes_per_sec=size / f["secs"])
        print(f"    flood: {f['rounds']} x print:{PRINT_LINES} in {f['secs']:.1f} s "
              f"({f['round_secs_median']:.2f} s each); {logged} lines logged, {dropped} dropped; "
              f"{f['room_log_bytes_per_sec']:,.0f} bytes/s of log from the flooding room, "
              f"{f['stderr_bytes_per_sec']:,.0f} stderr bytes/s in all", flush=True)
    r["label"], r["repeat"], r["log"] = ("flood" if flood else "baseline"), rep, str(log)
    return r


def report(results, repeats, quick, args):
    med = suite.median
    base = [r for r in results if r["label"] == "baseline"]
    flood = [r for r in results if r["label"] == "flood"]
    pairs = [(b, f) for b in base for f in flood if b["repeat"] == f["repeat"]]
    f = lambda key: med(flood, lambda r: r["flood"][key])  # noqa: E731
    printed, logged, dropped = (sum(r["flood"][k] for r in flood) for k in ("lines_printed", "lines_logged", "lines_dropped"))
    cpu_core = lambda r: r["server_cpu_secs"] / r["elapsed_secs"]  # noqa: E731
    each = lambda values: " ".join(f"{v:.2f}" for v in values)  # noqa: E731
    lines = [
        f"# Guest log flood ({'quick smoke run' if quick else 'full run'})", "",
        f"`jamsocket serve examples/conformance-service` (default log filter, log on stderr captured to a "
        f"file), {repeats} repeat(s) of a baseline run and a flood run in alternating order, on this 2-core "
        f"machine. Other rooms: `jamsocket-bench {' '.join(args)}` "
        f"(scenario 2 of `bench/suite.py`). Flood: one more client in a room of its own sends "
        f"`print:{PRINT_LINES}` (the guest `println!`s {PRINT_LINES:,} lines of 100 bytes) and waits until "
        "the guest is done, over and over, from before the broadcast run starts until it ends. The host's "
        "default guest output budget: 100 lines/s per room, 2 s burst, lines cut at 1 KiB. Generated by "
        "`python3 bench/log_flood.py`. Medians over repeats; ratios pair the "
        "runs of one repeat (median, then each).", "",
        "## The log", "",
        "| measure | value |", "|---|---|",
        f"| flood length (median) | {f('secs'):.1f} s, {f('rounds'):.0f} rounds of print:{PRINT_LINES} "
        f"({f('round_secs_median'):.2f} s each) |",
        f"| log bytes/s from the flooding room (its guest's lines and drop summaries) over the whole flood | "
        f"{f('room_log_bytes_per_sec'):,.0f} |",
        f"| all stderr bytes/s over the whole flood | {f('stderr_bytes_per_sec'):,.0f} |",
        f"| all stderr bytes/s during the broadcast run: flood / baseline | "
        f"{med(flood, lambda r: r['stderr_bytes_per_sec_bench']):,.0f} / "
        f"{med(base, lambda r: r['stderr_bytes_per_sec_bench']):,.0f} |",
        f"| lines printed by the guest (all repeats) | {printed:,} |",
        f"| lines logged | {logged:,} ({logged / max(printed, 1):.4%}; {logged / sum(r['flood']['secs'] for r in flood):.0f} per second of flood) |",
        f"| lines dropped, per the budget's summaries | {dropped:,} (logged + dropped = printed: "
        f"{'yes' if logged + dropped == printed else f'no, {printed - logged - dropped:+,}'}) |",
        "",
        "The rest of stderr is the server's own log at its default level (`info`): a `client connected` "
        "line per connection, `room created`, and so on. Sizes include the colour codes the text log "
        "writes even to a file.", "",
        "## The other rooms", "",
        "| measure | baseline | with the flood | ratio (median) | per repeat |", "|---|---|---|---|---|",
    ]
    rows = [("deliveries/s", lambda r: r["deliveries_per_sec"], ",.0f"),
            ("round-trip p50 (ms)", lambda r: r["round_trip"]["p50_us"] / 1000, ".1f"),
            ("round-trip p99 (ms)", lambda r: r["round_trip"]["p99_us"] / 1000, ".1f"),
            ("server CPU during the run (cores)", cpu_core, ".2f"),
            ("server CPU-s per million deliveries", lambda r: r["server_cpu_secs"] / max(r["received_deliveries"], 1) * 1e6, ".2f")]
    for name, value, fmt in rows:
        ratios = [value(fl) / value(b) if value(b) else float("nan") for b, fl in pairs]
        ratio = sorted(ratios)[len(ratios) // 2] if ratios else float("nan")
        lines.append(f"| {name} | {med(base, value):{fmt}} | {med(flood, value):{fmt}} | {ratio:.2f}x | {each(ratios)} |")
    lines.append(f"| lost deliveries (all repeats) | {sum(r['lost_deliveries'] for r in base)} | "
                 f"{sum(r['lost_deliveries'] for r in flood)} | | |")
    lines += ["", f"Server CPU over the whole flood: {f('server_cpu_cores'):.2f} cores (median).", "",
              "## Every run", "",
              "| repeat | run | deliveries/s | p50 / p99 (ms) | lost | server CPU-s | stderr bytes/s during the run | "
              "flood: s, rounds, lines logged, dropped, room's log bytes/s |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        fl = r.get("flood")
        flood_cell = (f"{fl['secs']:.1f}, {fl['rounds']}, {fl['lines_logged']}, {fl['lines_dropped']:,}, "
                      f"{fl['room_log_bytes_per_sec']:,.0f}") if fl else ""
        lines.append(f"| {r['repeat']} | {r['label']} | {r['deliveries_per_sec']:,.0f} | "
                     f"{r['round_trip']['p50_us'] / 1000:.1f} / {r['round_trip']['p99_us'] / 1000:.1f} | "
                     f"{r['lost_deliveries']} | {r['server_cpu_secs']:.2f} | {r['stderr_bytes_per_sec_bench']:,.0f} | "
                     f"{flood_cell} |")
    lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny size, 1 repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-build", action="store_true",
                        help="skip `cargo build` (still builds the module with target/release/jamsocket)")
    parser.add_argument("--keep-logs", metavar="DIR", help="keep the servers' stderr in DIR")
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    scale = 10 if opts.quick else 1
    repeats = 1 if opts.quick else opts.repeats
    args = ["broadcast", "--rooms", str(100 // scale), "--clients", "10", "--messages", str(200 // scale),
            "--payload-bytes", "64", "--prefix", "all:"]
    wasm = build(opts.no_build)
    logdir = opts.keep_logs or tempfile.mkdtemp(prefix="log-flood-")
    Path(logdir).mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    ports = iter(range(19800, 19900))
    results = []
    print(f"{' '.join(args)} against conformance-service, with and without a log flood", flush=True)
    for rep in range(repeats):
        for flood in ((False, True) if rep % 2 == 0 else (True, False)):
            results.append(run_once(wasm, next(ports), args, flood, logdir, rep))
    text = report(results, repeats, opts.quick, args)
    # Other work on the machine shows here: the servers and the load generator share its cores.
    text += (f"Load average (1 min) at the start and the end of the run: {load_start:.1f}, "
             f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "log-flood.md").write_text(text)
    print(text)
    if not opts.keep_logs:
        for log in Path(logdir).iterdir():
            log.unlink()
        Path(logdir).rmdir()


if __name__ == "__main__":
    sys.exit(main())
