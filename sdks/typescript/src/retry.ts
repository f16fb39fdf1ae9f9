/** When and how long to wait before trying a request again. */

/** Statuses that mean "refused, nothing done: ask again later". */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/** Passed to `onRetry` before each wait: what failed and how long we wait. */
export interface RetryEvent {
  readonly method: string;
  readonly path: string;
  /** The attempt that failed, from 1 (for a resumed download: the resume's number). */
  readonly attempt: number;
  /** Milliseconds we wait before the next attempt. */
  readonly delayMs: number;
  /** The answer's status; null for a connection failure (or a broken download body). */
  readonly status: number | null;
  readonly error: string;
}

export interface RetryOptions {
  /** Attempts in all, counting the first (1 = no retries). Default 4. */
  maxAttempts: number;
  /** First backoff ceiling; doubles per attempt up to `backoffMaxMs`. Default 200. */
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** A longer `Retry-After` is not waited for: the error is thrown. Default 60 000. */
  maxRetryAfterMs: number;
  /** How often one download may resume after its connection broke. Default 5. */
  maxResumes: number;
  onRetry: ((event: RetryEvent) => void) | undefined;
}

/**
 * Bounded retries. 429 and 503 wait `Retry-After` when the server sends one
 * (never longer than `maxRetryAfterMs`; a longer demand is not retried), else
 * exponential backoff with jitter between `backoffInitialMs` and `backoffMaxMs`.
 */
export class RetryPolicy implements RetryOptions {
  readonly maxAttempts: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly maxRetryAfterMs: number;
  readonly maxResumes: number;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;

  constructor(options: Partial<RetryOptions> = {}) {
    this.maxAttempts = atLeast(options.maxAttempts ?? 4, 1, "maxAttempts");
    this.backoffInitialMs = atLeast(options.backoffInitialMs ?? 200, 0, "backoffInitialMs");
    this.backoffMaxMs = atLeast(options.backoffMaxMs ?? 10_000, 0, "backoffMaxMs");
    this.maxRetryAfterMs = atLeast(options.maxRetryAfterMs ?? 60_000, 0, "maxRetryAfterMs");
    this.maxResumes = atLeast(options.maxResumes ?? 5, 0, "maxResumes");
    this.onRetry = options.onRetry;
  }

  /** A copy with some options changed. */
  with(options: Partial<RetryOptions>): RetryPolicy {
    return new RetryPolicy({ ...this.options(), ...options });
  }

  options(): RetryOptions {
    return {
      maxAttempts: this.maxAttempts,
      backoffInitialMs: this.backoffInitialMs,
      backoffMaxMs: this.backoffMaxMs,
      maxRetryAfterMs: this.maxRetryAfterMs,
      maxResumes: this.maxResumes,
      onRetry: this.onRetry,
    };
  }

  /** Full-jitter backoff in the upper half of the attempt's ceiling. */
  backoffMs(attempt: number): number {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (attempt - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** Milliseconds to wait before retrying an answer, or null when it is final. */
  delayMsFor(status: number, retryAfterHeader: string | null, attempt: number): number | null {
    if (!RETRY_STATUSES.has(status) || attempt >= this.maxAttempts) return null;
    const retryAfter = parseRetryAfter(retryAfterHeader);
    if (retryAfter === undefined) return this.backoffMs(attempt);
    const ms = retryAfter * 1000;
    return ms > this.maxRetryAfterMs ? null : ms;
  }
}

/** Retries off: one attempt, no resumed downloads. */
export const NO_RETRIES: RetryPolicy = new RetryPolicy({ maxAttempts: 1, maxResumes: 0 });

/** Seconds from a `Retry-After` header; undefined when absent or an HTTP-date. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(value)) {
    return undefined;
  }
  return Math.max(0, Number(value.trim()));
}

function atLeast(value: number, minimum: number, name: string): number {
  if (!Number.isFinite(value) || value < minimum) {
    throw new RangeError(`RetryPolicy.${name} must be a number >= ${minimum}, not ${value}`);
  }
  return value;
}
