// Parallel resumable downloads (against a real server) and multipart uploads
// (against FakeSessions in front of a real server, until the server has sessions).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, test } from "node:test";

import * as js from "../dist/index.js";
import { CuttingProxy } from "./support/proxy.mjs";
import { startServer } from "./support/server.mjs";
import { FakeSessions } from "./support/sessions.mjs";

const MiB = 1024 * 1024;
let server;
let tmp;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "js-transfers-"));
  server = await startServer(tmp);
});

after(async () => {
  await server?.stop();
  await rm(tmp, { recursive: true, force: true });
});

function pattern(size, seed) {
  const data = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) data[i] = (i * 7 + seed) % 251;
  return data;
}

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

test("a large download goes in parallel ranges and keeps those a previous run finished", async () => {
  const client = new js.Client(server.url, server.adminKey);
  const data = pattern(6 * MiB, 1);
  const object = await client.upload(data, { tenant: "acme", namespace: "models", key: "ts/par" });
  const dir = await mkdtemp(join(tmp, "dl-"));
  const dest = join(dir, "par.bin");
  // What an interrupted run leaves: ranges 0, 1 and 3 in its temporary file, and the state listing them.
  const partial = Buffer.alloc(data.length);
  for (const i of [0, 1, 3]) data.copy(partial, i * MiB, i * MiB, (i + 1) * MiB);
  const stateDir = join(dir, "..", `${basename(dir)}-state`);
  await leftOver(dest, stateDir, partial, { object_id: object.id, content_hash: object.contentHash, size: data.length, range_bytes: MiB, done: [0, 1, 3] });
  const proxy = await new CuttingProxy(server.port, 2 ** 50).start();
  try {
    const viaProxy = new js.Client(proxy.url, server.adminKey);
    const resumed = [];
    let progress = 0;
    await viaProxy.downloadToFile(dest, {
      tenant: "acme", namespace: "models", key: "ts/par",
      parallel: 2, parallelThreshold: MiB, rangeBytes: MiB, stateDir,
      onResume: (n) => resumed.push(n), progress: (n) => { progress += n; },
    });
    assert.deepEqual(resumed, [3 * MiB]);
    assert.equal(progress, 3 * MiB);
    const asked = proxy.requests.flatMap((r) => r.split("\r\n").filter((l) => l.toLowerCase().startsWith("range:")));
    assert.deepEqual(asked.map((l) => l.split(": ")[1]).sort(), [2, 4, 5].map((i) => `bytes=${i * MiB}-${(i + 1) * MiB - 1}`).sort());
  } finally {
    await proxy.close();
  }
  assert.ok((await readFile(dest)).equals(data));
  assert.deepEqual(await readdir(dir), ["par.bin"]);
  assert.deepEqual(await readdir(stateDir), []);
});

async function leftOver(dest, stateDir, bytes, state) {
  const temp = `.${basename(dest)}.0123456789abcdef${js.TEMP_SUFFIX}`;
  await writeFile(join(dirname(dest), temp), bytes);
  await mkdir(stateDir, { recursive: true });
  await writeFile(await js.downloadStatePath(stateDir, dest), JSON.stringify({ version: 1, temp, ...state }));
}

for (const threshold of [MiB, 64 * MiB]) {
  test(`keys m, m.part and m.part.state downloaded at once each get their own bytes (threshold ${threshold})`, async () => {
    const client = new js.Client(server.url, server.adminKey);
    const names = ["m", "m.part", "m.part.state"];
    const datas = names.map((_, i) => pattern(3 * MiB + i, 10 + i));
    await Promise.all(names.map((name, i) => client.upload(datas[i], { tenant: "acme", namespace: "models", key: `ts/race-${threshold}/${name}` })));
    const dir = await mkdtemp(join(tmp, "race-"));
    const stateDir = join(dir, "..", `${basename(dir)}-state`);
    const options = { parallelThreshold: threshold, rangeBytes: MiB, stateDir };
    for (let run = 0; run < 3; run++) {
      const out = join(dir, `run${run}`);
      await mkdir(out);
      await Promise.all(names.map((name) => client.downloadToFile(join(out, name), { tenant: "acme", namespace: "models", key: `ts/race-${threshold}/${name}`, ...options })));
      assert.deepEqual((await readdir(out)).sort(), [...names].sort());
      for (const [i, name] of names.entries()) assert.ok((await readFile(join(out, name))).equals(datas[i]), name);
    }
    const own = join(dir, "own");
    await mkdir(own);
    await writeFile(join(own, "m.part"), "my own work");
    await client.downloadToFile(join(own, "m"), { tenant: "acme", namespace: "models", key: `ts/race-${threshold}/m`, ...options });
    assert.equal(await readFile(join(own, "m.part"), "utf8"), "my own work");
    assert.ok((await readFile(join(own, "m"))).equals(datas[0]));
  });
}

test("a kept range that does not hash right fails, and the next run starts clean", async () => {
  const client = new js.Client(server.url, server.adminKey);
  const data = pattern(3 * MiB, 2);
  const object = await client.upload(data, { tenant: "acme", namespace: "models", key: "ts/corrupt" });
  const dir = await mkdtemp(join(tmp, "dl-"));
  const dest = join(dir, "c.bin");
  const stateDir = join(dir, "..", `${basename(dir)}-state`);
  // zeros, but listed as done
  await leftOver(dest, stateDir, Buffer.alloc(data.length), { object_id: object.id, content_hash: object.contentHash, size: data.length, range_bytes: MiB, done: [0] });
  const options = { tenant: "acme", id: object.id, parallelThreshold: MiB, rangeBytes: MiB, stateDir };
  await assert.rejects(client.downloadToFile(dest, options), js.IntegrityError);
  assert.deepEqual(await readdir(dir), []);
  assert.deepEqual(await readdir(stateDir), []);
  await client.downloadToFile(dest, options);
  assert.ok((await readFile(dest)).equals(data));
});

test("an interrupted multipart upload resumes with the missing parts only", async () => {
  const fake = await new FakeSessions(server.url, MiB).start();
  try {
    const client = new js.Client(fake.url, server.adminKey);
    const data = pattern(10 * MiB + 5, 3);
    const dir = await mkdtemp(join(tmp, "up-"));
    const source = join(dir, "model.bin");
    await writeFile(source, data);
    const stateDir = join(dir, "state");
    const options = { tenant: "acme", namespace: "models", key: "ts/mp", multipartThreshold: MiB, partBytes: MiB, parallel: 3, stateDir };
    let sent = 0;
    const stop = (n) => {
      sent += n;
      if (sent >= 6 * MiB) throw new Error("stop");
    };
    await assert.rejects(client.uploadFile(source, { ...options, progress: stop }));
    const firstRun = fake.partBytesReceived;
    const resumed = [];
    const info = await client.uploadFile(source, { ...options, onResume: (n) => resumed.push(n) });
    assert.equal(info.contentHash, `sha256:${sha256(data)}`);
    assert.equal(resumed.length, 1);
    assert.ok(resumed[0] >= 3 * MiB, `resumed ${resumed[0]}`);
    assert.equal(fake.partBytesReceived - firstRun, data.length - resumed[0]);
    assert.deepEqual(await readdir(stateDir), []);
    const direct = new js.Client(server.url, server.adminKey);
    assert.ok(Buffer.from(await direct.download({ tenant: "acme", namespace: "models", key: "ts/mp" })).equals(data));
  } finally {
    await fake.close();
  }
});

test("session calls: create, parts in any order, inspect, complete twice, abort", async () => {
  const fake = await new FakeSessions(server.url, MiB).start();
  try {
    const client = new js.Client(fake.url, server.adminKey);
    const session = await client.createUpload({ tenant: "acme", namespace: "models", key: "ts/calls" });
    assert.equal(session.state, "open");
    await client.uploadPart(session.upload_id, 2, "tail");
    await client.uploadPart(session.upload_id, 1, pattern(MiB, 4));
    const parts = (await client.getUpload(session.upload_id)).parts;
    assert.deepEqual(parts.map((p) => [p.part, p.size_bytes]), [[1, MiB], [2, 4]]);
    const info = await client.completeUpload(session.upload_id);
    assert.equal(info.sizeBytes, MiB + 4);
    assert.equal((await client.completeUpload(session.upload_id)).id, info.id);
    const other = await client.createUpload({ tenant: "acme", namespace: "models", key: "ts/calls" });
    await client.abortUpload(other.upload_id);
    await assert.rejects(client.getUpload(other.upload_id), js.NotFound);
  } finally {
    await fake.close();
  }
});
