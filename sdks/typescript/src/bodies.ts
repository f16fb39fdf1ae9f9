/** Request bodies as pull-based web streams: one chunk in flight, so memory stays bounded. */

import { open, type FileHandle } from "node:fs/promises";

import type { Progress } from "./protocol.js";

/** What `uploadStream` accepts: a web stream, a Node.js readable, or any (async) iterable of chunks. */
export type UploadSource =
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>
  | Iterable<Uint8Array | string>;

const encoder = new TextEncoder();

/** `data` in chunks of at most `chunkBytes` (views, not copies). */
export function bytesBody(data: Uint8Array, chunkBytes: number, progress: Progress | undefined): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= data.length) {
        controller.close();
        return;
      }
      const chunk = data.subarray(offset, Math.min(data.length, offset + chunkBytes));
      offset += chunk.length;
      progress?.(chunk.length);
      controller.enqueue(chunk);
    },
  });
}

/** A file read `chunkBytes` at a time; the handle is closed at the end, on error and on cancel. */
export function fileBody(path: string, chunkBytes: number, progress: Progress | undefined): ReadableStream<Uint8Array> {
  let handle: FileHandle | undefined;
  const close = async (): Promise<void> => {
    const open = handle;
    handle = undefined;
    await open?.close();
  };
  return new ReadableStream<Uint8Array>({
    async start() {
      handle = await open(path, "r");
    },
    async pull(controller) {
      try {
        if (handle === undefined) throw new Error("file closed");
        // A fresh buffer per chunk: the one just enqueued may still be on its way out.
        const buffer = Buffer.allocUnsafeSlow(chunkBytes);
        const { bytesRead } = await handle.read(buffer, 0, chunkBytes, null);
        if (bytesRead === 0) {
          await close();
          controller.close();
          return;
        }
        progress?.(bytesRead);
        controller.enqueue(buffer.subarray(0, bytesRead));
      } catch (error) {
        await close().catch(() => undefined);
        controller.error(error);
      }
    },
    async cancel() {
      await close();
    },
  });
}

/** Any supported source as a web stream (read once: it cannot be sent again). */
export function sourceBody(source: UploadSource, progress: Progress | undefined): ReadableStream<Uint8Array> {
  if (source instanceof ReadableStream) {
    const reader = source.getReader();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        progress?.(value.length);
        controller.enqueue(value);
      },
      async cancel(reason) {
        await reader.cancel(reason);
      },
    });
  }
  const iterator: AsyncIterator<Uint8Array | string> | Iterator<Uint8Array | string> =
    Symbol.asyncIterator in source
      ? (source as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]()
      : (source as Iterable<Uint8Array | string>)[Symbol.iterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        const { value, done } = await iterator.next();
        if (done) {
          controller.close();
          return;
        }
        const chunk = typeof value === "string" ? encoder.encode(value) : value;
        if (chunk.length === 0) continue; // an empty chunk would end a chunked body early
        progress?.(chunk.length);
        controller.enqueue(chunk);
        return;
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

export function toBytes(data: Uint8Array | ArrayBuffer | string): Uint8Array {
  if (typeof data === "string") return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  return new Uint8Array(data);
}
