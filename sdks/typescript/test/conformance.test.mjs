// sdks/conformance/scenario.json against real `juststorage serve` processes,
// and its error_mapping table through a stub fetch. No SDK-specific cases here.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import * as js from "../dist/index.js";
import { Content, apiKeys, check, execute, loadScenario, substitute } from "./support/conformance.mjs";
import { CuttingProxy } from "./support/proxy.mjs";
import { PeakRss } from "./support/rss.mjs";
import { startServer } from "./support/server.mjs";

const SCENARIO = await loadScenario();
const STEP_TIMEOUT_MS = 600_000;

describe("conformance scenario", () => {
  const { keys, tokens } = apiKeys(SCENARIO.credentials);
  const contents = Object.fromEntries(
    Object.entries(SCENARIO.contents).map(([name, spec]) => [name, new Content(name, spec)]),
  );
  const servers = new Map();
  let root;
  let rss;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "js-sdk-ts-"));
    rss = new PeakRss();
  });

  after(async () => {
    // A server that failed to start is not running; every other one is stopped.
    const started = await Promise.allSettled(servers.values());
    for (const result of started) if (result.status === "fulfilled") await result.value.stop();
    await rss?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** One server per scenario server name, started on first use (fresh data directory). */
  function serverFor(name) {
    if (!servers.has(name)) {
      servers.set(name, startServer(root, { API_KEYS: keys, ...SCENARIO.servers[name].env }));
    }
    return servers.get(name);
  }

  for (const scenario of SCENARIO.scenarios) {
    test(scenario.name, { timeout: STEP_TIMEOUT_MS }, async (t) => {
      const server = await serverFor(scenario.server);
      const tmp = await mkdtemp(join(root, `${scenario.name}-`));
      const saved = {};
      for (const rawStep of scenario.steps) {
        const step = substitute(rawStep, saved);
        const clientSpec = step.client ?? scenario.client;
        const token = clientSpec.credential ? tokens[clientSpec.credential] : null;
        let outcome;
        if (step.via) {
          const proxy = await new CuttingProxy(server.port, step.via.cut_after_bytes).start();
          try {
            outcome = await execute(proxy.url, token, clientSpec, step, contents, tmp, rss);
          } finally {
            await proxy.close();
          }
          assert.equal(proxy.cuts, 1, "the proxy never cut the connection");
          if (step.call === "download") {
            const resumed = proxy.requests.slice(1).filter((head) => /\r\nrange: bytes=/i.test(head));
            assert.ok(resumed.length > 0, JSON.stringify(proxy.requests));
          }
        } else {
          outcome = await execute(server.url, token, clientSpec, step, contents, tmp, rss);
        }
        check(step, outcome, contents, saved);
        if (step.expect?.peak_rss_growth_mib) {
          t.diagnostic(`${step.call}: peak RSS growth ${outcome.peakRssGrowthMiB.toFixed(1)} MiB`);
        }
      }
    });
  }
});

/** A fetch that answers every request with the case's canned response. */
function stubFetch(testCase) {
  return async () => {
    const headers = new Headers(testCase.headers ?? {});
    if ("body" in testCase) {
      headers.set("Content-Type", "application/json");
      return new Response(JSON.stringify(testCase.body), { status: testCase.status, headers });
    }
    return new Response(testCase.text, { status: testCase.status, headers });
  };
}

describe("error mapping", () => {
  for (const testCase of SCENARIO.error_mapping) {
    const want = testCase.expect;
    test(`${testCase.status} ${want.code}`, async () => {
      const client = new js.Client("http://127.0.0.1:9", "t", { retry: js.NO_RETRIES, fetch: stubFetch(testCase) });
      const error = await client.usage({ tenant: "acme" }).then(
        () => assert.fail("no error thrown"),
        (thrown) => thrown,
      );
      assert.ok(error instanceof js.ApiError, String(error));
      assert.equal(error.constructor.name, want.class ?? want.code);
      assert.deepEqual([error.code, error.status, error.requestId], [want.code, want.status, want.request_id]);
      if ("message" in want) assert.equal(error.message, want.message);
      if ("retry_after" in want) assert.equal(error.retryAfter, want.retry_after);
    });
  }
});
