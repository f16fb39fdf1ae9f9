package juststorage_test

// Real `juststorage serve` processes on 127.0.0.1 for the conformance tests
// (the Go twin of tests/server_process.py). Only processes started here are
// ever signalled, always by PID.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	serverStartTimeout = 30 * time.Second
	serverStopTimeout  = 10 * time.Second
)

// settingNames are read from the environment without the JUSTSTORAGE_ prefix:
// never inherit them from the caller's shell.
var settingNames = map[string]bool{
	"DATABASE_URL": true, "JWT_SECRET": true, "API_KEYS": true, "PROMETHEUS_MULTIPROC_DIR": true,
}

type testServer struct {
	URL     string
	Port    int
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func serverBinary(t *testing.T) string {
	bin := os.Getenv("JUSTSTORAGE_BIN")
	if bin == "" {
		bin = filepath.Join(repoRoot(t), ".venv", "bin", "juststorage")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no server binary at %s (run `make install`, or set JUSTSTORAGE_BIN): %v", bin, err)
	}
	return bin
}

// Ports for test servers come from the range and claim directory of the Python
// test launcher (juststorage.testing.free_port): pytest, this suite and the
// TypeScript one run at the same time, and a port chosen by binding port 0 (the
// ephemeral range) could be taken by another process's proxy or server in the
// second before `serve` binds it. A port is probed free, then claimed with a
// file created O_EXCL, and not handed out again for 15 minutes.
const (
	listenPortLow  = 20000
	listenPortHigh = 32767
	portClaimTTL   = 15 * time.Minute
)

var portChoice = rand.New(rand.NewSource(time.Now().UnixNano() ^ int64(os.Getpid())))

func freePort(t *testing.T) int {
	t.Helper()
	claims := filepath.Join(os.TempDir(), "juststorage-test-ports")
	if err := os.MkdirAll(claims, 0o1777); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		port := listenPortLow + portChoice.Intn(listenPortHigh-listenPortLow+1)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		ln.Close()
		if claimPort(claims, port) {
			return port
		}
	}
	t.Fatalf("no free port in %d-%d on 127.0.0.1", listenPortLow, listenPortHigh)
	return 0
}

// claimPort claims port for this process: false if another claimed it within
// the TTL. A stale claim is renamed away by one process, which then claims it.
func claimPort(claims string, port int) bool {
	claim := filepath.Join(claims, strconv.Itoa(port))
	for attempt := 0; attempt < 2; attempt++ {
		f, err := os.OpenFile(claim, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return true
		}
		if !errors.Is(err, fs.ErrExist) {
			return false
		}
		info, err := os.Stat(claim)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || time.Since(info.ModTime()) < portClaimTTL {
			return false
		}
		stale := fmt.Sprintf("%s.%d.stale", claim, os.Getpid())
		if err := os.Rename(claim, stale); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return false
		}
		os.Remove(stale)
	}
	return false
}

func cleanEnv(dataDir string, extra map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "JUSTSTORAGE_") || settingNames[name] {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "JUSTSTORAGE_DATA_DIR="+dataDir, "JUSTSTORAGE_LOG_LEVEL=warning")
	for name, value := range extra {
		env = append(env, name+"="+value)
	}
	return env
}

// startServer starts a server with a fresh data directory and waits for
// /health. It fails t; owner's Cleanup (t, or a parent test whose subtests
// share the server) stops it and removes its data.
func startServer(t, owner *testing.T, extraEnv map[string]string) *testServer {
	t.Helper()
	root, err := os.MkdirTemp("", "juststorage-go-conformance-")
	if err != nil {
		t.Fatal(err)
	}
	owner.Cleanup(func() { os.RemoveAll(root) })
	dataDir := filepath.Join(root, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	logPath := filepath.Join(root, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(serverBinary(t), "serve", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Env = cleanEnv(dataDir, extraEnv)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If this test binary dies (a -timeout panic skips every Cleanup), the
	// kernel sends the server SIGTERM, which stops its workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &testServer{
		URL:     "http://127.0.0.1:" + strconv.Itoa(port),
		Port:    port,
		cmd:     cmd,
		exited:  make(chan struct{}),
		logPath: logPath,
	}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	owner.Cleanup(s.stop) // runs before the RemoveAll registered above
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer probe.CloseIdleConnections()
	deadline := time.Now().Add(serverStartTimeout)
	for {
		select {
		case <-s.exited:
			t.Fatalf("server exited with %v:\n%s", cmd.ProcessState, s.log())
		default:
		}
		if resp, err := probe.Get(s.URL + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not healthy after %v:\n%s", serverStartTimeout, s.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *testServer) log() string {
	data, _ := os.ReadFile(s.logPath)
	return string(data)
}

// stop sends SIGTERM, then SIGKILL after serverStopTimeout; a worker the
// server left behind is killed by PID if it still runs juststorage.
func (s *testServer) stop() {
	pid := s.cmd.Process.Pid
	select {
	case <-s.exited:
		return
	default:
	}
	children := childPIDs(pid)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(serverStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	for _, child := range children {
		if isOurs(child) {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}
}

func childPIDs(pid int) []int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var pids []int
	for _, field := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(field); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// isOurs is true while pid (recorded as a child of our server) still runs juststorage.
func isOurs(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte("juststorage"))
}
