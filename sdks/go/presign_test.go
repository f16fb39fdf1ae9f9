package juststorage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	js "github.com/juststorage/juststorage/sdks/go"
)

func TestPresignedURLsWorkWithoutACredential(t *testing.T) {
	server := startServer(t, t, map[string]string{"API_KEYS": transferKey + ":*:admin"})
	client, err := js.New(server.URL, transferKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.UploadBytes(ctx, []byte("go bytes"), js.UploadOptions{Tenant: "acme", Namespace: "files", Key: "a/b"}); err != nil {
		t.Fatal(err)
	}
	get, err := client.Presign(ctx, js.PresignOptions{Method: "GET", Tenant: "acme", Namespace: "files", Key: "a/b", ExpiresIn: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(get.URL, server.URL+"/v1/objects/by-key/files/acme/") || get.Method != "GET" {
		t.Fatalf("unexpected answer %+v", get)
	}
	if left := time.Until(get.ExpiresAt); left < 50*time.Second || left > 70*time.Second {
		t.Fatalf("expires in %v, want about a minute", left)
	}
	plain := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := plain.Get(get.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "go bytes" {
		t.Fatalf("GET through the URL: %d %q", resp.StatusCode, body)
	}
	put, err := client.Presign(ctx, js.PresignOptions{Method: "PUT", Tenant: "acme", Namespace: "files", Key: "up"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, put.URL, strings.NewReader("put"))
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT through the URL: %d", resp.StatusCode)
	}
	_, err = client.Presign(ctx, js.PresignOptions{Method: "PUT", Tenant: "acme", ID: "550e8400-e29b-41d4-a716-446655440000"})
	if !errors.Is(err, js.ErrBadRequest) {
		t.Fatalf("PUT by id: %v, want BadRequest", err)
	}
}
