// Small unit tests of rules the conformance scenario cannot observe from outside:
// which failures are retried, the headers an upload sends, ETag verification.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";

import * as js from "../dist/index.js";
import { freePort } from "./support/server.mjs";

const OBJECT = {
  id: "00000000-0000-4000-8000-000000000001",
  tenant_id: "acme",
  namespace: "docs",
  key: "k",
  content_hash: `sha256:${"a".repeat(64)}`,
  size_bytes: 5,
  storage_class: "hot",
  content_type: "application/octet-stream",
  created_at: "2026-01-01T00:00:00Z",
};

function connectionError(code) {
  return new TypeError("fetch failed", { cause: Object.assign(new Error(code), { code }) });
}

/** A fetch that plays `script` (functions of the request, in order) and records each request. */
function scripted(...script) {
  const calls = [];
  const fetch = async (url, init) => {
    const body = init.body ? Buffer.from(await new Response(init.body).arrayBuffer()) : null;
    const request = { url: new URL(url), method: init.method, headers: new Headers(init.headers), body };
    calls.push(request);
    const step = script[Math.min(calls.length, script.length) - 1];
    return step(request);
  };
  return { fetch, calls };
}

const created = () => Response.json(OBJECT, { status: 201 });
const fast = (events = []) => ({ backoffInitialMs: 1, backoffMaxMs: 2, onRetry: (e) => events.push(e) });
const upload = { tenant: "acme", namespace: "docs", key: "k" };

describe("retries", () => {
  test("an upload that may have been stored is not retried after a connection failure", async () => {
    const { fetch, calls } = scripted(() => Promise.reject(connectionError("ECONNRESET")), created);
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch, retry: fast() });
    await assert.rejects(client.upload("hello", upload), js.TransportError);
    assert.equal(calls.length, 1);
  });

  test("a create-only upload is retried after a connection failure", async () => {
    const { fetch, calls } = scripted(() => Promise.reject(connectionError("ECONNRESET")), created);
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch, retry: fast() });
    await client.upload("hello", { ...upload, ifNoneMatch: "*" });
    assert.equal(calls.length, 2);
    assert.deepEqual(calls[1].body, Buffer.from("hello"), "the body is sent again whole");
  });

  test("If-Match on the new content's own digest could add a version: not retried", async () => {
    const digest = createHash("sha256").update("hello").digest("hex");
    const { fetch, calls } = scripted(() => Promise.reject(connectionError("ECONNRESET")), created);
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch, retry: fast() });
    await assert.rejects(client.upload("hello", { ...upload, ifMatch: `sha256:${digest}` }), js.TransportError);
    assert.equal(calls.length, 1);
    const other = scripted(() => Promise.reject(connectionError("ECONNRESET")), created);
    const again = new js.Client("http://127.0.0.1:1234", "t", { fetch: other.fetch, retry: fast() });
    await again.upload("hello", { ...upload, ifMatch: `"sha256:${"b".repeat(64)}"` });
    assert.equal(other.calls.length, 2);
  });

  test("a refused connection sent nothing, so even a plain upload is retried", async () => {
    const { fetch, calls } = scripted(() => Promise.reject(connectionError("ECONNREFUSED")), created);
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch, retry: fast() });
    await client.upload(new Uint8Array([1, 2, 3]), upload);
    assert.equal(calls.length, 2);
  });

  test("429 waits Retry-After; a one-shot stream is never sent twice", async () => {
    const events = [];
    const throttled = () => new Response("{}", { status: 429, headers: { "Retry-After": "0.01" } });
    const { fetch, calls } = scripted(throttled, () => Response.json({ tenant_id: "acme", objects: 0, logical_bytes: 0, by_storage_class: {}, monthly_cost: 0, currency: "USD" }));
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch, retry: fast(events) });
    assert.equal((await client.usage({ tenant: "acme" })).objects, 0);
    assert.equal(calls.length, 2);
    assert.deepEqual([events[0].status, events[0].delayMs], [429, 10]);

    const stream = scripted(throttled, created);
    const streaming = new js.Client("http://127.0.0.1:1234", "t", { fetch: stream.fetch, retry: fast() });
    await assert.rejects(streaming.uploadStream([Buffer.from("a")], upload), js.TooManyRequests);
    assert.equal(stream.calls.length, 1);
  });

  test("a Retry-After longer than maxRetryAfterMs is not waited for; attempts are bounded", async () => {
    const long = scripted(() => new Response("", { status: 503, headers: { "Retry-After": "120" } }));
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch: long.fetch, retry: fast() });
    await assert.rejects(client.head({ tenant: "acme", id: "x" }), js.Unavailable);
    assert.equal(long.calls.length, 1);
    const always = scripted(() => new Response("", { status: 503 }));
    const bounded = new js.Client("http://127.0.0.1:1234", "t", { fetch: always.fetch, retry: { ...fast(), maxAttempts: 3 } });
    await assert.rejects(bounded.head({ tenant: "acme", id: "x" }), js.Unavailable);
    assert.equal(always.calls.length, 3);
  });
});

test("a refused connection on the real network is retried, then a TransportError", async () => {
  const events = [];
  const port = await freePort(); // nothing listens there now
  const client = new js.Client(`http://127.0.0.1:${port}`, "t", { retry: { ...fast(events), maxAttempts: 2 } });
  const error = await client.health().then(() => assert.fail("no error"), (e) => e);
  assert.ok(error instanceof js.TransportError, String(error));
  assert.match(error.message, /ECONNREFUSED/);
  assert.deepEqual(events.map((e) => [e.method, e.status]), [["GET", null]]);
});

describe("requests", () => {
  test("an upload sends its digest, a percent-encoded key and a normalised If-Match", async () => {
    const { fetch, calls } = scripted(created);
    const client = new js.Client("http://127.0.0.1:1234/", "tok", { fetch });
    await client.upload("hello", { ...upload, key: "grüße/ключ", ifMatch: "A".repeat(64), storageClass: "cold" });
    const { headers, url } = calls[0];
    assert.equal(url.pathname, "/v1/objects");
    assert.equal(headers.get("x-content-sha256"), createHash("sha256").update("hello").digest("hex"));
    assert.equal(headers.get("x-key-encoding"), "percent");
    assert.equal(decodeURIComponent(headers.get("x-key")), "grüße/ключ");
    assert.equal(headers.get("if-match"), `"sha256:${"a".repeat(64)}"`);
    assert.equal(headers.get("content-length"), "5");
    assert.equal(headers.get("authorization"), "Bearer tok");
    assert.equal(headers.get("x-storage-class"), "cold");
  });

  test("by-key paths keep the key in one segment; dot-only keys are refused", async () => {
    const { fetch, calls } = scripted(() => new Response(null, { status: 204 }));
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch });
    await client.delete({ tenant: "acme", namespace: "docs", key: "a/../b c(1)" });
    assert.equal(calls[0].url.pathname, "/v1/objects/by-key/docs/acme/a%2F..%2Fb%20c%281%29");
    await assert.rejects(client.open({ tenant: "acme", namespace: "docs", key: ".." }), TypeError);
    await assert.rejects(client.head({ tenant: "acme" }), TypeError);
  });

  test("a whole download whose bytes do not match the ETag throws IntegrityError", async () => {
    const { fetch } = scripted(
      () => new Response("hello", { status: 200, headers: { ETag: `"sha256:${"0".repeat(64)}"`, "Content-Length": "5" } }),
    );
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch });
    await assert.rejects(client.download({ tenant: "acme", id: "x" }), js.IntegrityError);
  });

  test("list follows next_cursor until the last page", async () => {
    const { fetch, calls } = scripted(
      () => Response.json({ items: [OBJECT], next_cursor: "c1" }),
      () => Response.json({ items: [{ ...OBJECT, key: "l" }], next_cursor: null }),
    );
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch });
    const keys = [];
    for await (const item of client.list({ tenant: "acme", namespace: "docs", pageSize: 1 })) keys.push(item.key);
    assert.deepEqual(keys, ["k", "l"]);
    assert.equal(calls[1].url.searchParams.get("cursor"), "c1");
    assert.equal(calls[1].url.searchParams.get("limit"), "1");
  });
});

describe("putByHash", () => {
  const digest = "b".repeat(64);
  const notFound = () =>
    Response.json({ error: { code: "NotFound", message: "not held", request_id: "r" } }, { status: 404 });

  test("sends the digest and size with no body; the object on 201, null on 404", async () => {
    const { fetch, calls } = scripted(created, notFound);
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch, retry: fast() });
    const found = await client.putByHash({ ...upload, sha256: `sha256:${digest}`, size: 5, storageClass: "cold" });
    assert.equal(found.id, OBJECT.id);
    const sent = calls[0];
    assert.equal(sent.method, "POST");
    assert.equal(sent.url.pathname, "/v1/objects/by-hash");
    assert.equal(sent.headers.get("x-content-sha256"), digest);
    assert.equal(sent.headers.get("x-content-length"), "5");
    assert.equal(sent.headers.get("x-storage-class"), "cold");
    assert.equal(sent.body, null);
    assert.equal(await client.putByHash({ ...upload, sha256: digest, size: 5 }), null);
  });

  test("refuses a malformed digest or size before sending", async () => {
    const { fetch, calls } = scripted(created);
    const client = new js.Client("http://127.0.0.1:1234", "t", { fetch, retry: fast() });
    await assert.rejects(client.putByHash({ ...upload, sha256: "abc", size: 5 }), TypeError);
    await assert.rejects(client.putByHash({ ...upload, sha256: digest, size: -1 }), RangeError);
    assert.equal(calls.length, 0);
  });
});
