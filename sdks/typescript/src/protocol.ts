/** Requests and answers without I/O: paths, headers, the retry rule for uploads, errors. */

import { createHash, type Hash } from "node:crypto";
import { open } from "node:fs/promises";

import { type ApiError, IntegrityError, errorClass } from "./errors.js";
import { isRecord } from "./models.js";
import { parseRetryAfter } from "./retry.js";

export const CHUNK_BYTES = 1024 * 1024;
export const USER_AGENT = "juststorage-client-typescript/0.1.0";
const HEX64 = /^[0-9a-f]{64}$/;

/** `[first, last]` inclusive, as in `Range: bytes=first-last`; last null = to the end. */
export type ByteRange = readonly [first: number, last: number | null];

/** Called with the number of bytes just sent or received. */
export type Progress = (bytes: number) => void;

/** Which object a call addresses: by id (with its tenant) or by key (newest version). */
export interface ObjectRef {
  tenant: string;
  id?: string;
  namespace?: string;
  key?: string;
}

export class Target {
  readonly tenant: string;
  readonly id: string | undefined;
  readonly namespace: string | undefined;
  readonly key: string | undefined;

  constructor(ref: ObjectRef) {
    const byKey = ref.namespace !== undefined || ref.key !== undefined;
    if ((ref.id === undefined) === !byKey || (byKey && (ref.namespace === undefined || ref.key === undefined))) {
      throw new TypeError("name the object by id, or by namespace and key");
    }
    this.tenant = ref.tenant;
    this.id = ref.id;
    this.namespace = ref.namespace;
    this.key = ref.key;
  }

  path(): string {
    if (this.id !== undefined) return `/v1/objects/${encodeName(this.id)}`;
    return byKeyPath(this.namespace as string, this.tenant, this.key as string);
  }

  headers(): Record<string, string> {
    return this.id !== undefined ? { "X-Tenant": this.tenant } : {};
  }

  /** The same object by id, so a resumed download cannot switch versions. */
  pinned(objectId: string): Target {
    return new Target({ tenant: this.tenant, id: objectId });
  }
}

/** RFC 3986 percent-encoding of everything but unreserved characters (as Python's `quote(s, safe="")`). */
export function encodeName(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

export function byKeyPath(namespace: string, tenant: string, key: string): string {
  // `/` in the key is sent as %2F (the same to the server), so the key is one path
  // segment. A segment that is only dots is removed by URL parsing (WHATWG URL
  // treats "%2E" as "." too), so such keys cannot be named in a fetch URL.
  const encoded = encodeName(key);
  if (key === "." || key === "..") {
    throw new TypeError(`the key ${JSON.stringify(key)} can only be addressed by id through fetch`);
  }
  return `/v1/objects/by-key/${encodeName(namespace)}/${encodeName(tenant)}/${encoded}`;
}

export function rangeHeader(range: ByteRange | undefined): Record<string, string> {
  if (range === undefined) return {};
  const [first, last] = range;
  if (!Number.isSafeInteger(first) || first < 0 || (last !== null && (!Number.isSafeInteger(last) || last < first))) {
    throw new RangeError(`invalid byte range [${first}, ${last}]`);
  }
  return { Range: `bytes=${first}-${last === null ? "" : last}` };
}

export interface UploadOptions {
  tenant: string;
  namespace: string;
  key: string;
  /** `hot` (the server's default) or `cold`. */
  storageClass?: string;
  /** Stored with the object; default `application/octet-stream`. */
  contentType?: string;
  /** `"*"`: create only (412 PreconditionFailed when the key has a version). */
  ifNoneMatch?: "*";
  /** Replace only if the key's current ETag is this (`sha256:<hex>`, quoted or bare hex). */
  ifMatch?: string;
  /** The content's hex SHA-256, sent as X-Content-SHA256 (computed for bytes and files). */
  sha256?: string;
  progress?: Progress;
  signal?: AbortSignal;
}

/** What `Client.putByHash` needs: an upload's options, with the content's digest and size. */
export interface PutByHashOptions extends Omit<UploadOptions, "sha256" | "progress"> {
  /** The content's SHA-256: hex, or `sha256:<hex>` (an ETag's form, quoted or not). */
  sha256: string;
  /** The content's size in bytes, sent as X-Content-Length. */
  size: number;
}

/** The 64 lower-case hex digits of a digest given bare, as `sha256:<hex>` or as an ETag. */
export function byHashDigest(value: string): string {
  return normalizeEtag(value).slice("\"sha256:".length, -1);
}

export function uploadHeaders(options: UploadOptions, sha256: string | undefined, size: number | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    "X-Tenant": options.tenant,
    "X-Namespace": options.namespace,
  };
  if (/^[\x20-\x7e]+$/.test(options.key)) {
    headers["X-Key"] = options.key;
  } else {
    // fetch sends header values as latin-1, not UTF-8: percent-encode (SPEC §2).
    headers["X-Key"] = encodeName(options.key);
    headers["X-Key-Encoding"] = "percent";
  }
  if (options.storageClass !== undefined) headers["X-Storage-Class"] = options.storageClass;
  headers["Content-Type"] = options.contentType || "application/octet-stream";
  if (sha256 !== undefined) headers["X-Content-SHA256"] = sha256;
  if (options.ifNoneMatch !== undefined) {
    if (options.ifNoneMatch !== "*") throw new TypeError("ifNoneMatch accepts only '*'");
    headers["If-None-Match"] = "*";
  }
  if (options.ifMatch !== undefined) headers["If-Match"] = normalizeEtag(options.ifMatch);
  if (size !== undefined) headers["Content-Length"] = String(size);
  return headers;
}

/** `"sha256:<hex>"` from a quoted ETag, `sha256:<hex>` or a bare hex digest. */
export function normalizeEtag(value: string): string {
  let bare = value.trim().replace(/^"+|"+$/g, "");
  if (bare.startsWith("sha256:")) bare = bare.slice(7);
  bare = bare.toLowerCase();
  if (!HEX64.test(bare)) throw new TypeError(`not a SHA-256 ETag: ${JSON.stringify(value)}`);
  return `"sha256:${bare}"`;
}

/**
 * True when sending the upload twice cannot create a second object.
 *
 * With `If-None-Match: *` a repeat finds the key taken (412). With `If-Match` on
 * a digest other than the new content's, a repeat finds the ETag changed (412);
 * with the same digest it could add a second, identical version.
 */
export function uploadIsIdempotent(ifNoneMatch: string | undefined, ifMatch: string | undefined, sha256: string | undefined): boolean {
  if (ifNoneMatch === "*") return true;
  if (ifMatch !== undefined && sha256 !== undefined) {
    return normalizeEtag(ifMatch) !== `"sha256:${sha256.toLowerCase()}"`;
  }
  return false;
}

/** Hex digest and size of a file, read in one pass through one reused buffer. */
export async function sha256OfFile(path: string, chunkBytes: number, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const digest = createHash("sha256");
  const buffer = Buffer.allocUnsafeSlow(chunkBytes);
  let size = 0;
  const handle = await open(path, "r");
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buffer, 0, chunkBytes, null);
      if (bytesRead === 0) break;
      digest.update(buffer.subarray(0, bytesRead)); // consumed at once: the buffer can be reused
      size += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return { sha256: digest.digest("hex"), size };
}

/** The typed error for an error answer whose body was read as `body`. */
export function errorFrom(response: Response, body: Uint8Array): ApiError {
  let payload: unknown;
  if (body.length > 0) {
    try {
      payload = JSON.parse(new TextDecoder().decode(body));
    } catch {
      payload = undefined;
    }
  }
  const error = isRecord(payload) ? payload["error"] : undefined;
  let code: string | undefined;
  let message: string | undefined;
  let requestId: string | undefined;
  if (isRecord(error)) {
    code = typeof error["code"] === "string" ? error["code"] : undefined;
    message = error["message"] ? String(error["message"]) : undefined;
    requestId = error["request_id"] ? String(error["request_id"]) : undefined;
  }
  const status = response.status;
  const cls = errorClass(code, status);
  const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
  return new cls(message ?? (response.statusText || `HTTP ${status}`), {
    status,
    requestId: requestId ?? response.headers.get("x-request-id") ?? "",
    ...(code !== undefined ? { code } : {}),
    ...(retryAfter !== undefined ? { retryAfter } : {}),
  });
}

/** Hashes a whole-object download as it arrives; checks it against the ETag. */
export class Verifier {
  readonly expected: string | undefined;
  private readonly digest: Hash = createHash("sha256");

  constructor(contentHash: string | undefined) {
    this.expected = contentHash ? contentHash.replace(/^sha256:/, "") : undefined;
  }

  update(chunk: Uint8Array): void {
    this.digest.update(chunk);
  }

  check(): void {
    const actual = this.digest.digest("hex");
    if (this.expected !== undefined && actual !== this.expected) {
      throw new IntegrityError(
        `downloaded bytes hash to sha256:${actual}, the object is sha256:${this.expected}`,
        this.expected,
        actual,
      );
    }
  }
}
