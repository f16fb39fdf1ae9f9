// A 127.0.0.1 TCP proxy that cuts one answer mid-body, to test resumed downloads
// (the Node.js twin of tests/sdk/proxy.py).

import { createConnection, createServer } from "node:net";

const IDLE_TIMEOUT_MS = 300_000; // a stuck connection cannot keep us forever
const METHODS = ["GET ", "HEAD ", "POST ", "DELETE "];

/**
 * Forwards to `upstreamPort`; the first connection that has sent `cutAfterBytes`
 * downstream is reset at once (RST, both ways). Later connections pass untouched.
 * `requests` records the head of every request forwarded, so a test can see the
 * `Range` a client sent when it resumed.
 */
export class CuttingProxy {
  constructor(upstreamPort, cutAfterBytes) {
    this.upstreamPort = upstreamPort;
    this.cutAfterBytes = cutAfterBytes;
    this.cuts = 0;
    this.requests = [];
    this.sockets = new Set();
    this.server = createServer((client) => this.connect(client));
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    await new Promise((done, fail) => {
      this.server.once("error", fail);
      this.server.listen(0, "127.0.0.1", done);
    });
    this.port = this.server.address().port;
    return this;
  }

  async close() {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((done) => this.server.close(() => done()));
  }

  connect(client) {
    const upstream = createConnection({ host: "127.0.0.1", port: this.upstreamPort });
    let cutting = false;
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
      socket.on("error", () => undefined);
      socket.on("close", () => {
        this.sockets.delete(socket);
        if (cutting) return;
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (data) => {
      const text = data.toString("latin1");
      if (METHODS.some((method) => text.startsWith(method))) {
        this.requests.push(text.split("\r\n\r\n", 1)[0]);
      }
      if (!upstream.write(data)) client.pause();
    });
    upstream.on("drain", () => client.resume());
    client.on("end", () => upstream.end());
    let sent = 0;
    upstream.on("data", (data) => {
      if (cutting) return;
      if (this.cuts === 0 && sent + data.length > this.cutAfterBytes) {
        this.cuts += 1;
        cutting = true;
        upstream.pause();
        // RST instead of FIN: the client sees a broken connection.
        client.write(data.subarray(0, Math.max(0, this.cutAfterBytes - sent)), () => {
          client.resetAndDestroy();
          upstream.destroy();
        });
        return;
      }
      sent += data.length;
      if (!client.write(data)) upstream.pause();
    });
    client.on("drain", () => upstream.resume());
    upstream.on("end", () => client.end());
  }
}
