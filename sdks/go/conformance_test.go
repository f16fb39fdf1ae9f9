package juststorage_test

// The Go interpreter of sdks/conformance/scenario.json (format in its
// README): every scenario against real servers. Expectations are checked in
// expect_test.go, the error_mapping table runs in error_mapping_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	js "github.com/juststorage/juststorage/sdks/go"
)

const stepTimeout = 10 * time.Minute

type scenarioFile struct {
	Format      string                    `json:"format"`
	Credentials map[string]map[string]any `json:"credentials"`
	Servers     map[string]map[string]any `json:"servers"`
	Contents    map[string]map[string]any `json:"contents"`
	Scenarios   []scenario                `json:"scenarios"`
	Errors      []map[string]any          `json:"error_mapping"`
}

type scenario struct {
	Name   string           `json:"name"`
	Server string           `json:"server"`
	Client map[string]any   `json:"client"`
	Steps  []map[string]any `json:"steps"`
}

// sentinels maps each SPEC code to the SDK's errors.Is value.
var sentinels = map[string]error{
	"BadRequest":          js.ErrBadRequest,
	"ChecksumMismatch":    js.ErrChecksumMismatch,
	"Unauthorized":        js.ErrUnauthorized,
	"Forbidden":           js.ErrForbidden,
	"NotFound":            js.ErrNotFound,
	"MethodNotAllowed":    js.ErrMethodNotAllowed,
	"Conflict":            js.ErrConflict,
	"PreconditionFailed":  js.ErrPreconditionFailed,
	"PayloadTooLarge":     js.ErrPayloadTooLarge,
	"RangeNotSatisfiable": js.ErrRangeNotSatisfiable,
	"TooManyRequests":     js.ErrTooManyRequests,
	"Internal":            js.ErrInternal,
	"Unavailable":         js.ErrUnavailable,
	"InsufficientStorage": js.ErrInsufficientStorage,
}

func loadScenario(t *testing.T) *scenarioFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "conformance", "scenario.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file scenarioFile
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	if file.Format != "juststorage-conformance/1" {
		t.Fatalf("unknown scenario format %q", file.Format)
	}
	return &file
}

// apiKeys is API_KEYS for the servers, and the token each credential name stands for.
func apiKeys(credentials map[string]map[string]any) (string, map[string]string) {
	var entries []string
	tokens := map[string]string{}
	for name, spec := range credentials {
		token := "conf" + randomHex(24)
		tokens[name] = token
		if unregistered, _ := spec["unregistered"].(bool); unregistered {
			continue
		}
		entries = append(entries, token+":"+strings.Join(strs(spec["tenants"]), "|")+":"+
			strings.Join(strs(spec["scopes"]), " "))
	}
	return strings.Join(entries, ","), tokens
}

func strs(value any) []string {
	var out []string
	for _, v := range value.([]any) {
		out = append(out, v.(string))
	}
	return out
}

func TestConformance(t *testing.T) {
	file := loadScenario(t)
	keys, tokens := apiKeys(file.Credentials)
	contents := map[string]*content{}
	for name, spec := range file.Contents {
		c, err := contentFromSpec(name, spec)
		if err != nil {
			t.Fatal(err)
		}
		contents[name] = c
	}
	// One server per name, started when a scenario first needs it and stopped
	// after every subtest (scenarios run one at a time).
	servers := map[string]*testServer{}
	serverFor := func(sub *testing.T, name string) *testServer {
		if servers[name] == nil {
			env := map[string]string{"API_KEYS": keys}
			for k, v := range file.Servers[name]["env"].(map[string]any) {
				env[k] = v.(string)
			}
			servers[name] = startServer(sub, t, env)
		}
		return servers[name]
	}
	for _, sc := range file.Scenarios {
		sc := sc
		t.Run(sc.Name, func(t *testing.T) {
			server := serverFor(t, sc.Server)
			dir := t.TempDir() // files and transfer state the scenario's steps share
			saved := map[string]map[string]any{}
			for i, raw := range sc.Steps {
				step := substitute(raw, saved).(map[string]any)
				clientSpec := sc.Client
				if own, ok := step["client"].(map[string]any); ok {
					clientSpec = own
				}
				token := ""
				if credential, ok := clientSpec["credential"].(string); ok {
					token = tokens[credential]
				}
				where := fmt.Sprintf("step %d: %v %v", i+1, step["call"], step["args"])
				var out outcome
				if via, ok := step["via"].(map[string]any); ok {
					proxy := startProxy(t, server.Port, int64(via["cut_after_bytes"].(float64)))
					out = execute(t, proxy.URL, token, clientSpec, step, contents, dir)
					proxy.close()
					cuts, requests := proxy.stats()
					if cuts != 1 {
						t.Fatalf("%s: the proxy cut %d times, want 1", where, cuts)
					}
					if step["call"] == "download" && !resumedWithRange(requests) {
						t.Fatalf("%s: no later request with a Range header: %q", where, requests)
					}
				} else {
					out = execute(t, server.URL, token, clientSpec, step, contents, dir)
				}
				check(t, where, step, out, contents, saved)
			}
		})
	}
}

func resumedWithRange(requests []string) bool {
	for _, head := range requests[min(1, len(requests)):] {
		if strings.Contains(strings.ToLower(head), "\r\nrange: bytes=") {
			return true
		}
	}
	return false
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

var variable = regexp.MustCompile(`^\$\{(\w+)\.(\w+)\}$`)

// substitute replaces "${name.field}" strings by fields of saved results.
func substitute(value any, saved map[string]map[string]any) any {
	switch v := value.(type) {
	case string:
		if m := variable.FindStringSubmatch(v); m != nil {
			return saved[m[1]][m[2]]
		}
		return v
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			out[k] = substitute(item, saved)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = substitute(item, saved)
		}
		return out
	}
	return value
}

type outcome struct {
	result    any // JSON-shaped (maps, []any, float64), []byte, or received
	err       error
	retries   []js.RetryEvent
	elapsed   time.Duration
	growthMiB float64
	resumed   []int64 // what uploads reported as already on the server
}

func retryPolicy(spec map[string]any, events *[]js.RetryEvent) js.RetryPolicy {
	policy := js.DefaultRetryPolicy()
	policy.MaxAttempts = 4
	policy.BackoffInitial = 50 * time.Millisecond
	policy.BackoffMax = 500 * time.Millisecond
	policy.MaxResumes = 5
	if v, ok := spec["max_attempts"].(float64); ok {
		policy.MaxAttempts = int(v)
	}
	if v, ok := spec["max_resumes"].(float64); ok {
		policy.MaxResumes = int(v)
	}
	policy.OnRetry = func(e js.RetryEvent) { *events = append(*events, e) }
	return policy
}

func execute(t *testing.T, url, token string, clientSpec, step map[string]any, contents map[string]*content, dir string) outcome {
	t.Helper()
	var out outcome
	retrySpec, _ := clientSpec["retry"].(map[string]any)
	client, err := js.New(url, token, js.WithRetry(retryPolicy(retrySpec, &out.retries)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	rss := startPeakRSS(t)
	started := time.Now()
	out.result, out.err = call(ctx, t, client, step, contents, dir, &out.resumed)
	out.elapsed = time.Since(started)
	out.growthMiB = rss.growthMiB(t)
	return out
}

func arg(args map[string]any, name string) string {
	s, _ := args[name].(string)
	return s
}

func objectRef(args map[string]any) js.ObjectRef {
	return js.ObjectRef{
		Tenant: arg(args, "tenant"), ID: arg(args, "id"),
		Namespace: arg(args, "namespace"), Key: arg(args, "key"),
	}
}

func downloadOptions(args map[string]any) *js.DownloadOptions {
	opts := &js.DownloadOptions{}
	if v, ok := args["parallel_threshold"].(float64); ok {
		opts.ParallelThreshold = int64(v)
	}
	if v, ok := args["range_bytes"].(float64); ok {
		opts.RangeSize = int64(v)
	}
	if v, ok := args["parallel"].(float64); ok {
		opts.Parallel = int(v)
	}
	r, ok := args["range"].([]any)
	if !ok {
		return opts
	}
	byteRange := js.ByteRange{First: int64(r[0].(float64)), Last: js.ToEnd}
	if last, ok := r[1].(float64); ok {
		byteRange.Last = int64(last)
	}
	opts.Range = &byteRange
	return opts
}

// call runs one step's call with the SDK; the result in the SPEC's JSON shape.
func call(ctx context.Context, t *testing.T, c *js.Client, step map[string]any, contents map[string]*content, dir string, resumed *[]int64) (any, error) {
	args, _ := step["args"].(map[string]any)
	switch step["call"] {
	case "create_upload":
		session, err := c.CreateUpload(ctx, uploadOptions(args))
		return jsonShape(session), err
	case "upload_part":
		first, last := int64(0), int64(-1)
		if r, ok := step["range"].([]any); ok {
			first = int64(r[0].(float64))
			if l, ok := r[1].(float64); ok {
				last = int64(l)
			}
		}
		data := contents[step["content"].(string)].data(first, last)
		part, err := c.UploadPart(ctx, arg(args, "upload_id"), int(args["part"].(float64)), data)
		return jsonShape(part), err
	case "get_upload":
		session, err := c.GetUpload(ctx, arg(args, "upload_id"))
		return jsonShape(session), err
	case "complete_upload":
		info, err := c.CompleteUpload(ctx, arg(args, "upload_id"), nil)
		return jsonShape(info), err
	case "abort_upload":
		return nil, c.AbortUpload(ctx, arg(args, "upload_id"))
	case "health", "ready":
		health, err := c.Health(ctx)
		if step["call"] == "ready" {
			health, err = c.Ready(ctx)
		}
		return map[string]any{"ok": health.OK, "status": health.Status, "checks": jsonShape(health.Checks)}, err
	case "upload":
		return upload(ctx, t, c, step, args, contents[step["content"].(string)], dir, resumed)
	case "download":
		ref, opts := objectRef(args), downloadOptions(args)
		switch step["target"] {
		case "memory":
			return c.DownloadBytes(ctx, ref, opts)
		case "stream":
			d, err := c.Open(ctx, ref, opts)
			if err != nil {
				return nil, err
			}
			defer d.Close()
			w := newHashingWriter()
			if _, err := io.CopyBuffer(w, d, make([]byte, 1<<20)); err != nil {
				return nil, err
			}
			return w.received(), nil
		default:
			path := filepath.Join(t.TempDir(), "down")
			if _, err := c.DownloadFile(ctx, ref, path, opts); err != nil {
				return nil, err
			}
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer os.Remove(path)
			defer f.Close()
			return summarize(f), nil
		}
	case "put_by_hash":
		return putByHash(ctx, c, args, contents[step["content"].(string)])
	case "head":
		head, err := c.Head(ctx, objectRef(args))
		return jsonShape(head), err
	case "delete":
		return nil, c.Delete(ctx, objectRef(args))
	case "list":
		opts := js.ListOptions{
			Tenant: arg(args, "tenant"), Namespace: arg(args, "namespace"),
			Prefix: arg(args, "prefix"), StorageClass: arg(args, "storage_class"),
		}
		opts.Versions, _ = args["versions"].(bool)
		if size, ok := args["page_size"].(float64); ok {
			opts.PageSize = int(size)
		}
		opts.Delimiter = arg(args, "delimiter")
		entries, err := c.List(ctx, opts).AllEntries()
		shaped := []any{}
		for _, entry := range entries {
			if entry.IsPrefix() {
				shaped = append(shaped, map[string]any{"prefix": entry.CommonPrefix})
			} else {
				shaped = append(shaped, jsonShape(entry.Object))
			}
		}
		return shaped, err
	case "usage":
		usage, err := c.Usage(ctx, arg(args, "tenant"))
		return jsonShape(usage.Raw), err
	}
	t.Fatalf("unknown call %v", step["call"])
	return nil, nil
}

func uploadOptions(args map[string]any) js.UploadOptions {
	opts := js.UploadOptions{
		Tenant: arg(args, "tenant"), Namespace: arg(args, "namespace"), Key: arg(args, "key"),
		StorageClass: arg(args, "storage_class"), ContentType: arg(args, "content_type"),
		IfNoneMatch: arg(args, "if_none_match"), IfMatch: arg(args, "if_match"),
		SHA256: arg(args, "sha256"),
	}
	if v, ok := args["multipart_threshold"].(float64); ok {
		opts.MultipartThreshold = int64(v)
	}
	if v, ok := args["part_bytes"].(float64); ok {
		opts.PartSize = int64(v)
	}
	if v, ok := args["parallel"].(float64); ok {
		opts.Parallel = int(v)
	}
	return opts
}

func upload(ctx context.Context, t *testing.T, c *js.Client, step, args map[string]any, body *content, dir string, resumed *[]int64) (any, error) {
	opts := uploadOptions(args)
	opts.StateDir = filepath.Join(dir, "transfers")
	opts.OnResume = func(n int64) { *resumed = append(*resumed, n) }
	var info js.ObjectInfo
	var err error
	switch step["source"] {
	case "bytes":
		info, err = c.UploadBytes(ctx, body.data(0, -1), opts)
	case "file":
		// A named file is shared by the scenario's steps that name it: the same
		// upload, which resumes. Others are written for the call and removed.
		name, shared := step["file"].(string)
		if !shared {
			path, werr := body.writeFile(t.TempDir())
			if werr != nil {
				t.Fatal(werr)
			}
			info, err = c.UploadFile(ctx, path, opts)
			os.Remove(path)
			break
		}
		path := filepath.Join(dir, "file-"+name)
		if _, serr := os.Stat(path); serr != nil {
			written, werr := body.writeFile(dir)
			if werr == nil {
				werr = os.Rename(written, path)
			}
			if werr != nil {
				t.Fatal(werr)
			}
		}
		info, err = c.UploadFile(ctx, path, opts)
	default: // a stream of unknown size, which cannot be sent twice
		info, err = c.Upload(ctx, struct{ io.Reader }{body.reader(0, -1)}, opts)
	}
	if err != nil {
		return nil, err
	}
	return jsonShape(info), nil
}

// putByHash runs PutByHash for the content; its not-found result is nil.
func putByHash(ctx context.Context, c *js.Client, args map[string]any, body *content) (any, error) {
	opts := js.UploadOptions{
		Tenant: arg(args, "tenant"), Namespace: arg(args, "namespace"), Key: arg(args, "key"),
		StorageClass: arg(args, "storage_class"), ContentType: arg(args, "content_type"),
		IfNoneMatch: arg(args, "if_none_match"), IfMatch: arg(args, "if_match"),
		SHA256: body.sha256(), Size: body.size,
	}
	info, found, err := c.PutByHash(ctx, opts)
	if err != nil || !found {
		return nil, err
	}
	return jsonShape(info), nil
}

// jsonShape is v as encoding/json decodes it into `any` (what expectations hold).
func jsonShape(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		panic(err)
	}
	return out
}
