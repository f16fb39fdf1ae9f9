// Uploads from the browser: one request for small files, a multipart session
// (POST /v1/uploads, parallel part PUTs, complete) above MULTIPART_THRESHOLD.

import { request, send, token } from "./api.js";

const MIB = 1024 * 1024;
export const MULTIPART_THRESHOLD = 16 * MIB;
export const PART_BYTES = 8 * MIB; // above the server's default part minimum (5 MiB)
export const MAX_PARTS = 10000; // part numbers 1-10000 (SPEC §8.2)
export const PARALLEL_PARTS = 4;

/** The part size for a file of `size` bytes: PART_BYTES, or more (whole MiB) when
 * PART_BYTES would need more than MAX_PARTS parts (a file over about 78 GiB). */
export function partBytesFor(size) {
  return Math.max(PART_BYTES, Math.ceil(size / MAX_PARTS / MIB) * MIB);
}

function objectHeaders({ tenant, namespace, key, storageClass, contentType }) {
  return {
    "X-Tenant": tenant,
    "X-Namespace": namespace,
    // Browsers cannot send raw UTF-8 in a header: the key goes percent-encoded.
    "X-Key": encodeURIComponent(key),
    "X-Key-Encoding": "percent",
    "X-Storage-Class": storageClass,
    "Content-Type": contentType || "application/octet-stream",
  };
}

/**
 * Upload `file` as (tenant, namespace, key); `onProgress(sentBytes, totalBytes, parts)`
 * is called as bytes leave (parts: null for a single request). Resolves to the object.
 */
export async function uploadFile(target, file, onProgress) {
  const headers = objectHeaders({ ...target, contentType: file.type });
  if (file.size < MULTIPART_THRESHOLD) {
    return send("POST", "/v1/objects", headers, file, (sent) => onProgress(sent, file.size, null));
  }
  const partBytes = partBytesFor(file.size);
  const count = Math.ceil(file.size / partBytes);
  if (count > MAX_PARTS) throw new Error(`The file is too large: more than ${MAX_PARTS} parts.`);
  // Kept for the abort: a 401 on a part clears the signed-in token before it is sent.
  const credential = token.get();
  const session = await request("POST", "/v1/uploads", { headers });
  const id = encodeURIComponent(session.upload_id);
  const sent = new Array(count).fill(0);
  const report = () => onProgress(sent.reduce((a, b) => a + b, 0), file.size, count);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < count && !failed) {
      const index = next;
      next += 1;
      const part = file.slice(index * partBytes, Math.min(file.size, (index + 1) * partBytes));
      try {
        await send("PUT", `/v1/uploads/${id}/parts/${index + 1}`, {}, part, (bytes) => {
          sent[index] = bytes;
          report();
        });
      } catch (error) {
        failed = true; // the other workers take no further part
        throw error;
      }
      sent[index] = part.size;
      report();
    }
  };
  const workers = Array.from({ length: Math.min(PARALLEL_PARTS, count) }, worker);
  const settled = await Promise.allSettled(workers); // parts in flight end first
  const refused = settled.find((result) => result.status === "rejected");
  if (refused) {
    await abort(id, credential);
    throw refused.reason;
  }
  try {
    return await complete(id);
  } catch (error) {
    await abort(id, credential); // 409 if it was completed after all: nothing lost
    throw error;
  }
}

/** POST …/complete, asked once more if the answer was lost on the way (a network
 * error): completing a completed session answers 200 with its object (SPEC §8.2). */
async function complete(id) {
  try {
    return await request("POST", `/v1/uploads/${id}/complete`);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return await request("POST", `/v1/uploads/${id}/complete`);
  }
}

/** Abort the session (its stored parts count against the quota), best effort, with
 * the credential the upload started with. */
async function abort(id, credential) {
  const headers = credential ? { Authorization: `Bearer ${credential}` } : {};
  try {
    await request("DELETE", `/v1/uploads/${id}`, { headers });
  } catch {
    // Expires after JUSTSTORAGE_UPLOAD_TTL_S; GC then removes its parts.
  }
}
