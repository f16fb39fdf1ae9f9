package juststorage

import (
	"context"
	"net/http"
	"net/url"
	"sort"
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
	// Delimiter lists folder-style (SPEC §8.4): a key that holds it (1–16 bytes)
	// after Prefix is not yielded; its common prefix (Prefix up to and including
	// the first Delimiter after it) is, once, at its place in key order.
	Delimiter string
}

// ListEntry is one entry of a listing: an object, or (with a delimiter) a
// common prefix standing for every key that starts with it.
type ListEntry struct {
	Object       ObjectInfo // set when CommonPrefix is ""
	CommonPrefix string     // set for a rolled-up prefix (never empty then)
}

// IsPrefix tells whether the entry is a common prefix rather than an object.
func (e ListEntry) IsPrefix() bool { return e.CommonPrefix != "" }

// name is what the entry sorts by: its key, or its prefix.
func (e ListEntry) name() string {
	if e.IsPrefix() {
		return e.CommonPrefix
	}
	return e.Object.Key
}

// ListPage is one page of a listing: Items and (with a delimiter)
// CommonPrefixes, each in key order; NextCursor is "" on the last page.
type ListPage struct {
	Items          []ObjectInfo `json:"items"`
	CommonPrefixes []string     `json:"common_prefixes"`
	NextCursor     string       `json:"next_cursor"`
}

// Entries merges Items and CommonPrefixes in key order (Go compares strings
// byte by byte: UTF-8 byte order, the server's).
func (p ListPage) Entries() []ListEntry {
	entries := make([]ListEntry, 0, len(p.Items)+len(p.CommonPrefixes))
	for _, item := range p.Items {
		entries = append(entries, ListEntry{Object: item})
	}
	for _, prefix := range p.CommonPrefixes {
		entries = append(entries, ListEntry{CommonPrefix: prefix})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name() < entries[j].name() })
	return entries
}

// ObjectIterator yields the objects of a List, fetching pages as it goes:
//
//	it := client.List(ctx, opts)
//	for it.Next() {
//		obj := it.Object()
//	}
//	if err := it.Err(); err != nil { ... }
//
// With a Delimiter, an entry may be a common prefix: see Entry and IsPrefix.
type ObjectIterator struct {
	ctx    context.Context
	client *Client
	query  url.Values
	page   []ListEntry
	index  int
	cursor string
	last   bool // no page after the current one
	err    error
}

// List iterates over every matching object in key order, following
// next_cursor page by page. No request is sent before the first Next.
func (c *Client) List(ctx context.Context, opts ListOptions) *ObjectIterator {
	return &ObjectIterator{ctx: ctx, client: c, query: listQuery(opts), index: -1}
}

// ListPage fetches one page of a listing: at most opts.PageSize entries (items
// and common prefixes together) after cursor ("" for the first page).
func (c *Client) ListPage(ctx context.Context, opts ListOptions, cursor string) (ListPage, error) {
	query := listQuery(opts)
	if cursor != "" {
		query.Set("cursor", cursor)
	}
	var page ListPage
	r := &request{method: http.MethodGet, path: "/v1/objects", query: query, idempotent: true}
	err := c.doJSON(ctx, r, &page)
	return page, err
}

func listQuery(opts ListOptions) url.Values {
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
	if opts.Delimiter != "" {
		query.Set("delimiter", opts.Delimiter)
	}
	return query
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
	var page ListPage
	r := &request{method: http.MethodGet, path: "/v1/objects", query: query, idempotent: true}
	if err := it.client.doJSON(it.ctx, r, &page); err != nil {
		it.err = err
		return false
	}
	it.page, it.index = page.Entries(), 0
	if page.NextCursor == "" || len(it.page) == 0 {
		it.last = true
	} else {
		it.cursor = page.NextCursor
	}
	return true
}

// Entry is the entry Next advanced to: an object or a common prefix.
func (it *ObjectIterator) Entry() ListEntry { return it.page[it.index] }

// IsPrefix tells whether Next advanced to a common prefix (see Prefix).
func (it *ObjectIterator) IsPrefix() bool { return it.page[it.index].IsPrefix() }

// Prefix is the common prefix Next advanced to ("" for an object).
func (it *ObjectIterator) Prefix() string { return it.page[it.index].CommonPrefix }

// Object is the object Next advanced to (the zero value for a common prefix).
func (it *ObjectIterator) Object() ObjectInfo { return it.page[it.index].Object }

// Err is the error that ended the iteration, nil when it ran to the end.
func (it *ObjectIterator) Err() error { return it.err }

// All collects the objects of the rest of the iteration, leaving common
// prefixes out (mind its size).
func (it *ObjectIterator) All() ([]ObjectInfo, error) {
	var all []ObjectInfo
	for it.Next() {
		if !it.IsPrefix() {
			all = append(all, it.Object())
		}
	}
	return all, it.Err()
}

// AllEntries collects the rest of the iteration, objects and common prefixes.
func (it *ObjectIterator) AllEntries() ([]ListEntry, error) {
	var all []ListEntry
	for it.Next() {
		all = append(all, it.Entry())
	}
	return all, it.Err()
}
