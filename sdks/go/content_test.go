package juststorage_test

// Named contents of the scenario, and measuring what a call received.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const patternPeriod = 251

// patternBlock holds whole periods of the pattern (byte i is i % 251), so a
// read is one copy from an offset into it.
var patternBlock = func() []byte {
	block := make([]byte, patternPeriod*4096)
	for i := range block {
		block[i] = byte(i % patternPeriod)
	}
	return block
}()

// content is named bytes: literal text, or `size` bytes of the pattern.
type content struct {
	name string
	size int64
	text []byte // nil for a pattern

	once sync.Once
	sum  string
}

func contentFromSpec(name string, spec map[string]any) (*content, error) {
	if text, ok := spec["text"].(string); ok {
		return &content{name: name, size: int64(len(text)), text: []byte(text)}, nil
	}
	size, ok := spec["pattern"].(float64)
	if !ok {
		return nil, fmt.Errorf("content %s: neither text nor pattern", name)
	}
	c := &content{name: name, size: int64(size)}
	if env, _ := spec["size_env"].(string); env != "" && os.Getenv(env) != "" {
		mib, err := strconv.ParseInt(os.Getenv(env), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", env, err)
		}
		c.size = mib << 20
	}
	return c, nil
}

// reader yields bytes first..last inclusive (last < 0: to the end) without
// holding them.
func (c *content) reader(first, last int64) io.Reader {
	end := c.size
	if last >= 0 && last+1 < end {
		end = last + 1
	}
	if first > end {
		first = end
	}
	if c.text != nil {
		return strings.NewReader(string(c.text[first:end]))
	}
	return &patternReader{offset: first, end: end}
}

func (c *content) data(first, last int64) []byte {
	data, err := io.ReadAll(c.reader(first, last))
	if err != nil {
		panic(err)
	}
	return data
}

func (c *content) sha256() string {
	c.once.Do(func() { c.sum = summarize(c.reader(0, -1)).sha256 })
	return c.sum
}

func (c *content) writeFile(dir string) (string, error) {
	f, err := os.CreateTemp(dir, "up-*")
	if err != nil {
		return "", err
	}
	_, err = io.CopyBuffer(f, struct{ io.Reader }{c.reader(0, -1)}, make([]byte, 1<<20))
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return f.Name(), err
}

type patternReader struct{ offset, end int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.offset >= r.end {
		return 0, io.EOF
	}
	start := r.offset % patternPeriod
	n := int64(len(patternBlock)) - start
	if remaining := r.end - r.offset; remaining < n {
		n = remaining
	}
	n = int64(copy(p, patternBlock[start:start+n]))
	r.offset += n
	return int(n), nil
}

// received is a body summarised as its size and SHA-256 (never held whole).
type received struct {
	size   int64
	sha256 string
}

type hashingWriter struct {
	size   int64
	digest hash.Hash
}

func (w *hashingWriter) Write(p []byte) (int, error) {
	w.size += int64(len(p))
	return w.digest.Write(p)
}

func newHashingWriter() *hashingWriter { return &hashingWriter{digest: sha256.New()} }

func (w *hashingWriter) received() received {
	return received{w.size, hex.EncodeToString(w.digest.Sum(nil))}
}

func summarize(r io.Reader) received {
	w := newHashingWriter()
	if _, err := io.CopyBuffer(w, r, make([]byte, 1<<20)); err != nil {
		panic(err)
	}
	return w.received()
}

// peakRSS samples this process's resident memory every 5 ms while active.
type peakRSS struct {
	baseline, peak int64
	stop, done     chan struct{}
}

func startPeakRSS(t *testing.T) *peakRSS {
	// Give garbage of earlier steps back first, so it cannot hide growth.
	runtime.GC()
	debug.FreeOSMemory()
	m := &peakRSS{stop: make(chan struct{}), done: make(chan struct{})}
	m.baseline = rssBytes(t)
	m.peak = m.baseline
	go func() {
		defer close(m.done)
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-ticker.C:
				if rss := rssBytes(t); rss > m.peak {
					m.peak = rss
				}
			}
		}
	}()
	return m
}

// growthMiB stops sampling and returns the peak growth over the baseline.
func (m *peakRSS) growthMiB(t *testing.T) float64 {
	close(m.stop)
	<-m.done
	if rss := rssBytes(t); rss > m.peak {
		m.peak = rss
	}
	return float64(m.peak-m.baseline) / (1 << 20)
}

func rssBytes(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Errorf("reading /proc/self/statm: %v", err)
		return 0
	}
	fields := strings.Fields(string(data))
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

func randomHex(n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		panic(err)
	}
	return hex.EncodeToString(buf)
}
