/**
 * Large transfers: parallel resumable downloads and multipart uploads (SPEC §8.2).
 *
 * Downloads: the object (pinned by id) is fetched as byte ranges in parallel into
 * a temporary file beside the destination (`.<name>.<random>.juststorage-part`,
 * created exclusively, so no other key's download and no file of the user's owns
 * it); each range is fsynced before the download's state file in `stateDir` (named
 * by a hash of the destination's path) records it, so a later call keeps every
 * recorded range, but only for the same version (id, hash, size) and temporary
 * file. The whole file is hashed at the end, fsynced, and renamed over the
 * destination only if it matches the ETag.
 *
 * Uploads: one session with parts sent in parallel. A state file (in `stateDir`,
 * named by a hash of the upload's arguments) keeps the session id and the digest
 * of each acknowledged part; a later call with the same arguments asks the server
 * which parts it holds and skips those whose SHA-256 matches the file's bytes.
 */

import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, open, readFile, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";

import type { Client } from "./client.js";
import {
  ChecksumMismatch,
  Conflict,
  IntegrityError,
  MethodNotAllowed,
  NotFound,
  TransportError,
} from "./errors.js";
import { ObjectInfo, isRecord, type ObjectHead, type ObjectJson } from "./models.js";
import { Target, encodeName, sha256OfFile, uploadHeaders, type Progress, type UploadOptions } from "./protocol.js";

const MiB = 1024 * 1024;
/** Files and objects this large or larger go in parallel parts by default. */
export const PARALLEL_THRESHOLD_BYTES = 64 * MiB;
/** Parts in flight by default. */
export const PARALLEL = 4;
/** One download range: the unit of resume and of parallelism. */
export const RANGE_BYTES = 16 * MiB;
/** The smallest upload part the client chooses (the server's floor is 5 MiB). */
export const PART_MIN_BYTES = 8 * MiB;
const MAX_PARTS = 10000;
const STATE_VERSION = 1;
const WRITE_BYTES = MiB;

/** A part the server holds durably. */
export interface UploadedPart {
  part: number;
  size_bytes: number;
  sha256: string;
}

/** A multipart upload session as the server answers it. */
export interface UploadSession {
  upload_id: string;
  tenant_id: string;
  namespace: string;
  key: string;
  state: string;
  parts: UploadedPart[];
  [field: string]: unknown;
}

export function partSizeFor(size: number, floor = PART_MIN_BYTES): number {
  return Math.max(floor, Math.ceil(size / MAX_PARTS));
}

/** `[offset, length]` of each part; part n is `spans[n - 1]`. */
export function spans(size: number, partBytes: number): Array<[number, number]> {
  if (size === 0) return [[0, 0]];
  const out: Array<[number, number]> = [];
  for (let start = 0; start < size; start += partBytes) out.push([start, Math.min(partBytes, size - start)]);
  return out;
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env["XDG_CONFIG_HOME"] || join(homedir(), ".config"), "juststorage", "transfers");
}

/** How every temporary download file's name ends (it also starts with a dot). */
export const TEMP_SUFFIX = ".juststorage-part";
const TEMP_STEM_CHARS = 40; // of the destination's name: keeps the temp name under NAME_MAX

function tempPrefix(finalPath: string): string {
  return `.${basename(finalPath).slice(0, TEMP_STEM_CHARS)}.`;
}

function isTempOf(finalPath: string, name: unknown): name is string {
  return (
    typeof name === "string" &&
    !name.includes("/") &&
    !name.includes("\\") &&
    name.startsWith(tempPrefix(finalPath)) &&
    name.endsWith(TEMP_SUFFIX)
  );
}

/**
 * A new empty file beside `finalPath` for a download into it, created with `wx`
 * under a random name (`.<name>.<random>.juststorage-part`): never an existing
 * file, not another download's, not the user's own.
 */
export async function tempBeside(finalPath: string): Promise<string> {
  for (let attempt = 0; attempt < 16; attempt++) {
    const candidate = join(dirname(finalPath), `${tempPrefix(finalPath)}${randomBytes(8).toString("hex")}${TEMP_SUFFIX}`);
    try {
      await (await open(candidate, "wx")).close();
      return candidate;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  throw new Error(`no free temporary name beside ${finalPath}`);
}

/** The state file of a resumable download into `finalPath`: named by a hash of its path. */
export async function downloadStatePath(stateDir: string, finalPath: string): Promise<string> {
  const where = join(await realpath(dirname(resolve(finalPath))), basename(finalPath));
  return join(stateDir, `download-${createHash("sha256").update(where, "utf8").digest("hex").slice(0, 32)}.json`);
}

/** `name` when it is a temporary file of `finalPath`'s, a regular file of `size` bytes. */
async function keptTemp(finalPath: string, name: unknown, size: number): Promise<string | undefined> {
  if (!isTempOf(finalPath, name)) return undefined;
  const info = await lstat(join(dirname(finalPath), name)).catch(() => undefined);
  return info !== undefined && info.isFile() && info.size === size ? name : undefined;
}

/** Run `work` over `items`, at most `count` at once; the first failure stops new work and is thrown. */
export async function runPool<T>(count: number, items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(count, items.length)) }, worker));
  if (failure !== undefined) throw failure.error;
}

async function writeJsonAtomic(path: string, data: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`;
  const handle = await open(temp, "w", 0o600);
  try {
    await handle.writeFile(JSON.stringify(data));
    await handle.sync(); // durable before the rename makes it the state
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    const data: unknown = JSON.parse(await readFile(path, "utf8"));
    return isRecord(data) ? data : undefined;
  } catch {
    return undefined;
  }
}

export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// -- downloads ------------------------------------------------------------------------

export interface RangeDownloadOptions {
  parallel: number;
  rangeBytes: number;
  stateDir: string;
  progress?: Progress | undefined;
  onResume?: Progress | undefined;
  signal?: AbortSignal | undefined;
}

/** Download the version `head` names into `finalPath` in parallel ranges, resumably. */
export async function downloadRanges(
  client: Client,
  finalPath: string,
  head: ObjectHead,
  tenant: string,
  options: RangeDownloadOptions,
): Promise<ObjectHead> {
  const statePath = await downloadStatePath(options.stateDir, finalPath);
  const saved = await readJson(statePath);
  let rangeBytes = options.rangeBytes;
  let done = new Set<number>();
  const kept = await keptTemp(finalPath, saved?.["temp"], head.sizeBytes);
  const resumed =
    saved !== undefined &&
    kept !== undefined &&
    saved["version"] === STATE_VERSION &&
    saved["object_id"] === head.id &&
    saved["content_hash"] === head.contentHash &&
    saved["size"] === head.sizeBytes &&
    typeof saved["range_bytes"] === "number" &&
    saved["range_bytes"] > 0;
  let temp: string;
  if (resumed && kept !== undefined) {
    temp = kept;
  } else {
    const stale = saved?.["temp"];
    if (isTempOf(finalPath, stale)) await unlink(join(dirname(finalPath), stale)).catch(() => undefined);
    temp = basename(await tempBeside(finalPath));
  }
  const partial = join(dirname(finalPath), temp);
  if (resumed && saved !== undefined) {
    rangeBytes = saved["range_bytes"] as number;
    done = new Set((Array.isArray(saved["done"]) ? saved["done"] : []).filter((i): i is number => Number.isInteger(i)));
  }
  const ranges = spans(head.sizeBytes, rangeBytes);
  const save = (): Promise<void> =>
    writeJsonAtomic(statePath, {
      version: STATE_VERSION,
      temp,
      object_id: head.id,
      content_hash: head.contentHash,
      size: head.sizeBytes,
      range_bytes: rangeBytes,
      done: [...done].sort((a, b) => a - b),
    });
  const handle = await open(partial, "r+");
  try {
    if (!resumed) {
      await handle.truncate(head.sizeBytes);
      await save();
    } else {
      const keptBytes = [...done].reduce((sum, i) => sum + (ranges[i]?.[1] ?? 0), 0);
      if (keptBytes > 0) options.onResume?.(keptBytes);
    }
    const target = new Target({ tenant, id: head.id });
    let saving = Promise.resolve();
    const fetchOne = async (index: number): Promise<void> => {
      const [offset, length] = ranges[index] as [number, number];
      await fetchRange(client, target, head, handle, offset, length, options);
      await handle.datasync(); // the bytes are durable before the state file says so
      done.add(index);
      saving = saving.then(save);
      await saving;
    };
    const todo = ranges.map((_, i) => i).filter((i) => !done.has(i));
    await runPool(options.parallel, todo, fetchOne);
    const { sha256: actual } = await sha256OfFile(partial, MiB, options.signal);
    if (actual !== head.sha256) {
      // Start over next time: these bytes are not the object's.
      await handle.close();
      await unlink(partial).catch(() => undefined);
      await unlink(statePath).catch(() => undefined);
      throw new IntegrityError(
        `downloaded bytes hash to sha256:${actual}, the object is ${head.contentHash}`,
        head.sha256,
        actual,
      );
    }
    await handle.sync();
  } finally {
    await handle.close().catch(() => undefined);
  }
  await rename(partial, finalPath);
  await fsyncDir(dirname(resolve(finalPath)));
  await unlink(statePath).catch(() => undefined);
  return head;
}

async function fetchRange(
  client: Client,
  target: Target,
  head: ObjectHead,
  handle: FileHandle,
  offset: number,
  length: number,
  options: RangeDownloadOptions,
): Promise<void> {
  if (length === 0) return;
  let received = 0;
  for (let resumes = 0; ; resumes++) {
    const response = await client.send("GET", target.path(), {
      headers: { ...target.headers(), Range: `bytes=${offset + received}-${offset + length - 1}` },
      signal: options.signal,
    });
    const etag = (response.headers.get("etag") ?? "").replace(/^"|"$/g, "");
    if (response.status !== 206 || etag !== head.contentHash) {
      await response.body?.cancel();
      throw new TransportError("the object changed while it was downloaded");
    }
    try {
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let buffered: Uint8Array[] = [];
      let bufferedBytes = 0;
      const flush = async (): Promise<void> => {
        if (bufferedBytes === 0) return;
        const data = Buffer.concat(buffered, bufferedBytes);
        let written = 0;
        while (written < data.length) {
          const { bytesWritten } = await handle.write(data, written, data.length - written, offset + received + written);
          written += bytesWritten;
        }
        received += data.length;
        options.progress?.(data.length);
        buffered = [];
        bufferedBytes = 0;
      };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered.push(value);
        bufferedBytes += value.length;
        if (bufferedBytes >= WRITE_BYTES) await flush();
      }
      await flush();
      if (received < length) throw new Error("the body ended early");
      return;
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (resumes >= client.retry.maxResumes) {
        throw new TransportError(`download broke after ${received} bytes: ${String(error)}`, { cause: error });
      }
      const delayMs = client.retry.backoffMs(resumes + 1);
      client.notifyRetry("GET", target.path(), resumes + 1, delayMs, null, error);
      await new Promise((done) => setTimeout(done, delayMs));
    }
  }
}

// -- upload sessions ----------------------------------------------------------------------

function sessionPath(uploadId: string): string {
  return `/v1/uploads/${encodeName(uploadId)}`;
}

function bytesStream(data: Uint8Array): () => ReadableStream<Uint8Array> {
  return () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(data);
        controller.close();
      },
    });
}

export async function createUpload(client: Client, options: UploadOptions): Promise<UploadSession> {
  const headers = uploadHeaders(options, options.sha256, undefined);
  // Retried after a broken connection too: at worst that leaves one empty session
  // behind, which expires and is reaped; failing the whole upload would cost more.
  return client.json<UploadSession>("POST", "/v1/uploads", { headers, signal: options.signal });
}

export async function getUpload(client: Client, uploadId: string, signal?: AbortSignal): Promise<UploadSession> {
  return client.json<UploadSession>("GET", sessionPath(uploadId), { signal });
}

export async function uploadPart(
  client: Client,
  uploadId: string,
  part: number,
  body: () => ReadableStream<Uint8Array>,
  size: number,
  sha256: string | undefined,
  signal?: AbortSignal,
): Promise<UploadedPart> {
  const headers: Record<string, string> = { "Content-Length": String(size), "Content-Type": "application/octet-stream" };
  if (sha256 !== undefined) headers["X-Content-SHA256"] = sha256;
  return client.json<UploadedPart>("PUT", `${sessionPath(uploadId)}/parts/${part}`, { headers, body, signal });
}

export async function completeUpload(client: Client, uploadId: string, parts?: number[], signal?: AbortSignal): Promise<ObjectInfo> {
  const body = bytesStream(new TextEncoder().encode(JSON.stringify(parts === undefined ? {} : { parts })));
  const data = await client.json<ObjectJson>("POST", `${sessionPath(uploadId)}/complete`, {
    headers: { "Content-Type": "application/json" },
    body,
    signal,
  });
  return ObjectInfo.fromJson(data);
}

export async function abortUpload(client: Client, uploadId: string, signal?: AbortSignal): Promise<void> {
  const response = await client.send("DELETE", sessionPath(uploadId), { signal });
  await response.body?.cancel();
}

// -- multipart uploads ----------------------------------------------------------------------

export interface PartUploadOptions extends UploadOptions {
  checksum: boolean;
  parallel: number;
  partBytes: number | undefined;
  stateDir: string;
  onResume?: Progress | undefined;
}

async function sha256OfSpan(path: string, offset: number, length: number): Promise<string> {
  const digest = createHash("sha256");
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafeSlow(Math.min(MiB, Math.max(1, length)));
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - done), offset + done);
      if (bytesRead === 0) throw new Error("the file ended before the part did (was it truncated?)");
      digest.update(buffer.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return digest.digest("hex");
}

function spanBody(path: string, offset: number, length: number, chunkBytes: number, progress: Progress | undefined): () => ReadableStream<Uint8Array> {
  return () => {
    let handle: FileHandle | undefined;
    let done = 0;
    return new ReadableStream<Uint8Array>({
      async start() {
        handle = await open(path, "r");
      },
      async pull(controller) {
        try {
          if (done >= length) {
            await handle?.close();
            handle = undefined;
            controller.close();
            return;
          }
          const buffer = Buffer.allocUnsafeSlow(Math.min(chunkBytes, length - done));
          const { bytesRead } = await (handle as FileHandle).read(buffer, 0, buffer.length, offset + done);
          if (bytesRead === 0) throw new Error("the file ended before the part did (was it truncated?)");
          done += bytesRead;
          progress?.(bytesRead);
          controller.enqueue(buffer.subarray(0, bytesRead));
        } catch (error) {
          await handle?.close().catch(() => undefined);
          handle = undefined;
          controller.error(error);
        }
      },
      async cancel() {
        await handle?.close();
        handle = undefined;
      },
    });
  };
}

/**
 * Upload a file through a session that a later call can resume; null when the
 * server has no session API (`POST /v1/uploads` is 404 or 405).
 */
export async function uploadFileParts(client: Client, path: string, options: PartUploadOptions): Promise<ObjectInfo | null> {
  const info = await stat(path, { bigint: true });
  const size = Number(info.size);
  const mtimeNs = String(info.mtimeNs);
  // Not the server's URL: the same server may be reached by another name (a proxy),
  // and a session id another server does not know is simply not resumed (404).
  const identity = JSON.stringify([
    options.tenant,
    options.namespace,
    options.key,
    options.storageClass ?? null,
    options.contentType ?? null,
    options.ifNoneMatch ?? null,
    options.ifMatch ?? null,
    resolve(path),
  ]);
  const statePath = join(options.stateDir, `upload-${createHash("sha256").update(identity).digest("hex").slice(0, 32)}.json`);
  const saved = await readJson(statePath);
  let partBytes = options.partBytes ?? partSizeFor(size);
  let sha256 = options.sha256;
  let uploadId: string | undefined;
  let parts = new Map<number, string>();
  if (saved !== undefined && saved["version"] === STATE_VERSION && saved["size"] === size && saved["mtime"] === mtimeNs && typeof saved["part_bytes"] === "number") {
    partBytes = saved["part_bytes"];
    sha256 ??= typeof saved["sha256"] === "string" ? saved["sha256"] : undefined;
    uploadId = typeof saved["upload_id"] === "string" ? saved["upload_id"] : undefined;
    const recorded = isRecord(saved["parts"]) ? saved["parts"] : {};
    parts = new Map(Object.entries(recorded).map(([n, d]) => [Number(n), String(d)]));
  } else if (saved !== undefined && typeof saved["upload_id"] === "string") {
    // The file changed since: its parts are of no use, free them at once (a session
    // completed or gone holds none: Conflict, NotFound).
    await abortUpload(client, saved["upload_id"], options.signal).catch((error: unknown) => {
      if (!(error instanceof NotFound || error instanceof Conflict)) throw error;
    });
  }
  if (sha256 === undefined && options.checksum) ({ sha256 } = await sha256OfFile(path, client.chunkBytes, options.signal));
  const numbered = spans(size, partBytes);
  let saving = Promise.resolve();
  const save = (): Promise<void> => {
    saving = saving.then(() =>
      writeJsonAtomic(statePath, {
        version: STATE_VERSION,
        size,
        mtime: mtimeNs,
        part_bytes: partBytes,
        sha256: sha256 ?? null,
        upload_id: uploadId ?? null,
        parts: Object.fromEntries([...parts].sort((a, b) => a[0] - b[0])),
      }),
    );
    return saving;
  };
  const allParts = numbered.map((_, i) => i + 1);
  let session: UploadSession | undefined;
  if (uploadId !== undefined) {
    session = await getUpload(client, uploadId, options.signal).catch((error: unknown) => {
      if (error instanceof NotFound) return undefined; // expired or aborted: start a new one
      throw error;
    });
  }
  if (session?.state === "completed") {
    const object = await completeUpload(client, session.upload_id, allParts, options.signal);
    await unlink(statePath).catch(() => undefined);
    return object;
  }
  if (session === undefined || session.state !== "open") {
    try {
      session = await createUpload(client, { ...options, ...(sha256 === undefined ? {} : { sha256 }) });
    } catch (error) {
      if (error instanceof NotFound || error instanceof MethodNotAllowed) return null;
      throw error;
    }
    uploadId = session.upload_id;
    parts = new Map();
  }
  await save();
  const held = new Set<number>();
  for (const part of session.parts ?? []) {
    const span = numbered[part.part - 1];
    if (span === undefined || part.size_bytes !== span[1]) continue;
    // Acknowledged but not recorded (the run stopped in between): reading is cheaper than sending.
    const known = parts.get(part.part) ?? (await sha256OfSpan(path, span[0], span[1]));
    if (known === String(part.sha256).replace(/^sha256:/, "")) {
      held.add(part.part);
      parts.set(part.part, known);
    }
  }
  if (held.size > 0) {
    await save();
    options.onResume?.([...held].reduce((sum, n) => sum + (numbered[n - 1] as [number, number])[1], 0));
  }
  const id = session.upload_id;
  const sendPart = async (n: number): Promise<void> => {
    const [offset, length] = numbered[n - 1] as [number, number];
    // No hashing pass of its own: the whole file's X-Content-SHA256, checked at
    // completion, covers every part, and a resume compares the server's digest of
    // what it stored with the one recorded here.
    const answer = await uploadPart(client, id, n, spanBody(path, offset, length, client.chunkBytes, options.progress), length, undefined, options.signal);
    if (answer.size_bytes !== length) throw new TransportError(`part ${n} was stored with another size`);
    parts.set(n, String(answer.sha256).replace(/^sha256:/, ""));
    await save();
  };
  await runPool(options.parallel, allParts.filter((n) => !held.has(n)), sendPart);
  let object: ObjectInfo;
  try {
    object = await completeUpload(client, id, allParts, options.signal);
  } catch (error) {
    if (error instanceof ChecksumMismatch) {
      // The parts are not the file's bytes (it changed while it was sent): forget the
      // session, so that the next call starts over.
      await abortUpload(client, id, options.signal).catch(() => undefined);
      await unlink(statePath).catch(() => undefined);
    }
    throw error;
  }
  await unlink(statePath).catch(() => undefined);
  return object;
}
