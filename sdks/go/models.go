package juststorage

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ObjectRef names one object: by id (with its tenant), or by namespace and
// key (the newest version). Build it with ByID or ByKey.
type ObjectRef struct {
	Tenant    string
	ID        string
	Namespace string
	Key       string
}

// ByID names an object version by its id.
func ByID(tenant, id string) ObjectRef { return ObjectRef{Tenant: tenant, ID: id} }

// ByKey names the newest version of a key (for Delete: every version).
func ByKey(tenant, namespace, key string) ObjectRef {
	return ObjectRef{Tenant: tenant, Namespace: namespace, Key: key}
}

var errRef = errors.New("juststorage: name the object by ID, or by Namespace and Key")

func (r ObjectRef) path() (string, error) {
	byKey := r.Namespace != "" || r.Key != ""
	if r.Tenant == "" || (r.ID == "") == !byKey || (byKey && (r.Namespace == "" || r.Key == "")) {
		return "", errRef
	}
	if r.ID != "" {
		return "/v1/objects/" + escape(r.ID), nil
	}
	// `/` in the key is sent as %2F (the same to the server), so that no
	// path normalisation on the way can touch "." or ".." segments.
	key := escape(r.Key)
	if strings.Trim(key, ".") == "" {
		key = strings.ReplaceAll(key, ".", "%2E")
	}
	return "/v1/objects/by-key/" + escape(r.Namespace) + "/" + escape(r.Tenant) + "/" + key, nil
}

func (r ObjectRef) header() http.Header {
	if r.ID != "" {
		return http.Header{"X-Tenant": {r.Tenant}}
	}
	return http.Header{}
}

// escape percent-encodes everything but RFC 3986's unreserved characters.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'A' <= ch && ch <= 'Z' || 'a' <= ch && ch <= 'z' || '0' <= ch && ch <= '9' ||
			ch == '-' || ch == '.' || ch == '_' || ch == '~' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

// ToEnd as ByteRange.Last means "to the last byte of the object".
const ToEnd int64 = -1

// ByteRange is Range: bytes=First-Last, inclusive; Last ToEnd = to the end.
type ByteRange struct {
	First int64
	Last  int64
}

func (r ByteRange) header() (string, error) {
	if r.First < 0 || (r.Last != ToEnd && r.Last < r.First) {
		return "", errors.New("juststorage: invalid byte range " +
			strconv.FormatInt(r.First, 10) + "-" + strconv.FormatInt(r.Last, 10))
	}
	if r.Last == ToEnd {
		return "bytes=" + strconv.FormatInt(r.First, 10) + "-", nil
	}
	return "bytes=" + strconv.FormatInt(r.First, 10) + "-" + strconv.FormatInt(r.Last, 10), nil
}

// ObjectInfo is one stored object version, as upload and list answer it (SPEC §2).
type ObjectInfo struct {
	ID           string    `json:"id"`
	TenantID     string    `json:"tenant_id"`
	Namespace    string    `json:"namespace"`
	Key          string    `json:"key"`
	ContentHash  string    `json:"content_hash"` // "sha256:<hex>"
	SizeBytes    int64     `json:"size_bytes"`
	StorageClass string    `json:"storage_class"`
	ContentType  string    `json:"content_type"`
	CreatedAt    time.Time `json:"created_at"`
}

// SHA256 is the hex digest of the content.
func (o ObjectInfo) SHA256() string { return strings.TrimPrefix(o.ContentHash, "sha256:") }

// ETag is the object's ETag, quoted, for UploadOptions.IfMatch.
func (o ObjectInfo) ETag() string { return `"` + o.ContentHash + `"` }

// ObjectHead is what the headers of a download (HEAD, or GET before its body) say.
type ObjectHead struct {
	ID           string     `json:"id"`
	ContentHash  string     `json:"content_hash"` // "sha256:<hex>", from the ETag
	SizeBytes    int64      `json:"size_bytes"`   // of the whole object
	ContentType  string     `json:"content_type"`
	StorageClass string     `json:"storage_class"`
	LastModified *time.Time `json:"last_modified"`
}

// SHA256 is the hex digest of the content.
func (h ObjectHead) SHA256() string { return strings.TrimPrefix(h.ContentHash, "sha256:") }

func headFrom(header http.Header, contentLength int64) ObjectHead {
	head := ObjectHead{
		ID:           header.Get("X-Object-Id"),
		ContentHash:  strings.Trim(header.Get("ETag"), `"`),
		SizeBytes:    contentLength,
		ContentType:  header.Get("Content-Type"),
		StorageClass: header.Get("X-Storage-Class"),
	}
	if head.ContentType == "" {
		head.ContentType = "application/octet-stream"
	}
	if cr := header.Get("Content-Range"); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if total, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				head.SizeBytes = total
			}
		}
	} else if cl := header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			head.SizeBytes = n
		}
	}
	if head.SizeBytes < 0 {
		head.SizeBytes = 0
	}
	if lm := header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			head.LastModified = &t
		}
	}
	return head
}

// ClassUsage is one storage class in Usage.
type ClassUsage struct {
	Objects     int64   `json:"objects"`
	Bytes       int64   `json:"bytes"`
	MonthlyCost float64 `json:"monthly_cost"`
}

// Usage is GET /v1/usage: logical totals and the monthly cost per storage class.
type Usage struct {
	TenantID       string                `json:"tenant_id"`
	Objects        int64                 `json:"objects"`
	LogicalBytes   int64                 `json:"logical_bytes"`
	ByStorageClass map[string]ClassUsage `json:"by_storage_class"`
	MonthlyCost    float64               `json:"monthly_cost"`
	Currency       string                `json:"currency"`
	// Raw is the whole answer, fields this client does not know included.
	Raw map[string]any `json:"-"`
}

// Health is /health or /ready: OK only on a 200 whose status is "ok".
type Health struct {
	OK     bool
	Status string
	Checks map[string]string
}
