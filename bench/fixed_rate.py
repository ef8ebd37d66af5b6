#!/usr/bin/env python3
"""Fixed-rate (open-loop) broadcast: native, wasm and Node.js servers at offered rates.

    python3 bench/fixed_rate.py                 # full sizes, 2 repeats
    python3 bench/fixed_rate.py --repeats 1     # one run per cell
    python3 bench/fixed_rate.py --quick         # tiny sizes, 1 repeat (a smoke run)
    python3 bench/fixed_rate.py --no-build      # use the binaries already in target/release
    python3 bench/fixed_rate.py --rates 2000,20000   # these messages/s for every shape
    python3 bench/fixed_rate.py --report-only   # rewrite the .md and .svg from the .json, run nothing

Runs `jamsocket-bench broadcast ... --rate N --server-pid PID --json` for three shapes, 64-byte
payloads, against the three servers of bench/suite.py (a fresh server process per run, servers in
alternating order):

    S1  1 room x 100 clients x 50 messages      at 1,000 and 5,000 messages/s
    S2  100 rooms x 10 clients x 200 messages   at 10,000 and 50,000 messages/s
    S3  1000 rooms x 2 clients x 100 messages   at 10,000 and 50,000 messages/s

S1 gets lower rates because each of its messages goes to 100 clients: 10,000 messages/s would
offer 1,000,000 deliveries/s, beyond this 2-core machine. `--rates` replaces the rates of every
shape. S1 at 5,000 and S2 at 50,000 messages/s both offer 500,000 deliveries/s, about the most
this machine can do: they are kept to show saturation (the latency from the scheduled send then
grows with the backlog), with a generous --timeout-secs.

Writes bench/results/fixed-rate.json (raw), bench/results/fixed-rate.md (medians over repeats,
and ratios against node for server user and kernel CPU per delivery), keeping the section under
"First smoke run" that is already in fixed-rate.md, and bench/results/fixed-rate.svg (the same
medians of server user and kernel CPU per delivery against offered deliveries/s, a panel per
shape). `--report-only` rewrites the last two from fixed-rate.json.
"""
import argparse
import json
import math
import resource
import subprocess
import sys
import time
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402
from suite import ROOT, RELEASE, Server, median, run, server_commands  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SMOKE_HEADING = "## First smoke run"
# A server that achieves less than this share of the offered deliveries/s fell behind.
KEPT_UP = 0.95


def shapes(scale):
    """Each shape's label, broadcast arguments and default offered rates (messages/s)."""
    return {
        "S1": (f"1 room x 100 clients x {50 // scale} msgs",
               ["--rooms", "1", "--clients", "100", "--messages", str(50 // scale)], (1_000, 5_000)),
        "S2": (f"{100 // scale} rooms x 10 clients x {200 // scale} msgs",
               ["--rooms", str(100 // scale), "--clients", "10", "--messages", str(200 // scale)],
               (10_000, 50_000)),
        "S3": (f"{1000 // scale} rooms x 2 clients x {100 // scale} msgs",
               ["--rooms", str(1000 // scale), "--clients", "2", "--messages", str(100 // scale)],
               (10_000, 50_000)),
    }


def rate_list(text):
    try:
        rates = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of messages/s")
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: every rate must be a positive number of messages/s")
    return rates


def wasm_module():
    out = subprocess.run([RELEASE / "jamsocket", "build", ROOT / "examples/broadcast-echo"],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def prepare(no_build):
    if not no_build:
        return suite.build()
    for binary in (RELEASE / "jamsocket-bench", RELEASE / "jamsocket", RELEASE / "examples" / "serve_native"):
        if not binary.is_file():
            sys.exit(f"error: {binary} is missing; run without --no-build")
    node_dir = ROOT / "bench" / "node-baseline"
    if not (node_dir / "node_modules").is_dir():
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir)
    return wasm_module()


def one(server, args, timeout):
    cmd = [suite.BENCH, "--url", f"ws://127.0.0.1:{server.port}", *args, "--json",
           "--server-pid", str(server.proc.pid), "--timeout-secs", str(timeout)]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 2):
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {out.stderr}")
    r = json.loads(out.stdout)
    r["server"] = server.name
    r["timed_out"] = out.returncode == 2
    r["wall_secs"] = time.time() - started
    rate = r["rate"]
    print(f"  {server.name:6} {rate['achieved_deliveries_per_sec']:>10,.0f} of "
          f"{rate['offered_deliveries_per_sec']:,} deliveries/s, lost {r['lost_deliveries']}, "
          f"p50/p99/p999 {rate['latency']['p50_us'] / 1000:.1f}/{rate['latency']['p99_us'] / 1000:.1f}/"
          f"{rate['latency']['p999_us'] / 1000:.1f} ms, user {fmt(rate['server_user_us_per_delivery'])} "
          f"kernel {fmt(rate['server_kernel_us_per_delivery'])} us/delivery"
          f"{' (timed out)' if r['timed_out'] else ''} [{r['wall_secs']:.0f} s]", flush=True)
    return r


def fmt(x, digits=2):
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def ratio(a, b):
    return "n/a" if not b or a != a or b != b else f"{a / b:.2f}x"


def known_median(rows, f):
    """The median of f over the rows where it is known (not None); NaN when it is known nowhere."""
    values = [r for r in rows if f(r) is not None]
    return median(values, f)


def cells(results, names):
    """The medians of each (shape, offered messages/s) cell, per server that ran in it, in the
    order of shapes() and then of rate: {(shape, rate): {"label", "offered", "servers"}}."""
    order = list(shapes(1))
    keys = dict.fromkeys((r["shape"], r["rate"]["offered_messages_per_sec"]) for r in results)
    keys = sorted(keys, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]))
    out = {}
    for key in keys:
        rows = [r for r in results if (r["shape"], r["rate"]["offered_messages_per_sec"]) == key]
        servers = {}
        for name in names:
            sr = [r for r in rows if r["server"] == name]
            if not sr:
                continue
            servers[name] = dict(
                dps=median(sr, lambda r: r["rate"]["achieved_deliveries_per_sec"]),
                user=known_median(sr, lambda r: r["rate"]["server_user_us_per_delivery"]),
                kernel=known_median(sr, lambda r: r["rate"]["server_kernel_us_per_delivery"]),
                p50=median(sr, lambda r: r["rate"]["latency"]["p50_us"]) / 1000,
                p99=median(sr, lambda r: r["rate"]["latency"]["p99_us"]) / 1000,
                p999=median(sr, lambda r: r["rate"]["latency"]["p999_us"]) / 1000,
                lost=sum(r["lost_deliveries"] for r in sr),
                timed_out=sum(r["timed_out"] for r in sr))
        out[key] = dict(label=rows[0]["label"], offered=rows[0]["rate"]["offered_deliveries_per_sec"],
                        servers=servers)
    return out


def report(medians, repeats, quick, elapsed):
    how = (f"Generated by `python3 bench/fixed_rate.py` in {elapsed / 60:.1f} minutes; raw data in "
           "`fixed-rate.json`." if elapsed is not None else
           "Generated by `python3 bench/fixed_rate.py`; re-rendered from `fixed-rate.json` (the raw "
           "data) by `--report-only`.")
    lines = [f"# Fixed-rate (open-loop) broadcast: native, wasm and node"
             f"{' (quick smoke run)' if quick else ''}", "",
             f"{how} Medians of {repeats} run(s) per cell, servers in alternating order, a "
             "fresh server process per run, on this 2-core machine (server and load generator share "
             "the cores). 64-byte payloads. Latency runs from each message's *scheduled* send time to "
             "each delivery (wrk2-style), so a server that falls behind shows its backlog there. CPU "
             "per delivery is the server's `utime` (user) and `stime` (kernel) from the first send to the "
             "end of the drain, over deliveries received. Lost = deliveries not received (summed over "
             "repeats). Ratio columns are against node; the efficiency targets are user <= 0.25x node, "
             "kernel <= 1.0x node, p99 <= node.", "",
             "![Server CPU per delivery against offered load](fixed-rate.svg)", "",
             "The chart draws the user (solid) and kernel (dashed) CPU per delivery of the tables below "
             "against the offered deliveries/s; a hollow point is a server that achieved less than "
             f"{KEPT_UP:.0%} of the offered deliveries/s.", ""]
    for (shape, rate), cell in medians.items():
        lines += [f"## {shape}: {cell['label']}, {rate:,} messages/s offered "
                  f"({cell['offered']:,} deliveries/s)", "",
                  "| server | achieved deliveries/s | user us/delivery | kernel us/delivery | "
                  "user vs node | kernel vs node | p50 / p99 / p999 (ms) | p99 vs node | lost |",
                  "|---|---|---|---|---|---|---|---|---|"]
        node = cell["servers"].get("node")
        for name, c in cell["servers"].items():
            vs = node and name != "node"
            lost = f"{c['lost']:,}" + (f" ({c['timed_out']} timed out)" if c["timed_out"] else "")
            lines.append(
                f"| {name} | {c['dps']:,.0f} | {fmt(c['user'])} | {fmt(c['kernel'])} | "
                f"{ratio(c['user'], node['user']) if vs else ''} | "
                f"{ratio(c['kernel'], node['kernel']) if vs else ''} | "
                f"{c['p50']:.1f} / {c['p99']:.1f} / {c['p999']:.1f} | "
                f"{ratio(c['p99'], node['p99']) if vs else ''} | {lost} |")
        lines.append("")
    return "\n".join(lines)


# Server colours as in latest.svg (drawn by `jamsocket-bench chart`); others get a grey.
COLOURS = {"native": "#D66A1D", "wasm": "#654FF0", "node": "#3F873A"}
PANEL_W, PLOT_LEFT, PLOT_W, PLOT_H, LEFT = 300, 46, 236, 210, 28


def lighter(colour, amount=0.5):
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02X}" for c in rgb)


def known(x):
    return x is not None and math.isfinite(x)


def tick_label(v):
    for unit, suffix in ((1e6, "M"), (1e3, "k")):
        if v >= unit:
            return f"{v / unit:g}{suffix}"
    return f"{v:g}"


def nice_top(top):
    """A y axis top at or above `top` and its tick step, about four ticks."""
    raw = top / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return math.ceil(top / step - 1e-9) * step, step


def chart(medians, names, repeats):
    """The SVG: a panel per shape of server user (solid) and kernel (dashed, lighter) CPU per
    delivery, in microseconds, against offered deliveries/s on a log scale; a line per server."""
    panels = {}
    for (shape, _), cell in medians.items():
        panels.setdefault(shape, []).append(cell)
    offered = [c["offered"] for cs in panels.values() for c in cs if c["offered"] > 0]
    lo, hi = (math.log10(min(offered)), math.log10(max(offered))) if offered else (4, 6)
    pad = 0.5 if hi - lo < 0.2 else 0.15
    lo, hi = lo - pad, hi + pad
    x_ticks = [m * 10 ** k for k in range(math.floor(lo), math.ceil(hi) + 1)
               for m in ((1, 2, 5) if hi - lo < 2.5 else (1,)) if lo <= math.log10(m * 10 ** k) <= hi]

    width = max(LEFT + len(panels) * PANEL_W + 10, 720)  # at least the subtitle's width
    out = []

    def text(x, y, s, size=12, anchor="start", fill="#000000", extra=""):
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-family="sans-serif" font-size="{size}" '
                   f'text-anchor="{anchor}" fill="{fill}"{extra}>{escape(s)}</text>')

    def line(points, colour, dashed=False):
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        xy = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{xy}"/>')

    def point(x, y, colour, hollow, r=3.5):
        fill = "#FFFFFF" if hollow else colour
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{fill}" stroke="{colour}" '
                   'stroke-width="1.5"/>')

    text(LEFT, 24, "Server CPU per delivery against offered load (fixed-rate broadcast)", 16,
         extra=' font-weight="bold"')
    text(LEFT, 42, f"fixed-rate.json: medians of {repeats} run(s) per point, 64-byte payloads; server "
         "and load generator share one 2-core machine", 11, fill="#5A5A5A")

    # The legend, wrapped into rows: servers, then what the line styles and points mean.
    x, y = LEFT, 62
    items = [(name, COLOURS.get(name, "#808080"), False, False) for name in names]
    items += [("user CPU", "#5A5A5A", False, False), ("kernel CPU", lighter("#5A5A5A"), True, False),
              (f"fell behind (achieved < {KEPT_UP:.0%} of offered)", "#5A5A5A", None, True)]
    for label, colour, dashed, hollow in items:
        item_w = 30 + 6.6 * len(label) + 18
        if x + item_w > width - 10:
            x, y = LEFT, y + 18
        if dashed is None:
            point(x + 11, y, colour, hollow)
        else:
            line([(x, y), (x + 22, y)], colour, dashed)
        text(x + 28, y + 4, label)
        x += item_w

    top = y + 30
    for i, (shape, cs) in enumerate(panels.items()):
        ox = LEFT + i * PANEL_W + PLOT_LEFT
        oy = top + 22
        text(ox - PLOT_LEFT + 6, top + 8, f"{shape}: {cs[0]['label']}", 12, extra=' font-weight="bold"')
        values = [c["servers"][n][k] for c in cs for n in c["servers"] for k in ("user", "kernel")]
        values = [v for v in values if known(v)]
        y_top, step = nice_top(max(values)) if values and max(values) > 0 else (1, 0.25)

        def sx(v):
            return ox + (math.log10(v) - lo) / (hi - lo) * PLOT_W

        def sy(v):
            return oy + PLOT_H - v / y_top * PLOT_H

        for k in range(round(y_top / step) + 1):
            v = k * step
            out.append(f'<line x1="{ox}" y1="{sy(v):.1f}" x2="{ox + PLOT_W}" y2="{sy(v):.1f}" '
                       f'stroke="{"#5A5A5A" if k == 0 else "#E2E2E2"}" stroke-width="1"/>')
            text(ox - 5, sy(v) + 4, f"{round(v, 6):g}", 10, "end", "#5A5A5A")
        for v in x_ticks:
            out.append(f'<line x1="{sx(v):.1f}" y1="{oy}" x2="{sx(v):.1f}" y2="{oy + PLOT_H + 4}" '
                       'stroke="#EFEFEF" stroke-width="1"/>')
            text(sx(v), oy + PLOT_H + 16, tick_label(v), 10, "middle", "#5A5A5A")
        out.append(f'<line x1="{ox}" y1="{oy}" x2="{ox}" y2="{oy + PLOT_H}" stroke="#5A5A5A" '
                   'stroke-width="1"/>')
        text(ox + PLOT_W / 2, oy + PLOT_H + 32, "offered deliveries/s (log scale)", 11, "middle")
        if not values:
            text(ox + PLOT_W / 2, oy + PLOT_H / 2, "no CPU data", 12, "middle", "#5A5A5A")

        for name in names:
            colour = COLOURS.get(name, "#808080")
            for key, shade, dashed in (("kernel", lighter(colour), True), ("user", colour, False)):
                # Consecutive known points are joined; a missing one breaks the line.
                runs, pts = [], []
                for c in sorted(cs, key=lambda c: c["offered"]):
                    s = c["servers"].get(name)
                    if s is None or not known(s[key]) or c["offered"] <= 0:
                        pts = []
                        continue
                    if not pts:
                        runs.append(pts)
                    pts.append((sx(c["offered"]), sy(s[key]), s["dps"] < KEPT_UP * c["offered"]))
                for pts in runs:
                    if len(pts) > 1:
                        line([(px, py) for px, py, _ in pts], shade, dashed)
                    for px, py, behind in pts:
                        point(px, py, shade, behind, 3 if dashed else 3.5)

    mid = top + 22 + PLOT_H / 2
    if panels:
        text(14, mid, "server CPU per delivery (µs)", 11, "middle",
             extra=f' transform="rotate(-90 14 {mid:.1f})"')
    else:
        text(LEFT, top + 40, "no results", 12, fill="#5A5A5A")
    height = top + 22 + PLOT_H + 44
    return "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
                      f'viewBox="0 0 {width} {height:.0f}">',
                      f'<rect x="0" y="0" width="{width}" height="{height:.0f}" fill="#FFFFFF"/>',
                      *out, "</svg>", ""])


def smoke_section():
    path = RESULTS / "fixed-rate.md"
    if not path.exists():
        return ""
    text = path.read_text()
    at = text.find(SMOKE_HEADING + "\n")
    if at >= 0:
        return text[at:]
    # The first version of the file was the smoke run alone: keep it, under the heading.
    # Its subsections go one level down, under the heading.
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    body = "\n".join("#" + line if line.startswith("## ") else line for line in body.split("\n"))
    return f"{SMOKE_HEADING}\n{body.lstrip(chr(10))}"


def write_report(results, names, repeats, quick, elapsed):
    """fixed-rate.md and fixed-rate.svg from the results; elapsed is None when re-rendering."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    smoke = smoke_section()
    medians = cells(results, names)
    text = report(medians, repeats, quick, elapsed)
    (RESULTS / "fixed-rate.md").write_text(text + ("\n" + smoke if smoke else ""))
    (RESULTS / "fixed-rate.svg").write_text(chart(medians, names, repeats), encoding="utf-8")
    return text


def rerender():
    path = RESULTS / "fixed-rate.json"
    if not path.is_file():
        sys.exit(f"error: {path} is missing; run without --report-only first")
    results = json.loads(path.read_text())
    # The first run of each cell is in the servers' own order (later repeats rotate it).
    names = list(dict.fromkeys(r["server"] for r in results))
    repeats = 1 + max((r.get("repeat", 0) for r in results), default=0)
    quick_labels = {shape: label for shape, (label, _, _) in shapes(10).items()}
    quick = bool(results) and all(quick_labels.get(r["shape"]) == r["label"] for r in results)
    print(write_report(results, names, repeats, quick, None))
    print(f"re-rendered {RESULTS / 'fixed-rate.md'} and {RESULTS / 'fixed-rate.svg'} from {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-build", action="store_true", help="use the binaries in target/release")
    parser.add_argument("--timeout-secs", type=int, default=300,
                        help="per run; S2 at 50,000 messages/s saturates the machine")
    parser.add_argument("--rates", type=rate_list, metavar="N,N,...",
                        help="offered messages/s for every shape (default: 1000,5000 for S1; "
                             "10000,50000 for S2 and S3)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite fixed-rate.md and fixed-rate.svg from fixed-rate.json; run nothing")
    opts = parser.parse_args()
    if opts.report_only:
        return rerender()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    scale = 10 if opts.quick else 1
    repeats = 1 if opts.quick else opts.repeats
    started = time.time()
    wasm = prepare(opts.no_build)
    commands = server_commands(wasm)
    names = list(commands)
    ports = iter(range(19600, 19900))
    results = []

    def order(rep):  # alternate who goes first
        return names[rep % len(names):] + names[:rep % len(names)]

    for shape, (label, args, default_rates) in shapes(scale).items():
        for rate in opts.rates or default_rates:
            print(f"{shape} {label} at {rate:,} messages/s", flush=True)
            for rep in range(repeats):
                for name in order(rep):
                    server = Server(name, commands[name], next(ports))
                    try:
                        r = one(server, ["broadcast", *args, "--payload-bytes", "64", "--rate", str(rate)],
                                opts.timeout_secs)
                    finally:
                        server.stop()
                    r.update(shape=shape, label=label, repeat=rep)
                    results.append(r)

    elapsed = time.time() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fixed-rate.json").write_text(json.dumps(results, indent=1))
    print(write_report(results, names, repeats, opts.quick, elapsed))
    print(f"took {elapsed / 60:.1f} minutes")


if __name__ == "__main__":
    sys.exit(main())
