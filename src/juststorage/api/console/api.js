// The API client of the console: the credential (sessionStorage), JSON errors in
// words, waits on 429 (Retry-After) and the jump back to sign-in on 401.

const TOKEN_KEY = "juststorage.token";
const MAX_RETRIES = 5;
const MAX_WAIT_MS = 60_000;

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

const hooks = { unauthorized: () => {}, waiting: () => {} };

/** Called with the error when the server answers 401, and with the wait in ms on 429
 * (then with 0 once the retried request is answered). */
export function setHooks({ unauthorized, waiting }) {
  if (unauthorized) hooks.unauthorized = unauthorized;
  if (waiting) hooks.waiting = waiting;
}

const WORDS = {
  BadRequest: "The request was refused as malformed",
  ChecksumMismatch: "The bytes did not match their checksum",
  Unauthorized: "The credential was not accepted; sign in again",
  Forbidden: "The credential may not do this",
  NotFound: "Not found",
  PreconditionFailed: "The object changed meanwhile",
  PayloadTooLarge: "Too large for this server or the tenant's quota",
  RangeNotSatisfiable: "The range is outside the object",
  TooManyRequests: "Too many requests; retried and gave up",
  InsufficientStorage: "The server is out of storage space",
  Unavailable: "The server is unavailable for now; try again shortly",
  Internal: "The server failed (a bug); the request id helps the operator",
};

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  /** A sentence for people: what kind of failure, the server's message, the request id. */
  get words() {
    const kind = WORDS[this.code] || `The server answered ${this.status}`;
    const detail = this.message && this.message !== kind ? `: ${this.message}` : "";
    const id = this.requestId ? ` (request ${this.requestId})` : "";
    return `${kind}${detail}${id}.`;
  }
}

/** Any thrown value as a sentence. */
export function describe(error) {
  if (error instanceof ApiError) return error.words;
  if (error instanceof TypeError) return "The server could not be reached (network error).";
  return String(error && error.message ? error.message : error);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retry-After (seconds or an HTTP date) as milliseconds, bounded. */
export function retryAfterMs(value) {
  if (value === null || value === undefined || value === "") return 1000;
  const seconds = Number(value);
  let ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  if (!Number.isFinite(ms)) ms = 1000;
  return Math.min(Math.max(ms, 0), MAX_WAIT_MS);
}

function errorFrom(status, text, headers) {
  let code = "";
  let message = "";
  let requestId = headers("X-Request-Id") || "";
  try {
    const body = JSON.parse(text).error;
    code = body.code;
    message = body.message;
    requestId = body.request_id || requestId;
  } catch {
    message = status ? `HTTP ${status}` : "no answer";
  }
  const error = new ApiError(status, code, message, requestId);
  if (status === 401) hooks.unauthorized(error);
  return error;
}

function authHeaders(extra) {
  const headers = new Headers(extra || {});
  const credential = token.get();
  if (credential) headers.set("Authorization", `Bearer ${credential}`);
  return headers;
}

/** A URL of this origin with the query's non-empty values. */
export function apiUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

/** fetch() with the credential; JSON back (null for 204), ApiError on failure. */
export async function request(method, path, { query, headers, body, json } = {}) {
  const url = apiUrl(path, query);
  for (let attempt = 0; ; attempt += 1) {
    const sent = authHeaders(headers);
    let payload = body;
    if (json !== undefined) {
      sent.set("Content-Type", "application/json");
      payload = JSON.stringify(json);
    }
    const response = await fetch(url, {
      method, headers: sent, body: payload, credentials: "omit", cache: "no-store",
    });
    if (response.status === 429 && attempt < MAX_RETRIES) {
      const wait = retryAfterMs(response.headers.get("Retry-After"));
      hooks.waiting(wait);
      await sleep(wait);
      continue;
    }
    if (attempt > 0) hooks.waiting(0); // the wait is over
    const text = await response.text();
    if (!response.ok) throw errorFrom(response.status, text, (n) => response.headers.get(n));
    return text ? JSON.parse(text) : null;
  }
}

function xhrOnce(method, url, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    headers.forEach((value, name) => xhr.setRequestHeader(name, value));
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new TypeError("network error"));
    xhr.onabort = () => reject(new TypeError("aborted"));
    xhr.send(body);
  });
}

/** A request with a body sent by XMLHttpRequest, for its upload progress events. */
export async function send(method, path, headers, body, onProgress) {
  const url = apiUrl(path);
  for (let attempt = 0; ; attempt += 1) {
    const xhr = await xhrOnce(method, url, authHeaders(headers), body, onProgress);
    if (xhr.status === 429 && attempt < MAX_RETRIES) {
      const wait = retryAfterMs(xhr.getResponseHeader("Retry-After"));
      hooks.waiting(wait);
      onProgress(0);
      await sleep(wait);
      continue;
    }
    if (attempt > 0) hooks.waiting(0);
    if (xhr.status < 200 || xhr.status >= 300) {
      throw errorFrom(xhr.status, xhr.responseText, (n) => xhr.getResponseHeader(n));
    }
    return xhr.responseText ? JSON.parse(xhr.responseText) : null;
  }
}

/** Whether `byKeyPath` can name `key`: a URL path segment `.` or `..` (WHATWG URL
 * treats `%2E` as a dot too) is removed before the request is sent, so those two keys
 * reach another path; they are addressed by version id instead. */
export function addressableByKey(key) {
  return key !== "." && key !== "..";
}

/** The by-key path of an object: the whole key is one percent-encoded path segment
 * (`/` sent as %2F, which the server reads as `/`), so no part of a key such as
 * `../x` or `./x` can act as a dot segment and point the request at another key. */
export function byKeyPath(namespace, tenant, key) {
  if (!addressableByKey(key)) {
    throw new TypeError(`the key ${JSON.stringify(key)} can only be addressed by version id`);
  }
  const [ns, who, name] = [namespace, tenant, key].map(encodeURIComponent);
  return `/v1/objects/by-key/${ns}/${who}/${name}`;
}
