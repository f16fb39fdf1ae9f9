package juststorage

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// ListOptions select what List yields.
type ListOptions struct {
	Tenant    string // required
	Namespace string // required
	Prefix    string // literal key prefix
	// Versions lists every committed version, newest first per key (default:
	// only the newest version of each key).
	Versions     bool
	StorageClass string
	PageSize     int // 1–1000 per request; 0: 100
}

// ObjectIterator yields the objects of a List, fetching pages as it goes:
//
//	it := client.List(ctx, opts)
//	for it.Next() {
//		obj := it.Object()
//	}
//	if err := it.Err(); err != nil { ... }
type ObjectIterator struct {
	ctx    context.Context
	client *Client
	query  url.Values
	page   []ObjectInfo
	index  int
	cursor string
	last   bool // no page after the current one
	err    error
}

// List iterates over every matching object in key order, following
// next_cursor page by page. No request is sent before the first Next.
func (c *Client) List(ctx context.Context, opts ListOptions) *ObjectIterator {
	pageSize := opts.PageSize
	if pageSize == 0 {
		pageSize = 100
	}
	query := url.Values{
		"tenant":    {opts.Tenant},
		"namespace": {opts.Namespace},
		"limit":     {strconv.Itoa(pageSize)},
	}
	if opts.Prefix != "" {
		query.Set("prefix", opts.Prefix)
	}
	if opts.Versions {
		query.Set("versions", "true")
	}
	if opts.StorageClass != "" {
		query.Set("storage_class", opts.StorageClass)
	}
	return &ObjectIterator{ctx: ctx, client: c, query: query, index: -1}
}

// Next advances to the next object; false at the end or on an error (see Err).
func (it *ObjectIterator) Next() bool {
	if it.err != nil {
		return false
	}
	it.index++
	for it.index >= len(it.page) {
		if it.last {
			return false
		}
		if !it.fetch() {
			return false
		}
	}
	return true
}

func (it *ObjectIterator) fetch() bool {
	query := url.Values{}
	for name, values := range it.query {
		query[name] = values
	}
	if it.cursor != "" {
		query.Set("cursor", it.cursor)
	}
	var page struct {
		Items      []ObjectInfo `json:"items"`
		NextCursor *string      `json:"next_cursor"`
	}
	r := &request{method: http.MethodGet, path: "/v1/objects", query: query, idempotent: true}
	if err := it.client.doJSON(it.ctx, r, &page); err != nil {
		it.err = err
		return false
	}
	it.page, it.index = page.Items, 0
	if page.NextCursor == nil || *page.NextCursor == "" || len(page.Items) == 0 {
		it.last = true
	} else {
		it.cursor = *page.NextCursor
	}
	return true
}

// Object is the object Next advanced to.
func (it *ObjectIterator) Object() ObjectInfo { return it.page[it.index] }

// Err is the error that ended the iteration, nil when it ran to the end.
func (it *ObjectIterator) Err() error { return it.err }

// All collects the rest of the iteration (mind its size).
func (it *ObjectIterator) All() ([]ObjectInfo, error) {
	var all []ObjectInfo
	for it.Next() {
		all = append(all, it.Object())
	}
	return all, it.Err()
}
