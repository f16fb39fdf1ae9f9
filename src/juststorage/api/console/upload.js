// Uploads from the browser: one request for small files, a multipart session
// (POST /v1/uploads, parallel part PUTs, complete) above MULTIPART_THRESHOLD.

import { request, send } from "./api.js";

const MIB = 1024 * 1024;
export const MULTIPART_THRESHOLD = 16 * MIB;
export const PART_BYTES = 8 * MIB; // at least the server's 5 MiB part minimum
export const PARALLEL_PARTS = 4;

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
  const session = await request("POST", "/v1/uploads", { headers });
  const id = encodeURIComponent(session.upload_id);
  const count = Math.ceil(file.size / PART_BYTES);
  const sent = new Array(count).fill(0);
  const report = () => onProgress(sent.reduce((a, b) => a + b, 0), file.size, count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next;
      next += 1;
      const part = file.slice(index * PART_BYTES, Math.min(file.size, (index + 1) * PART_BYTES));
      await send("PUT", `/v1/uploads/${id}/parts/${index + 1}`, {}, part, (bytes) => {
        sent[index] = bytes;
        report();
      });
      sent[index] = part.size;
      report();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, count) }, worker));
    return await request("POST", `/v1/uploads/${id}/complete`);
  } catch (error) {
    // Stored parts count against the quota: give them back (best effort).
    request("DELETE", `/v1/uploads/${id}`).catch(() => {});
    throw error;
  }
}
