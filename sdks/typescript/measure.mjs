// Throughput and peak RSS of the TypeScript SDK next to curl on the same file (a manual run).
//
//     npm run build && node measure.mjs --mib 1024
//
// Starts `juststorage serve` on 127.0.0.1 ($JUSTSTORAGE_BIN, default <repo>/.venv/bin/juststorage)
// with a fresh data directory under --tmp, writes a file of --mib MiB, and uploads and
// downloads it once with each client, every client in its own process (peak RSS from
// GNU time's %M, the kernel's ru_maxrss). Prints a Markdown table.

import { execFile } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, open, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { startServer } from "./test/support/server.mjs";

const TIME = "/usr/bin/time";
const SDK = new URL("./dist/index.js", import.meta.url).href;
const SDK_UP = `
const js = await import(${JSON.stringify(SDK)});
const [url, token, path, key] = process.argv.slice(1);
await new js.Client(url, token).uploadFile(path, { tenant: "bench", namespace: "m", key });
`;
const SDK_UP_UNHASHED = `
const js = await import(${JSON.stringify(SDK)});
const [url, token, path, key] = process.argv.slice(1);
await new js.Client(url, token).uploadFile(path, { tenant: "bench", namespace: "m", key, checksum: false });
`;
const SDK_DOWN = `
const js = await import(${JSON.stringify(SDK)});
const [url, token, path, key] = process.argv.slice(1);
await new js.Client(url, token).downloadToFile(path, { tenant: "bench", namespace: "m", key });
`;

/** Seconds and peak RSS (MiB) of one client process. */
function run(argv) {
  return new Promise((done, fail) => {
    const started = performance.now();
    execFile(TIME, ["-f", "%M", ...argv], { maxBuffer: 1 << 20 }, (error, _stdout, stderr) => {
      if (error) return fail(new Error(`${argv.slice(0, 3).join(" ")} failed: ${stderr}`));
      const maxRssKiB = Number(stderr.trim().split("\n").at(-1));
      done({ seconds: (performance.now() - started) / 1000, rssMiB: maxRssKiB / 1024 });
    });
  });
}

const { values } = parseArgs({ options: { mib: { type: "string", default: "1024" }, tmp: { type: "string", default: tmpdir() } } });
const mib = Number(values.mib);
if (!existsSync(TIME)) throw new Error(`${TIME} is needed for peak RSS (Debian package: time)`);
if (!existsSync(new URL("./dist/index.js", import.meta.url))) throw new Error("build first: npm run build");

const root = await mkdtemp(join(values.tmp, "js-measure-ts-"));
const server = await startServer(root);
try {
  const source = join(root, "source.bin");
  const block = randomFillSync(Buffer.alloc(1024 * 1024));
  const handle = await open(source, "w");
  for (let i = 0; i < mib; i++) await handle.write(block);
  await handle.close();
  const { url, adminKey: token } = server;
  const auth = `Authorization: Bearer ${token}`;
  const clients = [
    [
      "curl",
      ["curl", "-sf", "-X", "POST", `${url}/v1/objects`, "-H", auth, "-H", "X-Tenant: bench", "-H", "X-Namespace: m", "-H", "X-Key: curl", "-T", source],
      ["curl", "-sf", `${url}/v1/objects/by-key/m/bench/curl`, "-H", auth, "-o", join(root, "curl.out")],
    ],
    [
      `@juststorage/client (node ${process.version})`,
      [process.execPath, "--input-type=module", "-e", SDK_UP, url, token, source, "sdk"],
      [process.execPath, "--input-type=module", "-e", SDK_DOWN, url, token, join(root, "sdk.out"), "sdk"],
    ],
    [
      "@juststorage/client, uploadFile checksum: false (no hashing pass first)",
      [process.execPath, "--input-type=module", "-e", SDK_UP_UNHASHED, url, token, source, "sdk-unhashed"],
      null,
    ],
  ];
  const rows = [];
  for (const [name, up, down] of clients) {
    const u = await run(up);
    const d = down === null ? { seconds: NaN, rssMiB: NaN } : await run(down);
    rows.push([name, mib / u.seconds, u.rssMiB, mib / d.seconds, d.rssMiB]);
    for (const leftover of ["curl.out", "sdk.out"]) await unlink(join(root, leftover)).catch(() => undefined);
  }
  console.log(`| client (${mib} MiB) | upload MiB/s | upload peak RSS MiB | download MiB/s | download peak RSS MiB |`);
  console.log("|---|---|---|---|---|");
  for (const [name, upRate, upRss, downRate, downRss] of rows) {
    const cell = (value) => (Number.isNaN(value) ? "–" : value.toFixed(0));
    console.log(`| ${name} | ${cell(upRate)} | ${cell(upRss)} | ${cell(downRate)} | ${cell(downRss)} |`);
  }
} finally {
  await server.stop();
  await rm(root, { recursive: true, force: true });
}
