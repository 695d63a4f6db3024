// Package ct is srekit's Certificate Transparency monitor: it tails RFC 6962
// logs and static-ct-api (tiled) logs, checks every signed tree head and that
// each log stays append-only by rebuilding the Merkle tree from the entries it
// downloads, parses certificates and precertificates, and turns matches of
// watched names into findings that are stored and notified exactly once.
//
// The wire formats (MerkleTreeLeaf, TimestampedEntry, the static-ct-api
// TileLeaf, checkpoints) are parsed here with small hand-written decoders,
// because they are the hot path of a monitor and the one place where bad input
// from a log arrives; each has a fuzz target.
package ct

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// EntryType is the RFC 6962 LogEntryType.
type EntryType uint16

const (
	X509Entry    EntryType = 0
	PrecertEntry EntryType = 1
)

func (t EntryType) String() string {
	switch t {
	case X509Entry:
		return "cert"
	case PrecertEntry:
		return "precert"
	}
	return fmt.Sprintf("type%d", uint16(t))
}

// Entry is one log entry, whatever API it came from.
type Entry struct {
	Index     uint64
	Timestamp uint64 // milliseconds since the epoch, from the log
	Type      EntryType
	// Cert is the leaf certificate (X509Entry) or the TBSCertificate the log
	// signed over (PrecertEntry, poison already removed by the log).
	Cert []byte
	// IssuerKeyHash is the SHA-256 of the issuer's public key (PrecertEntry).
	IssuerKeyHash [32]byte
	// Extensions is the CtExtensions of the TimestampedEntry.
	Extensions []byte
	// PreCert is the submitted precertificate when the log returned it
	// (RFC 6962 extra_data, static-ct-api pre_certificate).
	PreCert []byte
	// Chain holds the issuer certificates from extra_data (RFC 6962).
	Chain [][]byte
	// Fingerprints holds the SHA-256 of the issuer certificates (static-ct-api).
	Fingerprints [][32]byte
	// LeafHash is the RFC 6962 Merkle leaf hash of the entry.
	LeafHash [32]byte
}

var errShort = errors.New("truncated")

// reader is a tiny TLS-presentation-language decoder.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", what, errShort)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uint(n int, what string) uint64 {
	b := r.bytes(n, what)
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// vec reads a length-prefixed opaque with an n-byte length.
func (r *reader) vec(n int, what string) []byte {
	l := r.uint(n, what+" length")
	return r.bytes(int(l), what)
}

// parseTimestampedEntry reads a TimestampedEntry into e.
func parseTimestampedEntry(r *reader, e *Entry) {
	e.Timestamp = r.uint(8, "timestamp")
	e.Type = EntryType(r.uint(2, "entry type"))
	switch e.Type {
	case X509Entry:
		e.Cert = r.vec(3, "certificate")
	case PrecertEntry:
		copy(e.IssuerKeyHash[:], r.bytes(32, "issuer key hash"))
		e.Cert = r.vec(3, "tbs certificate")
	default:
		if r.err == nil {
			r.err = fmt.Errorf("unknown entry type %d", e.Type)
		}
		return
	}
	e.Extensions = r.vec(2, "extensions")
}

// ParseLeafInput parses an RFC 6962 MerkleTreeLeaf (get-entries leaf_input)
// and fills e, including its leaf hash.
func ParseLeafInput(leaf []byte, e *Entry) error {
	r := &reader{b: leaf}
	if v := r.uint(1, "version"); r.err == nil && v != 0 {
		return fmt.Errorf("leaf version %d, want 0", v)
	}
	if t := r.uint(1, "leaf type"); r.err == nil && t != 0 {
		return fmt.Errorf("leaf type %d, want 0 (timestamped_entry)", t)
	}
	parseTimestampedEntry(r, e)
	if r.err != nil {
		return fmt.Errorf("leaf input: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("leaf input: %d bytes after the entry", len(r.b))
	}
	e.LeafHash = LeafHash(leaf)
	return nil
}

// ParseExtraData parses RFC 6962 get-entries extra_data for an entry of type t.
func ParseExtraData(extra []byte, e *Entry) error {
	r := &reader{b: extra}
	if e.Type == PrecertEntry {
		e.PreCert = r.vec(3, "pre_certificate")
	}
	chain := &reader{b: r.vec(3, "certificate chain")}
	for r.err == nil && chain.err == nil && len(chain.b) > 0 {
		e.Chain = append(e.Chain, chain.vec(3, "chain certificate"))
	}
	if r.err == nil {
		r.err = chain.err
	}
	if r.err != nil {
		return fmt.Errorf("extra data: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("extra data: %d bytes after the chain", len(r.b))
	}
	return nil
}

// LeafHash is the RFC 6962 Merkle tree leaf hash: SHA-256(0x00 || leaf).
func LeafHash(leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ParseDataTile parses a static-ct-api data tile: a sequence of TileLeaf
// structures. first is the index of the tile's first entry. The leaf hash of
// every entry is computed from its TimestampedEntry.
func ParseDataTile(tile []byte, first uint64) ([]Entry, error) {
	var out []Entry
	r := &reader{b: tile}
	for len(r.b) > 0 {
		start := r.b
		var e Entry
		e.Index = first + uint64(len(out))
		parseTimestampedEntry(r, &e)
		if r.err != nil {
			return out, fmt.Errorf("data tile entry %d: %w", e.Index, r.err)
		}
		te := start[:len(start)-len(r.b)]
		if e.Type == PrecertEntry {
			e.PreCert = r.vec(3, "pre_certificate")
		}
		fps := &reader{b: r.vec(2, "certificate chain")}
		for fps.err == nil && len(fps.b) > 0 {
			var fp [32]byte
			copy(fp[:], fps.bytes(32, "fingerprint"))
			e.Fingerprints = append(e.Fingerprints, fp)
		}
		if r.err == nil {
			r.err = fps.err
		}
		if r.err != nil {
			return out, fmt.Errorf("data tile entry %d: %w", e.Index, r.err)
		}
		// MerkleTreeLeaf = version(0) || leaf_type(0) || TimestampedEntry.
		h := sha256.New()
		h.Write([]byte{0, 0, 0})
		h.Write(te)
		h.Sum(e.LeafHash[:0])
		if idx, ok := leafIndexExtension(e.Extensions); ok && idx != e.Index {
			return out, fmt.Errorf("data tile entry %d: leaf_index extension says %d", e.Index, idx)
		}
		out = append(out, e)
	}
	return out, nil
}

// leafIndexExtension finds the static-ct-api leaf_index extension.
func leafIndexExtension(ext []byte) (uint64, bool) {
	r := &reader{b: ext}
	for r.err == nil && len(r.b) > 0 {
		typ := r.uint(1, "extension type")
		data := r.vec(2, "extension data")
		if r.err == nil && typ == 0 && len(data) == 5 {
			return (&reader{b: data}).uint(5, "leaf index"), true
		}
	}
	return 0, false
}

// appendVec appends a length-prefixed opaque with an n-byte length.
func appendVec(b []byte, n int, v []byte) []byte {
	l := len(v)
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(l>>(8*i)))
	}
	return append(b, v...)
}

// AppendTimestampedEntry encodes e's TimestampedEntry (the inverse of the parser).
func AppendTimestampedEntry(b []byte, e *Entry) []byte {
	b = binary.BigEndian.AppendUint64(b, e.Timestamp)
	b = binary.BigEndian.AppendUint16(b, uint16(e.Type))
	if e.Type == PrecertEntry {
		b = append(b, e.IssuerKeyHash[:]...)
	}
	b = appendVec(b, 3, e.Cert)
	return appendVec(b, 2, e.Extensions)
}

// LeafInput encodes e as an RFC 6962 MerkleTreeLeaf.
func LeafInput(e *Entry) []byte {
	return AppendTimestampedEntry([]byte{0, 0}, e)
}

// ExtraData encodes e's RFC 6962 extra_data.
func ExtraData(e *Entry) []byte {
	var b []byte
	if e.Type == PrecertEntry {
		b = appendVec(b, 3, e.PreCert)
	}
	var chain []byte
	for _, c := range e.Chain {
		chain = appendVec(chain, 3, c)
	}
	return appendVec(b, 3, chain)
}

// AppendTileLeaf encodes e as a static-ct-api TileLeaf.
func AppendTileLeaf(b []byte, e *Entry) []byte {
	b = AppendTimestampedEntry(b, e)
	if e.Type == PrecertEntry {
		b = appendVec(b, 3, e.PreCert)
	}
	var fps []byte
	for _, fp := range e.Fingerprints {
		fps = append(fps, fp[:]...)
	}
	return appendVec(b, 2, fps)
}

// LeafIndexExtension encodes the static-ct-api leaf_index CtExtensions.
func LeafIndexExtension(index uint64) []byte {
	return []byte{0, 0, 5, byte(index >> 32), byte(index >> 24), byte(index >> 16), byte(index >> 8), byte(index)}
}
