// RoomSocket against the real server (`jamsocket serve` of the conformance service): see
// helpers.mjs for JAMSOCKET_BIN and JAMSOCKET_MODULE.
import test from "node:test";
import assert from "node:assert/strict";
import {
  RoomSocket,
  TIMEOUT,
  countingWebSocket,
  hs256,
  nextEvent,
  nextMessage,
  percentile,
  record,
  serverEnv,
  sleep,
  startProxy,
  startServer,
  tempDir,
  until,
} from "./helpers.mjs";

const options = { timeout: 120000 };

/** Closes sockets and stops servers and proxies when the test ends. */
function cleanup(t, ...things) {
  t.after(async () => {
    for (const thing of things) {
      if (thing instanceof RoomSocket) thing.close();
      else if (typeof thing.stop === "function") await thing.stop("SIGKILL");
      else if (typeof thing.close === "function") await thing.close();
      else if (typeof thing.cleanup === "function") thing.cleanup();
    }
  });
}

test("the environment names a server binary and module, and node has WebSocket", () => {
  serverEnv();
  if (typeof globalThis.WebSocket !== "function") {
    throw new Error("no globalThis.WebSocket: run node with --experimental-websocket (Node 20), as `npm test` does");
  }
});

test("json and binary codecs: messages both ways", options, async (t) => {
  const server = await startServer();
  cleanup(t, server);
  const room = "codec";
  // The conformance service broadcasts `all:<text>`: a JSON codec whose frames are that command.
  const broadcastJson = { encode: (value) => `all:${JSON.stringify(value)}`, decode: (data) => JSON.parse(data) };
  const reader = new RoomSocket(server.base, room, { codec: "json" });
  const writer = new RoomSocket(server.base, room, { codec: broadcastJson });
  const bytes = new RoomSocket(server.base, room, { codec: "binary" });
  cleanup(t, reader, writer, bytes);
  // The service greets each client with a text (`welcome codec <id>`) that is not JSON: the json
  // codec reports it as an error event carrying the text, and carries on.
  const undecodable = [];
  for (const socket of [reader, writer]) {
    socket.addEventListener("error", (event) => undecodable.push(event.data));
  }
  await Promise.all([reader, writer, bytes].map((s) => nextEvent(s, "open")));
  assert.equal(reader.protocol, "jamsocket.v1");
  const got = record(reader);
  const gotByWriter = record(writer);

  const values = [{ n: 1, text: "héllo ✓" }, [1, 2, { nested: null }], "a string", 42.5, true];
  for (const value of values) writer.send(value);
  await until(() => got.length >= values.length && gotByWriter.length >= values.length, "the JSON messages");
  assert.deepEqual(got, values);
  assert.deepEqual(gotByWriter, values);

  // Binary frames are echoed to their sender.
  const payload = new Uint8Array([0, 1, 2, 254, 255]);
  bytes.send(payload);
  const echoed = await nextMessage(bytes, (data) => data.length === payload.length && data[0] === 0);
  assert.ok(echoed instanceof Uint8Array);
  assert.deepEqual([...echoed], [...payload]);

  assert.ok(undecodable.every((text) => /^(welcome|left) /.test(text)), `unexpected errors: ${undecodable}`);
});

test("a TCP reset in the middle of a broadcast stream loses and duplicates nothing", options, async (t) => {
  const server = await startServer();
  const proxy = await startProxy(server.port);
  cleanup(t, server, proxy);
  const room = "stream";
  // `a` goes through the proxy the test resets; `b` connects directly.
  const a = new RoomSocket(proxy.base, room);
  const b = new RoomSocket(server.base, room);
  cleanup(t, a, b);
  const gotA = record(a);
  const gotB = record(b);
  const [first] = await Promise.all([nextEvent(a, "open"), nextEvent(b, "open")]);
  const id = first.detail.clientId;
  assert.equal(typeof id, "number");
  assert.equal(first.detail.resumed, false);

  // Both broadcast numbered messages all along: b's test what a receives, a's what a sends.
  let seqA = 0;
  let seqB = 0;
  const timerB = setInterval(() => b.send(`all:b${++seqB}`), 2);
  const timerA = setInterval(() => a.send(`all:a${++seqA}`), 5);
  const reconnectMs = [];
  try {
    for (let i = 0; i < 20; i++) {
      await sleep(100 + Math.random() * 100);
      const reopened = nextEvent(a, "open");
      const resetAt = performance.now();
      proxy.reset();
      const open = await reopened;
      reconnectMs.push(performance.now() - resetAt);
      assert.equal(open.detail.resumed, true, `reset ${i + 1}: not resumed`);
      assert.equal(open.detail.clientId, id, `reset ${i + 1}: another client id`);
    }
  } finally {
    clearInterval(timerA);
    clearInterval(timerB);
  }
  a.send("all:a-end");
  b.send("all:b-end");
  for (const [name, got] of [["a", gotA], ["b", gotB]]) {
    await until(() => got.includes("a-end") && got.includes("b-end"), `the end markers at ${name}`);
  }

  let lost = 0;
  let duplicated = 0;
  const check = (got, prefix, last, who) => {
    const numbers = got.filter((m) => new RegExp(`^${prefix}\\d+$`).test(m)).map((m) => Number(m.slice(1)));
    const seen = new Map();
    for (const n of numbers) seen.set(n, (seen.get(n) ?? 0) + 1);
    for (let n = 1; n <= last; n++) {
      const count = seen.get(n) ?? 0;
      if (count === 0) lost += 1;
      if (count > 1) duplicated += count - 1;
    }
    const expected = Array.from({ length: last }, (_, i) => i + 1);
    return { ok: JSON.stringify(numbers) === JSON.stringify(expected), numbers, who, prefix };
  };
  const results = [check(gotA, "b", seqB, "a"), check(gotA, "a", seqA, "a"), check(gotB, "a", seqA, "b")];
  console.log(
    `reconnect p50=${percentile(reconnectMs, 50).toFixed(1)}ms p99=${percentile(reconnectMs, 99).toFixed(1)}ms ` +
      `max=${Math.max(...reconnectMs).toFixed(1)}ms over ${reconnectMs.length} resets`,
  );
  console.log(`lost=${lost} duplicated=${duplicated} (a received ${seqB} of b's and ${seqA} of its own; b ${seqA} of a's)`);
  for (const r of results) {
    assert.ok(r.ok, `${r.who}'s ${r.prefix}-messages are not 1..n in order: ${summarize(r.numbers)}`);
  }
  // The service never saw `a` leave or come back.
  assert.equal(gotA.filter((m) => m.startsWith("welcome ")).length, 1, "a was welcomed more than once");
  assert.ok(!gotB.includes(`left ${id}`), "the service saw a disconnect");
});

function summarize(numbers) {
  const out = [];
  for (let i = 0; i < numbers.length; i++) {
    if (i > 0 && numbers[i] !== numbers[i - 1] + 1) out.push(`…${numbers[i - 1]} then ${numbers[i]}…`);
  }
  return `${numbers.length} numbers; breaks: ${out.slice(0, 10).join(", ") || "none"}`;
}

test("a server restart with a durable store: the client resumes by itself", options, async (t) => {
  const dir = tempDir();
  const store = `sqlite:${dir.path}/rooms.db`;
  let server = await startServer({ args: ["--store", store] });
  const port = server.port;
  cleanup(t, dir);
  t.after(() => server.stop("SIGKILL"));
  const socket = new RoomSocket(server.base, "durable", { reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } });
  cleanup(t, socket);
  const states = [];
  socket.addEventListener("statechange", (e) => states.push(`${e.state}${e.code ? ` ${e.code}` : ""}`));
  const first = await nextEvent(socket, "open");
  for (let n = 1; n <= 3; n++) {
    socket.send("count");
    await nextMessage(socket, `count ${n}`);
  }

  const reopened = nextEvent(socket, "open", () => true, 30000);
  const exit = await server.stop("SIGTERM");
  assert.equal(exit.code, 0, `the server exited with ${JSON.stringify(exit)}:\n${server.stderr}`);
  server = await startServer({ port, args: ["--store", store] });
  const open = await reopened;
  assert.equal(open.detail.resumed, true, `not resumed; states: ${states.join(", ")}`);
  assert.equal(open.detail.clientId, first.detail.clientId);
  assert.ok(states.includes("reconnecting 1012"), `states: ${states.join(", ")}`);
  socket.send("count");
  await nextMessage(socket, "count 4");
});

test("a refused token ends in an error with the status and reason; a good one connects", options, async (t) => {
  const secret = "a test secret of thirty-two bytes!";
  const server = await startServer({ args: ["--auth-jwt-secret", secret] });
  cleanup(t, server);

  for (const token of ["not-a-jwt", hs256("another secret", { sub: "mallory", exp: now() + 3600 }), undefined]) {
    const counter = countingWebSocket();
    const refused = new RoomSocket(server.base, "auth", {
      token,
      WebSocket: counter.WebSocket,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    cleanup(t, refused);
    const error = nextEvent(refused, "error");
    const closed = nextEvent(refused, "close");
    const event = await error;
    assert.equal(event.status, 401, `token ${token}: ${event.reason}`);
    assert.ok(event.reason.length > 0, "no reason");
    await closed;
    assert.equal(refused.state, "closed");
    await sleep(300);
    assert.equal(counter.count, 1, "the client tried again after a 401");
    assert.throws(() => refused.send("count"), /closed/);
  }

  // A token function is called for each connection.
  let calls = 0;
  const good = new RoomSocket(server.base, "auth", {
    token: () => {
      calls += 1;
      return hs256(secret, { sub: "alice", exp: now() + 3600 });
    },
  });
  cleanup(t, good);
  await nextEvent(good, "open");
  assert.equal(calls, 1);
  good.send("whoami");
  const answer = await nextMessage(good, /^user /);
  assert.match(answer, /^user alice\b/);
});

test("sends made while disconnected are delivered once, in order, after the reconnect", options, async (t) => {
  const server = await startServer();
  const proxy = await startProxy(server.port);
  cleanup(t, server, proxy);
  const socket = new RoomSocket(proxy.base, "offline", { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  const watcher = new RoomSocket(server.base, "offline");
  cleanup(t, socket, watcher);
  const [first] = await Promise.all([nextEvent(socket, "open"), nextEvent(watcher, "open")]);
  const got = record(socket);
  const watched = record(watcher);

  proxy.paused = true;
  const down = nextEvent(socket, "statechange", (e) => e.state === "reconnecting");
  proxy.reset();
  await down;
  for (let i = 1; i <= 5; i++) socket.send(`all:q${i}`);
  assert.equal(socket.bufferedCount, 5);
  // Attempts fail meanwhile (the proxy resets them, and the probe gets no answer either).
  await sleep(600);
  assert.equal(socket.state, "reconnecting");
  assert.ok(proxy.connections >= 1);

  const reopened = nextEvent(socket, "open");
  proxy.paused = false;
  const open = await reopened;
  assert.equal(open.detail.resumed, true);
  assert.equal(open.detail.clientId, first.detail.clientId);
  const expected = ["q1", "q2", "q3", "q4", "q5"];
  await until(() => got.includes("q5") && watched.includes("q5"), "q5");
  await sleep(100);
  assert.deepEqual(got.filter((m) => /^q\d$/.test(m)), expected);
  assert.deepEqual(watched.filter((m) => /^q\d$/.test(m)), expected);
});

test("after the reconnect grace, a new session: unacknowledged messages are reported lost", options, async (t) => {
  const server = await startServer({ args: ["--reconnect-grace", "1s"] });
  const proxy = await startProxy(server.port);
  cleanup(t, server, proxy);
  const socket = new RoomSocket(proxy.base, "grace", { reconnect: { initialDelayMs: 50, maxDelayMs: 100 } });
  cleanup(t, socket);
  const got = record(socket);
  const lost = [];
  socket.addEventListener("lost", (e) => lost.push(e.count));
  const first = await nextEvent(socket, "open");
  for (let i = 1; i <= 3; i++) socket.send(`all:x${i}`);
  await until(() => got.includes("x3"), "x3");
  // Handled, but fewer than ack_every: not acknowledged yet.
  assert.equal(socket.bufferedCount, 3);
  proxy.paused = true;
  proxy.reset();
  await nextEvent(socket, "statechange", (e) => e.state === "reconnecting");
  socket.send("all:while away");
  await sleep(2500);
  const reopened = nextEvent(socket, "open");
  proxy.paused = false;
  const open = await reopened;
  assert.equal(open.detail.resumed, false);
  assert.notEqual(open.detail.clientId, first.detail.clientId);
  assert.deepEqual(lost, [3]);
  await until(() => got.includes("while away"), "the message sent while away");
  assert.ok(got.includes(`welcome grace ${open.detail.clientId}`), `got ${JSON.stringify(got)}`);
  assert.equal(socket.state, "open");
});

test("a restart without a store: a new session, the room starts over", options, async (t) => {
  let server = await startServer();
  const port = server.port;
  t.after(() => server.stop("SIGKILL"));
  const socket = new RoomSocket(server.base, "forgotten", { reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } });
  cleanup(t, socket);
  await nextEvent(socket, "open");
  for (let n = 1; n <= 2; n++) {
    socket.send("count");
    await nextMessage(socket, `count ${n}`);
  }
  const reopened = nextEvent(socket, "open", () => true, 30000);
  await server.stop("SIGTERM");
  server = await startServer({ port });
  const open = await reopened;
  assert.equal(open.detail.resumed, false);
  socket.send("count");
  await nextMessage(socket, "count 1");
  assert.equal(socket.state, "open");
});

test("maxQueued: send throws once that many messages wait", options, async (t) => {
  const server = await startServer();
  const proxy = await startProxy(server.port);
  cleanup(t, server, proxy);
  const socket = new RoomSocket(proxy.base, "queue", { maxQueued: 3, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } });
  cleanup(t, socket);
  await nextEvent(socket, "open");
  proxy.paused = true;
  proxy.reset();
  await nextEvent(socket, "statechange", (e) => e.state === "reconnecting");
  assert.equal(socket.bufferedCount, 0);
  for (let i = 1; i <= 3; i++) socket.send(`all:x${i}`);
  assert.throws(() => socket.send("all:one too many"), /maxQueued is 3/);
});

function now() {
  return Math.floor(Date.now() / 1000);
}

void TIMEOUT;
