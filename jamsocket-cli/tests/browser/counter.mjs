// Drives examples/counter-service's page in headless Chromium.
// Usage: node counter.mjs http://localhost:PORT
// Two pages in room "shared" and one in room "other": a click in one shared page updates both;
// the other room is unaffected.
import { chromium } from "playwright-core";

const base = process.argv[2];
if (!base) throw new Error("usage: node counter.mjs <base url>");
const timeout = 15000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
  ],
});
try {
  const context = await browser.newContext();
  const open = async (room) => {
    const page = await context.newPage();
    await page.goto(`${base}/?room=${room}`, { timeout });
    await page.waitForSelector('#status[data-state="open"]', { timeout });
    return page;
  };
  const valueIs = (page, expected) =>
    page.waitForFunction(
      (v) => document.getElementById("value").textContent === v, expected, { timeout });

  const a = await open("shared");
  const b = await open("shared");
  const other = await open("other");
  for (const page of [a, b, other]) await valueIs(page, "0");

  await a.click("#increment");
  await valueIs(a, "1");
  await valueIs(b, "1");
  await b.click("#increment");
  await valueIs(a, "2");
  await valueIs(b, "2");

  await other.click("#decrement");
  await valueIs(other, "-1");
  // The shared room did not move.
  await valueIs(a, "2");
  await valueIs(b, "2");
  if ((await a.textContent("#room")) !== "shared") throw new Error("room name not shown");
  console.log("browser test passed");
} finally {
  await browser.close();
}
