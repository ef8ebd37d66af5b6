#!/usr/bin/env python3
"""The attacks of the security review (issue 11) against release builds, with figures.

    python3 bench/attacks.py                      # jamsocket serve (wasm) and serve_native
    python3 bench/attacks.py --servers native

Starts each server on a free port (target/release: `jamsocket serve` with
examples/broadcast-echo's module, and broadcast-echo's `serve_native`; build them as
bench/suite.py does), attacks it from this process, and prints what each attack achieved:
time to the close frame and its code, the server's resident memory before, at its peak and after
(from /proc/<pid>/status), and whether other clients were kept out.
"""
import argparse
import asyncio
import os
import resource
import socket
import struct
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
HANDSHAKE = ("GET /ws/{room} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def header(fin, opcode, length):
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + b"\0\0\0\0"


def frame(fin, opcode, payload):
    return header(fin, opcode, len(payload)) + payload


async def handshake(port, room):
    """(reader, writer, status) of a raw WebSocket handshake."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HANDSHAKE.format(room=room).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return reader, writer, int(head.split()[1])


async def close_code(reader, within):
    """Reads frames until a close frame; its code, or None."""
    async def read():
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", await reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await reader.readexactly(8))[0]
            payload = await reader.readexactly(length)
            if first & 0x0F == 0x8:
                return struct.unpack("!H", payload[:2])[0]
    try:
        return await asyncio.wait_for(read(), within)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        return None


class Server:
    def __init__(self, name, port):
        self.name, self.port = name, port
        env = dict(os.environ, RUST_LOG="error", PORT=str(port))
        if name == "native":
            cmd = [RELEASE / "examples" / "serve_native"]
        else:
            wasm = subprocess.run([RELEASE / "jamsocket", "build", ROOT / "examples/broadcast-echo"],
                                  check=True, capture_output=True, text=True).stdout.strip()
            cmd = [RELEASE / "jamsocket", "serve", wasm, "--port", str(port)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{name} did not start")

    def rss(self):
        return rss_kib(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def huge_header(server, announced):
    reader, writer, _ = await handshake(server.port, "huge")
    before = server.rss()
    writer.write(header(True, 2, announced))
    started = time.monotonic()

    async def stream():
        chunk = bytes(64 * 1024)
        try:
            while True:
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
    flood = asyncio.ensure_future(stream())
    code = await close_code(reader, 10)
    elapsed = time.monotonic() - started
    flood.cancel()
    grown = server.rss() - before
    writer.close()
    return f"close {code} after {elapsed * 1000:.0f} ms, server grew {grown} KiB"


async def slow_messages(server, connections):
    rooms = 10
    holders = [await handshake(server.port, f"slow-{i}") for i in range(rooms)]
    await asyncio.sleep(0.5)
    before = server.rss()
    started = time.monotonic()

    async def attacker(i):
        try:
            reader, writer, status = await handshake(server.port, f"slow-{i % rooms}")
        except Exception:
            return "refused"
        if status != 101:
            return f"HTTP {status}"
        writer.write(frame(False, 2, bytes(60 * 1024)) + header(True, 0, 4096) + bytes(2048))

        async def trickle():
            try:
                while True:
                    await asyncio.sleep(3)
                    writer.write(b"x")
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
        t = asyncio.ensure_future(trickle())
        code = await close_code(reader, 60)
        t.cancel()
        writer.close()
        return code

    tasks = [asyncio.ensure_future(attacker(i)) for i in range(connections)]
    peak = before
    while not all(t.done() for t in tasks):
        peak = max(peak, server.rss())
        await asyncio.sleep(0.2)
    closed_after = time.monotonic() - started
    codes = {}
    for t in tasks:
        codes[t.result()] = codes.get(t.result(), 0) + 1
    # Memory comes back: wait (up to 10 s) until within 20% of before, or give the level then.
    waited = time.monotonic()
    after = server.rss()
    while after > before * 1.2 and time.monotonic() - waited < 10:
        await asyncio.sleep(0.5)
        after = server.rss()
    for _, w, _ in holders:
        w.close()
    return (f"{connections} connections: codes {codes} after {closed_after:.1f} s; "
            f"RSS {before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB, "
            f"{after / 1024:.1f} MiB {time.monotonic() - waited:.1f} s after the last close "
            f"({after / before:.2f}x)")


async def connect_and_drop(server, rooms):
    started = time.monotonic()
    done = False

    async def attacker(offset):
        for i in range(offset, rooms, 8):
            try:
                _, writer, _ = await handshake(server.port, f"junk-{i}")
                writer.close()
            except Exception:
                pass

    async def victim():
        opened = failed = 0
        i = 0
        while not done:
            try:
                _, writer, status = await handshake(server.port, f"victim-{i}")
                writer.close()
                if status == 101:
                    opened += 1
                else:
                    failed += 1
            except Exception:
                failed += 1
            i += 1
            await asyncio.sleep(0.1)
        return opened, failed
    v = asyncio.ensure_future(victim())
    await asyncio.gather(*(attacker(k) for k in range(8)))
    done = True
    opened, failed = await v
    return (f"{rooms} rooms created and dropped in {time.monotonic() - started:.1f} s; "
            f"another client's new rooms: {opened} opened, {failed} refused")


async def ping_flood(server, flooders):
    reader, writer, _ = await handshake(server.port, "healthy")

    async def round_trips(n):
        times = []
        for i in range(n):
            t = time.monotonic()
            writer.write(frame(True, 1, f"ping {i}".encode()))
            while True:
                first, second = await reader.readexactly(2)
                payload = await reader.readexactly(second & 0x7F)
                if first & 0x0F == 1:
                    break
            times.append((time.monotonic() - t) * 1000)
            await asyncio.sleep(0.005)
        times.sort()
        return times[len(times) // 2], times[int(len(times) * 0.99)]
    idle = await round_trips(200)

    async def flooder(i):
        r, w, _ = await handshake(server.port, f"flood-{i}")
        chunk = frame(True, 9, b"") * 4096
        started = time.monotonic()

        async def send():
            try:
                while True:
                    w.write(chunk)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
        s = asyncio.ensure_future(send())
        code = await close_code(r, 10)
        s.cancel()
        return code, time.monotonic() - started
    floods = [asyncio.ensure_future(flooder(i)) for i in range(flooders)]
    during = await round_trips(200)
    results = [await f for f in floods]
    codes = sorted({c for c, _ in results})
    slowest = max(t for _, t in results)
    writer.close()
    return (f"{flooders} ping flooders closed with {codes}, the last after {slowest * 1000:.0f} ms; "
            f"healthy client's round trip p50/p99 {idle[0]:.2f}/{idle[1]:.2f} ms idle, "
            f"{during[0]:.2f}/{during[1]:.2f} ms during the flood")


async def attack(server, opts):
    print(f"== {server.name}")
    for announced in (1 << 40, 16 << 20):
        print(f"  frame header announcing {announced} bytes: {await huge_header(server, announced)}")
    print(f"  unfinished messages: {await slow_messages(server, opts.slow)}")
    print(f"  ping floods: {await ping_flood(server, 8)}")
    print(f"  connect-and-drop: {await connect_and_drop(server, opts.rooms)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--servers", default="native,wasm")
    parser.add_argument("--slow", type=int, default=2000, help="connections with unfinished messages")
    parser.add_argument("--rooms", type=int, default=20000, help="rooms to connect to and drop")
    opts = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for name in opts.servers.split(","):
        server = Server(name, free_port())
        try:
            asyncio.run(attack(server, opts))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
