// Shared by the tests: the real `jamsocket` binary, a loopback TCP proxy the tests can reset, and
// small waits on a RoomSocket's events.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHmac } from "node:crypto";

export { RoomSocket } from "../dist/index.js";

export const TIMEOUT = 15000;

/** The binary and module the tests serve, from the environment. */
export function serverEnv() {
  const bin = process.env.JAMSOCKET_BIN;
  const module = process.env.JAMSOCKET_MODULE;
  if (!bin || !module) {
    throw new Error(
      "These tests run the real server. Set JAMSOCKET_BIN to the jamsocket binary and JAMSOCKET_MODULE " +
        "to the conformance service's WebAssembly module, e.g.\n" +
        "  cargo build -p jamsocket-cli\n" +
        "  export JAMSOCKET_BIN=$PWD/target/debug/jamsocket\n" +
        "  export JAMSOCKET_MODULE=$($JAMSOCKET_BIN build examples/conformance-service)\n" +
        "  (cd clients/typescript && npm test)",
    );
  }
  return { bin, module };
}

/** A temporary folder, removed by `cleanup()`. */
export function tempDir() {
  const path = mkdtempSync(join(tmpdir(), "jamsocket-client-"));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * Starts `jamsocket serve <module> --port <port> --host 127.0.0.1 ...args` and waits for the
 * `status:` line with its port (what jamsocket-cli/tests/cli/common.rs parses too).
 */
export async function startServer({ port = 0, args = [] } = {}) {
  const { bin, module } = serverEnv();
  // A restart on the same port may find it busy for a moment: try a few times.
  for (let attempt = 0; ; attempt++) {
    try {
      return await launch(bin, ["serve", module, "--port", String(port), "--host", "127.0.0.1", ...args]);
    } catch (error) {
      if (port === 0 || attempt >= 20 || !/in use|AddrInUse|bind/i.test(String(error))) throw error;
      await sleep(100);
    }
  }
}

function launch(bin, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" },
    });
    // Never outlive this process (a failed assertion that skips the cleanup, say).
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    child.once("exit", () => process.removeListener("exit", killOnExit));
    let stdout = "";
    let stderr = "";
    let settled = false;
    const exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
    const server = {
      child,
      port: 0,
      base: "",
      get stderr() {
        return stderr;
      },
      get stdout() {
        return stdout;
      },
      exited,
      /** Sends `signal` (SIGTERM by default) and waits for the exit. */
      async stop(signal = "SIGTERM") {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return exited;
      },
    };
    const timer = setTimeout(() => fail(new Error(`the server printed no status line in ${TIMEOUT} ms`)), TIMEOUT);
    function fail(error) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`${error.message}\n${bin} ${args.join(" ")}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      if (settled) return;
      // `  status:    http://localhost:8080/status`
      const line = stdout.split("\n").find((l) => l.includes("status:"));
      const port = line && /:\/\/.*:(\d+)\//.exec(line)?.[1];
      if (port) {
        settled = true;
        clearTimeout(timer);
        server.port = Number(port);
        server.base = `http://127.0.0.1:${port}`;
        resolve(server);
      }
    });
    child.once("exit", (code, signal) => fail(new Error(`the server exited (${code ?? signal})`)));
    child.once("error", fail);
  });
}

/**
 * A loopback TCP proxy to `127.0.0.1:<target>`. `reset()` sends a TCP RST both ways on every
 * connection; while `paused`, new connections are reset at once.
 */
export async function startProxy(target) {
  const pairs = new Set();
  const proxy = {
    port: 0,
    paused: false,
    connections: 0,
    reset() {
      for (const pair of pairs) {
        pair.client.resetAndDestroy();
        pair.upstream.resetAndDestroy();
      }
      pairs.clear();
    },
    close() {
      proxy.reset();
      return new Promise((done) => server.close(done));
    },
  };
  const server = net.createServer((client) => {
    if (proxy.paused) {
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    proxy.connections += 1;
    client.setNoDelay(true);
    const upstream = net.connect(target, "127.0.0.1");
    upstream.setNoDelay(true);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  proxy.port = server.address().port;
  proxy.base = `ws://127.0.0.1:${proxy.port}`;
  return proxy;
}

export const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** The next `type` event of `target` that satisfies `filter`, or an error after `timeout` ms. */
export function nextEvent(target, type, filter = () => true, timeout = TIMEOUT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, listener);
      reject(new Error(`no ${type} event within ${timeout} ms`));
    }, timeout);
    function listener(event) {
      if (!filter(event)) return;
      clearTimeout(timer);
      target.removeEventListener(type, listener);
      resolve(event);
    }
    target.addEventListener(type, listener);
  });
}

/** The next message whose data satisfies `filter` (a predicate, a string or a RegExp). */
export async function nextMessage(socket, filter = () => true, timeout = TIMEOUT) {
  const test =
    typeof filter === "string"
      ? (data) => data === filter
      : filter instanceof RegExp
        ? (data) => typeof data === "string" && filter.test(data)
        : filter;
  return (await nextEvent(socket, "message", (event) => test(event.data), timeout)).data;
}

/** Waits until `condition()` holds. */
export async function until(condition, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Every message a socket receives, in order. */
export function record(socket) {
  const messages = [];
  socket.addEventListener("message", (event) => messages.push(event.data));
  return messages;
}

/** An HS256 JWT. */
export function hs256(secret, claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  const signature = createHmac("sha256", secret).update(body).digest("base64url");
  return `${body}.${signature}`;
}

/** The q-th percentile (0..100) of `values`. */
export function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

/** A `WebSocket` constructor that counts the connections it opens. */
export function countingWebSocket() {
  const counter = { count: 0 };
  counter.WebSocket = class extends globalThis.WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      counter.count += 1;
    }
  };
  return counter;
}
