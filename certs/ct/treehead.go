package ct

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TreeHead is a signed tree head, from get-sth or a checkpoint.
type TreeHead struct {
	Size      uint64
	Timestamp uint64 // ms since the epoch
	Root      [32]byte
	// Signature is the TLS-encoded DigitallySigned over the RFC 6962
	// TreeHeadSignature.
	Signature []byte
}

// ErrBadSignature marks a tree head whose signature does not verify.
var ErrBadSignature = errors.New("bad tree head signature")

// Verify checks the tree head's signature with the log's key.
func (th *TreeHead) Verify(pub crypto.PublicKey) error {
	var ds cttls.DigitallySigned
	rest, err := cttls.Unmarshal(th.Signature, &ds)
	if err != nil || len(rest) != 0 {
		return fmt.Errorf("%w: undecodable signature", ErrBadSignature)
	}
	sv, err := ct.NewSignatureVerifier(pub)
	if err != nil {
		return fmt.Errorf("log key: %w", err)
	}
	sth := ct.SignedTreeHead{Version: ct.V1, TreeSize: th.Size, Timestamp: th.Timestamp,
		SHA256RootHash: th.Root, TreeHeadSignature: ct.DigitallySigned(ds)}
	if err := sv.VerifySTHSignature(sth); err != nil {
		return fmt.Errorf("%w: size %d: %v", ErrBadSignature, th.Size, err)
	}
	return nil
}

// ParseSTH parses an RFC 6962 get-sth response.
func ParseSTH(body []byte) (*TreeHead, error) {
	var r struct {
		TreeSize  *uint64 `json:"tree_size"`
		Timestamp uint64  `json:"timestamp"`
		Root      []byte  `json:"sha256_root_hash"`
		Sig       []byte  `json:"tree_head_signature"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("get-sth: %w", err)
	}
	if r.TreeSize == nil || len(r.Root) != 32 || len(r.Sig) == 0 {
		return nil, fmt.Errorf("get-sth: missing tree_size, 32-byte root or signature")
	}
	th := &TreeHead{Size: *r.TreeSize, Timestamp: r.Timestamp, Signature: r.Sig}
	copy(th.Root[:], r.Root)
	return th, nil
}

// MarshalSTH encodes th as a get-sth response.
func MarshalSTH(th *TreeHead) []byte {
	b, _ := json.Marshal(map[string]any{"tree_size": th.Size, "timestamp": th.Timestamp,
		"sha256_root_hash": th.Root[:], "tree_head_signature": th.Signature})
	return b
}

// TreeHeadSignatureInput is the RFC 6962 TreeHeadSignature that a log signs.
func TreeHeadSignatureInput(size, timestamp uint64, root [32]byte) []byte {
	b := []byte{0, 1} // version v1, signature_type tree_hash
	b = binary.BigEndian.AppendUint64(b, timestamp)
	b = binary.BigEndian.AppendUint64(b, size)
	return append(b, root[:]...)
}

// noteKeyID is the static-ct-api key ID: SHA-256(name || 0x0A || 0x05 || logID)[:4].
func noteKeyID(name string, logID [32]byte) []byte {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0x0a, 0x05})
	h.Write(logID[:])
	return h.Sum(nil)[:4]
}

// ParseCheckpoint parses a static-ct-api checkpoint (a c2sp signed note) and
// returns the tree head carried by the log's RFC6962NoteSignature. origin is
// the expected origin line (the submission prefix without scheme); when empty
// the checkpoint's own origin is used as the key name.
func ParseCheckpoint(body []byte, origin string, logID [32]byte) (*TreeHead, error) {
	text, sigs, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, errors.New("checkpoint: no blank line before signatures")
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) < 3 {
		return nil, errors.New("checkpoint: want origin, size and root hash lines")
	}
	if origin == "" {
		origin = lines[0]
	} else if lines[0] != origin {
		return nil, fmt.Errorf("checkpoint: origin %q, want %q", lines[0], origin)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || (len(lines[1]) > 1 && lines[1][0] == '0') {
		return nil, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return nil, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	th := &TreeHead{Size: size}
	copy(th.Root[:], root)
	wantID := noteKeyID(origin, logID)
	for _, line := range strings.Split(strings.TrimSuffix(string(sigs), "\n"), "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "\u2014 "))
		if !strings.HasPrefix(line, "\u2014 ") || len(f) != 2 || f[0] != origin {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(sig) < 4+8+4 || !bytes.Equal(sig[:4], wantID) {
			continue
		}
		th.Timestamp = binary.BigEndian.Uint64(sig[4:12])
		th.Signature = sig[12:]
		return th, nil
	}
	return nil, fmt.Errorf("checkpoint: no RFC 6962 signature by %q", origin)
}

// MarshalCheckpoint encodes th as a static-ct-api checkpoint.
func MarshalCheckpoint(th *TreeHead, origin string, logID [32]byte) []byte {
	sig := append([]byte{}, noteKeyID(origin, logID)...)
	sig = binary.BigEndian.AppendUint64(sig, th.Timestamp)
	sig = append(sig, th.Signature...)
	return fmt.Appendf(nil, "%s\n%d\n%s\n\n\u2014 %s %s\n", origin, th.Size, b64(th.Root[:]), origin, b64(sig))
}
