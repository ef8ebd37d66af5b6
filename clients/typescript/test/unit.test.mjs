// RoomSocket against a scripted fake WebSocket: the jamsocket.v1 frames it sends and how it reacts
// to the server's, without a server.
import test, { afterEach } from "node:test";
import assert from "node:assert/strict";
import { RoomSocket } from "../dist/index.js";

/** A WebSocket whose server side the test plays. */
class FakeWebSocket {
  static instances = [];
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.protocol = "";
    this.sent = [];
    this.binaryType = "blob";
    this.closedWith = null;
    FakeWebSocket.instances.push(this);
  }
  send(data) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(data);
  }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  // The server's side.
  accept(protocol = "jamsocket.v1") {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }
  frame(data) {
    this.onmessage?.({ data });
  }
  welcome(fields) {
    this.frame(`w${JSON.stringify({ ack_every: 32, received: 0, resumed: false, ...fields })}`);
  }
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
  refuse() {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006, reason: "", wasClean: false });
  }
}

const latest = () => FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
const tick = (ms = 0) => new Promise((done) => setTimeout(done, ms));
async function nextSocket(count) {
  for (let i = 0; i < 200 && FakeWebSocket.instances.length < count; i++) await tick(5);
  assert.equal(FakeWebSocket.instances.length, count, "no new connection attempt");
  return latest();
}

const made = [];
afterEach(() => {
  for (const socket of made.splice(0)) socket.close();
});

function make(options = {}, url = "http://example.test:8080", room = "my room/1") {
  FakeWebSocket.instances = [];
  const probes = [];
  const socket = new RoomSocket(url, room, {
    WebSocket: FakeWebSocket,
    fetch: async (url, init) => {
      probes.push({ url, init });
      const answer = options.probe?.(url, init) ?? { status: 426, body: "would be accepted" };
      if (answer instanceof Error) throw answer;
      return new Response(answer.body, { status: answer.status });
    },
    reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
    ...options,
  });
  made.push(socket);
  const events = [];
  for (const type of ["open", "message", "statechange", "close", "error", "lost"]) {
    socket.addEventListener(type, (e) => events.push(e));
  }
  return { socket, events, probes, of: (type) => events.filter((e) => e.type === type) };
}

test("the URL, the subprotocols and the resume key", async () => {
  const { socket } = make({ token: "aaa.bbb.ccc" });
  assert.equal(socket.url, "ws://example.test:8080/ws/my%20room%2F1");
  const ws = latest();
  assert.deepEqual(ws.protocols, ["jamsocket.v1", "jamsocket.token.aaa.bbb.ccc"]);
  const url = new URL(ws.url);
  assert.match(url.searchParams.get("resume"), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(url.searchParams.get("seen"), "0");
  assert.equal(url.searchParams.get("token"), null, "the token must not go in the URL");
  assert.equal(ws.binaryType, "arraybuffer");
  socket.close();

  const based = new RoomSocket("https://h/base/", "r", { WebSocket: FakeWebSocket });
  assert.equal(based.url, "wss://h/base/ws/r");
  based.close();
  assert.throws(() => new RoomSocket("ftp://h", "r", { WebSocket: FakeWebSocket }), /scheme/);
  const noResume = make({ resume: false });
  assert.equal(new URL(latest().url).search, "");
  noResume.socket.close();
});

test("numbering, acknowledgements and a resume without loss or duplicates", async () => {
  const { socket, of } = make();
  const ws = latest();
  socket.send("early");
  assert.equal(socket.state, "connecting");
  ws.accept();
  assert.equal(socket.state, "connecting", "open waits for the welcome");
  ws.welcome({ client: 7 });
  assert.equal(socket.state, "open");
  assert.equal(socket.clientId, 7);
  assert.deepEqual(of("open").map((e) => e.detail), [{ clientId: 7, resumed: false }]);
  socket.send("one");
  socket.send("two");
  assert.deepEqual(ws.sent, ["mearly", "mone", "mtwo"]);
  assert.equal(socket.bufferedCount, 3);
  ws.frame("a1");
  assert.equal(socket.bufferedCount, 2);

  // 40 messages in: an acknowledgement after 32.
  for (let i = 1; i <= 40; i++) ws.frame(`mmsg ${i}`);
  ws.frame(new Uint8Array([1, 2]).buffer);
  assert.deepEqual(ws.sent.slice(3), ["a32"]);
  assert.equal(of("message").length, 41);
  assert.equal(of("message")[0].data, "msg 1");
  assert.equal(of("message")[40].data, "\x01\x02", "the text codec decodes binary frames as UTF-8");

  // The connection drops; two more sends wait.
  ws.drop(1006);
  assert.equal(socket.state, "reconnecting");
  socket.send("three");
  assert.equal(socket.bufferedCount, 3);
  const ws2 = await nextSocket(2);
  assert.equal(new URL(ws2.url).searchParams.get("seen"), "41");
  assert.equal(new URL(ws2.url).searchParams.get("resume"), new URL(ws.url).searchParams.get("resume"));
  ws2.accept();
  // The room handled "one" (2) but not "two": it is sent again, then "three".
  ws2.welcome({ client: 7, resumed: true, received: 2 });
  assert.deepEqual(ws2.sent, ["mtwo", "mthree"]);
  assert.deepEqual(of("open")[1].detail, { clientId: 7, resumed: true });
  assert.equal(of("lost").length, 0);
  assert.equal(socket.bufferedCount, 2);
  ws2.frame("a4");
  assert.equal(socket.bufferedCount, 0);
  ws2.frame("mmsg 42");
  assert.equal(of("message").at(-1).data, "msg 42");
  socket.close();
  assert.deepEqual(ws2.closedWith, { code: 1000, reason: "" });
  assert.equal(socket.state, "closed");
  assert.equal(of("close").length, 1);
  assert.deepEqual(
    of("statechange").map((e) => e.state),
    ["open", "reconnecting", "open", "closed"],
  );
});

test("a new session after a reconnect: counts restart, unacknowledged messages are reported lost", async () => {
  const { socket, of } = make();
  const ws = latest();
  ws.accept();
  ws.welcome({ client: 1 });
  socket.send("x");
  socket.send("y");
  ws.frame("mhello");
  ws.drop(1012);
  socket.send("z");
  const ws2 = await nextSocket(2);
  ws2.accept();
  ws2.welcome({ client: 2, resumed: false });
  assert.deepEqual(ws2.sent, ["mz"]);
  assert.deepEqual(of("lost").map((e) => e.count), [2]);
  assert.equal(socket.clientId, 2);
  ws2.drop(1001);
  const ws3 = await nextSocket(3);
  assert.equal(new URL(ws3.url).searchParams.get("seen"), "0");
  socket.close();
});

test("close codes: which reconnect and which end the socket", async () => {
  for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 4000]) {
    const { socket, of } = make();
    latest().accept();
    latest().welcome({ client: 1 });
    latest().drop(code, "bye");
    assert.equal(socket.state, "closed", `code ${code}`);
    assert.deepEqual([of("close")[0].code, of("close")[0].reason], [code, "bye"]);
    await tick(20);
    assert.equal(FakeWebSocket.instances.length, 1, `code ${code} reconnected`);
  }
  for (const code of [1001, 1005, 1006, 1011, 1012, 1013]) {
    const { socket } = make();
    latest().accept();
    latest().welcome({ client: 1 });
    latest().drop(code);
    assert.equal(socket.state, "reconnecting", `code ${code}`);
    await nextSocket(2);
    socket.close();
  }
});

test("a refused handshake: 401/403/404 end it with an error, 426 and network errors retry", async () => {
  for (const status of [401, 403, 404]) {
    const { socket, of, probes } = make({ token: "t.o.k", probe: () => ({ status, body: `refused ${status}\n` }) });
    latest().refuse();
    await tick(100);
    assert.equal(socket.state, "closed");
    assert.equal(of("error")[0].status, status);
    assert.equal(of("error")[0].reason, `refused ${status}`);
    assert.equal(of("close").length, 1);
    assert.equal(FakeWebSocket.instances.length, 1);
    assert.equal(probes[0].init.headers.Authorization, "Bearer t.o.k");
    assert.match(probes[0].url, /^http:\/\/example\.test:8080\/ws\/my%20room%2F1\?resume=/);
  }
  let answers = [new Error("connection refused"), { status: 426, body: "" }, { status: 503, body: "busy" }];
  const { socket, of } = make({ probe: () => answers.shift() ?? { status: 426, body: "" } });
  for (let n = 1; n <= 3; n++) {
    (await nextSocket(n)).refuse();
  }
  const ws = await nextSocket(4);
  assert.deepEqual(ws.protocols, ["jamsocket.v1"]);
  ws.accept();
  ws.welcome({ client: 3 });
  assert.equal(socket.state, "open");
  assert.equal(of("error").length, 0);
  socket.close();
});

test("a server that does not select jamsocket.v1: plain frames", async () => {
  // An older server: the handshake fails (the browser wants a selected subprotocol) and the probe
  // gets 400; the next attempt offers none.
  const { socket, of } = make({ probe: () => ({ status: 400, body: "expected a WebSocket handshake" }) });
  socket.send("queued");
  latest().refuse();
  const ws = await nextSocket(2);
  assert.deepEqual(ws.protocols, []);
  assert.equal(new URL(ws.url).search, "");
  ws.accept("");
  assert.equal(socket.protocol, "plain");
  assert.equal(socket.state, "open");
  assert.deepEqual(ws.sent, ["queued"]);
  socket.send("m-not-a-prefix");
  assert.deepEqual(ws.sent, ["queued", "m-not-a-prefix"]);
  ws.frame("w-not-a-welcome");
  assert.equal(of("message")[0].data, "w-not-a-welcome");
  assert.equal(socket.bufferedCount, 0);
  socket.close();

  // A client library that does accept no subprotocol (not a browser's) opens plain at once.
  const other = make();
  latest().accept("");
  assert.equal(other.socket.protocol, "plain");
  assert.equal(other.socket.state, "open");
  other.socket.close();
});

test("protocol errors close with 1002 and do not reconnect", async () => {
  for (const bad of ["a5", "xhello", "mbefore welcome"]) {
    const { socket, of } = make();
    latest().accept();
    if (bad !== "mbefore welcome") latest().welcome({ client: 1 });
    latest().frame(bad);
    assert.equal(socket.state, "closed", bad);
    assert.equal(of("close")[0].code, 1002);
    assert.match(of("error")[0].reason, /protocol error/);
  }
});

test("maxQueued and codecs", async () => {
  const { socket } = make({ maxQueued: 2 });
  assert.throws(() => socket.send(42), /text codec sends strings/);
  socket.send("1");
  socket.send("2");
  assert.throws(() => socket.send("3"), /maxQueued is 2/);
  socket.close();
  assert.throws(() => socket.send("4"), /closed/);

  const json = make({ codec: "json" });
  latest().accept();
  latest().welcome({ client: 1 });
  json.socket.send({ a: [1, "é"] });
  assert.deepEqual(latest().sent, ['m{"a":[1,"é"]}']);
  latest().frame('m{"b":2}');
  latest().frame("mnot json");
  assert.deepEqual(json.of("message")[0].data, { b: 2 });
  assert.equal(json.of("error")[0].data, "not json");
  json.socket.close();

  const binary = make({ codec: "binary" });
  latest().accept();
  latest().welcome({ client: 1 });
  binary.socket.send(new Uint8Array([9, 8]));
  assert.deepEqual([...latest().sent[0]], [9, 8]);
  binary.socket.close();
});

test("on… handlers and an async token function", async () => {
  FakeWebSocket.instances = [];
  const socket = new RoomSocket("ws://h", "r", {
    WebSocket: FakeWebSocket,
    token: async () => "from.a.promise",
  });
  const seen = [];
  socket.onopen = (e) => seen.push(["open", e.clientId]);
  socket.onmessage = (e) => seen.push(["message", e.data]);
  socket.onstatechange = (e) => seen.push(["state", e.state]);
  socket.onclose = (e) => seen.push(["close", e.code]);
  const ws = await nextSocket(1);
  assert.deepEqual(ws.protocols, ["jamsocket.v1", "jamsocket.token.from.a.promise"]);
  ws.accept();
  ws.welcome({ client: 4 });
  ws.frame("mhi");
  socket.close(4001, "done");
  await tick();
  assert.deepEqual(seen, [
    ["state", "open"],
    ["open", 4],
    ["message", "hi"],
    ["state", "closed"],
    ["close", 4001],
  ]);
  assert.deepEqual(ws.closedWith, { code: 4001, reason: "done" });
});
