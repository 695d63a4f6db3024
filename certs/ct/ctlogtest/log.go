package ctlogtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/srekit/srekit/certs/ct"
)

// Log is an in-process CT log. Add entries, Publish a tree head, serve Handler.
type Log struct {
	Origin string // checkpoint origin / submission prefix without scheme
	Key    *ecdsa.PrivateKey
	ID     [32]byte
	KeyDER []byte
	// Static makes SCTs and entries carry the static-ct-api leaf_index extension.
	Static bool
	// MaxBatch caps get-entries responses (1000 when zero), as real logs do.
	MaxBatch int

	mu      sync.RWMutex
	entries []ct.Entry
	tree    *testonly.Tree
	head    *ct.TreeHead
	issuers map[[32]byte][]byte
	// Clock gives entry and tree head timestamps; time.Now when nil.
	Clock func() time.Time
}

// NewLog creates an empty log with a fresh P-256 key.
func NewLog(origin string, static bool) (*Log, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	l := &Log{Origin: origin, Key: key, KeyDER: der, ID: sha256.Sum256(der), Static: static,
		tree: testonly.New(rfc6962.DefaultHasher), issuers: map[[32]byte][]byte{}}
	l.Publish()
	return l, nil
}

// Entry returns entry i (Index, LeafHash and all fields set).
func (l *Log) Entry(i uint64) ct.Entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.entries[i]
}

// Size is the number of entries added so far (published or not).
func (l *Log) Size() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return uint64(len(l.entries))
}

// SCT is a signed certificate timestamp as the log returns it.
type SCT struct {
	Timestamp  uint64
	Extensions []byte
	Signature  []byte // TLS DigitallySigned
	LogID      [32]byte
}

// Serialize encodes the SCT as in RFC 6962 section 3.2 (for SCT lists).
func (s *SCT) Serialize() []byte {
	b := []byte{0}
	b = append(b, s.LogID[:]...)
	b = binary.BigEndian.AppendUint64(b, s.Timestamp)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Extensions)))
	b = append(b, s.Extensions...)
	return append(b, s.Signature...)
}

// SCTList encodes SCTs as a TLS SignedCertificateTimestampList.
func SCTList(scts ...*SCT) []byte {
	var inner []byte
	for _, s := range scts {
		ser := s.Serialize()
		inner = binary.BigEndian.AppendUint16(inner, uint16(len(ser)))
		inner = append(inner, ser...)
	}
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(inner))), inner...)
}

// sign makes a TLS DigitallySigned (SHA-256, ECDSA) over data.
func (l *Log) sign(data []byte) []byte {
	h := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, l.Key, h[:])
	if err != nil {
		panic(err) // cannot happen with a valid key
	}
	b := []byte{4, 3}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sig)))
	return append(b, sig...)
}

func (l *Log) now() uint64 {
	if l.Clock != nil {
		return uint64(l.Clock().UnixMilli())
	}
	return uint64(time.Now().UnixMilli())
}

// add appends e (Type, Cert, IssuerKeyHash, PreCert, Chain set) and returns its SCT.
func (l *Log) add(e ct.Entry) *SCT {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.addLocked(e)
}

func (l *Log) addLocked(e ct.Entry) *SCT {
	leaf := l.appendLocked(e)
	e = l.entries[len(l.entries)-1]
	// The SCT signs version(0) || signature_type(0) || the TimestampedEntry.
	sig := l.sign(append([]byte{0, 0}, leaf[2:]...))
	return &SCT{Timestamp: e.Timestamp, Extensions: e.Extensions, Signature: sig, LogID: l.ID}
}

// appendLocked adds e to the tree and returns its MerkleTreeLeaf.
func (l *Log) appendLocked(e ct.Entry) []byte {
	e.Index = uint64(len(l.entries))
	e.Timestamp = l.now()
	if l.Static {
		e.Extensions = ct.LeafIndexExtension(e.Index)
		e.Fingerprints = nil
		for _, c := range e.Chain {
			fp := sha256.Sum256(c)
			l.issuers[fp] = c
			e.Fingerprints = append(e.Fingerprints, fp)
		}
	}
	leaf := ct.LeafInput(&e)
	e.LeafHash = ct.LeafHash(leaf)
	l.entries = append(l.entries, e)
	l.tree.Append(e.LeafHash[:])
	return leaf
}

// Append logs a final certificate without making an SCT (fast filling).
func (l *Log) Append(chain [][]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.appendLocked(ct.Entry{Type: ct.X509Entry, Cert: chain[0], Chain: chain[1:]})
}

// AddChain logs a final certificate (chain[0]) with its issuers.
func (l *Log) AddChain(chain [][]byte) *SCT {
	return l.add(ct.Entry{Type: ct.X509Entry, Cert: chain[0], Chain: chain[1:]})
}

// AddPreChain logs a precertificate (chain[0], issued directly by chain[1]).
func (l *Log) AddPreChain(chain [][]byte) (*SCT, error) {
	if len(chain) < 2 {
		return nil, fmt.Errorf("precert chain needs the issuer")
	}
	tbs, err := ct.PrecertTBS(chain[0])
	if err != nil {
		return nil, err
	}
	issuer, err := x509.ParseCertificate(chain[1])
	if err != nil {
		return nil, fmt.Errorf("precert issuer: %w", err)
	}
	return l.add(ct.Entry{Type: ct.PrecertEntry, Cert: tbs, IssuerKeyHash: sha256.Sum256(issuer.RawSubjectPublicKeyInfo),
		PreCert: chain[0], Chain: chain[1:]}), nil
}

// Publish signs a tree head over every entry added so far and makes it current.
func (l *Log) Publish() ct.TreeHead {
	l.mu.Lock()
	defer l.mu.Unlock()
	var root [32]byte
	copy(root[:], l.tree.Hash())
	th := ct.TreeHead{Size: l.tree.Size(), Timestamp: l.now(), Root: root}
	th.Signature = l.sign(ct.TreeHeadSignatureInput(th.Size, th.Timestamp, th.Root))
	l.head = &th
	return th
}

// Head is the current published tree head.
func (l *Log) Head() ct.TreeHead {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return *l.head
}

// Fork rewrites entry i with a different certificate, as a misbehaving log
// would, rebuilding the tree; the next Publish signs the forked tree.
func (l *Log) Fork(i uint64, cert []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[i]
	e.Type, e.Cert, e.PreCert = ct.X509Entry, cert, nil
	e.LeafHash = ct.LeafHash(ct.LeafInput(&e))
	l.entries[i] = e
	l.tree = testonly.New(rfc6962.DefaultHasher)
	for _, e := range l.entries {
		l.tree.Append(e.LeafHash[:])
	}
}

// CorruptHeadSignature makes the current tree head's signature invalid.
func (l *Log) CorruptHeadSignature() {
	l.mu.Lock()
	defer l.mu.Unlock()
	th := *l.head
	th.Signature = append([]byte{}, th.Signature...)
	th.Signature[len(th.Signature)-1] ^= 1
	l.head = &th
}

// LogListJSON returns a v3 log list with this log, at url.
func (l *Log) LogListJSON(url, description string) []byte {
	return LogList(LogListEntry{Log: l, URL: url, Description: description})
}

// LogListEntry places a log in a log list.
type LogListEntry struct {
	Log         *Log
	URL         string
	Description string
	Operator    string
}

// LogList builds a v3 log list JSON document for the given logs, all usable.
func LogList(logs ...LogListEntry) []byte {
	type state struct {
		Usable struct {
			Timestamp string `json:"timestamp"`
		} `json:"usable"`
	}
	ops := map[string]map[string][]map[string]any{}
	var order []string
	for _, e := range logs {
		op := e.Operator
		if op == "" {
			op = "Test Operator"
		}
		if ops[op] == nil {
			ops[op] = map[string][]map[string]any{}
			order = append(order, op)
		}
		if e.Log.Origin == "" {
			e.Log.Origin = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(e.URL, "https://"), "http://"), "/")
		}
		var st state
		st.Usable.Timestamp = "2020-01-01T00:00:00Z"
		m := map[string]any{"description": e.Description, "log_id": e.Log.ID[:], "key": e.Log.KeyDER, "mmd": 86400, "state": st}
		if e.Log.Static {
			m["submission_url"] = e.URL
			m["monitoring_url"] = e.URL
			ops[op]["tiled_logs"] = append(ops[op]["tiled_logs"], m)
		} else {
			m["url"] = e.URL
			ops[op]["logs"] = append(ops[op]["logs"], m)
		}
	}
	var list []map[string]any
	for _, op := range order {
		list = append(list, map[string]any{"name": op, "email": []string{"ct@example.invalid"},
			"logs": nonNil(ops[op]["logs"]), "tiled_logs": nonNil(ops[op]["tiled_logs"])})
	}
	b, _ := json.MarshalIndent(map[string]any{"version": "1.0", "log_list_timestamp": time.Now().UTC().Format(time.RFC3339), "operators": list}, "", "  ")
	return b
}

func nonNil(v []map[string]any) []map[string]any {
	if v == nil {
		return []map[string]any{}
	}
	return v
}

// Handler serves the log: RFC 6962 under /ct/v1/ and the static-ct-api
// read path (/checkpoint, /tile/data/..., /issuer/...).
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ct/v1/get-sth", func(w http.ResponseWriter, r *http.Request) {
		th := l.Head()
		w.Header().Set("Content-Type", "application/json")
		w.Write(ct.MarshalSTH(&th))
	})
	mux.HandleFunc("GET /ct/v1/get-entries", l.getEntries)
	mux.HandleFunc("GET /ct/v1/get-sth-consistency", l.getConsistency)
	mux.HandleFunc("GET /ct/v1/get-proof-by-hash", l.getProofByHash)
	mux.HandleFunc("POST /ct/v1/add-chain", func(w http.ResponseWriter, r *http.Request) { l.addHTTP(w, r, false) })
	mux.HandleFunc("POST /ct/v1/add-pre-chain", func(w http.ResponseWriter, r *http.Request) { l.addHTTP(w, r, true) })
	mux.HandleFunc("GET /checkpoint", func(w http.ResponseWriter, r *http.Request) {
		th := l.Head()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(ct.MarshalCheckpoint(&th, l.Origin, l.ID))
	})
	mux.HandleFunc("GET /tile/data/", l.dataTile)
	mux.HandleFunc("GET /tile/", l.hashTile)
	mux.HandleFunc("GET /issuer/{fp}", func(w http.ResponseWriter, r *http.Request) {
		var fp [32]byte
		b, err := hexDecode(r.PathValue("fp"))
		if err != nil || len(b) != 32 {
			http.NotFound(w, r)
			return
		}
		copy(fp[:], b)
		l.mu.RLock()
		c := l.issuers[fp]
		l.mu.RUnlock()
		if c == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(c)
	})
	return mux
}

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

func (l *Log) getEntries(w http.ResponseWriter, r *http.Request) {
	start, err1 := strconv.ParseUint(r.URL.Query().Get("start"), 10, 64)
	end, err2 := strconv.ParseUint(r.URL.Query().Get("end"), 10, 64)
	if err1 != nil || err2 != nil || end < start {
		http.Error(w, "bad start/end", http.StatusBadRequest)
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	size := l.head.Size
	if start >= size {
		http.Error(w, "start beyond tree size", http.StatusBadRequest)
		return
	}
	if end >= size {
		end = size - 1
	}
	max := uint64(l.MaxBatch)
	if max == 0 {
		max = 1000
	}
	if end-start+1 > max {
		end = start + max - 1
	}
	// Written by hand: encoding/json would make the test log, not the
	// monitor, the bottleneck of benchmarks.
	var b bytes.Buffer
	b.WriteString(`{"entries":[`)
	for i := start; i <= end; i++ {
		e := &l.entries[i]
		if i > start {
			b.WriteByte(',')
		}
		b.WriteString(`{"leaf_input":"`)
		writeB64(&b, ct.LeafInput(e))
		b.WriteString(`","extra_data":"`)
		writeB64(&b, ct.ExtraData(e))
		b.WriteString(`"}`)
	}
	b.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	w.Write(b.Bytes())
}

func writeB64(b *bytes.Buffer, v []byte) {
	n := base64.StdEncoding.EncodedLen(len(v))
	b.Grow(n)
	buf := b.AvailableBuffer()[:n]
	base64.StdEncoding.Encode(buf, v)
	b.Write(buf)
}

func (l *Log) getConsistency(w http.ResponseWriter, r *http.Request) {
	first, err1 := strconv.ParseUint(r.URL.Query().Get("first"), 10, 64)
	second, err2 := strconv.ParseUint(r.URL.Query().Get("second"), 10, 64)
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err1 != nil || err2 != nil || first > second || second > l.head.Size {
		http.Error(w, "bad first/second", http.StatusBadRequest)
		return
	}
	proof, err := l.tree.ConsistencyProof(first, second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if proof == nil {
		proof = [][]byte{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"consistency": proof})
}

func (l *Log) addHTTP(w http.ResponseWriter, r *http.Request, pre bool) {
	var req struct {
		Chain [][]byte `json:"chain"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Chain) == 0 {
		http.Error(w, "bad chain", http.StatusBadRequest)
		return
	}
	var sct *SCT
	if pre {
		var err error
		if sct, err = l.AddPreChain(req.Chain); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		sct = l.AddChain(req.Chain)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"sct_version": 0, "id": sct.LogID[:], "timestamp": sct.Timestamp,
		"extensions": base64.StdEncoding.EncodeToString(sct.Extensions), "signature": sct.Signature})
}

// parseTilePath is the inverse of TilePath, with an optional ".p/W" suffix.
func parseTilePath(p string) (n uint64, width int, ok bool) {
	width = 256
	if i := strings.Index(p, ".p/"); i >= 0 {
		w, err := strconv.Atoi(p[i+3:])
		if err != nil || w < 1 || w > 255 {
			return 0, 0, false
		}
		width, p = w, p[:i]
	}
	parts := strings.Split(p, "/")
	for i, e := range parts {
		if i < len(parts)-1 {
			if !strings.HasPrefix(e, "x") {
				return 0, 0, false
			}
			e = e[1:]
		}
		if len(e) != 3 {
			return 0, 0, false
		}
		v, err := strconv.ParseUint(e, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		n = n*1000 + v
	}
	return n, width, true
}

func (l *Log) dataTile(w http.ResponseWriter, r *http.Request) {
	n, width, ok := parseTilePath(strings.TrimPrefix(r.URL.Path, "/tile/data/"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	start := n * 256
	if start+uint64(width) > l.head.Size {
		http.NotFound(w, r)
		return
	}
	var b []byte
	for i := start; i < start+uint64(width); i++ {
		b = ct.AppendTileLeaf(b, &l.entries[i])
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}

// hashTile serves tile/<L>/<N>[.p/<W>]: Merkle tree hashes of subtrees of
// 256^L leaves, as static-ct-api defines them.
func (l *Log) hashTile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/tile/")
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		http.NotFound(w, r)
		return
	}
	level, err := strconv.Atoi(rest[:slash])
	n, width, ok := parseTilePath(rest[slash+1:])
	if err != nil || !ok || level < 0 || level > 5 {
		http.NotFound(w, r)
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	span := uint64(1) << (8 * level) // leaves under each hash
	have := l.head.Size / span
	if n*256+uint64(width) > have {
		http.NotFound(w, r)
		return
	}
	var b []byte
	for i := uint64(0); i < uint64(width); i++ {
		b = append(b, l.subtreeHash((n*256+i)*span, span)...)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}

// subtreeHash is the Merkle tree hash of the perfect subtree of size leaves from lo.
func (l *Log) subtreeHash(lo, size uint64) []byte {
	if size == 1 {
		h := l.entries[lo].LeafHash
		return h[:]
	}
	return rfc6962.DefaultHasher.HashChildren(l.subtreeHash(lo, size/2), l.subtreeHash(lo+size/2, size/2))
}

func (l *Log) getProofByHash(w http.ResponseWriter, r *http.Request) {
	hash, err := base64.StdEncoding.DecodeString(r.URL.Query().Get("hash"))
	size, err2 := strconv.ParseUint(r.URL.Query().Get("tree_size"), 10, 64)
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err != nil || err2 != nil || len(hash) != 32 || size == 0 || size > l.head.Size {
		http.Error(w, "bad hash/tree_size", http.StatusBadRequest)
		return
	}
	for i := uint64(0); i < size; i++ {
		if string(l.entries[i].LeafHash[:]) != string(hash) {
			continue
		}
		proof, err := l.tree.InclusionProof(i, size)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if proof == nil {
			proof = [][]byte{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"leaf_index": i, "audit_path": proof})
		return
	}
	http.NotFound(w, r)
}
