// Command measure compares the Go SDK with curl on one large file (a manual run):
//
//	cd sdks/go && go run ./cmd/measure --mib 1024 --runs 3
//
// It starts `juststorage serve` on 127.0.0.1 with a fresh data directory
// under --tmp, writes a file of --mib MiB of random bytes, and uploads and
// downloads it with each client, every transfer in its own process (peak RSS
// from wait4's ru_maxrss). It prints a Markdown table of medians over --runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	js "github.com/juststorage/juststorage/sdks/go"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		child(os.Args[2:])
		return
	}
	mib := flag.Int("mib", 1024, "size of the file in MiB")
	runs := flag.Int("runs", 3, "transfers per client and direction (the table shows medians)")
	tmp := flag.String("tmp", os.TempDir(), "where the server's data and the files go")
	bin := flag.String("bin", defaultBin(), "the juststorage executable")
	flag.Parse()
	if err := measure(*mib, *runs, *tmp, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}

func defaultBin() string {
	if bin := os.Getenv("JUSTSTORAGE_BIN"); bin != "" {
		return bin
	}
	return filepath.Join("..", "..", ".venv", "bin", "juststorage")
}

// child is one transfer with the SDK: upload|download|upload-nochecksum URL TOKEN FILE KEY.
func child(args []string) {
	mode, url, token, path, key := args[0], args[1], args[2], args[3], args[4]
	client, err := js.New(url, token)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	switch mode {
	case "upload", "upload-nochecksum":
		opts := js.UploadOptions{Tenant: "bench", Namespace: "m", Key: key, NoChecksum: mode != "upload"}
		_, err = client.UploadFile(ctx, path, opts)
	case "download":
		_, err = client.DownloadFile(ctx, js.ByKey("bench", "m", key), path, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type sample struct{ seconds, rssMiB float64 }

// run runs argv to completion; its wall time and peak RSS.
func run(argv []string) (sample, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	started := time.Now()
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("%s %s: %w", argv[0], argv[1], err)
	}
	usage := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return sample{time.Since(started).Seconds(), float64(usage.Maxrss) / 1024}, nil
}

func median(values []float64) float64 {
	sort.Float64s(values)
	return values[len(values)/2]
}

func measure(mib, runs int, tmp, bin string) error {
	root, err := os.MkdirTemp(tmp, "js-measure-go-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	url, token, stop, err := startServer(bin, root)
	if err != nil {
		return err
	}
	defer stop()
	source := filepath.Join(root, "source.bin")
	if err := writeRandom(source, mib); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	out := filepath.Join(root, "out.bin")
	auth := "Authorization: Bearer " + token
	type client struct {
		name     string
		up, down func(key string) []string
	}
	clients := []client{
		{"curl",
			func(key string) []string {
				return []string{"curl", "-sf", "-o", "/dev/null", "-X", "POST", url + "/v1/objects", "-H", auth,
					"-H", "X-Tenant: bench", "-H", "X-Namespace: m", "-H", "X-Key: " + key, "-T", source}
			},
			func(key string) []string {
				return []string{"curl", "-sf", url + "/v1/objects/by-key/m/bench/" + key, "-H", auth, "-o", out}
			}},
		{"Go SDK (UploadFile hashes first, DownloadFile verifies)",
			func(key string) []string { return []string{self, "-child", "upload", url, token, source, key} },
			func(key string) []string { return []string{self, "-child", "download", url, token, out, key} }},
		{"Go SDK, UploadFile with NoChecksum",
			func(key string) []string {
				return []string{self, "-child", "upload-nochecksum", url, token, source, key}
			},
			nil},
	}
	results := make([][4][]float64, len(clients))
	for r := 0; r < runs; r++ {
		for i, c := range clients {
			key := fmt.Sprintf("c%d-r%d", i, r)
			up, err := run(c.up(key))
			if err != nil {
				return err
			}
			results[i][0] = append(results[i][0], float64(mib)/up.seconds)
			results[i][1] = append(results[i][1], up.rssMiB)
			if c.down == nil {
				continue
			}
			down, err := run(c.down(key))
			if err != nil {
				return err
			}
			if info, err := os.Stat(out); err != nil || info.Size() != int64(mib)<<20 {
				return fmt.Errorf("%s downloaded %v bytes: %v", c.name, info, err)
			}
			os.Remove(out)
			results[i][2] = append(results[i][2], float64(mib)/down.seconds)
			results[i][3] = append(results[i][3], down.rssMiB)
		}
	}
	fmt.Printf("| client (%d MiB, median of %d) | upload MiB/s | upload peak RSS MiB | download MiB/s | download peak RSS MiB |\n", mib, runs)
	fmt.Println("|---|---|---|---|---|")
	for i, c := range clients {
		cells := []string{c.name}
		for _, column := range results[i] {
			if len(column) == 0 {
				cells = append(cells, "–")
				continue
			}
			cells = append(cells, strconv.FormatFloat(median(column), 'f', 0, 64))
		}
		fmt.Printf("| %s |\n", strings.Join(cells, " | "))
	}
	return nil
}

func writeRandom(path string, mib int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i := 0; i < mib; i++ {
		rng.Read(block)
		if _, err := f.Write(block); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// startServer starts `juststorage serve` on a free 127.0.0.1 port with a
// fresh data directory; it returns its URL, the admin key it created and how
// to stop it (SIGTERM by PID, SIGKILL after 10 s).
func startServer(bin, root string) (string, string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dataDir := filepath.Join(root, "data")
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "JUSTSTORAGE_") && name != "DATABASE_URL" &&
			name != "JWT_SECRET" && name != "API_KEYS" && name != "PROMETHEUS_MULTIPROC_DIR" {
			env = append(env, kv)
		}
	}
	env = append(env, "JUSTSTORAGE_DATA_DIR="+dataDir, "JUSTSTORAGE_LOG_LEVEL=warning")
	log, err := os.Create(filepath.Join(root, "server.log"))
	if err != nil {
		return "", "", nil, err
	}
	defer log.Close()
	cmd := exec.Command(bin, "serve", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Env, cmd.Stdout, cmd.Stderr = env, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return "", "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url + "/health")
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		key, err := os.ReadFile(filepath.Join(dataDir, "admin.key"))
		if resp.StatusCode == http.StatusOK && err == nil {
			return url, strings.TrimSpace(string(key)), stop, nil
		}
	}
	stop()
	return "", "", nil, fmt.Errorf("server not healthy after 30 s (log in %s)", log.Name())
}
