// The counter example's page loads a copy of the compiled client
// (examples/counter-service/static/jamsocket-client.js): it must be what a fresh build produces.
// After changing src/index.ts: `npm run sync-example`.
import test from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const copy = join(root, "../../examples/counter-service/static/jamsocket-client.js");

test("the counter example's copy of the client is a fresh build of src/index.ts", () => {
  const out = mkdtempSync(join(tmpdir(), "jamsocket-client-build-"));
  try {
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.json"), "--outDir", out], { stdio: "inherit" });
    const fresh = readFileSync(join(out, "index.js"), "utf8");
    const copied = readFileSync(copy, "utf8");
    assert.ok(
      fresh === copied,
      `${copy} differs from a fresh build: run \`npm run sync-example\` in clients/typescript and commit the copy`,
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
