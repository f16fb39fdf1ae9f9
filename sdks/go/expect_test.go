package juststorage_test

// Checking a step's expectations (the "Expectations" table of
// sdks/conformance/README.md) against what the call did.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	js "github.com/juststorage/juststorage/sdks/go"
)

// check asserts the step's expect block (none: the call must succeed).
func check(t *testing.T, where string, step map[string]any, out outcome, contents map[string]*content, saved map[string]map[string]any) {
	t.Helper()
	expect, _ := step["expect"].(map[string]any)
	if want, _ := expect["transport_error"].(bool); want {
		var transport *js.TransportError
		if !errors.As(out.err, &transport) {
			t.Fatalf("%s: want a transport error, got %v", where, out.err)
		}
		return
	}
	if want, ok := expect["error"].(map[string]any); ok {
		checkError(t, where, want, out)
		return
	}
	if out.err != nil {
		t.Fatalf("%s: unexpected error %v", where, out.err)
	}
	result := out.result
	if notFound, _ := expect["not_found"].(bool); notFound && result != nil {
		t.Fatalf("%s: expected the not-found result, got %v", where, result)
	}
	if want, ok := expect["result"]; ok {
		assertSubset(t, where, want, result)
	}
	for _, name := range []string{"object", "head"} {
		if want, ok := expect[name].(map[string]any); ok {
			body := contents[want["content"].(string)]
			full := map[string]any{}
			for k, v := range want {
				full[k] = v
			}
			delete(full, "content")
			full["content_hash"] = "sha256:" + body.sha256()
			full["size_bytes"] = float64(body.size)
			assertSubset(t, where, full, result)
		}
	}
	if name, ok := expect["content"].(string); ok {
		body := contents[name]
		first, last := int64(0), int64(-1)
		if r, ok := expect["range"].([]any); ok {
			first = int64(r[0].(float64))
			if l, ok := r[1].(float64); ok {
				last = int64(l)
			}
		}
		switch got := result.(type) {
		case []byte:
			if !bytes.Equal(got, body.data(first, last)) {
				t.Fatalf("%s: wrong bytes (%d received)", where, len(got))
			}
		case received:
			if want := summarize(body.reader(first, last)); got != want {
				t.Fatalf("%s: received %+v, want %+v", where, got, want)
			}
		default:
			t.Fatalf("%s: no body in %T", where, result)
		}
	}
	for _, field := range []string{"key", "id", "prefix"} {
		name := field + "s"
		if field == "prefix" {
			name = "common_prefixes"
		}
		if want, ok := expect[name]; ok {
			got := []any{}
			for _, item := range result.([]any) {
				if value, ok := item.(map[string]any)[field]; ok {
					got = append(got, value)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: %s %v, want %v", where, name, got, want)
			}
		}
	}
	if want, ok := expect["entries"]; ok {
		got := []any{}
		for _, item := range result.([]any) {
			entry := item.(map[string]any)
			if key, ok := entry["key"]; ok {
				got = append(got, key)
			} else {
				got = append(got, entry["prefix"])
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: entries %v, want %v", where, got, want)
		}
	}
	if want, ok := expect["retried"].(map[string]any); ok {
		n := 0
		for _, e := range out.retries {
			if float64(e.Status) == want["status"].(float64) {
				n++
			}
		}
		if float64(n) < want["min"].(float64) {
			t.Fatalf("%s: %d retries after %v, want at least %v (%+v)", where, n, want["status"], want["min"], out.retries)
		}
	}
	if want, ok := expect["resumed"].(map[string]any); ok {
		n := 0
		for _, e := range out.retries {
			if e.Status == 0 && e.Method == http.MethodGet {
				n++
			}
		}
		if float64(n) < want["min"].(float64) {
			t.Fatalf("%s: %d resumes, want at least %v (%+v)", where, n, want["min"], out.retries)
		}
	}
	if want, ok := expect["resumed_upload"].(map[string]any); ok {
		var total int64
		for _, n := range out.resumed {
			total += n
		}
		if float64(total) < want["min_bytes"].(float64) {
			t.Fatalf("%s: resumed %v, want at least %v bytes", where, out.resumed, want["min_bytes"])
		}
	}
	if want, ok := expect["parts"].([]any); ok {
		var got []any
		for _, p := range result.(map[string]any)["parts"].([]any) {
			got = append(got, p.(map[string]any)["part"])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: parts %v, want %v", where, got, want)
		}
	}
	if want, ok := expect["elapsed_s"].(map[string]any); ok {
		if out.elapsed.Seconds() < want["min"].(float64) {
			t.Fatalf("%s: took %v, want at least %vs", where, out.elapsed, want["min"])
		}
	}
	if want, ok := expect["peak_rss_growth_mib"].(map[string]any); ok {
		t.Logf("%s: peak RSS growth %.1f MiB", where, out.growthMiB)
		if out.growthMiB > want["max"].(float64) {
			t.Fatalf("%s: peak RSS grew %.1f MiB, want at most %v", where, out.growthMiB, want["max"])
		}
	}
	if name, ok := step["save"].(string); ok {
		object, ok := result.(map[string]any)
		if !ok {
			t.Fatalf("%s: cannot save %T", where, result)
		}
		saved[name] = object
	}
}

func checkError(t *testing.T, where string, want map[string]any, out outcome) {
	t.Helper()
	code := want["code"].(string)
	var apiErr *js.APIError
	if !errors.As(out.err, &apiErr) {
		t.Fatalf("%s: expected %s, got %v (result %v)", where, code, out.err, out.result)
	}
	if apiErr.Code != code || float64(apiErr.Status) != want["status"].(float64) {
		t.Fatalf("%s: got %s %d, want %s %v", where, apiErr.Code, apiErr.Status, code, want["status"])
	}
	if apiErr.Class != code || !errors.Is(out.err, sentinels[code]) {
		t.Fatalf("%s: %v is not of class %s", where, apiErr, code)
	}
	if apiErr.RequestID == "" {
		t.Fatalf("%s: %v has no request id", where, apiErr)
	}
	if least, ok := want["retry_after_min"].(float64); ok && apiErr.RetryAfter.Seconds() < least {
		t.Fatalf("%s: Retry-After %v, want at least %vs", where, apiErr.RetryAfter, least)
	}
}

func assertSubset(t *testing.T, where string, want, got any) {
	t.Helper()
	if wantMap, ok := want.(map[string]any); ok {
		gotMap, ok := got.(map[string]any)
		if !ok {
			t.Fatalf("%s: want an object, got %#v", where, got)
		}
		for name, value := range wantMap {
			item, ok := gotMap[name]
			if !ok {
				t.Fatalf("%s: no %q in %v", where, name, gotMap)
			}
			assertSubset(t, where+"."+name, value, item)
		}
		return
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s: got %#v, want %#v", where, got, want)
	}
}
