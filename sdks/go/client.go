package juststorage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Version is this client's version, sent in the User-Agent.
const Version = "0.1.0"

// DefaultChunkSize is the size of the reads and writes of a transfer.
const DefaultChunkSize = 1 << 20

// errorBodyLimit bounds how much of an error answer is read.
const errorBodyLimit = 1 << 16

// Client is a JustStorage client; it is safe for concurrent use.
type Client struct {
	base      string
	token     string
	http      *http.Client
	retry     RetryPolicy
	chunkSize int
	userAgent string
	caFile    string // WithCACertFile: the CAs the default transport trusts
}

// Option configures a Client in New.
type Option func(*Client)

// WithRetry replaces the retry policy (DefaultRetryPolicy otherwise).
func WithRetry(policy RetryPolicy) Option { return func(c *Client) { c.retry = policy } }

// WithHTTPClient sends every request through hc (its Timeout applies to
// whole transfers, so leave it zero for large objects).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// WithTransport sends every request through rt (tests plug in a stub here).
func WithTransport(rt http.RoundTripper) Option {
	return func(c *Client) { c.http = &http.Client{Transport: rt} }
}

// WithChunkSize sets the read/write size of transfers (DefaultChunkSize otherwise).
func WithChunkSize(n int) Option {
	return func(c *Client) {
		if n > 0 {
			c.chunkSize = n
		}
	}
}

// WithCACertFile makes the default transport trust exactly the PEM
// certificates in path (a private CA) instead of the system's store. Without
// it the system's store is used, which on Linux follows SSL_CERT_FILE and
// SSL_CERT_DIR. It has no effect with WithHTTPClient or WithTransport.
func WithCACertFile(path string) Option { return func(c *Client) { c.caFile = path } }

// WithUserAgent replaces the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the server at baseURL ("http://127.0.0.1:8080").
// token is an API key or a JWT, sent as a Bearer credential; empty sends none.
func New(baseURL, token string, opts ...Option) (*Client, error) {
	parsed, err := url.Parse(baseURL)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, fmt.Errorf("juststorage: base URL %q is not an http(s) URL", baseURL)
	}
	c := &Client{
		base:      strings.TrimRight(baseURL, "/"),
		token:     token,
		retry:     DefaultRetryPolicy(),
		chunkSize: DefaultChunkSize,
		userAgent: "juststorage-client-go/" + Version,
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.http == nil {
		transport := newTransport()
		if c.caFile != "" {
			pool, err := certPool(c.caFile)
			if err != nil {
				return nil, err
			}
			transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		c.http = &http.Client{Transport: transport}
	}
	return c, nil
}

// certPool reads the PEM certificates of a CA file.
func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("juststorage: CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("juststorage: CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// newTransport is the default transport: the proxy from the environment
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY; Go never proxies localhost or loopback
// addresses), no transparent gzip (it would hide Content-Length and break
// ranges), and buffers large enough for bulk transfers.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DisableCompression:    true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 120 * time.Second,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
	}
}

// CloseIdleConnections closes the kept-alive connections of the client's transport.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// request is one API call, sent again on a retry.
type request struct {
	method string
	path   string // escaped, from the root: "/v1/objects/…"
	query  url.Values
	header http.Header
	// body opens the body for one attempt (nil: no body); size is its length, -1 unknown.
	body func() (io.ReadCloser, error)
	size int64
	// replayable: body can be opened again. idempotent: sending twice has the
	// effect of sending once, so a connection failure may be retried.
	replayable bool
	idempotent bool
	accept     []int // statuses returned instead of raised
}

func (r *request) op() string { return r.method + " " + r.path }

// send sends one request with retries and returns the open response, or an error.
//
// 429/503 are retried when the body can be sent again: the server refused the
// request, so nothing was stored. A connection failure is retried when the call
// is idempotent, or when the connection was never made (nothing was sent).
func (c *Client) send(ctx context.Context, r *request) (*http.Response, error) {
	policy := c.retry
	for attempt := 1; ; attempt++ {
		req, err := c.build(ctx, r)
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			neverSent := isDialError(err)
			canRepeat := (r.idempotent || neverSent) && (r.replayable || r.body == nil)
			if attempt >= policy.MaxAttempts || !canRepeat {
				return nil, &TransportError{Op: r.op(), Err: err}
			}
			delay := policy.backoff(attempt)
			policy.notify(RetryEvent{r.method, r.path, attempt, delay, 0, err})
			if err := sleep(ctx, delay); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode < 400 || contains(r.accept, resp.StatusCode) {
			return resp, nil
		}
		delay, retry := time.Duration(0), false
		if r.replayable || r.body == nil {
			delay, retry = policy.delayFor(resp, attempt)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
		resp.Body.Close()
		if !retry {
			return nil, errorFrom(resp, body)
		}
		policy.notify(RetryEvent{r.method, r.path, attempt, delay, resp.StatusCode, nil})
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

func (c *Client) build(ctx context.Context, r *request) (*http.Request, error) {
	target := c.base + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("juststorage: %s: %w", r.op(), err)
	}
	for name, values := range r.header {
		req.Header[name] = values
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r.body != nil {
		body, err := r.body()
		if err != nil {
			return nil, err
		}
		req.Body = body
		req.ContentLength = r.size
		if r.size == 0 {
			body.Close()
			req.Body = http.NoBody
		}
	}
	return req, nil
}

// isDialError is true when the connection was never made, so nothing was sent.
func isDialError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

func contains(values []int, v int) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

// getJSON sends r and decodes its JSON answer into out.
func (c *Client) doJSON(ctx context.Context, r *request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &TransportError{Op: r.op(), Err: fmt.Errorf("reading the answer: %w", err)}
	}
	return nil
}

// Health is GET /health (liveness); a 503 is returned with OK false, not as an error.
func (c *Client) Health(ctx context.Context) (Health, error) {
	return c.health(ctx, "/health")
}

// Ready is GET /ready (database and storage roots); a 503 is returned with
// OK false, neither raised nor retried.
func (c *Client) Ready(ctx context.Context) (Health, error) {
	return c.health(ctx, "/ready")
}

func (c *Client) health(ctx context.Context, path string) (Health, error) {
	r := &request{method: http.MethodGet, path: path, idempotent: true, accept: []int{503}}
	resp, err := c.send(ctx, r)
	if err != nil {
		return Health{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	if err != nil {
		return Health{}, &TransportError{Op: r.op(), Err: err}
	}
	var data struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if json.Unmarshal(body, &data) != nil || data.Status == "" {
		data.Status = "unavailable"
	}
	if data.Checks == nil {
		data.Checks = map[string]string{}
	}
	return Health{
		OK:     resp.StatusCode == http.StatusOK && data.Status == "ok",
		Status: data.Status,
		Checks: data.Checks,
	}, nil
}

// Usage is GET /v1/usage: the tenant's logical totals and monthly cost.
func (c *Client) Usage(ctx context.Context, tenant string) (Usage, error) {
	r := &request{
		method: http.MethodGet, path: "/v1/usage", idempotent: true,
		query: url.Values{"tenant": {tenant}},
	}
	var raw json.RawMessage
	if err := c.doJSON(ctx, r, &raw); err != nil {
		return Usage{}, err
	}
	var usage Usage
	if err := json.Unmarshal(raw, &usage); err != nil {
		return Usage{}, &TransportError{Op: r.op(), Err: err}
	}
	if err := json.Unmarshal(raw, &usage.Raw); err != nil {
		return Usage{}, &TransportError{Op: r.op(), Err: err}
	}
	return usage, nil
}

// Head is HEAD of one object: its headers without the body.
func (c *Client) Head(ctx context.Context, ref ObjectRef) (ObjectHead, error) {
	path, err := ref.path()
	if err != nil {
		return ObjectHead{}, err
	}
	resp, err := c.send(ctx, &request{
		method: http.MethodHead, path: path, header: ref.header(), idempotent: true,
	})
	if err != nil {
		return ObjectHead{}, err
	}
	resp.Body.Close()
	return headFrom(resp.Header, resp.ContentLength), nil
}

// Delete removes one version (ByID) or every version of a key (ByKey);
// ErrNotFound when there is none.
func (c *Client) Delete(ctx context.Context, ref ObjectRef) error {
	path, err := ref.path()
	if err != nil {
		return err
	}
	// A repeated DELETE that the first one already did answers 404, which is
	// the truth about the object, so connection failures are retried.
	resp, err := c.send(ctx, &request{
		method: http.MethodDelete, path: path, header: ref.header(), idempotent: true,
	})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
