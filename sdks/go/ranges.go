package juststorage

// Parallel resumable downloads: the object (pinned by id) is fetched as byte
// ranges in parallel into a temporary file beside the destination
// (.<name>.<random>.juststorage-part, created with O_EXCL, so no other key's
// download and no file of the user's owns it); each range is fsynced before the
// download's state file in StateDir (named by a hash of the destination's path)
// records it, so a later DownloadFile keeps every recorded range, but only for
// the same version (id, hash and size) and temporary file. The whole file is
// hashed at the end, fsynced, and renamed into place only if it matches the ETag.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// DefaultRangeSize is the bytes per range of a parallel download.
const DefaultRangeSize = 16 << 20

// TempSuffix ends the name of every temporary download file (which also starts with a dot).
const TempSuffix = ".juststorage-part"

const tempStemRunes = 40 // of the destination's name: keeps the temp name under NAME_MAX

func tempPrefix(path string) string {
	name := []rune(filepath.Base(path))
	if len(name) > tempStemRunes {
		name = name[:tempStemRunes]
	}
	return "." + string(name) + "."
}

func isTempOf(path, name string) bool {
	return !strings.ContainsAny(name, `/\`) && strings.HasPrefix(name, tempPrefix(path)) &&
		strings.HasSuffix(name, TempSuffix)
}

// tempBeside creates a new empty file beside path for a download into it, with
// O_EXCL under a random name: never an existing file, not another download's,
// not the user's own.
func tempBeside(path string) (string, error) {
	for attempt := 0; attempt < 16; attempt++ {
		var random [8]byte
		if _, err := rand.Read(random[:]); err != nil {
			return "", err
		}
		candidate := filepath.Join(filepath.Dir(path), tempPrefix(path)+hex.EncodeToString(random[:])+TempSuffix)
		f, err := os.OpenFile(candidate, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return candidate, f.Close()
	}
	return "", fmt.Errorf("no free temporary name beside %s", path)
}

// DownloadStatePath is the state file, in stateDir, of a resumable download
// into path: named by a hash of the path (its directory with links resolved).
func DownloadStatePath(stateDir, path string) (string, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return "", err
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(filepath.Join(dir, filepath.Base(path))))
	return filepath.Join(stateDir, "download-"+hex.EncodeToString(sum[:16])+".json"), nil
}

type downloadState struct {
	Version     int    `json:"version"`
	Temp        string `json:"temp"`
	ObjectID    string `json:"object_id"`
	ContentHash string `json:"content_hash"`
	Size        int64  `json:"size"`
	RangeSize   int64  `json:"range_bytes"`
	Done        []int  `json:"done"`
}

func (c *Client) downloadRanges(ctx context.Context, tenant string, head ObjectHead, path string, opts *DownloadOptions) (ObjectHead, error) {
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	statePath, err := DownloadStatePath(stateDir, path)
	if err != nil {
		return ObjectHead{}, err
	}
	rangeSize := opts.RangeSize
	if rangeSize <= 0 {
		rangeSize = DefaultRangeSize
	}
	var state downloadState
	resumed := false
	if raw, err := os.ReadFile(statePath); err == nil && json.Unmarshal(raw, &state) == nil && isTempOf(path, state.Temp) {
		stale := filepath.Join(filepath.Dir(path), state.Temp)
		info, statErr := os.Lstat(stale)
		resumed = state.Version == stateFormat && state.ObjectID == head.ID &&
			state.ContentHash == head.ContentHash && state.Size == head.SizeBytes &&
			state.RangeSize > 0 && statErr == nil && info.Mode().IsRegular() && info.Size() == head.SizeBytes
		if !resumed {
			os.Remove(stale) // only ever a name of our own form
		}
	}
	if !resumed {
		temp, err := tempBeside(path)
		if err != nil {
			return ObjectHead{}, err
		}
		state = downloadState{Version: stateFormat, Temp: filepath.Base(temp), ObjectID: head.ID,
			ContentHash: head.ContentHash, Size: head.SizeBytes, RangeSize: rangeSize}
	}
	partial := filepath.Join(filepath.Dir(path), state.Temp)
	spans := spansOf(head.SizeBytes, state.RangeSize)
	done := map[int]bool{}
	for _, i := range state.Done {
		if i >= 0 && i < len(spans) {
			done[i] = true
		}
	}
	f, err := os.OpenFile(partial, os.O_RDWR, 0)
	if err != nil {
		return ObjectHead{}, err
	}
	defer f.Close()
	var mu sync.Mutex
	save := func() error {
		mu.Lock()
		defer mu.Unlock()
		state.Done = state.Done[:0]
		for i := range done {
			state.Done = append(state.Done, i)
		}
		sort.Ints(state.Done)
		return writeJSONAtomic(statePath, state)
	}
	if !resumed {
		if err := f.Truncate(head.SizeBytes); err != nil {
			return ObjectHead{}, err
		}
		if err := save(); err != nil {
			return ObjectHead{}, err
		}
	} else if opts.OnResume != nil && len(done) > 0 {
		var kept int64
		for i := range done {
			kept += spans[i].length
		}
		opts.OnResume(kept)
	}
	var todo []int
	for i := range spans {
		if !done[i] {
			todo = append(todo, i)
		}
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	progress := lockedProgress(opts.Progress)
	ref := ByID(tenant, head.ID)
	err = runPool(ctx, parallel, todo, func(ctx context.Context, i int) error {
		if err := c.fetchRange(ctx, ref, head, f, spans[i], progress); err != nil {
			return err
		}
		if err := f.Sync(); err != nil { // the bytes are durable before the state says so
			return err
		}
		mu.Lock()
		done[i] = true
		mu.Unlock()
		return save()
	})
	if err != nil {
		return ObjectHead{}, err
	}
	digest := sha256.New()
	if _, err := io.Copy(digest, io.NewSectionReader(f, 0, head.SizeBytes)); err != nil {
		return ObjectHead{}, err
	}
	if actual := hex.EncodeToString(digest.Sum(nil)); actual != head.SHA256() {
		// Start over next time: these bytes are not the object's.
		f.Close()
		os.Remove(partial)
		os.Remove(statePath)
		return ObjectHead{}, &IntegrityError{Expected: head.SHA256(), Actual: actual}
	}
	if err := f.Sync(); err != nil {
		return ObjectHead{}, err
	}
	if err := f.Close(); err != nil {
		return ObjectHead{}, err
	}
	if err := os.Rename(partial, path); err != nil {
		return ObjectHead{}, err
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	os.Remove(statePath)
	return head, nil
}

// fetchRange writes one range into f at its offset; a broken connection resumes where it stopped.
func (c *Client) fetchRange(ctx context.Context, ref ObjectRef, head ObjectHead, f *os.File, s span, progress func(int)) error {
	if s.length == 0 {
		return nil
	}
	path, err := ref.path()
	if err != nil {
		return err
	}
	var received int64
	for resumes := 0; ; resumes++ {
		header := ref.header()
		header.Set("Range", fmt.Sprintf("bytes=%d-%d", s.offset+received, s.offset+s.length-1))
		resp, err := c.send(ctx, &request{method: http.MethodGet, path: path, header: header, idempotent: true})
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusPartialContent || strings.Trim(resp.Header.Get("ETag"), `"`) != head.ContentHash {
			resp.Body.Close()
			return &TransportError{Op: "GET " + path, Err: errors.New("the object changed while it was downloaded")}
		}
		w := &offsetWriter{f, s.offset + received}
		n, copyErr := io.CopyBuffer(w, progressReader{resp.Body, progress}, make([]byte, c.chunkSize))
		resp.Body.Close()
		received += n
		if copyErr == nil && received < s.length {
			copyErr = io.ErrUnexpectedEOF
		}
		if copyErr == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if resumes >= c.retry.MaxResumes {
			return &TransportError{Op: "GET " + path, Err: fmt.Errorf("download broke after %d bytes: %w", received, copyErr)}
		}
		delay := c.retry.backoff(resumes + 1)
		c.retry.notify(RetryEvent{http.MethodGet, path, resumes + 1, delay, 0, copyErr})
		if err := sleep(ctx, delay); err != nil {
			return err
		}
	}
}

type progressReader struct {
	r        io.Reader
	progress func(int)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.progress != nil {
		p.progress(n)
	}
	return n, err
}

// offsetWriter writes sequentially into f from off (io.OffsetWriter needs Go 1.20).
type offsetWriter struct {
	f   *os.File
	off int64
}

func (w *offsetWriter) Write(b []byte) (int, error) {
	n, err := w.f.WriteAt(b, w.off)
	w.off += int64(n)
	return n, err
}
