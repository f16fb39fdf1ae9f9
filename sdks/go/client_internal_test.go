package juststorage

// Small unit tests of what the shared scenario cannot reach: the retry rules
// for uploads and connection failures, and request encoding.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// roundTripFunc answers requests without a network.
type roundTripFunc func(*http.Request) (*http.Response, error)

// RoundTrip closes the request body, as every http.RoundTripper must.
func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	return f(r)
}

func answer(req *http.Request, status int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{
		StatusCode: status, Header: header, Request: req,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}
}

var refused = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}

func fastRetries(events *[]RetryEvent) RetryPolicy {
	policy := DefaultRetryPolicy()
	policy.BackoffInitial, policy.BackoffMax = time.Millisecond, 2*time.Millisecond
	policy.OnRetry = func(e RetryEvent) { *events = append(*events, e) }
	return policy
}

// objectHash is the content hash of "hello".
const objectHash = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

const objectJSON = `{"id":"i","tenant_id":"t","namespace":"n","key":"k","content_hash":"` + objectHash + `","size_bytes":5,` +
	`"storage_class":"hot","content_type":"text/plain","created_at":"2025-12-11T10:30:00Z"}`

func TestUploadRetriesOnlyWhenARepeatCannotCreateASecondObject(t *testing.T) {
	cases := []struct {
		name  string
		opts  UploadOptions
		tries int32
	}{
		{"plain upload is sent once", UploadOptions{}, 1},
		{"If-None-Match * is retried", UploadOptions{IfNoneMatch: "*"}, 2},
		{"If-Match on other content is retried", UploadOptions{IfMatch: strings.Repeat("a", 64)}, 2},
		{"If-Match on the same content is sent once",
			UploadOptions{IfMatch: objectHash}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tries int32
			var events []RetryEvent
			c, _ := New("http://127.0.0.1:9", "t", WithRetry(fastRetries(&events)),
				WithTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
					if atomic.AddInt32(&tries, 1) == 1 {
						return nil, refused
					}
					return answer(r, 201, nil, objectJSON), nil
				})))
			opts := tc.opts
			opts.Tenant, opts.Namespace, opts.Key = "t", "n", "k"
			_, err := c.UploadBytes(context.Background(), []byte("hello"), opts)
			if tries != tc.tries {
				t.Fatalf("%d attempts, want %d (err %v)", tries, tc.tries, err)
			}
			var transportErr *TransportError
			if (tc.tries == 1) != errors.As(err, &transportErr) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

func TestThrottledStreamIsRetriedOnlyWhenItCanBeSentAgain(t *testing.T) {
	for _, seekable := range []bool{true, false} {
		var tries int32
		var bodies []string
		var events []RetryEvent
		c, _ := New("http://127.0.0.1:9", "t", WithRetry(fastRetries(&events)),
			WithTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				body, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(body))
				if atomic.AddInt32(&tries, 1) == 1 {
					return answer(r, 429, http.Header{"Retry-After": {"0"}}, `{}`), nil
				}
				return answer(r, 201, nil, objectJSON), nil
			})))
		var r io.Reader = bytes.NewReader([]byte("hello"))
		if !seekable {
			r = struct{ io.Reader }{r}
		}
		_, err := c.Upload(context.Background(), r, UploadOptions{Tenant: "t", Namespace: "n", Key: "k"})
		if seekable && (err != nil || len(bodies) != 2 || bodies[1] != "hello" || events[0].Status != 429) {
			t.Fatalf("seekable: err %v, bodies %q, events %+v", err, bodies, events)
		}
		if !seekable && (!errors.Is(err, ErrTooManyRequests) || tries != 1) {
			t.Fatalf("stream: err %v after %d attempts", err, tries)
		}
	}
}

func TestRetryAfterAboveTheLimitIsReturnedNotAwaited(t *testing.T) {
	c, _ := New("http://127.0.0.1:9", "t", WithTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return answer(r, 503, http.Header{"Retry-After": {"3600"}}, ``), nil
	})))
	started := time.Now()
	_, err := c.Usage(context.Background(), "t")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.RetryAfter != time.Hour || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	if time.Since(started) > time.Second {
		t.Fatal("waited for a Retry-After above MaxRetryAfter")
	}
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	policy := DefaultRetryPolicy()
	for attempt := 1; attempt < 12; attempt++ {
		ceiling := policy.BackoffInitial << (attempt - 1)
		if ceiling > policy.BackoffMax {
			ceiling = policy.BackoffMax
		}
		if d := policy.backoff(attempt); d < ceiling/2 || d > ceiling {
			t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, ceiling/2, ceiling)
		}
	}
}

func TestObjectPathsEscapeEverySegment(t *testing.T) {
	cases := map[string]ObjectRef{
		"/v1/objects/by-key/docs/acme/a%2Fb%20c%C3%BC": ByKey("acme", "docs", "a/b cü"),
		"/v1/objects/by-key/docs/acme/%2E%2E":          ByKey("acme", "docs", ".."),
		"/v1/objects/abc-1":                            ByID("acme", "abc-1"),
	}
	for want, ref := range cases {
		if got, err := ref.path(); err != nil || got != want {
			t.Errorf("%+v: %q %v, want %q", ref, got, err, want)
		}
	}
	if _, err := (ObjectRef{Tenant: "acme", ID: "x", Key: "k"}).path(); err == nil {
		t.Error("an id and a key together must be refused")
	}
}

func TestDownloadThatDoesNotMatchItsETagFailsAndLeavesNoFile(t *testing.T) {
	c, _ := New("http://127.0.0.1:9", "t", WithTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		header := http.Header{"Etag": {`"sha256:` + strings.Repeat("0", 64) + `"`}, "X-Object-Id": {"i"}}
		return answer(r, 200, header, "hello"), nil
	})))
	_, err := c.DownloadBytes(context.Background(), ByID("t", "i"), nil)
	var integrity *IntegrityError
	if !errors.As(err, &integrity) || integrity.Actual != strings.TrimPrefix(objectHash, "sha256:") {
		t.Fatalf("err %v", err)
	}
	path := t.TempDir() + "/out"
	if _, err := c.DownloadFile(context.Background(), ByID("t", "i"), path, nil); !errors.As(err, &integrity) {
		t.Fatalf("err %v", err)
	}
	if matches, _ := filepath.Glob(path + "*"); len(matches) != 0 {
		t.Fatalf("left behind: %v", matches)
	}
	// A range is not the whole object: it is not checked.
	if data, err := c.DownloadBytes(context.Background(), ByID("t", "i"),
		&DownloadOptions{Range: &ByteRange{First: 0, Last: ToEnd}}); err != nil || string(data) != "hello" {
		t.Fatalf("range: %q %v", data, err)
	}
}

func TestPutByHashSendsTheDigestAndSizeWithoutABody(t *testing.T) {
	var seen []*http.Request
	var bodies []string
	var events []RetryEvent
	c, _ := New("http://127.0.0.1:9", "t", WithRetry(fastRetries(&events)),
		WithTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen = append(seen, r)
			if r.Body != nil {
				body, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(body))
			}
			switch len(seen) {
			case 1:
				return answer(r, 201, nil, objectJSON), nil
			case 2:
				return answer(r, 503, http.Header{"Retry-After": {"0"}}, `{}`), nil
			}
			return answer(r, 404, nil, `{"error":{"code":"NotFound","message":"m","request_id":"r"}}`), nil
		})))
	opts := UploadOptions{Tenant: "t", Namespace: "n", Key: "k", SHA256: objectHash, Size: 5}
	info, found, err := c.PutByHash(context.Background(), opts)
	if err != nil || !found || info.ID != "i" {
		t.Fatalf("found %v, info %+v, err %v", found, info, err)
	}
	first := seen[0]
	if first.Method != http.MethodPost || first.URL.Path != "/v1/objects/by-hash" ||
		first.Header.Get("X-Content-SHA256") != objectHash[len("sha256:"):] ||
		first.Header.Get("X-Content-Length") != "5" || strings.Join(bodies, "") != "" {
		t.Fatalf("request %s %s %v, body %q", first.Method, first.URL, first.Header, bodies)
	}
	_, found, err = c.PutByHash(context.Background(), opts) // 503, retried, then 404
	if err != nil || found || len(seen) != 3 || events[0].Status != 503 {
		t.Fatalf("not found: found %v, err %v, %d requests, events %+v", found, err, len(seen), events)
	}
	if _, _, err := c.PutByHash(context.Background(), UploadOptions{Tenant: "t", Namespace: "n", Key: "k", SHA256: "abc"}); err == nil {
		t.Fatal("a malformed digest was sent")
	}
}
