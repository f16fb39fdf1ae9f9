// The Node.js interpreter of sdks/conformance/scenario.json (format in its README):
// contents, credentials, calls and expectations. The test file wires it to servers.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { open, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";

import * as js from "../../dist/index.js";
import { REPO_ROOT } from "./server.mjs";

export const SCENARIO_PATH = join(REPO_ROOT, "sdks/conformance/scenario.json");
const CHUNK = 1024 * 1024;
const VAR = /^\$\{(\w+)\.(\w+)\}$/;

export async function loadScenario() {
  const data = JSON.parse(await readFile(SCENARIO_PATH, "utf-8"));
  assert.equal(data.format, "juststorage-conformance/1");
  return data;
}

/** Named bytes: literal text, or `pattern` (byte i is i % 251) of a size. */
export class Content {
  constructor(name, spec) {
    this.name = name;
    if ("text" in spec) {
      this.text = Buffer.from(spec.text, "utf-8");
      this.size = this.text.length;
    } else {
      this.size = Number(spec.pattern);
      if (spec.size_env && process.env[spec.size_env]) this.size = Number(process.env[spec.size_env]) * CHUNK;
    }
  }

  static block = Buffer.from(Array.from({ length: 251 * (Math.floor(CHUNK / 251) + 2) }, (_, i) => i % 251));

  *chunks(first = 0, last = null) {
    const end = last === null ? this.size : Math.min(this.size, last + 1);
    if (this.text !== undefined) {
      yield this.text.subarray(first, end);
      return;
    }
    for (let offset = first; offset < end; ) {
      const start = offset % 251;
      const n = Math.min(CHUNK, end - offset);
      yield Content.block.subarray(start, start + n);
      offset += n;
    }
  }

  data(first = 0, last = null) {
    return Buffer.concat([...this.chunks(first, last)]);
  }

  get sha256() {
    if (this._sha256 === undefined) this._sha256 = Hashed.of(this.chunks()).sha256;
    return this._sha256;
  }

  async write(path) {
    const handle = await open(path, "w");
    try {
      for (const chunk of this.chunks()) await handle.write(chunk);
    } finally {
      await handle.close();
    }
    return path;
  }
}

/** A received body summarised as its size and SHA-256 (never held whole). */
export class Hashed {
  constructor() {
    this.size = 0;
    this.digest = createHash("sha256");
  }

  update(chunk) {
    this.size += chunk.length;
    this.digest.update(chunk);
  }

  get sha256() {
    this._hex ??= this.digest.digest("hex");
    return this._hex;
  }

  static of(chunks) {
    const hashed = new Hashed();
    for (const chunk of chunks) hashed.update(chunk);
    return hashed;
  }

  static async ofFile(path) {
    const hashed = new Hashed();
    const handle = await open(path, "r");
    try {
      for await (const chunk of handle.createReadStream({ highWaterMark: CHUNK })) hashed.update(chunk);
    } finally {
      await handle.close();
    }
    await unlink(path);
    return hashed;
  }
}

/** `API_KEYS` for the server, and the token each credential name stands for. */
export function apiKeys(credentials) {
  const entries = [];
  const tokens = {};
  for (const [name, spec] of Object.entries(credentials)) {
    const token = `conf${randomBytes(24).toString("hex")}`;
    tokens[name] = token;
    if (!spec.unregistered) entries.push(`${token}:${spec.tenants.join("|")}:${spec.scopes.join(" ")}`);
  }
  return { keys: entries.join(","), tokens };
}

export function substitute(value, saved) {
  if (typeof value === "string") {
    const match = VAR.exec(value);
    return match ? saved[match[1]][match[2]] : value;
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, saved));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, saved)]));
  }
  return value;
}

/** The scenario's client block as a RetryPolicy with short backoffs; retries land in `events`. */
export function retryPolicy(spec = {}, events) {
  return new js.RetryPolicy({
    maxAttempts: spec.max_attempts ?? 4,
    backoffInitialMs: 50,
    backoffMaxMs: 500,
    maxResumes: spec.max_resumes ?? 5,
    onRetry: (event) => events.push(event),
  });
}

// Scenario argument names (the SPEC's snake_case) to the SDK's option names.
const ARG_NAMES = {
  storage_class: "storageClass",
  content_type: "contentType",
  if_none_match: "ifNoneMatch",
  if_match: "ifMatch",
  page_size: "pageSize",
  multipart_threshold: "multipartThreshold",
  part_bytes: "partBytes",
  parallel_threshold: "parallelThreshold",
  range_bytes: "rangeBytes",
};

export function sdkArgs(args = {}) {
  return Object.fromEntries(Object.entries(args).map(([name, value]) => [ARG_NAMES[name] ?? name, value]));
}

/**
 * Run one step's call. Upload input files are written before `window()` is
 * called, so the memory window covers the SDK call alone.
 */
export async function call(client, step, contents, tmp, window, onResume) {
  const args = sdkArgs(step.args);
  const token = randomBytes(4).toString("hex");
  switch (step.call) {
    case "create_upload":
      window();
      return client.createUpload(args);
    case "upload_part": {
      const [first, last] = step.range ?? [0, null];
      const data = contents[step.content].data(first, last);
      window();
      return client.uploadPart(args.upload_id, args.part, data);
    }
    case "get_upload":
      window();
      return client.getUpload(args.upload_id);
    case "complete_upload":
      window();
      return (await client.completeUpload(args.upload_id)).toJSON();
    case "abort_upload":
      window();
      return (await client.abortUpload(args.upload_id)) ?? null;
    case "upload": {
      const content = contents[step.content];
      if (step.source === "bytes") {
        const data = content.data();
        window();
        return (await client.upload(data, args)).toJSON();
      }
      if (step.source === "file") {
        // A named `file` is shared by the scenario's steps that name it: the same
        // upload, which resumes. Others are written for the call and removed.
        const path = join(tmp, step.file ? `file-${step.file}` : `up-${token}`);
        if (!step.file || !(await stat(path).then(() => true, () => false))) await content.write(path);
        window();
        try {
          return (await client.uploadFile(path, { ...args, stateDir: join(tmp, "transfers"), onResume })).toJSON();
        } finally {
          if (!step.file) await unlink(path);
        }
      }
      window();
      return (await client.uploadStream(content.chunks(), args)).toJSON();
    }
    case "download": {
      window();
      if (step.target === "memory") return client.download(args);
      if (step.target === "stream") {
        const download = await client.open(args);
        const reader = download.stream().getReader();
        const hashed = new Hashed();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return hashed;
          hashed.update(value);
        }
      }
      const path = join(tmp, `down-${token}`);
      await client.downloadToFile(path, args);
      return Hashed.ofFile(path);
    }
    case "put_by_hash": {
      const content = contents[step.content];
      const digest = content.sha256;
      window();
      const found = await client.putByHash({ ...args, sha256: digest, size: content.size });
      return found === null ? null : found.toJSON();
    }
    case "head":
      window();
      return (await client.head(args)).toJSON();
    case "delete":
      window();
      return (await client.delete(args)) ?? null;
    case "list": {
      window();
      const items = [];
      for await (const item of client.list(args)) items.push(item.toJSON());
      return items;
    }
    case "usage":
      window();
      return (await client.usage(args)).raw;
    case "health":
    case "ready": {
      window();
      const health = step.call === "health" ? await client.health() : await client.ready();
      return { ok: health.ok, status: health.status, checks: health.checks };
    }
    default:
      throw new Error(`unknown call ${step.call}`);
  }
}

/** Run the step and record what happened: result or error, retries, time and memory. */
export async function execute(url, token, clientSpec, step, contents, tmp, rss) {
  const outcome = {
    result: undefined,
    error: undefined,
    transportError: undefined,
    resumedBytes: [],
    retries: [],
    elapsedS: 0,
    peakRssGrowthMiB: 0,
  };
  const client = new js.Client(url, token, { retry: retryPolicy(clientSpec.retry, outcome.retries) });
  let started = performance.now();
  const window = () => {
    rss.begin();
    started = performance.now();
  };
  try {
    outcome.result = await call(client, step, contents, tmp, window, (n) => outcome.resumedBytes.push(n));
  } catch (error) {
    if (error instanceof js.TransportError && step.expect?.transport_error) {
      outcome.transportError = error;
    } else if (!(error instanceof js.ApiError)) {
      throw error;
    } else {
      outcome.error = error;
    }
  }
  outcome.elapsedS = (performance.now() - started) / 1000;
  outcome.peakRssGrowthMiB = rss.growthMiB();
  return outcome;
}

/** Assert the step's `expect` block (no block: the call must succeed). */
export function check(step, outcome, contents, saved) {
  const expect = substitute(step.expect ?? {}, saved);
  const where = `${step.call} ${JSON.stringify(step.args ?? {})}`;
  if (expect.transport_error) {
    assert.ok(outcome.transportError, `${where}: no transport error (${outcome.error})`);
    return;
  }
  if (expect.error) {
    const want = expect.error;
    const error = outcome.error;
    assert.ok(error, `${where}: expected ${want.code}, got ${JSON.stringify(outcome.result)}`);
    assert.deepEqual([error.code, error.status], [want.code, want.status], `${where}: ${error}`);
    assert.ok(error instanceof js.ApiError && error.requestId, `${where}: no request id`);
    assert.equal(error.constructor.name, want.code, where);
    assert.equal(error.name, want.code, where);
    if ("retry_after_min" in want) {
      assert.ok(error.retryAfter !== undefined && error.retryAfter >= want.retry_after_min, `${where}: retryAfter ${error.retryAfter}`);
    }
    return;
  }
  assert.equal(outcome.error, undefined, `${where}: unexpected ${outcome.error}`);
  const result = outcome.result;
  if (expect.not_found) assert.equal(result, null, `${where}: expected the not-found result`);
  if ("result" in expect) assertSubset(expect.result, result, where);
  if (expect.object || expect.head) {
    const { content: name, ...want } = expect.object ?? expect.head;
    const content = contents[name];
    assertSubset({ ...want, content_hash: `sha256:${content.sha256}`, size_bytes: content.size }, result, where);
  }
  if (expect.content) {
    const content = contents[expect.content];
    const [first, last] = expect.range ?? [0, null];
    if (result instanceof Uint8Array) {
      assert.ok(Buffer.from(result).equals(content.data(first, last)), `${where}: wrong bytes`);
    } else {
      const want = Hashed.of(content.chunks(first, last));
      assert.deepEqual([result.size, result.sha256], [want.size, want.sha256], `${where}: wrong bytes`);
    }
  }
  if (expect.keys) assert.deepEqual(result.filter((i) => "key" in i).map((i) => i.key), expect.keys, where);
  if (expect.ids) assert.deepEqual(result.filter((i) => "id" in i).map((i) => i.id), expect.ids, where);
  if (expect.common_prefixes) {
    const prefixes = result.filter((i) => "prefix" in i).map((i) => i.prefix);
    assert.deepEqual(prefixes, expect.common_prefixes, where);
  }
  if (expect.entries) assert.deepEqual(result.map((i) => i.key ?? i.prefix), expect.entries, where);
  if (expect.retried) {
    const matching = outcome.retries.filter((e) => e.status === expect.retried.status);
    assert.ok(matching.length >= expect.retried.min, `${where}: retries ${JSON.stringify(outcome.retries)}`);
  }
  if (expect.resumed) {
    const resumed = outcome.retries.filter((e) => e.status === null && e.method === "GET");
    assert.ok(resumed.length >= expect.resumed.min, `${where}: retries ${JSON.stringify(outcome.retries)}`);
  }
  if (expect.resumed_upload) {
    const total = outcome.resumedBytes.reduce((a, b) => a + b, 0);
    assert.ok(total >= expect.resumed_upload.min_bytes, `${where}: resumed ${JSON.stringify(outcome.resumedBytes)}`);
  }
  if (expect.parts) assert.deepEqual(result.parts.map((p) => p.part), expect.parts, where);
  if (expect.elapsed_s) {
    assert.ok(outcome.elapsedS >= expect.elapsed_s.min, `${where}: took ${outcome.elapsedS} s`);
  }
  if (expect.peak_rss_growth_mib) {
    const limit = expect.peak_rss_growth_mib.max;
    assert.ok(outcome.peakRssGrowthMiB <= limit, `${where}: RSS grew ${outcome.peakRssGrowthMiB.toFixed(1)} MiB > ${limit}`);
  }
  if (step.save) {
    assert.ok(result !== null && typeof result === "object", where);
    saved[step.save] = result;
  }
}

function assertSubset(want, got, where) {
  if (want !== null && typeof want === "object" && !Array.isArray(want)) {
    assert.ok(got !== null && typeof got === "object", `${where}: ${JSON.stringify(got)}`);
    for (const [name, value] of Object.entries(want)) {
      assert.ok(name in got, `${where}: no ${name} in ${JSON.stringify(got)}`);
      assertSubset(value, got[name], `${where}.${name}`);
    }
  } else {
    assert.deepEqual(got, want, where);
  }
}
