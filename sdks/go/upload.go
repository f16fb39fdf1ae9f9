package juststorage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// UploadOptions are the upload's headers (SPEC §2 Upload).
type UploadOptions struct {
	Tenant    string // required
	Namespace string // required
	Key       string // required; any UTF-8 (sent percent-encoded when not printable ASCII)
	// StorageClass is "hot" or "cold" (empty: the server's default, hot).
	StorageClass string
	// ContentType is stored with the object (empty: application/octet-stream).
	ContentType string
	// IfNoneMatch "*" creates only: ErrPreconditionFailed when the key has a version.
	IfNoneMatch string
	// IfMatch replaces only the version with this ETag ("sha256:<hex>", quoted
	// or not, or a bare hex digest): ErrPreconditionFailed otherwise.
	IfMatch string
	// SHA256 is the hex digest of the content, sent as X-Content-SHA256: the
	// server refuses a body that does not match it (ErrChecksumMismatch).
	// UploadBytes and UploadFile compute it when it is empty.
	SHA256 string
	// Size is the number of bytes Upload reads from its reader (0: until EOF;
	// the size of a file or bytes.Reader is found by itself). A known size is
	// sent as Content-Length, an unknown one chunked.
	Size int64
	// NoChecksum makes UploadFile skip hashing the file before sending it.
	NoChecksum bool
	// Progress, when set, is called with the number of bytes just sent.
	Progress func(n int)

	// MultipartThreshold: UploadFile sends a file of this size or more through a
	// resumable multipart session (0: DefaultParallelThreshold; -1: never).
	MultipartThreshold int64
	// Parallel is how many parts are in flight at once (0: DefaultParallel).
	Parallel int
	// PartSize is the bytes per part (0: max(8 MiB, size/10000)).
	PartSize int64
	// StateDir keeps the state of unfinished multipart uploads (empty: DefaultStateDir()).
	StateDir string
	// OnResume, when set, is called once with the bytes an earlier, interrupted
	// UploadFile of the same file already sent.
	OnResume func(n int64)
}

// bodyReleaseTimeout bounds the wait for a transport to close a body (which
// every http.RoundTripper must do) before the reader is rewound for a retry.
const bodyReleaseTimeout = 30 * time.Second

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// normalizeETag gives `"sha256:<hex>"` for a quoted ETag, sha256:<hex> or a bare digest.
func normalizeETag(value string) (string, error) {
	bare := strings.ToLower(strings.TrimPrefix(strings.Trim(strings.TrimSpace(value), `"`), "sha256:"))
	if !hex64.MatchString(bare) {
		return "", fmt.Errorf("juststorage: not a SHA-256 ETag: %q", value)
	}
	return `"sha256:` + bare + `"`, nil
}

func (o *UploadOptions) header() (http.Header, error) {
	if o.Tenant == "" || o.Namespace == "" || o.Key == "" {
		return nil, errors.New("juststorage: an upload needs Tenant, Namespace and Key")
	}
	h := http.Header{}
	h.Set("X-Tenant", o.Tenant)
	h.Set("X-Namespace", o.Namespace)
	if printableASCII(o.Key) {
		h.Set("X-Key", o.Key)
	} else { // raw UTF-8 is allowed too; percent-encoding keeps every header ASCII
		h.Set("X-Key", escape(o.Key))
		h.Set("X-Key-Encoding", "percent")
	}
	if o.StorageClass != "" {
		h.Set("X-Storage-Class", o.StorageClass)
	}
	if o.ContentType != "" {
		h.Set("Content-Type", o.ContentType)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	if o.SHA256 != "" {
		digest := strings.ToLower(o.SHA256)
		if !hex64.MatchString(digest) {
			return nil, fmt.Errorf("juststorage: SHA256 is not 64 hex digits: %q", o.SHA256)
		}
		h.Set("X-Content-SHA256", digest)
	}
	if o.IfNoneMatch != "" {
		if o.IfNoneMatch != "*" {
			return nil, errors.New(`juststorage: IfNoneMatch accepts only "*"`)
		}
		h.Set("If-None-Match", "*")
	}
	if o.IfMatch != "" {
		etag, err := normalizeETag(o.IfMatch)
		if err != nil {
			return nil, err
		}
		h.Set("If-Match", etag)
	}
	return h, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotent is true when sending the upload twice cannot create a second object.
//
// With If-None-Match: * a repeat finds the key taken (412). With If-Match on a
// digest other than the new content's, a repeat finds the ETag changed (412);
// with the same digest it could add a second, identical version.
func (o *UploadOptions) idempotent() bool {
	if o.IfNoneMatch == "*" {
		return true
	}
	if o.IfMatch != "" && o.SHA256 != "" {
		etag, err := normalizeETag(o.IfMatch)
		return err == nil && etag != `"sha256:`+strings.ToLower(o.SHA256)+`"`
	}
	return false
}

// UploadBytes uploads data; its SHA-256 is sent as X-Content-SHA256.
func (c *Client) UploadBytes(ctx context.Context, data []byte, opts UploadOptions) (ObjectInfo, error) {
	if opts.SHA256 == "" {
		sum := sha256.Sum256(data)
		opts.SHA256 = hex.EncodeToString(sum[:])
	}
	open := func() (io.ReadCloser, error) {
		return c.progressBody(bytes.NewReader(data), nil, opts.Progress), nil
	}
	return c.upload(ctx, open, int64(len(data)), true, &opts)
}

// UploadFile uploads the file at path, streamed in chunks.
//
// A file of MultipartThreshold bytes or more goes through a multipart session,
// Parallel parts at a time; when such an upload is interrupted, calling
// UploadFile again with the same arguments sends only the parts the server does
// not hold yet (see multipart.go). A server without sessions gets one request.
//
// Unless NoChecksum is set (or SHA256 given), the file is hashed first in one
// streaming pass and the digest is sent as X-Content-SHA256, so a file that
// changes while it is sent is refused (ErrChecksumMismatch) instead of stored.
func (c *Client) UploadFile(ctx context.Context, path string, opts UploadOptions) (ObjectInfo, error) {
	info, err := os.Stat(path)
	if err != nil {
		return ObjectInfo{}, err
	}
	if !info.Mode().IsRegular() {
		return ObjectInfo{}, fmt.Errorf("juststorage: %s is not a regular file", path)
	}
	size := info.Size()
	threshold := opts.MultipartThreshold
	if threshold == 0 {
		threshold = DefaultParallelThreshold
	}
	if threshold > 0 && size >= threshold {
		if opts.Parallel <= 0 {
			opts.Parallel = DefaultParallel
		}
		object, ok, err := c.uploadFileParts(ctx, path, info, opts)
		if ok || err != nil {
			return object, err
		}
	}
	if opts.SHA256 == "" && !opts.NoChecksum {
		digest, n, err := c.hashFile(ctx, path)
		if err != nil {
			return ObjectInfo{}, err
		}
		opts.SHA256, size = digest, n
	}
	open := func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		if opts.Progress == nil {
			return f, nil // as itself, so that the transport can use sendfile(2)
		}
		return c.progressBody(f, f, opts.Progress), nil
	}
	return c.upload(ctx, open, size, true, &opts)
}

func (c *Client) hashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	digest := sha256.New()
	buf := make([]byte, c.chunkSize)
	var size int64
	for {
		n, err := f.Read(buf)
		digest.Write(buf[:n])
		size += int64(n)
		if err == io.EOF {
			return hex.EncodeToString(digest.Sum(nil)), size, nil
		}
		if err != nil {
			return "", 0, err
		}
		if ctx.Err() != nil {
			return "", 0, ctx.Err()
		}
	}
}

// Upload uploads what r yields until EOF (or opts.Size bytes).
//
// It is sent with Content-Length when the size is known (opts.Size, or r is
// a *os.File on a regular file, a *bytes.Reader or a *strings.Reader), chunked
// otherwise. Only a reader that can seek back to where it started can be sent
// twice, so other readers are never retried. X-Content-SHA256 is sent only
// when opts.SHA256 is given.
func (c *Client) Upload(ctx context.Context, r io.Reader, opts UploadOptions) (ObjectInfo, error) {
	size := opts.Size
	if size <= 0 {
		size = remainingSize(r)
	}
	start := int64(-1)
	if seeker, ok := r.(io.Seeker); ok {
		if pos, err := seeker.Seek(0, io.SeekCurrent); err == nil {
			start = pos
		}
	}
	var previous *uploadBody
	open := func() (io.ReadCloser, error) {
		if previous != nil {
			// The transport may still read the last attempt's body on its own
			// goroutine until it closes it: only then is r ours to rewind.
			select {
			case <-previous.closed:
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(bodyReleaseTimeout):
				return nil, errors.New("juststorage: the transport did not close the last attempt's body")
			}
			if _, err := r.(io.Seeker).Seek(start, io.SeekStart); err != nil {
				return nil, err
			}
		}
		var body io.Reader = r
		if size >= 0 {
			body = io.LimitReader(r, size)
		}
		previous = c.progressBody(body, nil, opts.Progress)
		return previous, nil
	}
	return c.upload(ctx, open, size, start >= 0, &opts)
}

// remainingSize is the number of bytes left in r when r can tell, else -1.
func remainingSize(r io.Reader) int64 {
	switch v := r.(type) {
	case *bytes.Reader:
		return int64(v.Len())
	case *strings.Reader:
		return int64(v.Len())
	case *os.File:
		info, err := v.Stat()
		if err != nil || !info.Mode().IsRegular() {
			return -1
		}
		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return info.Size() - pos
	}
	return -1
}

func (c *Client) upload(
	ctx context.Context, open func() (io.ReadCloser, error), size int64, replayable bool,
	opts *UploadOptions,
) (ObjectInfo, error) {
	header, err := opts.header()
	if err != nil {
		return ObjectInfo{}, err
	}
	r := &request{
		method:     http.MethodPost,
		path:       "/v1/objects",
		header:     header,
		body:       open,
		size:       size,
		replayable: replayable,
		idempotent: replayable && opts.idempotent(),
	}
	var info ObjectInfo
	if err := c.doJSON(ctx, r, &info); err != nil {
		return ObjectInfo{}, err
	}
	return info, nil
}

// progressBody is a request body reading from r in whole chunks, counting
// progress; closing it closes closer (the file) when there is one.
func (c *Client) progressBody(r io.Reader, closer io.Closer, progress func(int)) *uploadBody {
	return &uploadBody{r: r, closer: closer, progress: progress, closed: make(chan struct{})}
}

type uploadBody struct {
	r        io.Reader
	closer   io.Closer
	progress func(int)
	once     sync.Once
	closed   chan struct{} // closed by Close: the transport is done with the body
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 && b.progress != nil {
		b.progress(n)
	}
	return n, err
}

func (b *uploadBody) Close() error {
	var err error
	b.once.Do(func() {
		if b.closer != nil {
			err = b.closer.Close()
		}
		close(b.closed)
	})
	return err
}
