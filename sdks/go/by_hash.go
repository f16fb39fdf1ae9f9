package juststorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// PutByHash is upload by hash (POST /v1/objects/by-hash): it commits a new
// version of opts' key from content the tenant already stores, without sending
// it. opts.SHA256 (hex, or sha256:<hex>) and opts.Size (the content's size, 0
// for empty content) name the content; the other upload options apply as for
// UploadBytes (Progress and NoChecksum are not used).
//
// found is false, with no error, when the tenant stores no object of this
// SHA-256 and size in the storage class: send the bytes then. Content other
// tenants store never matches. Other failures are errors as for an upload.
func (c *Client) PutByHash(ctx context.Context, opts UploadOptions) (info ObjectInfo, found bool, err error) {
	if opts.SHA256 == "" || opts.Size < 0 {
		return ObjectInfo{}, false, errors.New("juststorage: PutByHash needs SHA256 and a Size of 0 or more")
	}
	etag, err := normalizeETag(opts.SHA256)
	if err != nil {
		return ObjectInfo{}, false, err
	}
	opts.SHA256 = etag[len(`"sha256:`) : len(etag)-1]
	header, err := opts.header()
	if err != nil {
		return ObjectInfo{}, false, err
	}
	header.Set("X-Content-Length", strconv.FormatInt(opts.Size, 10))
	r := &request{
		method:     http.MethodPost,
		path:       "/v1/objects/by-hash",
		header:     header,
		size:       -1,
		idempotent: opts.idempotent(),
		accept:     []int{http.StatusNotFound},
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return ObjectInfo{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		_, _ = io.Copy(io.Discard, resp.Body) // so that the connection is reused
		return ObjectInfo{}, false, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		if ctx.Err() != nil {
			return ObjectInfo{}, false, ctx.Err()
		}
		return ObjectInfo{}, false, &TransportError{Op: r.op(), Err: fmt.Errorf("reading the answer: %w", err)}
	}
	return info, true, nil
}
