// The real `juststorage serve` as a child process on 127.0.0.1, for tests.
// Only processes started here are ever signalled, always by PID.

import { spawn } from "node:child_process";
import {
  openSync,
  closeSync,
  readFileSync,
  mkdirSync,
  statSync,
  renameSync,
  unlinkSync,
} from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), "../../../../..");
export const BIN = process.env.JUSTSTORAGE_BIN || join(REPO_ROOT, ".venv/bin/juststorage");
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
// Settings read from the environment: never inherit them from the caller's shell.
const SETTING_NAMES = new Set(["DATABASE_URL", "JWT_SECRET", "API_KEYS", "PROMETHEUS_MULTIPROC_DIR"]);

/** Every server this process started and has not stopped yet (killed on exit). */
const running = new Set();
function killAll() {
  for (const server of running) server.killNow();
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    killAll();
    process.kill(process.pid, signal); // the default action now that our handler is gone
  });
}

// Ports for test servers come from the range and claim directory of the Python
// test launcher (juststorage.testing.free_port): pytest, this suite and the Go
// one run at the same time, and a port chosen by listening on port 0 (the
// ephemeral range) could be taken by another process's proxy or server before
// `serve` binds it. A port is probed free, then claimed with a file created
// exclusively ("wx"), and not handed out again for 15 minutes.
const LISTEN_PORT_LOW = 20000;
const LISTEN_PORT_HIGH = 32767;
const PORT_CLAIM_TTL_MS = 15 * 60 * 1000;
const PORT_CLAIMS = join(tmpdir(), "juststorage-test-ports");

function probeFree(port) {
  return new Promise((done) => {
    const probe = createServer();
    probe.once("error", () => done(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => done(true)));
  });
}

/** Claim `port` for this process: false if another claimed it within the TTL. */
function claimPort(port) {
  const claim = join(PORT_CLAIMS, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      closeSync(openSync(claim, "wx", 0o644));
      return true;
    } catch (error) {
      if (error.code !== "EEXIST") return false;
    }
    try {
      if (Date.now() - statSync(claim).mtimeMs < PORT_CLAIM_TTL_MS) return false;
      // A stale claim: only one process renames it away, then creates its own.
      const stale = `${claim}.${process.pid}.stale`;
      renameSync(claim, stale);
      unlinkSync(stale);
    } catch (error) {
      if (error.code !== "ENOENT") return false;
    }
  }
  return false;
}

export async function freePort() {
  mkdirSync(PORT_CLAIMS, { recursive: true, mode: 0o1777 });
  for (let i = 0; i < 500; i++) {
    const port = LISTEN_PORT_LOW + Math.floor(Math.random() * (LISTEN_PORT_HIGH - LISTEN_PORT_LOW + 1));
    if ((await probeFree(port)) && claimPort(port)) return port;
  }
  throw new Error(`no free port in ${LISTEN_PORT_LOW}-${LISTEN_PORT_HIGH} on 127.0.0.1`);
}

export function cleanEnv(dataDir, extra = {}) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("JUSTSTORAGE_") && !SETTING_NAMES.has(name)) env[name] = value;
  }
  env.JUSTSTORAGE_DATA_DIR = dataDir;
  env.JUSTSTORAGE_LOG_LEVEL = "warning";
  return { ...env, ...extra };
}

/** Start `juststorage serve` on a free port with a fresh data directory under `root`; wait for /health. */
export async function startServer(root, extraEnv = {}) {
  const dataDir = await mkdtemp(join(root, "data-"));
  const port = await freePort();
  const logPath = join(root, `server-${port}.log`);
  const log = openSync(logPath, "w");
  let child;
  try {
    child = spawn(BIN, ["serve", "--host", "127.0.0.1", "--port", String(port)], {
      env: cleanEnv(dataDir, extraEnv),
      stdio: ["ignore", log, log],
    });
  } finally {
    closeSync(log);
  }
  const server = new Server(child, port, dataDir, logPath);
  running.add(server);
  const spawnError = new Promise((_, fail) => child.once("error", fail));
  spawnError.catch(() => undefined);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      running.delete(server);
      throw new Error(`server exited with ${child.exitCode ?? child.signalCode}:\n${server.log()}`);
    }
    try {
      const answer = await Promise.race([
        fetch(`${server.url}/health`, { signal: AbortSignal.timeout(1000) }),
        spawnError,
      ]);
      await answer.body?.cancel();
      if (answer.status === 200) return server;
    } catch (error) {
      if (error?.code === "ENOENT") {
        running.delete(server);
        throw new Error(`no juststorage binary at ${BIN} (set JUSTSTORAGE_BIN or run make install)`);
      }
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`server not healthy after ${START_TIMEOUT_MS} ms:\n${server.log()}`);
    }
    await sleep(50);
  }
}

export class Server {
  constructor(child, port, dataDir, logPath) {
    this.child = child;
    this.port = port;
    this.dataDir = dataDir;
    this.logPath = logPath;
    this.url = `http://127.0.0.1:${port}`;
  }

  log() {
    try {
      return readFileSync(this.logPath, "utf-8");
    } catch {
      return "";
    }
  }

  get adminKey() {
    return readFileSync(join(this.dataDir, "admin.key"), "ascii").trim();
  }

  exited() {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; stray workers it spawned are killed by PID. */
  async stop() {
    running.delete(this);
    if (this.exited()) return;
    const children = childPids(this.child.pid);
    const gone = new Promise((done) => this.child.once("exit", done));
    this.child.kill("SIGTERM");
    const stopped = await Promise.race([gone.then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
    if (!stopped) {
      this.child.kill("SIGKILL");
      await Promise.race([gone, sleep(STOP_TIMEOUT_MS)]);
    }
    for (const pid of children) killIfOurs(pid);
  }

  /** Synchronous last resort (process exit): SIGKILL by PID. */
  killNow() {
    if (this.exited()) return;
    const children = childPids(this.child.pid);
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already gone
    }
    for (const pid of children) killIfOurs(pid);
  }
}

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "ascii").split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** SIGKILL `pid` (recorded as a child of our server) only while it still runs juststorage. */
function killIfOurs(pid) {
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`).includes("juststorage")) return;
    process.kill(pid, "SIGKILL");
  } catch {
    // gone already
  }
}
