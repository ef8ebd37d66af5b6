// Drives the admin listener's page (jamsocket-server/src/admin/page.html) in headless Chromium.
// Usage: node admin.mjs <admin url> <admin token> <websocket url, ws://HOST:PORT/ws> <screenshot>
// WebSocket clients (opened from a second page: Node has no WebSocket) join three rooms of the
// counter example; the page lists them with their client counts, charts the messages, shows a
// room's members, drops rooms whose clients left, and explains a wrong token and a lost server.
// Saves a screenshot of the page with rooms listed.
import { chromium } from "playwright-core";

const [adminUrl, token, wsBase, screenshot] = process.argv.slice(2);
if (!screenshot) {
  throw new Error("usage: node admin.mjs <admin url> <token> <ws://host:port/ws> <screenshot.png>");
}
const timeout = 15000;

/** `promise`, or an error naming `what` after `timeout` ms. */
function within(promise, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), timeout);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

const withFragment = (fragment) => {
  const url = new URL(adminUrl);
  url.hash = fragment;
  return url.href;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
  ],
});
try {
  const context = await browser.newContext({
    viewport: { width: 1040, height: 720 },
    colorScheme: "light",
  });

  // The WebSocket clients live in a page of the server's own origin.
  const clients = await context.newPage();
  await clients.goto(wsBase.replace(/^ws/, "http").replace(/\/ws\/?$/, "/status"), { timeout });
  const connect = (name, room) => within(clients.evaluate(([name, url]) =>
    new Promise((resolve, reject) => {
      window.sockets ??= {};
      const socket = new WebSocket(url);
      window.sockets[name] = socket;
      // The counter greets each client with its value: then it is a member of the room.
      socket.onmessage = () => resolve();
      socket.onerror = () => reject(new Error(`WebSocket ${name} to ${url} failed`));
    }), [name, `${wsBase}/${room}`]), `client ${name} joins ${room}`);
  const disconnect = (name) => within(clients.evaluate((name) =>
    new Promise((resolve) => {
      const socket = window.sockets[name];
      socket.onclose = () => resolve();
      socket.close();
    }), name), `client ${name} closes`);

  const page = await context.newPage();
  await page.goto(withFragment(`token=${encodeURIComponent(token)}`), { timeout });
  await page.waitForSelector('#status[data-state="ok"]', { timeout });
  await page.waitForSelector('#rooms[data-count="0"]', { timeout });
  if (page.url().includes(token)) throw new Error(`the token stays in the address bar: ${page.url()}`);

  for (const [name, room] of [
    ["a1", "alpha"], ["a2", "alpha"], ["b1", "beta"], ["l1", "lobby"], ["l2", "lobby"], ["l3", "lobby"],
  ]) {
    await connect(name, room);
  }
  for (const [room, count] of [["alpha", 2], ["beta", 1], ["lobby", 3]]) {
    await page.waitForSelector(`tr[data-room="${room}"][data-clients="${count}"]`, { timeout });
  }
  await page.waitForSelector('#rooms[data-count="3"]', { timeout });

  // Traffic in two rooms, irregular enough to give the chart a shape.
  await clients.evaluate(() => {
    window.traffic = setInterval(() => {
      if (Math.random() < 0.7) window.sockets.a1.send("increment");
      if (Math.random() < 0.3) window.sockets.l2.send("decrement");
    }, 40);
  });
  await page.waitForFunction(() => {
    const row = document.querySelector('tr[data-room="alpha"]');
    return Number(row?.dataset.rateIn) > 0 && Number(row?.dataset.rateOut) > 0;
  }, null, { timeout });
  await page.waitForFunction(() => {
    const chart = document.getElementById("chart");
    return Number(chart.dataset.maxIn) > 0 && Number(chart.dataset.maxOut) > 0
      && document.getElementById("chart-in").points.numberOfItems > 1;
  }, null, { timeout });
  // A few more seconds of history for the screenshot.
  await page.waitForFunction(
    () => Number(document.getElementById("chart").dataset.points) >= 12, null, { timeout });
  await page.screenshot({ path: screenshot, fullPage: true });
  await clients.evaluate(() => clearInterval(window.traffic));

  // A room's details list its members.
  await page.click('tr[data-room="alpha"] a');
  await page.waitForSelector('#details[data-room="alpha"][data-state="live"]', { timeout });
  await page.waitForFunction(
    () => document.querySelectorAll("#members tbody tr[data-client]").length === 2, null, { timeout });

  // Rooms whose clients left close (--shutdown-policy immediate) and leave the list.
  await disconnect("b1");
  await page.waitForSelector('tr[data-room="beta"]', { state: "detached", timeout });
  await disconnect("a1");
  await page.waitForFunction(
    () => document.querySelectorAll("#members tbody tr[data-client]").length === 1, null, { timeout });
  await disconnect("a2");
  await page.waitForSelector('tr[data-room="alpha"]', { state: "detached", timeout });
  await page.waitForSelector('#details[data-room="alpha"][data-state="gone"]', { timeout });
  await page.waitForSelector('#rooms[data-count="1"]', { timeout });

  // A wrong token: the page says so and asks for the right one.
  const wrong = await context.newPage();
  await wrong.goto(withFragment(`token=wrong-${encodeURIComponent(token)}`), { timeout });
  await wrong.waitForSelector('#status[data-state="unauthorized"]', { timeout });
  const message = await wrong.textContent("#status");
  if (!message.includes("401")) throw new Error(`no 401 in the message: ${message}`);
  await wrong.fill("#token-input", token, { timeout });
  await wrong.click('#token-form button[type="submit"]', { timeout });
  await wrong.waitForSelector('#status[data-state="ok"]', { timeout });
  await wrong.waitForSelector('tr[data-room="lobby"][data-clients="3"]', { timeout });
  await wrong.waitForSelector("#token-form", { state: "hidden", timeout });

  // A server that cannot be reached.
  const offline = await context.newPage();
  await offline.route(/\/(rooms|metrics)(\?|\/|$)/, (route) => route.abort("connectionrefused"));
  await offline.goto(withFragment(`token=${encodeURIComponent(token)}`), { timeout });
  await offline.waitForSelector('#status[data-state="unreachable"]', { timeout });

  console.log("admin page test passed");
} finally {
  await browser.close();
}
