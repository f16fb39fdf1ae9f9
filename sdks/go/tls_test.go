package juststorage

// The CA-file option against a real HTTPS server whose certificate no system
// trusts (httptest's own test CA).

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func healthyTLSServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","checks":{}}`))
	}))
	t.Cleanup(server.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return server, caFile
}

func TestCACertFileIsTrustedAndTheSystemStoreIsNot(t *testing.T) {
	server, caFile := healthyTLSServer(t)
	ctx := context.Background()

	plain, err := New(server.URL, "", WithRetry(NoRetries()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Health(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an untrusted server: got %v, want a certificate error", err)
	}

	trusting, err := New(server.URL, "", WithCACertFile(caFile))
	if err != nil {
		t.Fatal(err)
	}
	health, err := trusting.Health(ctx)
	if err != nil || !health.OK {
		t.Fatalf("with the CA file: %+v, %v", health, err)
	}
}

func TestCACertFileThatHoldsNoCertificateIsRefused(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New("https://127.0.0.1:1", "", WithCACertFile(bad)); err == nil {
		t.Fatal("a CA file without certificates was accepted")
	}
	if _, err := New("https://127.0.0.1:1", "", WithCACertFile(bad+".missing")); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
