package juststorage

import (
	"context"
	"math/rand"
	"net/http"
	"sync"
	"time"
)

// RetryEvent is passed to RetryPolicy.OnRetry before each wait: what failed
// and how long the client waits before the next attempt.
type RetryEvent struct {
	Method  string
	Path    string
	Attempt int           // the attempt that failed, from 1 (for a resume: the resume's number)
	Delay   time.Duration // the wait before the next attempt
	Status  int           // the answer's status; 0 for a connection failure or a broken download
	Err     error         // the connection error, nil for a status
}

// RetryPolicy bounds retries. MaxAttempts counts the first try.
//
// 429 and 503 wait Retry-After when the server sends one (never longer than
// MaxRetryAfter; a longer demand is returned as the error), else exponential
// backoff with jitter between BackoffInitial and BackoffMax. A download
// resumes at most MaxResumes times after its connection broke mid-body.
type RetryPolicy struct {
	MaxAttempts    int
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	MaxRetryAfter  time.Duration
	MaxResumes     int
	// OnRetry, when set, is called before every wait (from the calling goroutine).
	OnRetry func(RetryEvent)
}

// DefaultRetryPolicy is what New uses: 4 attempts, 0.2 s to 10 s backoff,
// Retry-After up to 60 s, 5 resumes.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:    4,
		BackoffInitial: 200 * time.Millisecond,
		BackoffMax:     10 * time.Second,
		MaxRetryAfter:  60 * time.Second,
		MaxResumes:     5,
	}
}

// NoRetries makes every call a single attempt and never resumes a download.
func NoRetries() RetryPolicy {
	policy := DefaultRetryPolicy()
	policy.MaxAttempts = 1
	policy.MaxResumes = 0
	return policy
}

var retryStatuses = map[int]bool{http.StatusTooManyRequests: true, http.StatusServiceUnavailable: true}

var (
	jitterMu sync.Mutex
	jitter   = rand.New(rand.NewSource(time.Now().UnixNano()))
)

// backoff is the wait after failed attempt number `attempt` (from 1): uniform
// in [ceiling/2, ceiling], ceiling doubling from BackoffInitial up to BackoffMax.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	ceiling := p.BackoffInitial
	for i := 1; i < attempt && ceiling < p.BackoffMax; i++ {
		ceiling *= 2
	}
	if ceiling > p.BackoffMax {
		ceiling = p.BackoffMax
	}
	if ceiling <= 0 {
		return 0
	}
	jitterMu.Lock()
	defer jitterMu.Unlock()
	return ceiling/2 + time.Duration(jitter.Int63n(int64(ceiling/2)+1))
}

// delayFor is the wait before retrying resp, or false when resp is final.
func (p RetryPolicy) delayFor(resp *http.Response, attempt int) (time.Duration, bool) {
	if !retryStatuses[resp.StatusCode] || attempt >= p.MaxAttempts {
		return 0, false
	}
	retryAfter, ok := parseRetryAfter(resp.Header.Get("Retry-After"))
	if !ok {
		return p.backoff(attempt), true
	}
	if retryAfter > p.MaxRetryAfter {
		return 0, false
	}
	return retryAfter, true
}

func (p RetryPolicy) notify(event RetryEvent) {
	if p.OnRetry != nil {
		p.OnRetry(event)
	}
}

// sleep waits d, or less when ctx ends first (then it returns ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
