package juststorage

// TLS and proxies against a real HTTPS server whose certificate no system
// trusts (a self-signed CA made here): the CA-file option, SSL_CERT_FILE, HTTPS_PROXY.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// selfSignedCA is a certificate for 127.0.0.1 and juststorage.test that is
// its own CA, and its key.
func selfSignedCA(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "JustStorage test CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              []string{"localhost", "juststorage.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, der
}

func healthyTLSServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok","checks":{}}`))
	}))
	cert, der := selfSignedCA(t)
	server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	server.StartTLS()
	t.Cleanup(server.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: der}
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

// The platform's settings are read once per process (the proxy variables by
// net/http, SSL_CERT_FILE by crypto/x509), so these tests run the client in a
// child: this test binary again, with the environment under test.
const childEnv = "JUSTSTORAGE_TLS_TEST_CHILD"

func runChild(t *testing.T, test string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(platformFree(os.Environ()), append(env, childEnv+"=1")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child %s: %v\n%s", test, err, out)
	}
}

func platformFree(environ []string) []string {
	var kept []string
	for _, kv := range environ {
		name := strings.ToUpper(kv[:strings.Index(kv, "=")])
		if !strings.HasSuffix(name, "_PROXY") && !strings.HasPrefix(name, "SSL_CERT_") {
			kept = append(kept, kv)
		}
	}
	return kept
}

func childHealth(t *testing.T, opts ...Option) {
	t.Helper()
	c, err := New(os.Getenv("JUSTSTORAGE_TEST_URL"), "", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if health, err := c.Health(context.Background()); err != nil || !health.OK {
		t.Fatalf("health: %+v, %v", health, err)
	}
}

func TestSSLCertFileIsTrusted(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		childHealth(t)
		return
	}
	server, caFile := healthyTLSServer(t)
	runChild(t, "TestSSLCertFileIsTrusted", "SSL_CERT_FILE="+caFile, "JUSTSTORAGE_TEST_URL="+server.URL)
}

// connectProxy tunnels CONNECT requests to 127.0.0.1, whatever name they give,
// and records their targets.
func connectProxy(t *testing.T) (string, func() []string) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close() })
	var mu sync.Mutex
	var targets []string
	go func() {
		for {
			client, err := listener.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				request, err := http.ReadRequest(bufio.NewReader(client))
				if err != nil || request.Method != http.MethodConnect {
					return
				}
				mu.Lock()
				targets = append(targets, request.Host)
				mu.Unlock()
				_, port, _ := net.SplitHostPort(request.Host)
				upstream, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
				if err != nil {
					return
				}
				defer upstream.Close()
				_, _ = client.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
				go func() { _, _ = io.Copy(upstream, client) }()
				_, _ = io.Copy(client, upstream)
			}()
		}
	}()
	return "http://" + listener.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), targets...)
	}
}

func TestHTTPSProxyIsFollowed(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		childHealth(t, WithCACertFile(os.Getenv("JUSTSTORAGE_TEST_CA")))
		return
	}
	server, caFile := healthyTLSServer(t)
	proxyURL, seen := connectProxy(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(server.URL, "https://"))
	// A name that resolves nowhere (RFC 2606): only the proxy can reach it.
	target := "juststorage.test:" + port
	runChild(t, "TestHTTPSProxyIsFollowed", "HTTPS_PROXY="+proxyURL,
		"JUSTSTORAGE_TEST_URL=https://"+target, "JUSTSTORAGE_TEST_CA="+caFile)
	if got := seen(); len(got) != 1 || got[0] != target {
		t.Fatalf("the proxy saw %v, want one CONNECT %s", got, target)
	}
}
