// RoomSocket in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core), against
// the real server with tokens required: a page served by the server (through a TCP proxy this
// script controls) connects with a good token, resumes its session after the proxy resets the
// connection, and reports a refused token with its status and reason.
//
// Usage (after `npm run build`; JAMSOCKET_BIN and JAMSOCKET_MODULE as for `npm test`):
//   node test/browser.mjs
// playwright-core comes from this package's node_modules if installed there, else from
// jamsocket-cli/tests/browser's (`npm ci` there).
import assert from "node:assert/strict";
import { copyFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { hs256, startProxy, startServer, tempDir } from "./helpers.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const timeout = 15000;

async function playwright() {
  try {
    return await import("playwright-core");
  } catch {
    const require = createRequire(join(here, "../../../jamsocket-cli/tests/browser/package.json"));
    return import(pathToFileURL(require.resolve("playwright-core")).href);
  }
}

const playwrightModule = await playwright();
const chromium = playwrightModule.chromium ?? playwrightModule.default.chromium;
const dir = tempDir();
copyFileSync(join(here, "../dist/index.js"), join(dir.path, "jamsocket-client.js"));
writeFileSync(
  join(dir.path, "index.html"),
  `<!doctype html><meta charset="utf-8"><title>jamsocket-client</title>
<script type="module">
  import { RoomSocket } from "./jamsocket-client.js";
  window.RoomSocket = RoomSocket;
  // Opens a socket that records its events and messages in window.logs[name].
  window.openSocket = (name, room, options) => {
    const log = { events: [], messages: [] };
    (window.logs ??= {})[name] = log;
    const socket = new RoomSocket(location.origin, room, options);
    for (const type of ["open", "statechange", "close", "error", "lost"]) {
      socket.addEventListener(type, (e) => log.events.push({
        type, state: e.state, code: e.code, status: e.status, reason: e.reason, detail: e.detail,
      }));
    }
    socket.addEventListener("message", (e) => log.messages.push(e.data));
    (window.sockets ??= {})[name] = socket;
  };
</script>`,
);

const secret = "a secret for the browser test, 32+ bytes";
const server = await startServer({ args: ["--static", dir.path, "--auth-jwt-secret", secret] });
const proxy = await startProxy(server.port);
const base = `http://127.0.0.1:${proxy.port}`;
let browser;
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic",
    ],
  });
  const page = await browser.newPage();
  page.on("console", (message) => console.log(`[page] ${message.text()}`));
  await page.goto(`${base}/index.html`, { timeout });
  await page.waitForFunction(() => window.openSocket, null, { timeout });
  const opens = (name) => page.evaluate((n) => window.logs[n].events.filter((e) => e.type === "open"), name);
  const hasMessage = (name, test) =>
    page.waitForFunction(([n, t]) => window.logs[n].messages.some((m) => new RegExp(t).test(m)), [name, test], {
      timeout,
    });

  // 1. A good token: the session opens under jamsocket.v1 and the service knows the user.
  const token = hs256(secret, { sub: "alice", exp: Math.floor(Date.now() / 1000) + 3600 });
  await page.evaluate((t) => window.openSocket("good", "browser", { token: t }), token);
  await page.waitForFunction(() => window.sockets.good.state === "open", null, { timeout });
  assert.equal(await page.evaluate(() => window.sockets.good.protocol), "jamsocket.v1");
  await page.evaluate(() => {
    window.sockets.good.send("whoami");
    window.sockets.good.send("count");
  });
  await hasMessage("good", "^user alice\\b");
  await hasMessage("good", "^count 1$");
  const [first] = await opens("good");
  assert.equal(first.detail.resumed, false);
  console.log(`connected: client ${first.detail.clientId}`);

  // 2. The connection is reset (an abnormal close, 1006): the page reconnects and resumes.
  const resetAt = Date.now();
  proxy.reset();
  await page.waitForFunction(
    () => window.logs.good.events.filter((e) => e.type === "open").length >= 2,
    null,
    { timeout },
  );
  const second = (await opens("good"))[1];
  assert.deepEqual(second.detail, { clientId: first.detail.clientId, resumed: true });
  const states = await page.evaluate(() => window.logs.good.events.filter((e) => e.type === "statechange"));
  assert.ok(
    states.some((e) => e.state === "reconnecting" && e.code === 1006),
    `states: ${JSON.stringify(states)}`,
  );
  await page.evaluate(() => window.sockets.good.send("count"));
  await hasMessage("good", "^count 2$");
  const welcomes = await page.evaluate(() => window.logs.good.messages.filter((m) => m.startsWith("welcome ")));
  assert.equal(welcomes.length, 1, "the service saw the client connect twice");
  console.log(`resumed after a reset in ${Date.now() - resetAt} ms with the same client id`);

  // 3. A bad token: an error event with the server's status and reason, then closed for good.
  await page.evaluate(() =>
    window.openSocket("bad", "browser", { token: "not-a-jwt", reconnect: { initialDelayMs: 10 } }),
  );
  await page.waitForFunction(() => window.sockets.bad.state === "closed", null, { timeout });
  const bad = await page.evaluate(() => window.logs.bad.events);
  const error = bad.find((e) => e.type === "error");
  assert.ok(error, `no error event: ${JSON.stringify(bad)}`);
  assert.equal(error.status, 401);
  assert.ok(error.reason, "no reason");
  assert.equal(bad.filter((e) => e.type === "close").length, 1);
  console.log(`refused: ${error.status} ${error.reason}`);
  console.log("browser client test passed");
} finally {
  await browser?.close();
  await proxy.close();
  await server.stop("SIGKILL");
  dir.cleanup();
}
