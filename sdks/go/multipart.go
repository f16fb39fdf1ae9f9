package juststorage

// Multipart upload sessions (SPEC §8.2) and resumable multipart file uploads.
//
// UploadFile sends a file of MultipartThreshold bytes or more through one
// session, Parallel parts at a time. A state file in StateDir (named by a hash
// of the upload's arguments) keeps the session id and the digest of every
// acknowledged part; calling UploadFile again with the same arguments asks the
// server which parts it holds and skips those whose SHA-256 matches the file.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

const (
	// DefaultParallel is how many parts or ranges are in flight by default.
	DefaultParallel = 4
	// DefaultParallelThreshold is the size from which files and objects go in parts.
	DefaultParallelThreshold = 64 << 20
	// PartMinSize is the smallest upload part the client chooses (the server's floor is 5 MiB).
	PartMinSize = 8 << 20
	maxParts    = 10000
	stateFormat = 1
)

// UploadedPart is one part the server holds durably.
type UploadedPart struct {
	Part      int    `json:"part"`
	SizeBytes int64  `json:"size_bytes"`
	SHA256    string `json:"sha256"`
}

// UploadSession is a multipart upload as the server answers it.
type UploadSession struct {
	UploadID  string         `json:"upload_id"`
	TenantID  string         `json:"tenant_id"`
	Namespace string         `json:"namespace"`
	Key       string         `json:"key"`
	State     string         `json:"state"`
	Parts     []UploadedPart `json:"parts"`
}

// PartSizeFor is the part size UploadFile chooses: at least PartMinSize, at most 10000 parts.
func PartSizeFor(size int64) int64 {
	part := (size + maxParts - 1) / maxParts
	if part < PartMinSize {
		return PartMinSize
	}
	return part
}

type span struct{ offset, length int64 }

func spansOf(size, partSize int64) []span {
	if size == 0 {
		return []span{{0, 0}}
	}
	var out []span
	for start := int64(0); start < size; start += partSize {
		n := partSize
		if size-start < n {
			n = size - start
		}
		out = append(out, span{start, n})
	}
	return out
}

// DefaultStateDir is $XDG_CONFIG_HOME/juststorage/transfers (or ~/.config/…).
func DefaultStateDir() string {
	base := os.Getenv("XDG_CONFIG_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "juststorage", "transfers")
}

// runPool runs work over items, at most count at once; the first failure stops
// new work, is waited for with the rest, and is returned.
func runPool(ctx context.Context, count int, items []int, work func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if count < 1 {
		count = 1
	}
	if count > len(items) {
		count = len(items)
	}
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < count; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if first != nil || next >= len(items) {
					mu.Unlock()
					return
				}
				item := items[next]
				next++
				mu.Unlock()
				if err := work(ctx, item); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// writeJSONAtomic replaces path with v: a temp file, fsynced, then renamed.
func writeJSONAtomic(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync() // durable before the rename makes it the state
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func sessionPath(uploadID string) string { return "/v1/uploads/" + url.PathEscape(uploadID) }

// CreateUpload opens a session; opts.SHA256 is the whole object's, checked at completion.
func (c *Client) CreateUpload(ctx context.Context, opts UploadOptions) (UploadSession, error) {
	opts.Size = 0
	header, err := opts.header()
	if err != nil {
		return UploadSession{}, err
	}
	header.Del("Content-Length")
	// Retried after a broken connection too: at worst that leaves one empty session
	// behind, which expires and is reaped; failing the whole upload would cost more.
	r := &request{method: http.MethodPost, path: "/v1/uploads", header: header, idempotent: true}
	var session UploadSession
	err = c.doJSON(ctx, r, &session)
	return session, err
}

// GetUpload is the session with the parts the server holds, in order: what resuming needs.
func (c *Client) GetUpload(ctx context.Context, uploadID string) (UploadSession, error) {
	var session UploadSession
	r := &request{method: http.MethodGet, path: sessionPath(uploadID), idempotent: true}
	err := c.doJSON(ctx, r, &session)
	return session, err
}

// UploadPart sends part n (1–10000) from memory; sending it again replaces it.
func (c *Client) UploadPart(ctx context.Context, uploadID string, n int, data []byte) (UploadedPart, error) {
	sum := sha256.Sum256(data)
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return c.uploadPart(ctx, uploadID, n, open, int64(len(data)), hex.EncodeToString(sum[:]))
}

func (c *Client) uploadPart(
	ctx context.Context, uploadID string, n int, open func() (io.ReadCloser, error), size int64,
	digest string,
) (UploadedPart, error) {
	header := http.Header{}
	header.Set("Content-Type", "application/octet-stream")
	if digest != "" {
		header.Set("X-Content-SHA256", digest)
	}
	r := &request{
		method: http.MethodPut, path: sessionPath(uploadID) + "/parts/" + strconv.Itoa(n),
		header: header, body: open, size: size, replayable: true, idempotent: true,
	}
	var part UploadedPart
	err := c.doJSON(ctx, r, &part)
	return part, err
}

// CompleteUpload commits parts (nil: every part received) as one object.
func (c *Client) CompleteUpload(ctx context.Context, uploadID string, parts []int) (ObjectInfo, error) {
	payload := []byte("{}")
	if parts != nil {
		payload, _ = json.Marshal(map[string][]int{"parts": parts})
	}
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	r := &request{
		method: http.MethodPost, path: sessionPath(uploadID) + "/complete", header: header,
		body:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil },
		size:       int64(len(payload)),
		replayable: true, idempotent: true, // completing again answers the same object
	}
	var info ObjectInfo
	err := c.doJSON(ctx, r, &info)
	return info, err
}

// AbortUpload removes a session and its parts.
func (c *Client) AbortUpload(ctx context.Context, uploadID string) error {
	resp, err := c.send(ctx, &request{method: http.MethodDelete, path: sessionPath(uploadID), idempotent: true})
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

type uploadState struct {
	Version  int               `json:"version"`
	Size     int64             `json:"size"`
	MtimeNs  int64             `json:"mtime_ns"`
	PartSize int64             `json:"part_bytes"`
	SHA256   string            `json:"sha256"`
	UploadID string            `json:"upload_id"`
	Parts    map[string]string `json:"parts"`
}

func sha256OfSpan(path string, s span) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	digest := sha256.New()
	if _, err := io.Copy(digest, io.NewSectionReader(f, s.offset, s.length)); err != nil {
		return "", err
	}
	return hex.EncodeToString(digest.Sum(nil)), nil
}

// uploadFileParts uploads through a session; ok false when the server has no
// session API (POST /v1/uploads is 404 or 405).
func (c *Client) uploadFileParts(ctx context.Context, path string, info os.FileInfo, opts UploadOptions) (ObjectInfo, bool, error) {
	size, mtime := info.Size(), info.ModTime().UnixNano()
	abs, _ := filepath.Abs(path)
	// Not the server's URL: the same server may be reached by another name (a proxy),
	// and a session id another server does not know is simply not resumed (404).
	identity, _ := json.Marshal([]string{opts.Tenant, opts.Namespace, opts.Key,
		opts.StorageClass, opts.ContentType, opts.IfNoneMatch, opts.IfMatch, abs})
	sum := sha256.Sum256(identity)
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	statePath := filepath.Join(stateDir, "upload-"+hex.EncodeToString(sum[:16])+".json")
	var state uploadState
	raw, readErr := os.ReadFile(statePath)
	if readErr != nil || json.Unmarshal(raw, &state) != nil || state.Version != stateFormat ||
		state.Size != size || state.MtimeNs != mtime || state.PartSize <= 0 {
		if readErr == nil && state.UploadID != "" {
			// The file changed since: its parts are of no use, free them at once (a
			// session completed or gone holds none: ErrConflict, ErrNotFound).
			err := c.AbortUpload(ctx, state.UploadID)
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) {
				return ObjectInfo{}, true, err
			}
		}
		partSize := opts.PartSize
		if partSize <= 0 {
			partSize = PartSizeFor(size)
		}
		state = uploadState{Version: stateFormat, Size: size, MtimeNs: mtime, PartSize: partSize}
	}
	if state.Parts == nil {
		state.Parts = map[string]string{}
	}
	if opts.SHA256 != "" {
		state.SHA256 = opts.SHA256
	} else if state.SHA256 == "" && !opts.NoChecksum {
		digest, _, err := c.hashFile(ctx, path)
		if err != nil {
			return ObjectInfo{}, true, err
		}
		state.SHA256 = digest
	}
	spans := spansOf(size, state.PartSize)
	all := make([]int, len(spans))
	for i := range spans {
		all[i] = i + 1
	}
	var session UploadSession
	if state.UploadID != "" {
		var err error
		session, err = c.GetUpload(ctx, state.UploadID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return ObjectInfo{}, true, err
		}
		if err != nil {
			session = UploadSession{} // expired or aborted: start a new one
		}
	}
	if session.State == "completed" {
		object, err := c.CompleteUpload(ctx, session.UploadID, all)
		if err == nil {
			os.Remove(statePath)
		}
		return object, true, err
	}
	if session.UploadID == "" || session.State != "open" {
		create := opts
		create.SHA256 = state.SHA256
		var err error
		session, err = c.CreateUpload(ctx, create)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrMethodNotAllowed) {
			return ObjectInfo{}, false, nil
		}
		if err != nil {
			return ObjectInfo{}, true, err
		}
		state.UploadID = session.UploadID
		state.Parts = map[string]string{}
	}
	var mu sync.Mutex
	save := func() error {
		mu.Lock()
		defer mu.Unlock()
		return writeJSONAtomic(statePath, state)
	}
	if err := save(); err != nil {
		return ObjectInfo{}, true, err
	}
	held := map[int]bool{}
	var heldBytes int64
	for _, part := range session.Parts {
		if part.Part < 1 || part.Part > len(spans) || part.SizeBytes != spans[part.Part-1].length {
			continue
		}
		known, ok := state.Parts[strconv.Itoa(part.Part)]
		if !ok {
			// Acknowledged but not recorded (the run stopped in between): reading is cheaper than sending.
			digest, err := sha256OfSpan(path, spans[part.Part-1])
			if err != nil {
				return ObjectInfo{}, true, err
			}
			known = digest
		}
		if known == part.SHA256 {
			held[part.Part] = true
			heldBytes += part.SizeBytes
			state.Parts[strconv.Itoa(part.Part)] = known
		}
	}
	if len(held) > 0 {
		if err := save(); err != nil {
			return ObjectInfo{}, true, err
		}
		if opts.OnResume != nil {
			opts.OnResume(heldBytes)
		}
	}
	var todo []int
	for _, n := range all {
		if !held[n] {
			todo = append(todo, n)
		}
	}
	progress := lockedProgress(opts.Progress)
	uploadID := session.UploadID
	err := runPool(ctx, opts.Parallel, todo, func(ctx context.Context, n int) error {
		s := spans[n-1]
		open := func() (io.ReadCloser, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			return c.progressBody(io.NewSectionReader(f, s.offset, s.length), f, progress), nil
		}
		// No hashing pass of its own: the whole file's X-Content-SHA256, checked at
		// completion, covers every part, and a resume compares the server's digest of
		// what it stored with the one recorded here.
		part, err := c.uploadPart(ctx, uploadID, n, open, s.length, "")
		if err != nil {
			return err
		}
		if part.SizeBytes != s.length {
			return &TransportError{Op: "PUT part " + strconv.Itoa(n), Err: errors.New("stored with another size")}
		}
		mu.Lock()
		state.Parts[strconv.Itoa(n)] = part.SHA256
		mu.Unlock()
		return save()
	})
	if err != nil {
		return ObjectInfo{}, true, err
	}
	object, err := c.CompleteUpload(ctx, uploadID, all)
	if errors.Is(err, ErrChecksumMismatch) {
		// The parts are not the file's bytes (it changed while it was sent): forget
		// the session, so that the next call starts over.
		c.AbortUpload(ctx, uploadID)
		os.Remove(statePath)
	}
	if err != nil {
		return ObjectInfo{}, true, err
	}
	os.Remove(statePath)
	return object, true, nil
}

// lockedProgress serialises calls of progress from parallel parts.
func lockedProgress(progress func(int)) func(int) {
	if progress == nil {
		return nil
	}
	var mu sync.Mutex
	return func(n int) {
		mu.Lock()
		defer mu.Unlock()
		progress(n)
	}
}
