// Package juststorage is the Go client for JustStorage (SPEC v1.1).
//
// It uses the standard library only. Every call takes a context.Context
// first; uploads read from an io.Reader (bytes, a file or a stream of unknown
// size) and downloads write to an io.Writer, a file or memory, streamed in
// bounded memory. A whole-object download is checked against the object's
// SHA-256 after its last byte and resumes with Range when the connection
// breaks.
//
// Errors from the server are *APIError values. Each SPEC error code has a
// sentinel (ErrNotFound, ErrChecksumMismatch, ...) for errors.Is:
//
//	if errors.Is(err, juststorage.ErrNotFound) { ... }
//	var apiErr *juststorage.APIError
//	if errors.As(err, &apiErr) { log.Print(apiErr.Code, apiErr.RequestID) }
//
// 429 and 503 answers are retried with backoff that honours Retry-After,
// connection failures are retried on idempotent calls, and an upload is
// retried only when repeating it cannot create a second object (see
// RetryPolicy).
package juststorage
