package juststorage

// Presigned URLs (SPEC §8.5).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// PresignOptions names what a presigned URL does: Method ("GET", "HEAD" or "PUT")
// on the object named by Namespace and Key, or by ID (GET and HEAD only).
type PresignOptions struct {
	Method    string
	Tenant    string
	Namespace string
	Key       string
	ID        string
	// ExpiresIn is how long the URL works (1 s to 7 days); zero: the server's 1 hour.
	ExpiresIn time.Duration
}

// PresignedURL is the answer of POST /v1/presign.
type PresignedURL struct {
	// URL is absolute: the server's public URL, or this client's base URL.
	URL       string    `json:"url"`
	Method    string    `json:"method"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Presign returns a URL that does one method on one object without a credential
// until it expires. A GET URL by key reads the newest version at the time of use.
func (c *Client) Presign(ctx context.Context, opts PresignOptions) (PresignedURL, error) {
	fields := map[string]any{"method": opts.Method, "tenant": opts.Tenant}
	if opts.ID != "" {
		fields["id"] = opts.ID
	} else {
		fields["namespace"] = opts.Namespace
		fields["key"] = opts.Key
	}
	if opts.ExpiresIn != 0 {
		fields["expires_in"] = int64(opts.ExpiresIn / time.Second)
	}
	payload, err := json.Marshal(fields)
	if err != nil {
		return PresignedURL{}, err
	}
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	r := &request{
		method: http.MethodPost, path: "/v1/presign", header: header,
		body:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil },
		size:       int64(len(payload)),
		replayable: true, idempotent: true, // signing again does no harm
	}
	var signed PresignedURL
	if err := c.doJSON(ctx, r, &signed); err != nil {
		return PresignedURL{}, err
	}
	if strings.HasPrefix(signed.URL, "/") {
		signed.URL = c.base + signed.URL
	}
	return signed, nil
}
