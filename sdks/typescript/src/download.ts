/** An open download: its head, then its body, resumed with `Range` when the connection breaks. */

import type { FileHandle } from "node:fs/promises";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

import type { Client } from "./client.js";
import { JustStorageError, TransportError } from "./errors.js";
import { ObjectHead } from "./models.js";
import { Verifier, type ByteRange, type Progress, type Target } from "./protocol.js";

/** Where `downloadToFile` writes: a path, a Node.js writable or a web WritableStream. */
export type DownloadDestination = string | URL | Writable | WritableStream<Uint8Array>;

/**
 * An open download: `head` and `length` at once, then the body as an async
 * iterable of chunks (`for await`), a web stream (`stream()`) or whole (`read()`).
 * The body can be read once.
 *
 * When the connection breaks mid-body, the rest is asked for with `Range`, by
 * object id (so a newer version of the key cannot be spliced in), at most
 * `retry.maxResumes` times. A whole-object download is checked against the ETag
 * after its last byte (`IntegrityError` on a mismatch).
 */
export class Download implements AsyncIterable<Uint8Array> {
  readonly status: number;
  readonly head: ObjectHead;
  /** Bytes the body will have (of the range, when one was asked); null when unknown. */
  readonly length: number | null;
  private response: Response;
  private readonly target: Target;
  private readonly first: number;
  private readonly whole: boolean;
  private started = false;

  /** @internal */
  constructor(
    private readonly client: Client,
    target: Target,
    response: Response,
    range: ByteRange | undefined,
    private readonly progress: Progress | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.response = response;
    this.status = response.status;
    this.head = ObjectHead.fromHeaders(response.headers);
    this.target = this.head.id ? target.pinned(this.head.id) : target;
    this.first = range ? range[0] : 0;
    this.whole = range === undefined;
    const contentLength = Number(response.headers.get("content-length") ?? "-1");
    this.length = Number.isSafeInteger(contentLength) && contentLength >= 0 ? contentLength : null;
  }

  [Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    return this.chunks();
  }

  /** The body, chunk by chunk, as it arrives (resumed and verified as described above). */
  async *chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.started) throw new JustStorageError("a download's body can be read only once");
    this.started = true;
    const verifier = this.whole ? new Verifier(this.head.contentHash) : undefined;
    const policy = this.client.retry;
    let received = 0;
    let resumes = 0;
    let finished = false;
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      for (;;) {
        reader = this.response.body?.getReader();
        let broken: unknown;
        while (reader !== undefined) {
          let result: Awaited<ReturnType<typeof reader.read>>;
          try {
            result = await reader.read();
          } catch (error) {
            broken = error;
            break;
          }
          if (result.done) break;
          const chunk = result.value;
          received += chunk.length;
          verifier?.update(chunk);
          this.progress?.(chunk.length);
          yield chunk;
        }
        if (broken === undefined && this.length !== null && received < this.length) {
          broken = new Error(`the body ended after ${received} of ${this.length} bytes`);
        }
        if (broken === undefined) break;
        if (this.signal?.aborted) throw broken;
        if (resumes >= policy.maxResumes || this.length === null) {
          throw new TransportError(`download broke after ${received} bytes: ${String(broken)}`, { cause: broken });
        }
        resumes += 1;
        const delayMs = policy.backoffMs(resumes);
        this.client.notifyRetry("GET", this.target.path(), resumes, delayMs, null, broken);
        await sleep(delayMs, undefined, this.signal === undefined ? {} : { signal: this.signal });
        this.response = await this.resume(received);
      }
      finished = true;
    } finally {
      if (!finished) await reader?.cancel().catch(() => undefined);
    }
    verifier?.check();
  }

  private async resume(received: number): Promise<Response> {
    const last = this.first + (this.length as number) - 1;
    const headers = { ...this.target.headers(), Range: `bytes=${this.first + received}-${last}` };
    const response = await this.client.send("GET", this.target.path(), { headers, signal: this.signal });
    const etag = (response.headers.get("etag") ?? "").replace(/^"|"$/g, "");
    if (response.status !== 206 || etag !== this.head.contentHash) {
      await response.body?.cancel().catch(() => undefined);
      throw new TransportError("the object changed while its download was resumed");
    }
    return response;
  }

  /** The body as a web `ReadableStream` (pull-based: it reads as fast as you consume). */
  stream(): ReadableStream<Uint8Array> {
    const iterator = this.chunks();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { value, done } = await iterator.next();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel() {
        await iterator.return(undefined);
      },
    });
  }

  /** The whole body in memory. */
  async read(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of this.chunks()) {
      parts.push(chunk);
      size += chunk.length;
    }
    const out = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  /** Drop the body without reading it (frees the connection). */
  async cancel(): Promise<void> {
    if (this.started) return; // the iterator's own cleanup closes it
    this.started = true;
    await this.response.body?.cancel().catch(() => undefined);
  }
}

/** @internal Writes the body in batches of about `batchBytes` (fewer, larger writes). */
export async function writeDownload(
  download: Download,
  destination: FileHandle | Writable | WritableStream<Uint8Array>,
  batchBytes: number,
): Promise<void> {
  if (destination instanceof WritableStream) {
    const writer = destination.getWriter();
    try {
      for await (const chunk of download) await writer.write(chunk);
      await writer.close();
    } catch (error) {
      await writer.abort(error).catch(() => undefined);
      throw error;
    }
    return;
  }
  if (isFileHandle(destination)) {
    let batch: Uint8Array[] = [];
    let batched = 0;
    for await (const chunk of download) {
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= batchBytes) {
        await writeAllV(destination, batch);
        batch = [];
        batched = 0;
      }
    }
    if (batch.length > 0) await writeAllV(destination, batch);
    return;
  }
  const writable = destination;
  for await (const chunk of download) {
    if (!writable.write(chunk)) await once(writable, "drain"); // backpressure
  }
}

async function writeAllV(handle: FileHandle, buffers: Uint8Array[]): Promise<void> {
  let pending = buffers;
  for (;;) {
    const total = pending.reduce((sum, b) => sum + b.length, 0);
    const { bytesWritten } = await handle.writev(pending);
    if (bytesWritten >= total) return;
    // A short write: go on from the first byte not written.
    let skip = bytesWritten;
    const rest: Uint8Array[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
    pending = rest;
  }
}

function isFileHandle(value: unknown): value is FileHandle {
  return typeof value === "object" && value !== null && typeof (value as FileHandle).writev === "function" && typeof (value as FileHandle).fd === "number";
}
