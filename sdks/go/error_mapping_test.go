package juststorage_test

// The scenario's error_mapping table through a stub http.RoundTripper.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	js "github.com/juststorage/juststorage/sdks/go"
)

// stubTransport answers every request with one canned error_mapping case.
type stubTransport struct{ answer map[string]any }

func (s stubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	header := http.Header{}
	if headers, ok := s.answer["headers"].(map[string]any); ok {
		for k, v := range headers {
			header.Set(k, v.(string))
		}
	}
	var body []byte
	if payload, ok := s.answer["body"]; ok {
		header.Set("Content-Type", "application/json")
		body, _ = json.Marshal(payload)
	} else {
		body = []byte(s.answer["text"].(string))
	}
	status := int(s.answer["status"].(float64))
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

func TestErrorMapping(t *testing.T) {
	for _, answer := range loadScenario(t).Errors {
		want := answer["expect"].(map[string]any)
		answer := answer
		t.Run(fmt.Sprintf("%v-%v", answer["status"], want["code"]), func(t *testing.T) {
			client, err := js.New("http://127.0.0.1:9", "t",
				js.WithTransport(stubTransport{answer}), js.WithRetry(js.NoRetries()))
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.Usage(context.Background(), "acme")
			var apiErr *js.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("got %v, want an *APIError", err)
			}
			class, _ := want["class"].(string)
			if class == "" {
				class = want["code"].(string)
			}
			if apiErr.Class != class || !errors.Is(err, sentinels[class]) {
				t.Errorf("class %s, want %s", apiErr.Class, class)
			}
			if apiErr.Code != want["code"] || float64(apiErr.Status) != want["status"] ||
				apiErr.RequestID != want["request_id"] {
				t.Errorf("got %s %d %q, want %v %v %v", apiErr.Code, apiErr.Status, apiErr.RequestID,
					want["code"], want["status"], want["request_id"])
			}
			if message, ok := want["message"]; ok && apiErr.Message != message {
				t.Errorf("message %q, want %v", apiErr.Message, message)
			}
			if seconds, ok := want["retry_after"].(float64); ok &&
				apiErr.RetryAfter != time.Duration(seconds*float64(time.Second)) {
				t.Errorf("RetryAfter %v, want %vs", apiErr.RetryAfter, seconds)
			}
		})
	}
}
