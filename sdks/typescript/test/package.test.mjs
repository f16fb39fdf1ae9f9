// The published shape of the package, as a user gets it: `npm pack` (which
// builds on prepack), then the tarball installed into a scratch project (its one
// dependency, undici, from npm's cache when there), where `require()`, `import`
// and TypeScript's type checking must all find it.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const SDK = fileURLToPath(new URL("..", import.meta.url));
const TSC = join(SDK, "node_modules", "typescript", "bin", "tsc");
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

let scratch;
let tarball;

function run(command, args, cwd) {
  return execFileSync(command, args, { cwd, encoding: "utf-8", stdio: ["ignore", "pipe", "pipe"] });
}

before(() => {
  scratch = mkdtempSync(join(tmpdir(), "juststorage-pack-"));
  const packed = JSON.parse(run(NPM, ["pack", "--json", "--pack-destination", scratch], SDK));
  tarball = packed[0];
  writeFileSync(join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true }));
  run(NPM, ["install", "--prefer-offline", "--no-audit", "--no-fund", join(scratch, tarball.filename)], scratch);
});

after(() => rmSync(scratch, { recursive: true, force: true }));

test("the tarball ships built JavaScript for both module systems, and no tests", () => {
  const files = tarball.files.map((f) => f.path);
  for (const needed of ["dist/index.js", "dist/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "dist/cjs/package.json"]) {
    assert.ok(files.includes(needed), `${needed} missing from ${files.join(", ")}`);
  }
  assert.ok(!files.some((f) => f.startsWith("test/") || f.startsWith("node_modules/")), files.join(", "));
});

test("require() loads the CommonJS build", () => {
  writeFileSync(
    join(scratch, "use.cjs"),
    `const js = require("@juststorage/client");
     const c = new js.Client("http://127.0.0.1:1", "t");
     if (!(js.NotFound.prototype instanceof js.ApiError)) throw new Error("classes");
     console.log(typeof js.Client, c.baseUrl, require.resolve("@juststorage/client"));`,
  );
  const out = run(process.execPath, ["use.cjs"], scratch).trim().split(" ");
  assert.deepEqual(out.slice(0, 2), ["function", "http://127.0.0.1:1"]);
  assert.match(out[2], /dist[\\/]cjs[\\/]index\.js$/);
});

test("import loads the ES module build", () => {
  writeFileSync(
    join(scratch, "use.mjs"),
    `import { Client, VERSION } from "@juststorage/client";
     console.log(typeof Client, VERSION, import.meta.resolve("@juststorage/client"));`,
  );
  const out = run(process.execPath, ["use.mjs"], scratch).trim().split(" ");
  assert.deepEqual(out.slice(0, 2), ["function", "0.1.0"]);
  assert.match(out[2], /dist\/index\.js$/);
});

test("types resolve from TypeScript, as ESM and as CommonJS", () => {
  writeFileSync(
    join(scratch, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        module: "NodeNext",
        moduleResolution: "NodeNext",
        target: "ES2022",
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ["node"],
        typeRoots: [join(SDK, "node_modules", "@types")],
      },
      files: ["check.mts", "check.cts"],
    }),
  );
  const use = `const c = new js.Client("http://127.0.0.1:1", "t", { retry: { maxAttempts: 2 } });
const info: Promise<js.ObjectInfo> = c.upload("x", { tenant: "a", namespace: "b", key: "c" });
void info;`;
  writeFileSync(join(scratch, "check.mts"), `import * as js from "@juststorage/client";\n${use}\n`);
  writeFileSync(join(scratch, "check.cts"), `import js = require("@juststorage/client");\n${use}\n`);
  run(process.execPath, [TSC, "-p", "."], scratch);

  // The check is real: a wrong use of the same types is refused.
  writeFileSync(join(scratch, "check.cts"), `import js = require("@juststorage/client");\nconst n: number = new js.Client("u");\n`);
  assert.throws(() => run(process.execPath, [TSC, "-p", "."], scratch), (error) => {
    assert.match(String(error.stdout), /TS2322/);
    return true;
  });
});

test("the scratch project holds the package and its one dependency", () => {
  assert.deepEqual(readdirSync(join(scratch, "node_modules", "@juststorage")), ["client"]);
  const installed = readdirSync(join(scratch, "node_modules")).filter((name) => !name.startsWith("."));
  assert.deepEqual(installed.sort(), ["@juststorage", "undici"]);
});
