/** `Client`: the JustStorage API over the built-in `fetch`. */

import { createHash } from "node:crypto";
import { open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { bytesBody, fileBody, sourceBody, toBytes, type UploadSource } from "./bodies.js";
import { Download, writeDownload, type DownloadDestination } from "./download.js";
import { TransportError } from "./errors.js";
import {
  CommonPrefix,
  healthFrom,
  ListPage,
  ObjectHead,
  ObjectInfo,
  presignedUrlFromJson,
  usageFromJson,
  type Health,
  type ListPageJson,
  type ObjectJson,
  type PresignedUrl,
  type PresignedUrlJson,
  type Usage,
} from "./models.js";
import {
  CHUNK_BYTES,
  USER_AGENT,
  Target,
  byHashDigest,
  errorFrom,
  rangeHeader,
  sha256OfFile,
  uploadHeaders,
  uploadIsIdempotent,
  type ByteRange,
  type ObjectRef,
  type Progress,
  type PutByHashOptions,
  type UploadOptions,
} from "./protocol.js";
import { fetchFor } from "./network.js";
import { RetryPolicy, type RetryOptions } from "./retry.js";
import {
  PARALLEL,
  PARALLEL_THRESHOLD_BYTES,
  RANGE_BYTES,
  abortUpload,
  completeUpload,
  createUpload,
  defaultStateDir,
  fsyncDir,
  tempBeside,
  downloadRanges,
  getUpload,
  uploadFileParts,
  uploadPart,
  type UploadedPart,
  type UploadSession,
} from "./transfers.js";

export type FetchFunction = (input: string | URL, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** A `RetryPolicy`, or options for one (defaults: 4 attempts, 5 resumes). */
  retry?: RetryPolicy | Partial<RetryOptions>;
  /** Size of upload chunks and of buffered file writes. Default 1 MiB. */
  chunkBytes?: number;
  /** Replaces the global `fetch` (tests plug in a stub here). */
  fetch?: FetchFunction;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /**
   * A PEM file of the CAs to trust instead of Node's (a private CA). Without it
   * Node's bundled CAs and `NODE_EXTRA_CA_CERTS` are trusted.
   */
  caCert?: string;
}

export interface FileUploadOptions extends UploadOptions {
  /**
   * Hash the file first (one streaming pass) and send the digest as
   * X-Content-SHA256, so a file that changes while it is sent is refused
   * (ChecksumMismatch) instead of stored. Default true.
   */
  checksum?: boolean;
  /** Files of this size or more go through a resumable multipart session. Default 64 MiB. */
  multipartThreshold?: number;
  /** Parts in flight at once. Default 4. */
  parallel?: number;
  /** Bytes per part. Default max(8 MiB, size / 10000). */
  partBytes?: number;
  /** Where the state of an unfinished upload is kept. Default `$XDG_CONFIG_HOME/juststorage/transfers`. */
  stateDir?: string;
  /** Called once with the bytes an earlier, interrupted call already sent. */
  onResume?: Progress;
}

export interface StreamUploadOptions extends UploadOptions {
  /** The body's length when known (sent as Content-Length; chunked otherwise). */
  size?: number;
}

export interface DownloadOptions extends ObjectRef {
  range?: ByteRange;
  progress?: Progress;
  signal?: AbortSignal;
}

export interface FileDownloadOptions extends DownloadOptions {
  /** Whole objects of this size or more are fetched as resumable parallel ranges. Default 64 MiB. */
  parallelThreshold?: number;
  /** Ranges in flight at once. Default 4. */
  parallel?: number;
  /** Bytes per range: what a resumed download keeps. Default 16 MiB. */
  rangeBytes?: number;
  /** Called once with the bytes an earlier, interrupted call already wrote. */
  onResume?: Progress;
  /** Where a ranged download keeps its resume state. Default `$XDG_CONFIG_HOME/juststorage/transfers`. */
  stateDir?: string;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface ListOptions extends CallOptions {
  tenant: string;
  namespace: string;
  prefix?: string;
  /** Every committed version, not only the newest per key. */
  versions?: boolean;
  storageClass?: string;
  /** Items per request (1–1000). Default 100. */
  pageSize?: number;
  /**
   * Folder-style listing (SPEC §8.4): keys holding this string (1–16 bytes) after
   * the prefix are rolled up into one `CommonPrefix` each.
   */
  delimiter?: string;
}

export interface ListPageOptions extends Omit<ListOptions, "pageSize"> {
  /** Entries in the page (1–1000). Default 100. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string | null;
}

/** @internal What `send` needs to know about one request. */
/** What `presign` signs: `method` on the object named by `namespace` and `key`, or by `id`. */
export interface PresignOptions extends CallOptions {
  method: "GET" | "HEAD" | "PUT";
  tenant: string;
  namespace?: string;
  key?: string;
  id?: string;
  /** Seconds, 1–604800; the server's default is 3600. */
  expiresIn?: number;
}

export interface SendOptions {
  headers?: Record<string, string>;
  params?: Record<string, string>;
  /** Makes a fresh body for each attempt. */
  body?: () => ReadableStream<Uint8Array>;
  /** The body can be made again (bytes, a file): 429/503 may be retried. */
  replayable?: boolean;
  /** Sending twice does no harm: connection failures may be retried. */
  idempotent?: boolean;
  /** Statuses returned instead of thrown. */
  accept?: readonly number[];
  signal?: AbortSignal | undefined;
}

// Connection failures that happen before any byte of the request went out.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * A JustStorage client. `token` is an API key or a JWT (sent as Bearer).
 *
 * Retries follow `options.retry` (see `RetryPolicy`). Holds no resources of its
 * own: the connection pool is `fetch`'s.
 */
export class Client {
  readonly baseUrl: string;
  readonly retry: RetryPolicy;
  readonly chunkBytes: number;
  private readonly fetchImpl: FetchFunction;
  private readonly baseHeaders: Record<string, string>;

  constructor(baseUrl: string, token?: string | null, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.retry = options.retry instanceof RetryPolicy ? options.retry : new RetryPolicy(options.retry);
    this.chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes < 1) {
      throw new RangeError(`chunkBytes must be a positive integer, not ${this.chunkBytes}`);
    }
    // HTTPS_PROXY / HTTP_PROXY / NO_PROXY and `caCert` pick the transport (network.ts).
    this.fetchImpl = options.fetch ?? fetchFor(this.baseUrl, options.caCert);
    this.baseHeaders = {
      "User-Agent": USER_AGENT,
      // Bodies are hashed and sized as sent: no transparent decompression.
      "Accept-Encoding": "identity",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...options.headers,
    };
  }

  // -- the request loop -------------------------------------------------------

  /** @internal */
  notifyRetry(method: string, path: string, attempt: number, delayMs: number, status: number | null, error: unknown): void {
    this.retry.onRetry?.({ method, path, attempt, delayMs, status, error: describe(error) });
  }

  /**
   * Send one request with retries; the open (streaming) response, or an ApiError.
   *
   * 429/503 are retried when the body can be sent again (`replayable`): the
   * server refused the request, so nothing was stored. A connection failure is
   * retried when the call is `idempotent`, or when the connection was never made
   * (nothing was sent). Statuses in `accept` are returned, not thrown.
   * @internal
   */
  async send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
    const policy = this.retry;
    const { body, signal } = options;
    const replayable = options.replayable ?? true;
    const idempotent = options.idempotent ?? true;
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(options.params ?? {})) url.searchParams.set(name, value);
    for (let attempt = 1; ; attempt++) {
      const init: RequestInit & { duplex?: "half" } = {
        method,
        headers: { ...this.baseHeaders, ...options.headers },
        // No window and no redirects: fetch then sends the request as it is. Otherwise
        // it clones the request for a possible redirect, and the clone's tee of a
        // streamed body keeps every chunk in memory (nodejs/undici#4058).
        window: null,
        redirect: "error",
      };
      if (signal !== undefined) init.signal = signal;
      if (body !== undefined) {
        init.body = body();
        init.duplex = "half"; // a streamed request body
      }
      let response: Response;
      try {
        response = await this.fetchImpl(url, init);
      } catch (error) {
        await (init.body as ReadableStream | undefined)?.cancel().catch(() => undefined);
        if (signal?.aborted) throw error;
        if (causeMessage(error) === "unexpected redirect") {
          // redirect: "error" (see above); the API never redirects, so this is a misrouted URL.
          throw new TransportError(`${method} ${path}: the server answered a redirect, which is not followed`, { cause: error });
        }
        const neverSent = isNotSent(error);
        const retryable = (idempotent || neverSent) && (replayable || body === undefined);
        if (attempt >= policy.maxAttempts || !retryable) {
          throw new TransportError(`${method} ${path}: ${describe(error)}`, { cause: error });
        }
        const delayMs = policy.backoffMs(attempt);
        this.notifyRetry(method, path, attempt, delayMs, null, error);
        await sleep(delayMs, undefined, signal === undefined ? {} : { signal });
        continue;
      }
      if (response.status < 400 || options.accept?.includes(response.status)) return response;
      const delayMs =
        replayable || body === undefined
          ? policy.delayMsFor(response.status, response.headers.get("retry-after"), attempt)
          : null;
      const text = await readAll(response).catch(() => new Uint8Array(0));
      const error = errorFrom(response, text);
      if (delayMs === null) throw error;
      this.notifyRetry(method, path, attempt, delayMs, response.status, error);
      await sleep(delayMs, undefined, signal === undefined ? {} : { signal });
    }
  }

  /** @internal */
  async json<T>(method: string, path: string, options: SendOptions): Promise<T> {
    const response = await this.send(method, path, options);
    let text: Uint8Array;
    try {
      text = await readAll(response);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new TransportError(`${method} ${path}: the answer broke off: ${describe(error)}`, { cause: error });
    }
    return JSON.parse(new TextDecoder().decode(text)) as T;
  }

  // -- uploads ----------------------------------------------------------------

  /** Upload bytes (or a string, as UTF-8); their SHA-256 is sent as X-Content-SHA256. */
  async upload(data: Uint8Array | ArrayBuffer | string, options: UploadOptions): Promise<ObjectInfo> {
    const bytes = toBytes(data);
    const sha256 = options.sha256 ?? createHash("sha256").update(bytes).digest("hex");
    const { chunkBytes } = this;
    return this.sendUpload(() => bytesBody(bytes, chunkBytes, options.progress), true, bytes.length, sha256, options);
  }

  /**
   * Upload a file, streamed in chunks (hashed first unless `checksum: false`).
   *
   * A file of `multipartThreshold` bytes or more goes through a multipart session,
   * `parallel` parts at a time; if the call is interrupted, calling it again with
   * the same arguments sends only the parts the server does not hold yet (the
   * state file in `stateDir` keeps the session id and part digests). A server
   * without the session API gets the file in one request.
   */
  async uploadFile(path: string | URL, options: FileUploadOptions): Promise<ObjectInfo> {
    const filePath = path instanceof URL ? fileURLToPath(path) : path;
    if ((await stat(filePath)).size >= (options.multipartThreshold ?? PARALLEL_THRESHOLD_BYTES)) {
      const object = await uploadFileParts(this, filePath, {
        ...options,
        checksum: options.checksum ?? true,
        parallel: options.parallel ?? PARALLEL,
        partBytes: options.partBytes,
        stateDir: options.stateDir ?? defaultStateDir(),
      });
      if (object !== null) return object;
    }
    let sha256 = options.sha256;
    let size: number;
    if (sha256 === undefined && (options.checksum ?? true)) {
      ({ sha256, size } = await sha256OfFile(filePath, this.chunkBytes, options.signal));
    } else {
      size = (await stat(filePath)).size;
    }
    const { chunkBytes } = this;
    return this.sendUpload(() => fileBody(filePath, chunkBytes, options.progress), true, size, sha256, options);
  }

  /**
   * Upload from a web `ReadableStream`, a Node.js readable, or any (async)
   * iterable of chunks. Sent with Content-Length when `size` is given, chunked
   * otherwise. A stream can be read only once, so this upload is never retried
   * once its body started (a refused connection is still retried).
   */
  async uploadStream(source: UploadSource, options: StreamUploadOptions): Promise<ObjectInfo> {
    let used = false;
    const body = (): ReadableStream<Uint8Array> => {
      if (used) throw new TransportError("the stream was already sent once and cannot be replayed");
      used = true;
      return sourceBody(source, options.progress);
    };
    return this.sendUpload(body, false, options.size, options.sha256, options);
  }

  private async sendUpload(
    body: () => ReadableStream<Uint8Array>,
    replayable: boolean,
    size: number | undefined,
    sha256: string | undefined,
    options: UploadOptions,
  ): Promise<ObjectInfo> {
    const headers = uploadHeaders(options, sha256, size);
    const data = await this.json<ObjectJson>("POST", "/v1/objects", {
      headers,
      body,
      replayable,
      idempotent: replayable && uploadIsIdempotent(options.ifNoneMatch, options.ifMatch, sha256),
      signal: options.signal,
    });
    return ObjectInfo.fromJson(data);
  }

  /**
   * Upload by hash (POST /v1/objects/by-hash): commit a new version from content
   * the tenant already stores, without sending it. `null` when the tenant stores
   * no object of this SHA-256 and size in the storage class: send the bytes then.
   * Content other tenants store never matches. Other errors throw as for `upload`.
   */
  async putByHash(options: PutByHashOptions): Promise<ObjectInfo | null> {
    const sha256 = byHashDigest(options.sha256);
    if (!Number.isSafeInteger(options.size) || options.size < 0) {
      throw new RangeError(`size must be a non-negative integer, not ${options.size}`);
    }
    const headers = { ...uploadHeaders(options, sha256, undefined), "X-Content-Length": String(options.size) };
    const response = await this.send("POST", "/v1/objects/by-hash", {
      headers,
      idempotent: uploadIsIdempotent(options.ifNoneMatch, options.ifMatch, sha256),
      accept: [404],
      signal: options.signal,
    });
    let text: Uint8Array;
    try {
      text = await readAll(response);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new TransportError(`POST /v1/objects/by-hash: the answer broke off: ${describe(error)}`, { cause: error });
    }
    if (response.status === 404) return null;
    return ObjectInfo.fromJson(JSON.parse(new TextDecoder().decode(text)) as ObjectJson);
  }

  // -- downloads --------------------------------------------------------------

  /**
   * Start a download by id or by key (newest version); read it as a stream:
   * `for await (const chunk of await client.open({...}))`.
   */
  async open(options: DownloadOptions): Promise<Download> {
    const target = new Target(options);
    const headers = { ...target.headers(), ...rangeHeader(options.range) };
    const response = await this.send("GET", target.path(), { headers, signal: options.signal });
    return new Download(this, target, response, options.range, options.progress, options.signal);
  }

  /** The object's bytes (or `range` of them) in memory. */
  async download(options: DownloadOptions): Promise<Uint8Array> {
    return (await this.open(options)).read();
  }

  /**
   * Stream the object into a file path, a Node.js writable or a web
   * `WritableStream`. A path is written into a new temporary file beside it
   * (`.<name>.<random>.juststorage-part`, never a name another key or a file of
   * the caller's can own), fsynced, and renamed over the path only once every
   * byte arrived and the hash matched. A whole object of `parallelThreshold`
   * bytes or more is fetched in ranges, `parallel` at a time; a state file in
   * `stateDir` lists the temporary file and the finished ranges, which a later
   * call to the same path keeps when the object is the same version.
   */
  async downloadToFile(destination: DownloadDestination, options: FileDownloadOptions): Promise<ObjectHead> {
    if (options.range === undefined && (typeof destination === "string" || destination instanceof URL)) {
      const head = await this.head(options);
      if (head.sizeBytes >= (options.parallelThreshold ?? PARALLEL_THRESHOLD_BYTES)) {
        return downloadRanges(this, destination instanceof URL ? fileURLToPath(destination) : destination, head, options.tenant, {
          parallel: options.parallel ?? PARALLEL,
          rangeBytes: options.rangeBytes ?? RANGE_BYTES,
          stateDir: options.stateDir ?? defaultStateDir(),
          progress: options.progress,
          onResume: options.onResume,
          signal: options.signal,
        });
      }
      if (head.id) {
        // The single request below reads this very version.
        options = { tenant: options.tenant, id: head.id, ...(options.progress ? { progress: options.progress } : {}), ...(options.signal ? { signal: options.signal } : {}) };
      }
    }
    const download = await this.open(options);
    if (typeof destination !== "string" && !(destination instanceof URL)) {
      await writeDownload(download, destination, this.chunkBytes);
      return download.head;
    }
    const finalPath = destination instanceof URL ? fileURLToPath(destination) : destination;
    let partial: string;
    let handle: FileHandle;
    try {
      partial = await tempBeside(finalPath);
      handle = await open(partial, "r+");
    } catch (error) {
      await download.cancel();
      throw error;
    }
    try {
      await writeDownload(download, handle, this.chunkBytes); // checks the SHA-256 at the end
      await handle.sync();
      await handle.close();
      await rename(partial, finalPath);
      await fsyncDir(dirname(resolve(finalPath)));
    } catch (error) {
      await download.cancel();
      await handle.close().catch(() => undefined);
      await unlink(partial).catch(() => undefined);
      throw error;
    }
    return download.head;
  }

  async head(ref: ObjectRef & CallOptions): Promise<ObjectHead> {
    const target = new Target(ref);
    const response = await this.send("HEAD", target.path(), { headers: target.headers(), signal: ref.signal });
    await response.body?.cancel();
    return ObjectHead.fromHeaders(response.headers);
  }

  // -- multipart upload sessions (SPEC §8.2) -----------------------------------

  /** Open a session; `sha256` is the whole object's, checked at completion. */
  async createUpload(options: UploadOptions): Promise<UploadSession> {
    return createUpload(this, options);
  }

  /** Send part `part` (1–10000) from memory; sending it again replaces it. */
  async uploadPart(uploadId: string, part: number, data: Uint8Array | string, options: CallOptions = {}): Promise<UploadedPart> {
    const bytes = toBytes(data);
    const digest = createHash("sha256").update(bytes).digest("hex");
    const { chunkBytes } = this;
    return uploadPart(this, uploadId, part, () => bytesBody(bytes, chunkBytes, undefined), bytes.length, digest, options.signal);
  }

  /** The session with the parts the server holds, in order: what resuming needs. */
  async getUpload(uploadId: string, options: CallOptions = {}): Promise<UploadSession> {
    return getUpload(this, uploadId, options.signal);
  }

  /** Commit the parts (default: every part received) as one object. */
  async completeUpload(uploadId: string, parts?: number[], options: CallOptions = {}): Promise<ObjectInfo> {
    return completeUpload(this, uploadId, parts, options.signal);
  }

  async abortUpload(uploadId: string, options: CallOptions = {}): Promise<void> {
    return abortUpload(this, uploadId, options.signal);
  }

  // -- presigned URLs (SPEC §8.5) ---------------------------------------------

  /**
   * A URL for one method on one object (by key, or by `id` for GET/HEAD) that works
   * without a credential for `expiresIn` seconds (1–604800, default 3600). A GET
   * URL by key reads the newest version at the time of use.
   */
  async presign(options: PresignOptions): Promise<PresignedUrl> {
    const fields: Record<string, unknown> = { method: options.method, tenant: options.tenant };
    if (options.id !== undefined) fields["id"] = options.id;
    if (options.namespace !== undefined) fields["namespace"] = options.namespace;
    if (options.key !== undefined) fields["key"] = options.key;
    if (options.expiresIn !== undefined) fields["expires_in"] = options.expiresIn;
    const bytes = new TextEncoder().encode(JSON.stringify(fields));
    const { chunkBytes } = this;
    const data = await this.json<PresignedUrlJson>("POST", "/v1/presign", {
      headers: { "Content-Type": "application/json" },
      body: () => bytesBody(bytes, chunkBytes, undefined),
      signal: options.signal,
    });
    return presignedUrlFromJson(data, this.baseUrl);
  }

  // -- deletes, listing, usage, operations ------------------------------------

  /** Delete one version (by id) or every version of a key. NotFound if none. */
  async delete(ref: ObjectRef & CallOptions): Promise<void> {
    const target = new Target(ref);
    const response = await this.send("DELETE", target.path(), { headers: target.headers(), signal: ref.signal });
    await response.body?.cancel();
  }

  /**
   * One page of a listing: `limit` entries at most (items and common prefixes
   * together), after `cursor`.
   */
  async listPage(options: ListPageOptions): Promise<ListPage> {
    const params: Record<string, string> = {
      tenant: options.tenant,
      namespace: options.namespace,
      limit: String(options.limit ?? 100),
    };
    if (options.prefix) params["prefix"] = options.prefix;
    if (options.versions) params["versions"] = "true";
    if (options.storageClass) params["storage_class"] = options.storageClass;
    if (options.delimiter !== undefined) params["delimiter"] = options.delimiter;
    if (options.cursor) params["cursor"] = options.cursor;
    const page = await this.json<ListPageJson>("GET", "/v1/objects", { params, signal: options.signal });
    return ListPage.fromJson(page);
  }

  /**
   * Every matching object, in key order, following `next_cursor` page by page. With
   * `delimiter`, each common prefix is yielded once, at its place in key order.
   */
  list(options: ListOptions & { delimiter?: undefined }): AsyncGenerator<ObjectInfo, void, undefined>;
  list(options: ListOptions): AsyncGenerator<ObjectInfo | CommonPrefix, void, undefined>;
  async *list(options: ListOptions): AsyncGenerator<ObjectInfo | CommonPrefix, void, undefined> {
    const { pageSize, ...rest } = options;
    let cursor: string | null = null;
    for (;;) {
      const page: ListPage = await this.listPage({ ...rest, limit: pageSize ?? 100, cursor });
      yield* page.entries();
      cursor = page.nextCursor;
      if (!cursor || page.items.length + page.commonPrefixes.length === 0) return;
    }
  }

  async usage(options: { tenant: string } & CallOptions): Promise<Usage> {
    const data = await this.json<Parameters<typeof usageFromJson>[0]>("GET", "/v1/usage", {
      params: { tenant: options.tenant },
      signal: options.signal,
    });
    return usageFromJson(data);
  }

  /** Liveness; a 503 answer is returned (`ok` false), not thrown or retried. */
  async health(options: CallOptions = {}): Promise<Health> {
    return this.operation("/health", options);
  }

  /** Readiness; a 503 answer is returned (`ok` false), not thrown or retried. */
  async ready(options: CallOptions = {}): Promise<Health> {
    return this.operation("/ready", options);
  }

  private async operation(path: string, options: CallOptions): Promise<Health> {
    const response = await this.send("GET", path, { accept: [503], signal: options.signal });
    const body = await readAll(response);
    return healthFrom(response.status, new TextDecoder().decode(body));
  }
}

/** @internal The whole body of a (small) answer. */
export async function readAll(response: Response): Promise<Uint8Array> {
  return new Uint8Array(await response.arrayBuffer());
}

function causeMessage(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause instanceof Error ? cause.message : undefined;
}

function isNotSent(error: unknown): boolean {
  const seen = new Set<unknown>();
  const pending: unknown[] = [error];
  while (pending.length > 0) {
    const current = pending.pop();
    if (typeof current !== "object" || current === null || seen.has(current)) continue;
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NOT_SENT_CODES.has(code)) return true;
    pending.push((current as { cause?: unknown }).cause);
    const errors = (current as { errors?: unknown }).errors;
    if (Array.isArray(errors)) pending.push(...errors);
  }
  return false;
}

/** @internal A short text for an error and its causes ("fetch failed: connect ECONNREFUSED …"). */
export function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      if (current.message) parts.push(current.message);
      current = (current as { cause?: unknown }).cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(": ");
}
