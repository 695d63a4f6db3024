// Package profiling is srekit's profiling service: stored, labelled profile
// snapshots (compressed and deduplicated in the store), ingest of pprof,
// folded, perf script and Pyroscope uploads, merge/diff/search across
// snapshots, capture requests executed by agents on any host, continuous
// schedules, Alertmanager-triggered captures with a pre-roll ring buffer, and
// retention that folds old snapshots into hourly and daily aggregates.
//
// Profiles use the stacks model of srekit's flame package (flame.Profile);
// every input format is converted to it at the edge, as pprof does for its
// legacy formats.
package profiling

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srekit/srekit/flame"
)

// Snapshot is one profile of one thing over one time range.
type Snapshot struct {
	ID         int64     `json:"id"`
	Hash       string    `json:"hash"`
	Kind       string    `json:"kind"` // cpu, alloc_space, inuse_space, goroutine, mutex_duration, wall, ...
	Unit       string    `json:"unit"` // nanoseconds, bytes, samples, count, ...
	Labels     Labels    `json:"labels"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Source     string    `json:"source"` // pprof, folded, perf, pyroscope, agent:HOST, merge, ...
	Total      int64     `json:"total"`
	Resolution string    `json:"resolution"` // raw, hour, day
	// HasTimeline says the snapshot keeps each sample's time (perf script
	// input), so it has a sub-second heat map and time-range flame graphs.
	HasTimeline bool `json:"timeline"`
	// Profile is the stacks; nil in listings.
	Profile *flame.Profile `json:"-"`
	// Timeline is the per-sample time order to store with a new snapshot;
	// nil in listings and for formats without timestamps.
	Timeline *Timeline `json:"-"`
}

// Resolutions of stored snapshots, finest first.
const (
	ResRaw  = "raw"
	ResHour = "hour"
	ResDay  = "day"
)

// maxStoredBytes bounds how far a stored blob may decompress; a blob is
// written by srekit itself, so this only guards against a corrupted database.
const maxStoredBytes = 1 << 30

// stackMap is the aggregation srekit merges with: folded stack -> value.
// Working on folded strings keeps a merge of a thousand profiles to map
// updates, with no per-frame allocation.
type stackMap map[string]int64

func (m stackMap) addProfile(p *flame.Profile) {
	for _, s := range p.Samples {
		if s.Value == 0 || len(s.Stack) == 0 {
			continue
		}
		m[strings.Join(s.Stack, ";")] += s.Value
	}
}

func (m stackMap) total() int64 {
	var t int64
	for _, v := range m {
		t += v
	}
	return t
}

// profile turns the map into a flame.Profile, stacks in sorted order.
func (m stackMap) profile(unit string) *flame.Profile {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p := &flame.Profile{Unit: unit, Samples: make([]flame.Sample, 0, len(keys))}
	for _, k := range keys {
		if m[k] == 0 {
			continue
		}
		p.Samples = append(p.Samples, flame.Sample{Stack: strings.Split(k, ";"), Value: m[k]})
	}
	return p
}

// canonical is the folded text srekit stores and hashes: one line per
// distinct stack, sorted, so equal profiles are equal bytes.
func (m stackMap) canonical() []byte {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(m[k], 10))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// gzipWriters reuses compressors: each holds about a megabyte of tables,
// which dominated the cost of storing a small profile.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

// encodeProfile returns the compressed canonical form of p, its content hash
// and its total.
func encodeProfile(p *flame.Profile) (data []byte, hash string, raw int, total int64, err error) {
	m := stackMap{}
	m.addProfile(p)
	text := m.canonical()
	sum := sha256.Sum256(text)
	var b bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&b)
	if _, err := zw.Write(text); err != nil {
		return nil, "", 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, "", 0, 0, err
	}
	return b.Bytes(), hex.EncodeToString(sum[:]), len(text), m.total(), nil
}

// decodeInto adds a stored blob's stacks to m.
func decodeInto(m stackMap, data []byte) error {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("stored profile: %w", err)
	}
	defer zr.Close()
	return addFolded(m, io.LimitReader(zr, maxStoredBytes))
}

// addFolded reads "frame;frame;frame value" lines (the canonical stored
// form) into m.
func addFolded(m stackMap, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		sp := bytes.LastIndexByte(line, ' ')
		if sp <= 0 {
			return fmt.Errorf("stored profile line %d: no value", n)
		}
		v, err := strconv.ParseInt(string(line[sp+1:]), 10, 64)
		if err != nil {
			return fmt.Errorf("stored profile line %d: %w", n, err)
		}
		m[string(line[:sp])] += v
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("stored profile: %w", err)
	}
	return nil
}

// ErrNotFound is returned for a snapshot, capture or schedule that does not exist.
var ErrNotFound = errors.New("not found")
