package ct

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Fetcher does a log's HTTP GETs with the pacing logs ask for: a request
// rate per log, a shared pause when the log answers 429 or 503 (for as long
// as Retry-After says), and exponential backoff on other failures.
type Fetcher struct {
	HTTP      *http.Client
	Rate      float64 // requests per second; 0 means no limit
	UserAgent string
	// MaxRetries bounds consecutive failures of one request (8 when zero).
	MaxRetries int

	mu        sync.Mutex
	notBefore time.Time // no request before this (Retry-After)
	nextSlot  time.Time // rate limiter

	Requests  atomic.Int64
	Throttled atomic.Int64 // 429/503 answers
}

// HTTPError is a non-success answer.
type HTTPError struct {
	URL    string
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.URL, e.Status, e.Body)
}

// wait blocks until the log may be asked again.
func (f *Fetcher) wait(ctx context.Context) error {
	f.mu.Lock()
	now := time.Now()
	at := now
	if f.notBefore.After(at) {
		at = f.notBefore
	}
	if f.Rate > 0 {
		if f.nextSlot.After(at) {
			at = f.nextSlot
		}
		f.nextSlot = at.Add(time.Duration(float64(time.Second) / f.Rate))
	}
	f.mu.Unlock()
	if d := time.Until(at); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// A 429 may have arrived while this request waited for its slot.
		f.mu.Lock()
		nb := f.notBefore
		f.mu.Unlock()
		if nb.After(time.Now()) {
			return f.wait(ctx)
		}
	}
	return nil
}

// pause holds every request to the log until d from now.
func (f *Fetcher) pause(d time.Duration) {
	f.mu.Lock()
	if t := time.Now().Add(d); t.After(f.notBefore) {
		f.notBefore = t
	}
	f.mu.Unlock()
}

// retryAfter reads a Retry-After header (seconds or an HTTP date).
func retryAfter(h string, def time.Duration) time.Duration {
	if h == "" {
		return def
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, 10*time.Minute)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(t), 0), 10*time.Minute)
	}
	return def
}

// Get fetches url, retrying as the pacing rules say. A 404 is returned at
// once (as *HTTPError) because the caller may have a fallback.
func (f *Fetcher) Get(ctx context.Context, url string) ([]byte, error) {
	hc := f.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	maxRetries := f.MaxRetries
	if maxRetries <= 0 {
		maxRetries = 8
	}
	backoff := 250 * time.Millisecond
	var lastErr error
	for attempt := 0; attempt <= maxRetries; attempt++ {
		if err := f.wait(ctx); err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return nil, err
		}
		if f.UserAgent != "" {
			req.Header.Set("User-Agent", f.UserAgent)
		}
		f.Requests.Add(1)
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = fmt.Errorf("GET %s: %w", url, err)
		} else {
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && rerr == nil:
				return body, nil
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
				f.Throttled.Add(1)
				f.pause(retryAfter(resp.Header.Get("Retry-After"), backoff))
				lastErr = &HTTPError{URL: url, Status: resp.StatusCode}
				attempt-- // being told to wait is not a failure; the pause paces it
				if f.Throttled.Load() > 10000 {
					return nil, lastErr
				}
				continue
			case resp.StatusCode == http.StatusNotFound || (resp.StatusCode >= 400 && resp.StatusCode < 500):
				return nil, &HTTPError{URL: url, Status: resp.StatusCode, Body: strings.TrimSpace(string(truncate(body, 200)))}
			case rerr != nil:
				lastErr = fmt.Errorf("GET %s: %w", url, rerr)
			default:
				lastErr = &HTTPError{URL: url, Status: resp.StatusCode, Body: strings.TrimSpace(string(truncate(body, 200)))}
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 30*time.Second)
	}
	return nil, lastErr
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Client reads one log, through either API.
type Client interface {
	// TreeHead fetches the newest tree head (its signature is not yet checked).
	TreeHead(ctx context.Context) (*TreeHead, error)
	// Entries fetches entries from start, up to end (exclusive), in a tree of
	// size treeSize. It may return fewer than asked, never none without an error.
	Entries(ctx context.Context, start, end, treeSize uint64) ([]Entry, error)
	// Batch is the natural number of entries per request.
	Batch() uint64
	// Fetcher is the paced HTTP fetcher behind the client.
	Fetcher() *Fetcher
}

// NewClient returns the client for l's API.
func NewClient(l *LogInfo, f *Fetcher, batch uint64) Client {
	if l.Kind == Static {
		origin := strings.TrimSuffix(l.SubmissionURL, "/")
		if i := strings.Index(origin, "://"); i >= 0 {
			origin = origin[i+3:]
		}
		return &staticClient{log: l, f: f, origin: origin}
	}
	if batch == 0 {
		batch = 256
	}
	return &rfcClient{log: l, f: f, batch: batch}
}

type rfcClient struct {
	log   *LogInfo
	f     *Fetcher
	batch uint64
}

func (c *rfcClient) Batch() uint64     { return c.batch }
func (c *rfcClient) Fetcher() *Fetcher { return c.f }

func (c *rfcClient) TreeHead(ctx context.Context) (*TreeHead, error) {
	body, err := c.f.Get(ctx, c.log.URL+"ct/v1/get-sth")
	if err != nil {
		return nil, err
	}
	return ParseSTH(body)
}

func (c *rfcClient) Entries(ctx context.Context, start, end, treeSize uint64) ([]Entry, error) {
	body, err := c.f.Get(ctx, fmt.Sprintf("%sct/v1/get-entries?start=%d&end=%d", c.log.URL, start, end-1))
	if err != nil {
		return nil, err
	}
	return ParseGetEntries(body, start, end)
}

// ParseGetEntries parses an RFC 6962 get-entries response for entries from
// start. Only leaf_input is decoded: the monitor needs nothing from
// extra_data (the precert entry's TBS is in the leaf), and every leaf is
// checked against the signed tree head through the Merkle tree anyway.
func ParseGetEntries(body []byte, start, end uint64) ([]Entry, error) {
	leaves, ok := scanLeafInputs(body)
	if !ok {
		var r struct {
			Entries []struct {
				Leaf []byte `json:"leaf_input"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("get-entries: %w", err)
		}
		leaves = leaves[:0]
		for _, e := range r.Entries {
			leaves = append(leaves, e.Leaf)
		}
	}
	if len(leaves) == 0 {
		return nil, errors.New("get-entries: no entries")
	}
	if uint64(len(leaves)) > end-start {
		return nil, fmt.Errorf("get-entries: %d entries, asked for %d", len(leaves), end-start)
	}
	out := make([]Entry, len(leaves))
	for i, leaf := range leaves {
		e := &out[i]
		e.Index = start + uint64(i)
		if err := ParseLeafInput(leaf, e); err != nil {
			// Keep the raw leaf hash so the tree still verifies; the entry
			// is reported as unparseable by the monitor.
			*e = Entry{Index: e.Index, LeafHash: LeafHash(leaf), Type: 0xffff}
		}
	}
	return out, nil
}

// scanLeafInputs is the fast path of ParseGetEntries: it finds each
// "leaf_input" string and decodes its base64 without a JSON decoder. It
// reports false on anything unusual (escapes, odd layout, bad base64), and
// the caller falls back to encoding/json.
func scanLeafInputs(body []byte) ([][]byte, bool) {
	key := []byte(`"leaf_input"`)
	if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
		return nil, false
	}
	var out [][]byte
	rest := body
	for {
		i := bytes.Index(rest, key)
		if i < 0 {
			break
		}
		rest = bytes.TrimLeft(rest[i+len(key):], " \t\r\n")
		if len(rest) == 0 || rest[0] != ':' {
			return nil, false
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if len(rest) == 0 || rest[0] != '"' {
			return nil, false
		}
		rest = rest[1:]
		j := bytes.IndexByte(rest, '"')
		if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
			return nil, false
		}
		leaf := make([]byte, base64.StdEncoding.DecodedLen(j))
		n, err := base64.StdEncoding.Decode(leaf, rest[:j])
		if err != nil {
			return nil, false
		}
		out = append(out, leaf[:n])
		rest = rest[j+1:]
	}
	return out, len(out) > 0
}

type staticClient struct {
	log    *LogInfo
	f      *Fetcher
	origin string
}

func (c *staticClient) Batch() uint64     { return 256 }
func (c *staticClient) Fetcher() *Fetcher { return c.f }

func (c *staticClient) TreeHead(ctx context.Context) (*TreeHead, error) {
	body, err := c.f.Get(ctx, c.log.URL+"checkpoint")
	if err != nil {
		return nil, err
	}
	return ParseCheckpoint(body, c.origin, c.log.ID)
}

// TilePath formats a tile index as static-ct-api path elements: 1234067 is
// "x001/x234/067".
func TilePath(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func (c *staticClient) Entries(ctx context.Context, start, end, treeSize uint64) ([]Entry, error) {
	n := start / 256
	first := n * 256
	width := min(treeSize-first, 256)
	url := c.log.URL + "tile/data/" + TilePath(n)
	if width < 256 {
		url += fmt.Sprintf(".p/%d", width)
	}
	body, err := c.f.Get(ctx, url)
	var he *HTTPError
	if width < 256 && errors.As(err, &he) && he.Status == http.StatusNotFound {
		// The partial tile may be gone because the full tile now exists.
		body, err = c.f.Get(ctx, c.log.URL+"tile/data/"+TilePath(n))
	}
	if err != nil {
		return nil, err
	}
	entries, err := ParseDataTile(body, first)
	if err != nil {
		return nil, err
	}
	if uint64(len(entries)) < width {
		return nil, fmt.Errorf("data tile %d: %d entries, want %d", n, len(entries), width)
	}
	lo, hi := start-first, min(end-first, uint64(len(entries)))
	return entries[lo:hi], nil
}

// Consistency fetches an RFC 6962 consistency proof between two tree sizes.
func ConsistencyProof(ctx context.Context, f *Fetcher, l *LogInfo, first, second uint64) ([][]byte, error) {
	body, err := f.Get(ctx, fmt.Sprintf("%sct/v1/get-sth-consistency?first=%d&second=%d", l.URL, first, second))
	if err != nil {
		return nil, err
	}
	var r struct {
		Consistency [][]byte `json:"consistency"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("get-sth-consistency: %w", err)
	}
	return r.Consistency, nil
}

// Frontier computes the Merkle frontier of entries [0, k) (the hashes of the
// compact range, as compact.RangeNodes lists them) from the log's hash tiles,
// so that a backfill from index k can still check every later root. The
// tiles are not trusted: a wrong hash makes the next root check fail.
func (c *staticClient) Frontier(ctx context.Context, k, treeSize uint64) ([][]byte, error) {
	var out [][]byte
	tiles := map[string][]byte{}
	for _, id := range compact.RangeNodes(0, k, nil) {
		level := uint64(id.Level) / 8
		sub := uint64(id.Level) % 8
		first, count := id.Index<<sub, uint64(1)<<sub
		n := first / 256
		have := treeSize >> (8 * level) // hashes at this tile level
		width := min(have-n*256, 256)
		path := fmt.Sprintf("tile/%d/%s", level, TilePath(n))
		if width < 256 {
			path += fmt.Sprintf(".p/%d", width)
		}
		tile, ok := tiles[path]
		if !ok {
			body, err := c.f.Get(ctx, c.log.URL+path)
			if err != nil {
				return nil, fmt.Errorf("hash tile %s: %w", path, err)
			}
			if uint64(len(body)) != width*32 {
				return nil, fmt.Errorf("hash tile %s: %d bytes, want %d", path, len(body), width*32)
			}
			tiles[path], tile = body, body
		}
		off := first - n*256
		if off+count > width {
			return nil, fmt.Errorf("hash tile %s too short for node %v", path, id)
		}
		hashes := make([][]byte, count)
		for i := range hashes {
			hashes[i] = tile[(off+uint64(i))*32 : (off+uint64(i)+1)*32]
		}
		for len(hashes) > 1 {
			next := make([][]byte, len(hashes)/2)
			for i := range next {
				next[i] = rfc6962.DefaultHasher.HashChildren(hashes[2*i], hashes[2*i+1])
			}
			hashes = next
		}
		out = append(out, hashes[0])
	}
	return out, nil
}

// Frontier computes the Merkle frontier of entries [0, k) of an RFC 6962 log
// from the inclusion proof of entry k-1 in the tree of size k: for the last
// leaf every sibling is on the left, and those siblings (folded with the leaf
// for the trailing one bits of k-1) are the compact range. Nothing is
// trusted: a wrong proof makes the next root check fail.
func (c *rfcClient) Frontier(ctx context.Context, k, treeSize uint64) ([][]byte, error) {
	if k == 0 {
		return nil, nil
	}
	es, err := c.Entries(ctx, k-1, k, treeSize)
	if err != nil {
		return nil, err
	}
	leaf := es[0].LeafHash
	body, err := c.f.Get(ctx, fmt.Sprintf("%sct/v1/get-proof-by-hash?hash=%s&tree_size=%d", c.log.URL,
		url.QueryEscape(base64.StdEncoding.EncodeToString(leaf[:])), k))
	if err != nil {
		return nil, err
	}
	var r struct {
		Index *uint64  `json:"leaf_index"`
		Path  [][]byte `json:"audit_path"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("get-proof-by-hash: %w", err)
	}
	if r.Index == nil || *r.Index != k-1 {
		return nil, fmt.Errorf("get-proof-by-hash: proof for another entry")
	}
	cur := leaf[:]
	t := bits.TrailingZeros64(^(k - 1))
	if t > len(r.Path) {
		return nil, fmt.Errorf("get-proof-by-hash: audit path too short")
	}
	for i := 0; i < t; i++ {
		cur = rfc6962.DefaultHasher.HashChildren(r.Path[i], cur)
	}
	var out [][]byte
	for i := len(r.Path) - 1; i >= t; i-- {
		out = append(out, r.Path[i])
	}
	out = append(out, cur)
	if want := len(compact.RangeNodes(0, k, nil)); len(out) != want {
		return nil, fmt.Errorf("get-proof-by-hash: %d frontier hashes, want %d", len(out), want)
	}
	return out, nil
}
