/**
 * Node.js client for JustStorage (SPEC v1.1): uploads from bytes, files and
 * streams; verified, resumable downloads; listing, usage, health; typed errors;
 * bounded retries. The built-in `fetch` and web streams; undici (Node's own HTTP
 * client) only for a CA file or a proxy.
 * @module
 */

export { Client } from "./client.js";
export type {
  CallOptions,
  ClientOptions,
  DownloadOptions,
  FetchFunction,
  FileDownloadOptions,
  FileUploadOptions,
  ListOptions,
  ListPageOptions,
  PresignOptions,
  StreamUploadOptions,
} from "./client.js";
export { Download } from "./download.js";
export type { DownloadDestination } from "./download.js";
export type { UploadSource } from "./bodies.js";
export {
  ApiError,
  BadRequest,
  ChecksumMismatch,
  Conflict,
  Forbidden,
  InsufficientStorage,
  IntegrityError,
  Internal,
  JustStorageError,
  MethodNotAllowed,
  NotFound,
  PayloadTooLarge,
  PreconditionFailed,
  RangeNotSatisfiable,
  TooManyRequests,
  TransportError,
  Unauthorized,
  Unavailable,
  errorClass,
} from "./errors.js";
export type { ApiErrorOptions } from "./errors.js";
export { CommonPrefix, ListPage, ObjectHead, ObjectInfo } from "./models.js";
export type { ClassUsage, Health, ListPageJson, ObjectJson, PresignedUrl, Usage } from "./models.js";
export type { ByteRange, ObjectRef, Progress, PutByHashOptions, UploadOptions } from "./protocol.js";
export { NO_RETRIES, RetryPolicy, parseRetryAfter } from "./retry.js";
export { PARALLEL, PARALLEL_THRESHOLD_BYTES, PART_MIN_BYTES, RANGE_BYTES, TEMP_SUFFIX, defaultStateDir, downloadStatePath, partSizeFor } from "./transfers.js";
export type { UploadSession, UploadedPart } from "./transfers.js";
export type { RetryEvent, RetryOptions } from "./retry.js";

export const VERSION = "0.1.0";
