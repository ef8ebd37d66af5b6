// The TypeScript client through a node drain of a Jamsocket cluster: no message lost or
// duplicated, every session resumed. Not part of `npm test`: jamsocket-cli/tests/cli/cluster.rs
// starts Redis, the nodes and HAProxy, runs this script, and drains a node when it says so.
//
//   npm run build
//   node --experimental-websocket test/cluster-drain.mjs ws://127.0.0.1:8080 6
//
// For each of <room count> rooms (`drain-0`, `drain-1`, ...; printed as `rooms drain-0 ...`),
// two RoomSockets through the given base URL broadcast numbered messages (`all:a1`, `all:a2`,
// ... and `all:b1`, ...) with the conformance service. Once all are open and messages flow, it
// prints `streaming`, and keeps going until it reads `drained` on stdin. Then it waits for
// every socket the drain closed to reopen, streams one second more, sends end markers, waits
// for them, and prints
//
//   reconnect p50=..ms p99=..ms max=..ms over N reopenings
//   lost=L duplicated=D
//   cluster drain test passed
//
// (the reconnect times run from the close a socket saw to its reopening). It exits non-zero,
// with the reason, if a message was lost or duplicated, a session was not resumed with the
// same client id, the service saw a client leave, or anything took too long.
import { createInterface } from "node:readline";
import { RoomSocket, nextEvent, percentile, record, sleep, until } from "./helpers.mjs";

/** Each socket sends one message every this many milliseconds. */
const SEND_EVERY_MS = 5;
/** Waits for sockets to open, messages to arrive, reopenings and end markers. */
const WAIT_MS = 30000;
/** How long the script waits for the `drained` line. */
const DRAIN_WAIT_MS = 180000;
/** Streaming goes on this long after every socket is back. */
const AFTER_MS = 1000;

function fail(message) {
  console.log(`cluster drain test failed: ${message}`);
  process.exit(1);
}

// Whatever else happens, the script ends.
setTimeout(() => fail("the script took longer than 5 minutes"), 300000).unref();

const [base, countArg] = process.argv.slice(2);
const roomCount = Number(countArg ?? "6");
if (!base || !Number.isInteger(roomCount) || roomCount < 1) {
  console.error("usage: node --experimental-websocket test/cluster-drain.mjs <ws base url> <room count>");
  process.exit(2);
}
if (typeof globalThis.WebSocket !== "function") {
  fail("no globalThis.WebSocket: run node with --experimental-websocket (Node 20)");
}

/** Lines read from stdin, and whoever waits for the next one. */
const input = { lines: [], ended: false };
createInterface({ input: process.stdin })
  .on("line", (line) => input.lines.push(line.trim()))
  .on("close", () => (input.ended = true));

/** One socket of a room: what it sent and received, and how its connection went. */
function member(room, name) {
  const socket = new RoomSocket(base, room);
  const m = {
    room,
    name,
    socket,
    got: record(socket),
    sent: 0,
    timer: undefined,
    opens: [],
    closedAt: undefined,
    reconnectMs: [],
    lost: 0,
    problems: [],
  };
  socket.addEventListener("open", (event) => {
    const now = performance.now();
    m.opens.push(event.detail);
    if (m.closedAt !== undefined) {
      m.reconnectMs.push(now - m.closedAt);
      m.closedAt = undefined;
    }
  });
  socket.addEventListener("statechange", (event) => {
    if (event.state === "reconnecting") m.closedAt = performance.now();
  });
  socket.addEventListener("lost", (event) => {
    m.lost += event.count;
    m.problems.push(`${event.count} sent messages reported lost (a new session, or an older snapshot)`);
  });
  socket.addEventListener("error", (event) => m.problems.push(`error: ${event.reason}`));
  socket.addEventListener("close", (event) => m.problems.push(`closed for good: ${event.code} ${event.reason}`));
  return m;
}

function startSending(m) {
  m.timer = setInterval(() => {
    try {
      m.socket.send(`all:${m.name}${m.sent + 1}`);
      m.sent += 1;
    } catch (error) {
      clearInterval(m.timer);
      m.problems.push(`send ${m.sent + 1} refused: ${error.message}`);
    }
  }, SEND_EVERY_MS);
}

const rooms = Array.from({ length: roomCount }, (_, i) => `drain-${i}`);
console.log(`rooms ${rooms.join(" ")}`);
const pairs = rooms.map((room) => [member(room, "a"), member(room, "b")]);
const members = pairs.flat();
const where = (m) => `room ${m.room}, socket ${m.name}`;

try {
  await Promise.all(
    members.map((m) =>
      (m.opens.length > 0 ? Promise.resolve() : nextEvent(m.socket, "open", () => true, WAIT_MS)).catch(() => {
        throw new Error(`${where(m)} did not open within ${WAIT_MS} ms (state ${m.socket.state}): ${m.problems.join("; ")}`);
      }),
    ),
  );
  members.forEach(startSending);
  // Messages flow: every socket has heard a hundred of its peer's (acknowledged both ways
  // several times over, and saved with the room's snapshots).
  for (const [a, b] of pairs) {
    await until(() => a.got.includes("b100") && b.got.includes("a100"), `messages in room ${a.room}`, WAIT_MS);
  }
  console.log("streaming");

  const deadline = Date.now() + DRAIN_WAIT_MS;
  while (!input.lines.includes("drained")) {
    if (input.ended) throw new Error("stdin ended before a `drained` line");
    if (Date.now() > deadline) throw new Error(`no \`drained\` line on stdin within ${DRAIN_WAIT_MS} ms`);
    await sleep(20);
  }

  // Every socket the drain closed reopens; then a little more streaming.
  await until(
    () => members.every((m) => m.socket.state === "open" && m.closedAt === undefined),
    "every socket to be open again",
    WAIT_MS,
  ).catch((error) => {
    const waiting = members.filter((m) => m.socket.state !== "open").map((m) => `${where(m)}: ${m.socket.state}`);
    throw new Error(`${error.message}; still down: ${waiting.join(", ")}`);
  });
  await sleep(AFTER_MS);
  for (const m of members) clearInterval(m.timer);
  for (const m of members) m.socket.send(`all:${m.name}-end`);
  for (const m of members) {
    await until(() => m.got.includes("a-end") && m.got.includes("b-end"), `the end markers at ${where(m)}`, WAIT_MS);
  }
} catch (error) {
  fail(error.message);
}

// What each socket received from each sender of its room: 1..sent, once each, in order.
let lost = 0;
let duplicated = 0;
const problems = [];
for (const [a, b] of pairs) {
  for (const receiver of [a, b]) {
    for (const sender of [a, b]) {
      const pattern = new RegExp(`^${sender.name}(\\d+)$`);
      const numbers = receiver.got.map((text) => pattern.exec(text)?.[1]).filter(Boolean).map(Number);
      const seen = new Map();
      for (const n of numbers) seen.set(n, (seen.get(n) ?? 0) + 1);
      let missing = 0;
      let extra = 0;
      for (let n = 1; n <= sender.sent; n++) {
        const count = seen.get(n) ?? 0;
        if (count === 0) missing += 1;
        if (count > 1) extra += count - 1;
      }
      // Numbers past what was sent cannot happen; count them as duplicates if they do.
      extra += numbers.filter((n) => n > sender.sent).length;
      lost += missing;
      duplicated += extra;
      const inOrder = numbers.every((n, i) => n === i + 1) && numbers.length === sender.sent;
      if (!inOrder) {
        problems.push(
          `${where(receiver)} got ${numbers.length} of ${sender.name}'s ${sender.sent} messages ` +
            `(${missing} missing, ${extra} extra): ${summarize(numbers)}`,
        );
      }
    }
  }
}

const reconnectMs = members.flatMap((m) => m.reconnectMs);
for (const m of members) {
  const first = m.opens[0];
  for (const [i, open] of m.opens.entries()) {
    if (i === 0) continue;
    if (!open.resumed) problems.push(`${where(m)}: reopening ${i} started a new session`);
    if (open.clientId !== first.clientId) {
      problems.push(`${where(m)}: reopening ${i} as client ${open.clientId}, not ${first.clientId}`);
    }
  }
  const welcomes = m.got.filter((text) => text.startsWith("welcome ")).length;
  if (welcomes !== 1) problems.push(`${where(m)}: welcomed ${welcomes} times by the service`);
  const left = m.got.filter((text) => text.startsWith("left "));
  if (left.length > 0) problems.push(`${where(m)}: the service saw clients leave: ${left.join(", ")}`);
  for (const problem of m.problems) problems.push(`${where(m)}: ${problem}`);
}
if (reconnectMs.length === 0) problems.push("no socket was closed by the drain: did the drained node own none of the rooms?");

const ms = (value) => (value === undefined ? "-" : `${value.toFixed(1)}ms`);
console.log(
  `reconnect p50=${ms(percentile(reconnectMs, 50))} p99=${ms(percentile(reconnectMs, 99))} ` +
    `max=${ms(reconnectMs.length ? Math.max(...reconnectMs) : undefined)} over ${reconnectMs.length} reopenings`,
);
const sent = members.reduce((sum, m) => sum + m.sent, 0);
console.log(`lost=${lost} duplicated=${duplicated} (${sent} messages sent, each to the 2 sockets of its room)`);
for (const m of members) m.socket.close();
if (lost > 0 || duplicated > 0 || problems.length > 0) {
  for (const problem of problems) console.log(`  ${problem}`);
  fail(`lost=${lost} duplicated=${duplicated}, ${problems.length} problems (above)`);
}
console.log("cluster drain test passed");
process.exit(0);

function summarize(numbers) {
  const breaks = [];
  for (let i = 0; i < numbers.length; i++) {
    const expected = i === 0 ? 1 : numbers[i - 1] + 1;
    if (numbers[i] !== expected) breaks.push(i === 0 ? `starts at ${numbers[0]}` : `…${numbers[i - 1]} then ${numbers[i]}…`);
  }
  return `breaks: ${breaks.slice(0, 10).join(", ") || "none"}`;
}
