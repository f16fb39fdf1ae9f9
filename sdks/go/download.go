package juststorage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DownloadOptions are the optional parts of a download.
type DownloadOptions struct {
	// Range asks for part of the object (206). A ranged download is not
	// checked against the object's SHA-256 (only whole objects are).
	Range *ByteRange
	// Progress, when set, is called with the number of bytes just received.
	Progress func(n int)

	// ParallelThreshold: DownloadFile fetches a whole object of this size or
	// more as resumable parallel ranges (0: DefaultParallelThreshold; -1: never).
	ParallelThreshold int64
	// Parallel is how many ranges are in flight at once (0: DefaultParallel).
	Parallel int
	// RangeSize is the bytes per range, the unit a resumed download keeps (0: 16 MiB).
	RangeSize int64
	// OnResume, when set, is called once with the bytes an earlier, interrupted
	// DownloadFile of the same version already wrote.
	OnResume func(n int64)
	// StateDir keeps the state of unfinished ranged downloads (empty: DefaultStateDir()).
	StateDir string
}

// Download is an open download: Head, then the body through Read.
//
// The body resumes with Range (by object id, so it cannot switch versions)
// when the connection breaks, at most RetryPolicy.MaxResumes times, and a
// whole-object download is checked against the ETag after its last byte: Read
// returns an *IntegrityError instead of io.EOF on a mismatch. Close it.
type Download struct {
	// Head is what the answer's headers say about the object.
	Head ObjectHead
	// Status is 200, or 206 for a range.
	Status int
	// Length is the number of bytes the body has (of the range, when one was
	// asked); -1 when the server did not say.
	Length int64

	ctx      context.Context
	client   *Client
	ref      ObjectRef
	body     io.ReadCloser
	first    int64
	received int64
	resumes  int
	digest   *asyncDigest // nil for a range
	progress func(int)
	err      error // sticky: io.EOF, or why the download failed
}

// Open starts a download by id or by key (the newest version).
func (c *Client) Open(ctx context.Context, ref ObjectRef, opts *DownloadOptions) (*Download, error) {
	if opts == nil {
		opts = &DownloadOptions{}
	}
	path, err := ref.path()
	if err != nil {
		return nil, err
	}
	header := ref.header()
	if opts.Range != nil {
		value, err := opts.Range.header()
		if err != nil {
			return nil, err
		}
		header.Set("Range", value)
	}
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: path, header: header, idempotent: true})
	if err != nil {
		return nil, err
	}
	d := &Download{
		Head:     headFrom(resp.Header, resp.ContentLength),
		Status:   resp.StatusCode,
		Length:   resp.ContentLength,
		ctx:      ctx,
		client:   c,
		ref:      ref,
		body:     resp.Body,
		progress: opts.Progress,
	}
	if d.Head.ID != "" {
		d.ref = ByID(ref.Tenant, d.Head.ID)
	}
	if opts.Range != nil {
		d.first = opts.Range.First
	} else {
		d.digest = newAsyncDigest(c.chunkSize)
	}
	return d, nil
}

// Read reads the body, resuming it when the connection breaks; at the end of
// a whole object it returns io.EOF only when the bytes hash to the ETag.
func (d *Download) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	for {
		n, err := d.body.Read(p)
		if n > 0 {
			d.received += int64(n)
			if d.digest != nil {
				d.digest.write(p[:n])
			}
			if d.progress != nil {
				d.progress(n)
			}
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF && (d.Length < 0 || d.received >= d.Length) {
			d.body.Close()
			d.err = d.verify()
			return n, d.err
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if resumeErr := d.resume(err); resumeErr != nil {
			d.err = resumeErr
			return n, d.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

func (d *Download) verify() error {
	if d.digest == nil {
		return io.EOF
	}
	actual := d.digest.sum()
	expected := strings.TrimPrefix(d.Head.ContentHash, "sha256:")
	if expected != "" && actual != expected {
		return &IntegrityError{Expected: expected, Actual: actual}
	}
	return io.EOF
}

// resume replaces the broken body by the rest of it, asked for with Range.
func (d *Download) resume(cause error) error {
	d.body.Close()
	op := "GET " + d.Head.ID
	if path, err := d.ref.path(); err == nil {
		op = "GET " + path
	}
	if d.ctx.Err() != nil {
		return d.ctx.Err()
	}
	policy := d.client.retry
	if d.resumes >= policy.MaxResumes || d.Length < 0 {
		return &TransportError{
			Op:  op,
			Err: errors.New("download broke after " + strconv.FormatInt(d.received, 10) + " bytes: " + cause.Error()),
		}
	}
	d.resumes++
	delay := policy.backoff(d.resumes)
	path, _ := d.ref.path()
	policy.notify(RetryEvent{http.MethodGet, path, d.resumes, delay, 0, cause})
	if err := sleep(d.ctx, delay); err != nil {
		return err
	}
	last := d.first + d.Length - 1
	header := d.ref.header()
	header.Set("Range", "bytes="+strconv.FormatInt(d.first+d.received, 10)+"-"+strconv.FormatInt(last, 10))
	resp, err := d.client.send(d.ctx, &request{method: http.MethodGet, path: path, header: header, idempotent: true})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusPartialContent || strings.Trim(resp.Header.Get("ETag"), `"`) != d.Head.ContentHash {
		resp.Body.Close()
		return &TransportError{Op: op, Err: errors.New("the object changed while its download was resumed")}
	}
	d.body = resp.Body
	return nil
}

// Close releases the connection; it is safe to call more than once.
func (d *Download) Close() error {
	if d.digest != nil {
		d.digest.stop()
	}
	if d.err == nil {
		d.err = errors.New("juststorage: read after Close")
	}
	return d.body.Close()
}

// Download streams the object (or opts.Range of it) into w and returns its head.
func (c *Client) Download(ctx context.Context, ref ObjectRef, w io.Writer, opts *DownloadOptions) (ObjectHead, error) {
	d, err := c.Open(ctx, ref, opts)
	if err != nil {
		return ObjectHead{}, err
	}
	defer d.Close()
	if err := c.copyBody(w, d); err != nil {
		return ObjectHead{}, err
	}
	return d.Head, nil
}

// copyBody copies in chunks of the client's size (io.Copy would use 32 KiB).
func (c *Client) copyBody(w io.Writer, d *Download) error {
	buf := make([]byte, c.chunkSize)
	for {
		n, err := d.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// DownloadBytes returns the object's bytes (or opts.Range of them) in memory.
func (c *Client) DownloadBytes(ctx context.Context, ref ObjectRef, opts *DownloadOptions) ([]byte, error) {
	d, err := c.Open(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	var buf bytes.Buffer
	if d.Length > 0 {
		buf.Grow(int(d.Length))
	}
	if err := c.copyBody(&buf, d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DownloadFile streams the object into the file at path. It is written into a
// new temporary file beside it (.<name>.<random>.juststorage-part, never a name
// another key or a file of the caller's can own), fsynced, and renamed over
// path only once every byte arrived and the hash matched; on failure nothing
// is left behind. A whole object of ParallelThreshold bytes or more is fetched
// as ranges, Parallel at a time; a state file in StateDir lists the temporary
// file and the finished ranges, which a later call to the same path keeps when
// the object is the same version (see ranges.go).
func (c *Client) DownloadFile(ctx context.Context, ref ObjectRef, path string, opts *DownloadOptions) (ObjectHead, error) {
	if opts == nil {
		opts = &DownloadOptions{}
	}
	threshold := opts.ParallelThreshold
	if threshold == 0 {
		threshold = DefaultParallelThreshold
	}
	if opts.Range == nil && threshold > 0 {
		head, err := c.Head(ctx, ref)
		if err != nil {
			return ObjectHead{}, err
		}
		if head.SizeBytes >= threshold {
			return c.downloadRanges(ctx, ref.Tenant, head, path, opts)
		}
		if head.ID != "" {
			ref = ByID(ref.Tenant, head.ID) // the single request below reads this very version
		}
	}
	d, err := c.Open(ctx, ref, opts)
	if err != nil {
		return ObjectHead{}, err
	}
	defer d.Close()
	partial, err := tempBeside(path)
	if err != nil {
		return ObjectHead{}, err
	}
	f, err := os.OpenFile(partial, os.O_WRONLY, 0)
	if err != nil {
		os.Remove(partial)
		return ObjectHead{}, err
	}
	err = c.copyBody(f, d) // checks the SHA-256 at the end
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(partial, path)
	}
	if err != nil {
		os.Remove(partial)
		return ObjectHead{}, err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return d.Head, nil
}
