package juststorage_test

// Parallel resumable downloads (against a real server) and multipart uploads
// (against fakeSessions in front of a real server, until the server has sessions).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	js "github.com/juststorage/juststorage/sdks/go"
)

const mib = 1 << 20
const transferKey = "transfers-test-key-0123456789abcdef0123456789"

func patternBytes(size int, seed int) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte((i*7 + seed) % 251)
	}
	return data
}

func hexSHA(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func transferServer(t *testing.T) *testServer {
	return startServer(t, t, map[string]string{"API_KEYS": transferKey + ":*:admin"})
}

func TestDownloadFileKeepsTheRangesAPreviousRunFinished(t *testing.T) {
	srv := transferServer(t)
	ctx := context.Background()
	client, _ := js.New(srv.URL, transferKey)
	data := patternBytes(6*mib, 1)
	info, err := client.UploadBytes(ctx, data, js.UploadOptions{Tenant: "acme", Namespace: "models", Key: "go/par"})
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "par.bin")
	partial := make([]byte, len(data))
	for _, i := range []int{0, 1, 3} {
		copy(partial[i*mib:(i+1)*mib], data[i*mib:(i+1)*mib])
	}
	stateDir := t.TempDir()
	leftOver(t, dest, stateDir, partial, map[string]any{"object_id": info.ID, "content_hash": info.ContentHash,
		"size": len(data), "range_bytes": mib, "done": []int{0, 1, 3}})
	proxy := startProxy(t, srv.Port, 1<<50)
	viaProxy, _ := js.New(proxy.URL, transferKey)
	var resumed []int64
	var progressed int64
	var mu sync.Mutex
	_, err = viaProxy.DownloadFile(ctx, js.ByKey("acme", "models", "go/par"), dest, &js.DownloadOptions{
		Parallel: 2, ParallelThreshold: mib, RangeSize: mib, StateDir: stateDir,
		OnResume: func(n int64) { resumed = append(resumed, n) },
		Progress: func(n int) { mu.Lock(); progressed += int64(n); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, data) {
		t.Fatal("the downloaded file differs")
	}
	if len(resumed) != 1 || resumed[0] != 3*mib || progressed != 3*mib {
		t.Fatalf("resumed %v, progress %d", resumed, progressed)
	}
	_, requests := proxy.stats()
	var asked []string
	for _, r := range requests {
		for _, line := range strings.Split(r, "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "range:") {
				asked = append(asked, strings.TrimSpace(line[6:]))
			}
		}
	}
	sort.Strings(asked)
	want := []string{}
	for _, i := range []int{2, 4, 5} {
		want = append(want, fmt.Sprintf("bytes=%d-%d", i*mib, (i+1)*mib-1))
	}
	sort.Strings(want)
	if fmt.Sprint(asked) != fmt.Sprint(want) {
		t.Fatalf("ranges asked %v, want %v", asked, want)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if entries, _ := os.ReadDir(stateDir); len(entries) != 0 {
		t.Fatalf("state left behind: %v", entries)
	}
}

// leftOver writes what an interrupted run leaves: its temporary file beside
// dest, and the state naming it in stateDir.
func leftOver(t *testing.T, dest, stateDir string, partial []byte, state map[string]any) {
	t.Helper()
	temp := "." + filepath.Base(dest) + ".0123456789abcdef" + js.TempSuffix
	os.WriteFile(filepath.Join(filepath.Dir(dest), temp), partial, 0o644)
	state["version"], state["temp"] = 1, temp
	raw, _ := json.Marshal(state)
	statePath, err := js.DownloadStatePath(stateDir, dest)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(statePath, raw, 0o600)
}

func TestDownloadsOfKeysNamedLikeATemporaryFileGetTheirOwnBytes(t *testing.T) {
	srv := transferServer(t)
	ctx := context.Background()
	client, _ := js.New(srv.URL, transferKey)
	names := []string{"m", "m.part", "m.part.state"}
	for _, threshold := range []int64{mib, 64 * mib} {
		datas := map[string][]byte{}
		for i, name := range names {
			datas[name] = patternBytes(3*mib+i, 20+i)
			key := fmt.Sprintf("go/race-%d/%s", threshold, name)
			if _, err := client.UploadBytes(ctx, datas[name], js.UploadOptions{Tenant: "acme", Namespace: "models", Key: key}); err != nil {
				t.Fatal(err)
			}
		}
		opts := &js.DownloadOptions{ParallelThreshold: threshold, RangeSize: mib, StateDir: t.TempDir()}
		for run := 0; run < 3; run++ {
			out := t.TempDir()
			var wg sync.WaitGroup
			errs := make([]error, len(names))
			for i, name := range names {
				wg.Add(1)
				go func(i int, name string) {
					defer wg.Done()
					ref := js.ByKey("acme", "models", fmt.Sprintf("go/race-%d/%s", threshold, name))
					_, errs[i] = client.DownloadFile(ctx, ref, filepath.Join(out, name), opts)
				}(i, name)
			}
			wg.Wait()
			for i, name := range names {
				got, _ := os.ReadFile(filepath.Join(out, name))
				if errs[i] != nil || !bytes.Equal(got, datas[name]) {
					t.Fatalf("threshold %d run %d: %s has the wrong bytes (%v)", threshold, run, name, errs[i])
				}
			}
			if entries, _ := os.ReadDir(out); len(entries) != len(names) {
				t.Fatalf("left behind: %v", entries)
			}
		}
		own := t.TempDir()
		os.WriteFile(filepath.Join(own, "m.part"), []byte("my own work"), 0o644)
		ref := js.ByKey("acme", "models", fmt.Sprintf("go/race-%d/m", threshold))
		if _, err := client.DownloadFile(ctx, ref, filepath.Join(own, "m"), opts); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(own, "m.part")); string(got) != "my own work" {
			t.Fatalf("the user's own m.part was changed: %q", got)
		}
	}
}

func TestDownloadFileWithADamagedKeptRangeFailsThenStartsClean(t *testing.T) {
	srv := transferServer(t)
	ctx := context.Background()
	client, _ := js.New(srv.URL, transferKey)
	data := patternBytes(3*mib, 2)
	info, err := client.UploadBytes(ctx, data, js.UploadOptions{Tenant: "acme", Namespace: "models", Key: "go/bad"})
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "bad.bin")
	stateDir := t.TempDir()
	leftOver(t, dest, stateDir, make([]byte, len(data)), map[string]any{"object_id": info.ID, // zeros, listed as done
		"content_hash": info.ContentHash, "size": len(data), "range_bytes": mib, "done": []int{0}})
	opts := &js.DownloadOptions{ParallelThreshold: mib, RangeSize: mib, StateDir: stateDir}
	var integrity *js.IntegrityError
	if _, err := client.DownloadFile(ctx, js.ByID("acme", info.ID), dest, opts); !errors.As(err, &integrity) {
		t.Fatalf("want an js.IntegrityError, got %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dest)); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	if _, err := client.DownloadFile(ctx, js.ByID("acme", info.ID), dest, opts); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("the downloaded file differs")
	}
}

// fakeSessions keeps sessions and parts in memory and completes through the
// real server's POST /v1/objects (the Go twin of tests/sdk/fake_sessions.py).
type fakeSessions struct {
	upstream      string
	partMin       int
	mu            sync.Mutex
	sessions      map[string]*fakeSession
	partBytesSeen int64
	next          int
	inflight      sync.WaitGroup // requests being handled
}

type fakeSession struct {
	header http.Header
	parts  map[int][]byte
	state  string
	result []byte
}

func (f *fakeSessions) view(id string, s *fakeSession) map[string]any {
	var parts []map[string]any
	var numbers []int
	for n := range s.parts {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	for _, n := range numbers {
		parts = append(parts, map[string]any{"part": n, "size_bytes": len(s.parts[n]), "sha256": hexSHA(s.parts[n])})
	}
	return map[string]any{"upload_id": id, "state": s.state, "parts": parts}
}

func (f *fakeSessions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	fail := func(status int, code string) {
		reply(status, map[string]any{"error": map[string]string{"code": code, "message": code, "request_id": "fake"}})
	}
	f.inflight.Add(1)
	defer f.inflight.Done()
	path := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away mid-body: nothing is acknowledged
	}
	if len(path) < 2 || path[0] != "v1" || path[1] != "uploads" {
		fail(404, "NotFound")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(path) == 2 && r.Method == http.MethodPost {
		f.next++
		id := fmt.Sprintf("session-%d", f.next)
		s := &fakeSession{header: r.Header.Clone(), parts: map[int][]byte{}, state: "open"}
		f.sessions[id] = s
		reply(201, f.view(id, s))
		return
	}
	s, ok := f.sessions[path[2]]
	if !ok {
		fail(404, "NotFound")
		return
	}
	switch {
	case len(path) == 3 && r.Method == http.MethodGet:
		reply(200, f.view(path[2], s))
	case len(path) == 3 && r.Method == http.MethodDelete && s.state == "completed":
		fail(409, "Conflict")
	case len(path) == 3 && r.Method == http.MethodDelete:
		delete(f.sessions, path[2])
		w.WriteHeader(204)
	case len(path) == 5 && r.Method == http.MethodPut:
		n, _ := strconv.Atoi(path[4])
		f.partBytesSeen += int64(len(body))
		if want := r.Header.Get("X-Content-SHA256"); want != "" && want != hexSHA(body) {
			fail(400, "ChecksumMismatch")
			return
		}
		s.parts[n] = body
		reply(200, map[string]any{"part": n, "size_bytes": len(body), "sha256": hexSHA(body)})
	case len(path) == 4 && r.Method == http.MethodPost:
		if s.state == "completed" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(s.result)
			return
		}
		var whole []byte
		for n := 1; n <= len(s.parts); n++ {
			part, ok := s.parts[n]
			if !ok || (n < len(s.parts) && len(part) < f.partMin) {
				fail(400, "BadRequest")
				return
			}
			whole = append(whole, part...)
		}
		req, _ := http.NewRequest(http.MethodPost, f.upstream+"/v1/objects", bytes.NewReader(whole))
		for _, name := range []string{"Authorization", "X-Tenant", "X-Namespace", "X-Key", "X-Key-Encoding", "X-Storage-Class", "Content-Type", "X-Content-Sha256", "If-None-Match", "If-Match"} {
			if v := s.header.Get(name); v != "" {
				req.Header.Set(name, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fail(503, "Unavailable")
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 201 {
			s.state, s.result = "completed", answer
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	default:
		fail(405, "MethodNotAllowed")
	}
}

func startFakeSessions(t *testing.T, upstream string) (*fakeSessions, string) {
	fake := &fakeSessions{upstream: upstream, partMin: mib, sessions: map[string]*fakeSession{}}
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)
	return fake, server.URL
}

func TestAnInterruptedMultipartUploadResumesWithTheMissingPartsOnly(t *testing.T) {
	srv := transferServer(t)
	fake, url := startFakeSessions(t, srv.URL)
	client, _ := js.New(url, transferKey, js.WithRetry(js.NoRetries()))
	data := patternBytes(10*mib+5, 3)
	dir := t.TempDir()
	source := filepath.Join(dir, "model.bin")
	os.WriteFile(source, data, 0o644)
	opts := js.UploadOptions{Tenant: "acme", Namespace: "models", Key: "go/mp", MultipartThreshold: mib,
		PartSize: mib, Parallel: 3, StateDir: filepath.Join(dir, "state")}
	ctx, cancel := context.WithCancel(context.Background())
	var sent int64
	var mu sync.Mutex
	first := opts
	first.Progress = func(n int) {
		mu.Lock()
		defer mu.Unlock()
		if sent += int64(n); sent >= 6*mib {
			cancel()
		}
	}
	if _, err := client.UploadFile(ctx, source, first); err == nil {
		t.Fatal("the interrupted upload succeeded")
	}
	fake.inflight.Wait() // parts of the first run still arriving count for it
	fake.mu.Lock()
	firstRun := fake.partBytesSeen
	fake.mu.Unlock()
	var resumed []int64
	second := opts
	second.OnResume = func(n int64) { resumed = append(resumed, n) }
	info, err := client.UploadFile(context.Background(), source, second)
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA256() != hexSHA(data) {
		t.Fatalf("content hash %s", info.ContentHash)
	}
	if len(resumed) != 1 || resumed[0] < 3*mib {
		t.Fatalf("resumed %v", resumed)
	}
	if resent := fake.partBytesSeen - firstRun; resent != int64(len(data))-resumed[0] {
		t.Fatalf("second run sent %d bytes, want %d", resent, int64(len(data))-resumed[0])
	}
	if entries, _ := os.ReadDir(opts.StateDir); len(entries) != 0 {
		t.Fatalf("state left behind: %v", entries)
	}
	direct, _ := js.New(srv.URL, transferKey)
	got, err := direct.DownloadBytes(context.Background(), js.ByKey("acme", "models", "go/mp"), nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
}

func TestSessionCallsCreatePartsInspectCompleteAbort(t *testing.T) {
	srv := transferServer(t)
	_, url := startFakeSessions(t, srv.URL)
	client, _ := js.New(url, transferKey)
	ctx := context.Background()
	session, err := client.CreateUpload(ctx, js.UploadOptions{Tenant: "acme", Namespace: "models", Key: "go/calls"})
	if err != nil || session.State != "open" {
		t.Fatalf("create: %+v %v", session, err)
	}
	if _, err := client.UploadPart(ctx, session.UploadID, 2, []byte("tail")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UploadPart(ctx, session.UploadID, 1, patternBytes(mib, 4)); err != nil {
		t.Fatal(err)
	}
	got, err := client.GetUpload(ctx, session.UploadID)
	if err != nil || len(got.Parts) != 2 || got.Parts[0].SizeBytes != mib || got.Parts[1].SizeBytes != 4 {
		t.Fatalf("get: %+v %v", got, err)
	}
	info, err := client.CompleteUpload(ctx, session.UploadID, nil)
	if err != nil || info.SizeBytes != mib+4 {
		t.Fatalf("complete: %+v %v", info, err)
	}
	again, err := client.CompleteUpload(ctx, session.UploadID, nil)
	if err != nil || again.ID != info.ID {
		t.Fatalf("complete again: %+v %v", again, err)
	}
	other, _ := client.CreateUpload(ctx, js.UploadOptions{Tenant: "acme", Namespace: "models", Key: "go/calls"})
	if err := client.AbortUpload(ctx, other.UploadID); err != nil {
		t.Fatal(err)
	}
	if _, err := client.GetUpload(ctx, other.UploadID); !errors.Is(err, js.ErrNotFound) {
		t.Fatalf("after abort: %v", err)
	}
}
