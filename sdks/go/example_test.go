package juststorage_test

// The README's complete example (compiled by `go vet`/`go test`; not run,
// as it needs a server with an admin key in data/admin.key).

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	js "github.com/juststorage/juststorage/sdks/go"
)

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	key, err := os.ReadFile("data/admin.key")
	if err != nil {
		log.Fatal(err)
	}
	c, err := js.New("http://127.0.0.1:8080", strings.TrimSpace(string(key)))
	if err != nil {
		log.Fatal(err)
	}
	if h, err := c.Ready(ctx); err != nil || !h.OK {
		log.Fatalf("not ready: %+v %v", h, err)
	}

	// Upload bytes, a file (hashed first in one streaming pass) or any io.Reader.
	// X-Content-SHA256 is sent whenever the digest is known up front.
	v1, err := c.UploadBytes(ctx, []byte("hello"), js.UploadOptions{
		Tenant: "acme", Namespace: "files", Key: "docs/hello.txt",
		ContentType: "text/plain", IfNoneMatch: "*", // create only
	})
	if err != nil {
		log.Fatal(err)
	}
	v2, err := c.UploadFile(ctx, "model.bin", js.UploadOptions{
		Tenant: "acme", Namespace: "models", Key: "llama.bin", StorageClass: "cold",
	})
	if err != nil {
		log.Fatal(err)
	}
	// A stream of unknown size is sent chunked (and never retried: it cannot be re-read).
	if _, err := c.Upload(ctx, os.Stdin, js.UploadOptions{
		Tenant: "acme", Namespace: "files", Key: "from-stdin.txt",
	}); err != nil {
		log.Fatal(err)
	}
	// Replace only if the current version is still v1.
	if _, err := c.UploadBytes(ctx, []byte("hello again"), js.UploadOptions{
		Tenant: "acme", Namespace: "files", Key: "docs/hello.txt", IfMatch: v1.ContentHash,
	}); err != nil {
		log.Fatal(err)
	}
	// Upload by hash: content the tenant already stores (any namespace, same class)
	// becomes a new version without being sent; found false means "send the bytes".
	backup := js.UploadOptions{Tenant: "acme", Namespace: "backup", Key: "llama.bin",
		StorageClass: "cold", SHA256: v2.ContentHash, Size: v2.SizeBytes}
	if _, found, err := c.PutByHash(ctx, backup); err != nil {
		log.Fatal(err)
	} else if !found {
		backup.SHA256 = ""
		if _, err := c.UploadFile(ctx, "model.bin", backup); err != nil {
			log.Fatal(err)
		}
	}

	// Download by id or by key (newest version): to memory, a file, any io.Writer.
	data, err := c.DownloadBytes(ctx, js.ByID("acme", v1.ID), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data)) // hello
	first5, err := c.DownloadBytes(ctx, js.ByKey("acme", "files", "docs/hello.txt"),
		&js.DownloadOptions{Range: &js.ByteRange{First: 0, Last: 4}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(first5)) // hello
	// Written to a temporary file beside it, renamed once every byte arrived and the SHA-256 matched.
	if _, err := c.DownloadFile(ctx, js.ByID("acme", v2.ID), "copy.bin", nil); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Download(ctx, js.ByKey("acme", "models", "llama.bin"), os.Stdout, nil); err != nil {
		log.Fatal(err)
	}
	d, err := c.Open(ctx, js.ByID("acme", v2.ID), nil) // an io.ReadCloser that resumes and verifies
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Head.SizeBytes, d.Head.ContentHash)
	d.Close()

	head, err := c.Head(ctx, js.ByID("acme", v2.ID))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(head.StorageClass, head.SizeBytes)

	it := c.List(ctx, js.ListOptions{Tenant: "acme", Namespace: "files", Prefix: "docs/", Versions: true})
	for it.Next() { // follows next_cursor page by page
		obj := it.Object()
		fmt.Println(obj.Key, obj.ID, obj.SizeBytes)
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	usage, err := c.Usage(ctx, "acme")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(usage.Objects, usage.MonthlyCost, usage.Currency)

	if err := c.Delete(ctx, js.ByID("acme", v1.ID)); err != nil { // one version
		log.Fatal(err)
	}
	if err := c.Delete(ctx, js.ByKey("acme", "files", "docs/hello.txt")); err != nil { // every version
		log.Fatal(err)
	}
	_, err = c.Head(ctx, js.ByID("acme", v1.ID))
	var apiErr *js.APIError
	if errors.Is(err, js.ErrNotFound) && errors.As(err, &apiErr) {
		fmt.Println(apiErr.Code, apiErr.Status, apiErr.RequestID, apiErr.Message)
	}
}
