/**
 * Every failure the client throws, as one tree (class names are the SPEC error codes).
 *
 * ```
 * JustStorageError
 * ├── ApiError                 the server answered an error (code, message, status, requestId)
 * │   ├── BadRequest           400
 * │   │   └── ChecksumMismatch 400, the body did not match X-Content-SHA256
 * │   ├── Unauthorized         401
 * │   ├── Forbidden            403
 * │   ├── NotFound             404
 * │   ├── MethodNotAllowed     405
 * │   ├── Conflict             409, a session's state refuses the change
 * │   ├── PreconditionFailed   412
 * │   ├── PayloadTooLarge      413
 * │   ├── RangeNotSatisfiable  416
 * │   ├── TooManyRequests      429 (retryAfter seconds)
 * │   ├── Internal             500
 * │   ├── Unavailable          503
 * │   └── InsufficientStorage  507
 * ├── TransportError           no answer: connection refused, reset, timed out (retries spent)
 * └── IntegrityError           downloaded bytes do not hash to the object's ETag
 * ```
 * @module
 */

/** Base class of everything this client throws on purpose. */
export class JustStorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface ApiErrorOptions {
  status: number;
  requestId?: string;
  /** The code the server sent, kept verbatim when it is not one of the SPEC's. */
  code?: string;
  /** Seconds from `Retry-After`, when the answer had one. */
  retryAfter?: number;
}

/** An error answer from the server: `{"error": {"code", "message", "request_id"}}`. */
export class ApiError extends JustStorageError {
  /** The SPEC code this class stands for. */
  static readonly CODE: string = "Unknown";

  readonly code: string;
  readonly status: number;
  readonly requestId: string;
  /** Seconds the server asked us to wait (`Retry-After`), or undefined. */
  readonly retryAfter: number | undefined;

  constructor(message: string, options: ApiErrorOptions) {
    super(message);
    this.code = options.code ?? (new.target as typeof ApiError).CODE;
    this.status = options.status;
    this.requestId = options.requestId ?? "";
    this.retryAfter = options.retryAfter;
  }

  override toString(): string {
    const rid = this.requestId ? ` (request ${this.requestId})` : "";
    return `${this.code} [${this.status}]: ${this.message}${rid}`;
  }
}

export class BadRequest extends ApiError {
  static override readonly CODE: string = "BadRequest";
}
export class ChecksumMismatch extends BadRequest {
  static override readonly CODE: string = "ChecksumMismatch";
}
export class Unauthorized extends ApiError {
  static override readonly CODE: string = "Unauthorized";
}
export class Forbidden extends ApiError {
  static override readonly CODE: string = "Forbidden";
}
export class NotFound extends ApiError {
  static override readonly CODE: string = "NotFound";
}
export class MethodNotAllowed extends ApiError {
  static override readonly CODE: string = "MethodNotAllowed";
}
export class Conflict extends ApiError {
  static override readonly CODE: string = "Conflict";
}
export class PreconditionFailed extends ApiError {
  static override readonly CODE: string = "PreconditionFailed";
}
export class PayloadTooLarge extends ApiError {
  static override readonly CODE: string = "PayloadTooLarge";
}
export class RangeNotSatisfiable extends ApiError {
  static override readonly CODE: string = "RangeNotSatisfiable";
}
export class TooManyRequests extends ApiError {
  static override readonly CODE: string = "TooManyRequests";
}
export class Internal extends ApiError {
  static override readonly CODE: string = "Internal";
}
export class Unavailable extends ApiError {
  static override readonly CODE: string = "Unavailable";
}
export class InsufficientStorage extends ApiError {
  static override readonly CODE: string = "InsufficientStorage";
}

/** The server could not be reached or the connection broke (after every retry). */
export class TransportError extends JustStorageError {}

/** Downloaded bytes do not hash to the ETag the server announced. */
export class IntegrityError extends JustStorageError {
  readonly expected: string;
  readonly actual: string;

  constructor(message: string, expected: string, actual: string) {
    super(message);
    this.expected = expected;
    this.actual = actual;
  }
}

type ApiErrorClass = typeof ApiError;

const CLASSES: readonly ApiErrorClass[] = [
  BadRequest,
  ChecksumMismatch,
  Unauthorized,
  Forbidden,
  NotFound,
  MethodNotAllowed,
  Conflict,
  PreconditionFailed,
  PayloadTooLarge,
  RangeNotSatisfiable,
  TooManyRequests,
  Internal,
  Unavailable,
  InsufficientStorage,
];
const CLASS_OF_CODE = new Map<string, ApiErrorClass>(CLASSES.map((cls) => [cls.CODE, cls]));
const CLASS_OF_STATUS = new Map<number, ApiErrorClass>([
  [400, BadRequest],
  [401, Unauthorized],
  [403, Forbidden],
  [404, NotFound],
  [405, MethodNotAllowed],
  [409, Conflict],
  [412, PreconditionFailed],
  [413, PayloadTooLarge],
  [416, RangeNotSatisfiable],
  [429, TooManyRequests],
  [500, Internal],
  [503, Unavailable],
  [507, InsufficientStorage],
]);

/** The class for a SPEC code; by status when the code is missing or unknown. */
export function errorClass(code: string | undefined, status: number): ApiErrorClass {
  const byCode = code === undefined ? undefined : CLASS_OF_CODE.get(code);
  if (byCode !== undefined) return byCode;
  return CLASS_OF_STATUS.get(status) ?? (status >= 500 ? Internal : BadRequest);
}
