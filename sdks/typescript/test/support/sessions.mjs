// A stand-in for the session API (SPEC §8.2) in front of a real server (the Node.js
// twin of tests/sdk/fake_sessions.py): sessions and parts are kept here, completion
// sends the concatenated parts to the real server's POST /v1/objects, and every
// other request is forwarded. It counts the part bytes it received.

import { createHash, randomUUID } from "node:crypto";
import { createServer } from "node:http";

const SESSION_HEADERS = [
  "authorization", "x-tenant", "x-namespace", "x-key", "x-key-encoding",
  "x-storage-class", "content-type", "x-content-sha256", "if-none-match", "if-match",
];

async function bodyOf(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export class FakeSessions {
  constructor(upstream, partMinBytes = 5 * 2 ** 20) {
    this.upstream = upstream;
    this.partMinBytes = partMinBytes;
    this.sessions = new Map();
    this.partBytesReceived = 0;
    this.server = createServer((request, response) => {
      this.route(request, response).catch((error) => {
        response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { code: "Internal", message: String(error), request_id: "fake" } }));
      });
    });
  }

  get url() {
    return `http://127.0.0.1:${this.server.address().port}`;
  }

  async start() {
    await new Promise((done) => this.server.listen(0, "127.0.0.1", done));
    return this;
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise((done) => this.server.close(() => done()));
  }

  json(response, status, data) {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(data));
  }

  error(response, status, code, message) {
    this.json(response, status, { error: { code, message, request_id: "fake" } });
  }

  view(session) {
    return {
      upload_id: session.id,
      tenant_id: session.headers["x-tenant"],
      namespace: session.headers["x-namespace"],
      key: session.headers["x-key"],
      state: session.state,
      parts: [...session.parts].sort((a, b) => a[0] - b[0]).map(([part, p]) => ({ part, size_bytes: p.data.length, sha256: p.sha256 })),
    };
  }

  async route(request, response) {
    const path = request.url.split("?")[0].replace(/^\/+|\/+$/g, "").split("/");
    if (path[0] !== "v1" || path[1] !== "uploads") return this.forward(request, response);
    const body = await bodyOf(request);
    if (path.length === 2 && request.method === "POST") {
      const headers = {};
      for (const name of SESSION_HEADERS) if (request.headers[name] !== undefined) headers[name] = request.headers[name];
      const session = { id: randomUUID(), headers, parts: new Map(), state: "open", result: null };
      this.sessions.set(session.id, session);
      return this.json(response, 201, this.view(session));
    }
    const session = this.sessions.get(path[2]);
    if (session === undefined) return this.error(response, 404, "NotFound", "no such upload");
    if (path.length === 3 && request.method === "GET") return this.json(response, 200, this.view(session));
    if (path.length === 3 && request.method === "DELETE") {
      if (session.state === "completed") return this.error(response, 409, "Conflict", "completed");
      this.sessions.delete(session.id);
      response.writeHead(204).end();
      return undefined;
    }
    if (path.length === 5 && path[3] === "parts" && request.method === "PUT") {
      this.partBytesReceived += body.length;
      const sha256 = createHash("sha256").update(body).digest("hex");
      const expected = request.headers["x-content-sha256"];
      if (expected !== undefined && expected !== sha256) return this.error(response, 400, "ChecksumMismatch", "digest differs");
      session.parts.set(Number(path[4]), { data: body, sha256 });
      return this.json(response, 200, { part: Number(path[4]), size_bytes: body.length, sha256 });
    }
    if (path.length === 4 && path[3] === "complete" && request.method === "POST") {
      if (session.state === "completed") return this.json(response, 200, session.result);
      const wanted = JSON.parse(body.length ? body.toString() : "{}").parts ?? [...session.parts.keys()].sort((a, b) => a - b);
      if (wanted.some((n, i) => n !== i + 1 || !session.parts.has(n))) return this.error(response, 400, "BadRequest", "gaps");
      if (wanted.slice(0, -1).some((n) => session.parts.get(n).data.length < this.partMinBytes)) {
        return this.error(response, 400, "BadRequest", "a part is under the minimum");
      }
      const whole = Buffer.concat(wanted.map((n) => session.parts.get(n).data));
      const answer = await fetch(`${this.upstream}/v1/objects`, { method: "POST", headers: session.headers, body: whole });
      const data = await answer.json();
      if (answer.status === 201) {
        session.state = "completed";
        session.result = data;
      }
      return this.json(response, answer.status, data);
    }
    return this.error(response, 405, "MethodNotAllowed", "not here");
  }

  async forward(request, response) {
    const body = ["POST", "PUT"].includes(request.method) ? await bodyOf(request) : undefined;
    const headers = { ...request.headers };
    delete headers.host;
    delete headers.connection;
    const answer = await fetch(`${this.upstream}${request.url}`, { method: request.method, headers, body });
    const data = Buffer.from(await answer.arrayBuffer());
    const out = {};
    answer.headers.forEach((value, name) => {
      if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(name)) out[name] = value;
    });
    response.writeHead(answer.status, out);
    response.end(request.method === "HEAD" ? undefined : data);
  }
}
