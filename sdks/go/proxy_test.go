package juststorage_test

// A 127.0.0.1 TCP proxy that cuts one answer mid-body, to test resumed
// downloads (the Go twin of tests/sdk/proxy.py).

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// connLifetime bounds every proxied connection: a stuck client cannot keep us forever.
const connLifetime = 5 * time.Minute

// cuttingProxy forwards to the upstream port; the first connection that has
// sent cutAfter bytes downstream is reset at once. Later connections pass.
type cuttingProxy struct {
	URL      string
	listener net.Listener
	upstream string
	cutAfter int64

	mu       sync.Mutex
	cuts     int
	requests []string // the head of every request forwarded
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, upstreamPort int, cutAfter int64) *cuttingProxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{
		URL:      "http://" + listener.Addr().String(),
		listener: listener,
		upstream: "127.0.0.1:" + strconv.Itoa(upstreamPort),
		cutAfter: cutAfter,
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cuttingProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.listener.Accept()
		if err != nil {
			return // closed
		}
		upstream, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		deadline := time.Now().Add(connLifetime)
		_ = client.SetDeadline(deadline)
		_ = upstream.SetDeadline(deadline)
		p.mu.Lock()
		p.conns = append(p.conns, client, upstream)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pumpUp(client, upstream)
		go p.pumpDown(client, upstream)
	}
}

var methods = [][]byte{[]byte("GET "), []byte("HEAD "), []byte("POST "), []byte("DELETE ")}

func (p *cuttingProxy) pumpUp(client, upstream net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			data := buf[:n]
			for _, method := range methods {
				if bytes.HasPrefix(data, method) {
					head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
					p.mu.Lock()
					p.requests = append(p.requests, string(head))
					p.mu.Unlock()
					break
				}
			}
			if _, err := upstream.Write(data); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if tcp, ok := upstream.(*net.TCPConn); ok {
		_ = tcp.CloseWrite()
	}
}

func (p *cuttingProxy) pumpDown(client, upstream net.Conn) {
	defer p.wg.Done()
	defer upstream.Close()
	defer client.Close()
	buf := make([]byte, 64<<10)
	var sent int64
	for {
		n, err := upstream.Read(buf)
		if n > 0 {
			p.mu.Lock()
			cutNow := p.cuts == 0 && sent+int64(n) > p.cutAfter
			if cutNow {
				p.cuts++
			}
			p.mu.Unlock()
			if cutNow {
				_, _ = client.Write(buf[:p.cutAfter-sent])
				// RST instead of FIN: the client sees a broken connection.
				if tcp, ok := client.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0)
				}
				return
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil { // EOF from upstream, or the connection broke
			return
		}
	}
}

func (p *cuttingProxy) close() {
	p.listener.Close()
	p.mu.Lock()
	for _, conn := range p.conns {
		conn.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *cuttingProxy) stats() (cuts int, requests []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts, append([]string(nil), p.requests...)
}
