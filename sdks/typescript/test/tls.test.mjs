// TLS and proxies: a real HTTPS server (node:https) with a certificate from a
// private CA made here by openssl, and a CONNECT proxy on 127.0.0.1 that maps
// every name to 127.0.0.1 (so a name that resolves nowhere proves the tunnel).

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import * as js from "../dist/index.js";
import { proxyFor } from "../dist/network.js";

const PROXIED_NAME = "juststorage.test"; // RFC 2606: never resolves
const INDEX = fileURLToPath(new URL("../dist/index.js", import.meta.url));
const PROXY_VARS = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"];

let dir;
let server;
let port;
let proxy;
const tunnels = [];

function openssl(...args) {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa() {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=JustStorage test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(join(dir, "server.ext"),
    `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${PROXIED_NAME}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-out", "server.pem", "-days", "1", "-extfile", "server.ext");
}

before(async () => {
  for (const name of PROXY_VARS) delete process.env[name];
  dir = mkdtempSync(join(tmpdir(), "juststorage-tls-"));
  makeCa();
  server = createHttpsServer(
    { key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem")) },
    (request, response) => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ status: "ok", checks: {} }));
    },
  );
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  port = server.address().port;
  proxy = createServer((client) => {
    client.once("data", (head) => {
      const [method, target] = head.toString("latin1").split(" ");
      tunnels.push(target);
      if (method !== "CONNECT") return client.destroy();
      const upstream = connect(Number(target.split(":").pop()), "127.0.0.1", () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        client.pipe(upstream).pipe(client);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
  });
  await new Promise((done) => proxy.listen(0, "127.0.0.1", done));
});

after(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
  await new Promise((done) => proxy.close(done));
  rmSync(dir, { recursive: true, force: true });
});

const caFile = () => join(dir, "ca.pem");
const url = () => `https://127.0.0.1:${port}`;

test("a server no trusted CA signed is refused", async () => {
  const client = new js.Client(url(), "t", { retry: js.NO_RETRIES });
  await assert.rejects(client.health(), (error) => {
    assert.ok(error instanceof js.TransportError, String(error));
    assert.match(error.message, /certificate/i);
    return true;
  });
});

test("caCert trusts that CA", async () => {
  const health = await new js.Client(url(), "t", { caCert: caFile() }).health();
  assert.equal(health.ok, true);
});

test("a caCert file without certificates is refused at once", () => {
  const bad = join(dir, "bad.pem");
  writeFileSync(bad, "not a certificate\n");
  assert.throws(() => new js.Client(url(), "t", { caCert: bad }), /holds no PEM certificate/);
  assert.throws(() => new js.Client(url(), "t", { caCert: join(dir, "missing.pem") }), /cannot read/);
});

test("NODE_EXTRA_CA_CERTS (read at process start) is trusted", async () => {
  const script = `import * as js from ${JSON.stringify(INDEX)};
    const h = await new js.Client(${JSON.stringify(url())}, "t").health();
    console.log(h.ok);`;
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: caFile() };
  for (const name of PROXY_VARS) delete env[name];
  // Not execFileSync: the server runs in this process and must keep answering.
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { env });
  assert.equal(stdout.trim(), "true");
});

test("HTTPS_PROXY tunnels the requests (CONNECT), with the CA file for the server", async () => {
  process.env.HTTPS_PROXY = `http://127.0.0.1:${proxy.address().port}`;
  try {
    tunnels.length = 0;
    const client = new js.Client(`https://${PROXIED_NAME}:${port}`, "t", { caCert: caFile() });
    assert.equal((await client.health()).ok, true);
    assert.deepEqual(tunnels, [`${PROXIED_NAME}:${port}`]);
  } finally {
    delete process.env.HTTPS_PROXY;
  }
});

test("NO_PROXY hosts go direct", async () => {
  process.env.HTTPS_PROXY = `http://127.0.0.1:${proxy.address().port}`;
  process.env.NO_PROXY = "localhost,127.0.0.1";
  try {
    tunnels.length = 0;
    assert.equal((await new js.Client(url(), "t", { caCert: caFile() }).health()).ok, true);
    assert.deepEqual(tunnels, []);
  } finally {
    delete process.env.HTTPS_PROXY;
    delete process.env.NO_PROXY;
  }
});

test("proxyFor reads the variables as curl does", () => {
  const env = { https_proxy: "http://p:3128", HTTP_PROXY: "http://q:3128", NO_PROXY: ".internal, example.com:8443" };
  assert.equal(proxyFor(new URL("https://store.example.org"), env), "http://p:3128");
  assert.equal(proxyFor(new URL("http://store.example.org"), env), "http://q:3128");
  assert.equal(proxyFor(new URL("https://a.internal"), env), undefined);
  assert.equal(proxyFor(new URL("https://example.com:8443"), env), undefined);
  assert.equal(proxyFor(new URL("https://example.com"), env), "http://p:3128");
  assert.equal(proxyFor(new URL("https://x"), { ALL_PROXY: "http://r:1", NO_PROXY: "*" }), undefined);
  assert.equal(proxyFor(new URL("https://x"), {}), undefined);
});
