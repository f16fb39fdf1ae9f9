// Presigned URLs (SPEC §8.5) through the SDK, against a real server.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import * as js from "../dist/index.js";
import { startServer } from "./support/server.mjs";

let server;
let tmp;

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "js-presign-"));
  server = await startServer(tmp);
});

after(async () => {
  await server?.stop();
  await rm(tmp, { recursive: true, force: true });
});

test("presign gives absolute URLs that read and write without a credential", async () => {
  const client = new js.Client(server.url, server.adminKey);
  await client.upload("shared bytes", { tenant: "acme", namespace: "files", key: "a/b c.txt" });
  const get = await client.presign({ method: "GET", tenant: "acme", namespace: "files", key: "a/b c.txt", expiresIn: 60 });
  assert.equal(get.method, "GET");
  assert.ok(get.url.startsWith(`${server.url}/v1/objects/by-key/files/acme/`), get.url);
  assert.ok(Math.abs(get.expiresAt.getTime() - (Date.now() + 60_000)) < 5_000);
  const answer = await fetch(get.url);
  assert.equal(answer.status, 200);
  assert.equal(await answer.text(), "shared bytes");
  assert.match(answer.headers.get("content-disposition"), /^attachment/);
  const put = await client.presign({ method: "PUT", tenant: "acme", namespace: "files", key: "dropped" });
  const stored = await fetch(put.url, { method: "PUT", body: "dropped in" });
  assert.equal(stored.status, 201);
  assert.equal(new TextDecoder().decode(await client.download({ tenant: "acme", namespace: "files", key: "dropped" })), "dropped in");
  await assert.rejects(client.presign({ method: "DELETE", tenant: "acme", namespace: "files", key: "x" }), js.BadRequest);
});
