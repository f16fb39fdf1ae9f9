package juststorage

// Every failure the client returns on purpose:
//
//	*APIError            the server answered an error (Code, Message, Status, RequestID, RetryAfter)
//	  Class              the SPEC code of its kind, matched by errors.Is against:
//	  ErrBadRequest           400
//	    ErrChecksumMismatch   400, the body did not match X-Content-SHA256 (also Is ErrBadRequest)
//	  ErrUnauthorized         401
//	  ErrForbidden            403
//	  ErrNotFound             404
//	  ErrMethodNotAllowed     405
//	  ErrConflict             409, a session's state refuses the change
//	  ErrPreconditionFailed   412
//	  ErrPayloadTooLarge      413
//	  ErrRangeNotSatisfiable  416
//	  ErrTooManyRequests      429 (RetryAfter)
//	  ErrInternal             500
//	  ErrUnavailable          503
//	  ErrInsufficientStorage  507
//	*TransportError      no answer: refused, reset, timed out (after every retry); unwraps to the cause
//	*IntegrityError      downloaded bytes do not hash to the object's ETag

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// codeError is the type of the sentinels: a SPEC error code and nothing else.
type codeError struct{ code string }

func (e *codeError) Error() string { return "juststorage: " + e.code }

// Sentinels, one per SPEC error code, for errors.Is.
var (
	ErrBadRequest          error = &codeError{"BadRequest"}
	ErrChecksumMismatch    error = &codeError{"ChecksumMismatch"}
	ErrUnauthorized        error = &codeError{"Unauthorized"}
	ErrForbidden           error = &codeError{"Forbidden"}
	ErrNotFound            error = &codeError{"NotFound"}
	ErrMethodNotAllowed    error = &codeError{"MethodNotAllowed"}
	ErrConflict            error = &codeError{"Conflict"}
	ErrPreconditionFailed  error = &codeError{"PreconditionFailed"}
	ErrPayloadTooLarge     error = &codeError{"PayloadTooLarge"}
	ErrRangeNotSatisfiable error = &codeError{"RangeNotSatisfiable"}
	ErrTooManyRequests     error = &codeError{"TooManyRequests"}
	ErrInternal            error = &codeError{"Internal"}
	ErrUnavailable         error = &codeError{"Unavailable"}
	ErrInsufficientStorage error = &codeError{"InsufficientStorage"}
)

var knownCodes = map[string]bool{
	"BadRequest": true, "ChecksumMismatch": true, "Unauthorized": true, "Forbidden": true,
	"NotFound": true, "MethodNotAllowed": true, "Conflict": true, "PreconditionFailed": true,
	"PayloadTooLarge": true, "RangeNotSatisfiable": true, "TooManyRequests": true,
	"Internal": true, "Unavailable": true, "InsufficientStorage": true,
}

var classOfStatus = map[int]string{
	400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
	405: "MethodNotAllowed", 409: "Conflict", 412: "PreconditionFailed", 413: "PayloadTooLarge",
	416: "RangeNotSatisfiable", 429: "TooManyRequests", 500: "Internal",
	503: "Unavailable", 507: "InsufficientStorage",
}

// APIError is an error answer from the server:
// {"error": {"code", "message", "request_id"}}.
type APIError struct {
	// Code is the SPEC error code as the server sent it (an unknown code is
	// kept verbatim; without a JSON body, the code of Class).
	Code string
	// Class is the SPEC code this error is handled as: Code when it is known,
	// else the code that belongs to Status. errors.Is matches on it.
	Class     string
	Message   string
	Status    int
	RequestID string
	// RetryAfter is the answer's Retry-After in seconds (zero when absent).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	rid := ""
	if e.RequestID != "" {
		rid = " (request " + e.RequestID + ")"
	}
	return fmt.Sprintf("juststorage: %s [%d]: %s%s", e.Code, e.Status, e.Message, rid)
}

// Is reports whether target is the sentinel of e's class; a ChecksumMismatch
// is also a BadRequest.
func (e *APIError) Is(target error) bool {
	sentinel, ok := target.(*codeError)
	if !ok {
		return false
	}
	return sentinel.code == e.Class || (e.Class == "ChecksumMismatch" && sentinel.code == "BadRequest")
}

// TransportError means no (complete) answer arrived: the connection was
// refused, broke or timed out, after every retry the policy allowed.
type TransportError struct {
	Op  string // "GET /v1/objects/…"
	Err error
}

func (e *TransportError) Error() string { return "juststorage: " + e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// IntegrityError means a whole-object download did not hash to the object's
// ETag. A file download leaves nothing behind when it happens.
type IntegrityError struct {
	Expected string // hex SHA-256 the server announced
	Actual   string // hex SHA-256 of the bytes received
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("juststorage: downloaded bytes hash to sha256:%s, the object is sha256:%s",
		e.Actual, e.Expected)
}

// classOf is the SPEC code an error is handled as: the code when known, else by status.
func classOf(code string, status int) string {
	if knownCodes[code] {
		return code
	}
	if class, ok := classOfStatus[status]; ok {
		return class
	}
	if status >= 500 {
		return "Internal"
	}
	return "BadRequest"
}

// errorFrom builds the typed error of an error answer whose body was read.
func errorFrom(resp *http.Response, body []byte) *APIError {
	var payload struct {
		Error *struct {
			Code      any `json:"code"`
			Message   any `json:"message"`
			RequestID any `json:"request_id"`
		} `json:"error"`
	}
	var code, message, requestID string
	if len(body) > 0 && json.Unmarshal(body, &payload) == nil && payload.Error != nil {
		code, _ = payload.Error.Code.(string)
		if payload.Error.Message != nil {
			message = fmt.Sprint(payload.Error.Message)
		}
		if payload.Error.RequestID != nil {
			requestID = fmt.Sprint(payload.Error.RequestID)
		}
	}
	class := classOf(code, resp.StatusCode)
	if code == "" {
		code = class
	}
	if message == "" {
		message = http.StatusText(resp.StatusCode)
		if message == "" {
			message = "HTTP " + strconv.Itoa(resp.StatusCode)
		}
	}
	if requestID == "" {
		requestID = resp.Header.Get("X-Request-Id")
	}
	retryAfter, _ := parseRetryAfter(resp.Header.Get("Retry-After"))
	return &APIError{
		Code:       code,
		Class:      class,
		Message:    message,
		Status:     resp.StatusCode,
		RequestID:  requestID,
		RetryAfter: retryAfter,
	}
}

// parseRetryAfter reads delta-seconds; an HTTP-date (or nothing) gives false.
func parseRetryAfter(value string) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	seconds, err := strconv.ParseFloat(value, 64)
	if err != nil || seconds != seconds { // NaN
		return 0, false
	}
	if seconds < 0 {
		seconds = 0
	}
	return time.Duration(seconds * float64(time.Second)), true
}
