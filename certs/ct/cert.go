package ct

import (
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Extension OIDs that CT adds to certificates. Both are removed before the
// TBS hash is taken, so a precertificate and its final certificate hash alike.
var (
	oidPoison  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
	oidSAN     = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidCN      = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO       = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidC       = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOU      = asn1.ObjectIdentifier{2, 5, 4, 11}
)

// CertInfo is what the monitor needs from a certificate or precertificate.
type CertInfo struct {
	// TBSHash identifies the certificate across its precertificate and final
	// forms: SHA-256 of the TBSCertificate with the CT poison and SCT list
	// extensions removed.
	TBSHash   [32]byte
	Serial    string // hex
	Issuer    Name
	Subject   Name
	NotBefore time.Time
	NotAfter  time.Time
	DNSNames  []string // from the SAN extension, lower-cased
	IPs       int      // number of IP addresses in the SAN extension
	Precert   bool     // has the poison extension

	pieces [][]byte // the TBSCertificate body without CT extensions
}

// Name holds the parts of an X.509 distinguished name srekit shows and matches.
type Name struct {
	CN, O, OU, C string
}

func (n Name) String() string {
	var parts []string
	for _, p := range []struct{ k, v string }{{"CN", n.CN}, {"OU", n.OU}, {"O", n.O}, {"C", n.C}} {
		if p.v != "" {
			parts = append(parts, p.k+"="+p.v)
		}
	}
	return strings.Join(parts, ", ")
}

// Identifiers is every name the certificate is valid for: the SAN DNS names,
// or the subject CN when there are none (legacy certificates).
func (c *CertInfo) Identifiers() []string {
	if len(c.DNSNames) > 0 || c.Subject.CN == "" {
		return c.DNSNames
	}
	return []string{strings.ToLower(c.Subject.CN)}
}

// ParseCertificate parses a DER certificate.
func ParseCertificate(der []byte) (*CertInfo, error) {
	in := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("certificate: not a DER SEQUENCE")
	}
	if !cert.ReadASN1Element(&tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("certificate: no TBSCertificate")
	}
	return ParseTBS(tbs)
}

// ParseTBS parses a DER TBSCertificate (as found in a precert log entry).
func ParseTBS(der []byte) (*CertInfo, error) {
	c := &CertInfo{}
	in := cryptobyte.String(der)
	var tbs cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("tbs: not a DER SEQUENCE")
	}
	// The TBS without CT extensions is hashed from pieces of the input,
	// with only the changed DER headers written anew: no re-encoding.
	var b tbsPieces
	b.parts = b.buf[:0]
	if err := c.parseTBSBody(tbs, &b); err != nil {
		return nil, err
	}
	n := 0
	for _, p := range b.parts {
		n += len(p)
	}
	h := sha256.New()
	var hdr [8]byte
	h.Write(derHeader(hdr[:0], 0x30, n))
	for _, p := range b.parts {
		h.Write(p)
	}
	h.Sum(c.TBSHash[:0])
	c.pieces = b.parts
	return c, nil
}

// tbsPieces collects the slices that make up a TBSCertificate body.
type tbsPieces struct {
	buf   [16][]byte
	parts [][]byte
}

func (b *tbsPieces) AddBytes(p []byte) { b.parts = append(b.parts, p) }

// derHeader appends a DER tag and length.
func derHeader(dst []byte, tag byte, n int) []byte {
	dst = append(dst, tag)
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 0x100:
		return append(dst, 0x81, byte(n))
	case n < 0x10000:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// PrecertTBS returns the TBSCertificate of a DER (pre)certificate with the
// poison and SCT list extensions removed: what a log signs for a precert entry.
func PrecertTBS(der []byte) ([]byte, error) {
	c, err := ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, p := range c.pieces {
		n += len(p)
	}
	out := derHeader(make([]byte, 0, n+6), 0x30, n)
	for _, p := range c.pieces {
		out = append(out, p...)
	}
	return out, nil
}

var tagExplicit0 = cbasn1.Tag(0).Constructed().ContextSpecific()
var tagExplicit3 = cbasn1.Tag(3).Constructed().ContextSpecific()

func (c *CertInfo) parseTBSBody(tbs cryptobyte.String, b *tbsPieces) error {
	var elem cryptobyte.String
	var tag cbasn1.Tag
	// version [0] EXPLICIT OPTIONAL
	if tbs.PeekASN1Tag(tagExplicit0) {
		if !tbs.ReadASN1Element(&elem, tagExplicit0) {
			return errors.New("tbs: bad version")
		}
		b.AddBytes(elem)
	}
	// serialNumber INTEGER (kept raw: serials may be negative or overlong in the wild)
	if !tbs.ReadAnyASN1Element(&elem, &tag) || tag != cbasn1.INTEGER {
		return errors.New("tbs: bad serial number")
	}
	b.AddBytes(elem)
	var hdr cryptobyte.String = elem
	var serial cryptobyte.String
	if hdr.ReadASN1(&serial, cbasn1.INTEGER) {
		c.Serial = hex.EncodeToString(serial)
	}
	// signature AlgorithmIdentifier
	if !tbs.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
		return errors.New("tbs: bad signature algorithm")
	}
	b.AddBytes(elem)
	// issuer Name
	if !tbs.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
		return errors.New("tbs: bad issuer")
	}
	b.AddBytes(elem)
	var err error
	if c.Issuer, err = parseName(elem); err != nil {
		return fmt.Errorf("tbs: issuer: %w", err)
	}
	// validity
	if !tbs.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
		return errors.New("tbs: bad validity")
	}
	b.AddBytes(elem)
	if c.NotBefore, c.NotAfter, err = parseValidity(elem); err != nil {
		return fmt.Errorf("tbs: %w", err)
	}
	// subject Name
	if !tbs.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
		return errors.New("tbs: bad subject")
	}
	b.AddBytes(elem)
	if c.Subject, err = parseName(elem); err != nil {
		return fmt.Errorf("tbs: subject: %w", err)
	}
	// subjectPublicKeyInfo
	if !tbs.ReadASN1Element(&elem, cbasn1.SEQUENCE) {
		return errors.New("tbs: bad subject public key info")
	}
	b.AddBytes(elem)
	// issuerUniqueID [1], subjectUniqueID [2], extensions [3]
	for !tbs.Empty() {
		if !tbs.ReadAnyASN1Element(&elem, &tag) {
			return errors.New("tbs: bad trailing field")
		}
		if tag != tagExplicit3 {
			b.AddBytes(elem)
			continue
		}
		if err := c.parseExtensions(elem, b); err != nil {
			return err
		}
	}
	return nil
}

// parseExtensions reads the [3] extensions, copying all but the CT ones to b.
func (c *CertInfo) parseExtensions(elem cryptobyte.String, b *tbsPieces) error {
	var outer, exts cryptobyte.String
	if !elem.ReadASN1(&outer, tagExplicit3) || !outer.ReadASN1(&exts, cbasn1.SEQUENCE) || !outer.Empty() {
		return errors.New("tbs: bad extensions")
	}
	var kept [][]byte
	for !exts.Empty() {
		var ext, body cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1Element(&ext, cbasn1.SEQUENCE) {
			return errors.New("tbs: bad extension")
		}
		body = ext
		var inner cryptobyte.String
		if !body.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1ObjectIdentifier(&oid) {
			return errors.New("tbs: bad extension id")
		}
		switch {
		case oid.Equal(oidPoison):
			c.Precert = true
			continue
		case oid.Equal(oidSCTList):
			continue
		case oid.Equal(oidSAN):
			if inner.PeekASN1Tag(cbasn1.BOOLEAN) {
				var crit bool
				if !inner.ReadASN1Boolean(&crit) {
					return errors.New("tbs: bad SAN critical flag")
				}
			}
			var val cryptobyte.String
			if !inner.ReadASN1(&val, cbasn1.OCTET_STRING) {
				return errors.New("tbs: bad SAN value")
			}
			if err := c.parseSAN(val); err != nil {
				return err
			}
		}
		kept = append(kept, ext)
	}
	if len(kept) == 0 {
		// A TBS whose only extensions were CT ones: drop the empty [3], as
		// DER has no empty extensions sequence.
		return nil
	}
	n := 0
	for _, e := range kept {
		n += len(e)
	}
	seq := derHeader(nil, 0x30, n)
	b.AddBytes(derHeader(make([]byte, 0, 12), 0xa3, len(seq)+n))
	b.AddBytes(seq)
	b.parts = append(b.parts, kept...)
	return nil
}

func (c *CertInfo) parseSAN(val cryptobyte.String) error {
	var names cryptobyte.String
	if !val.ReadASN1(&names, cbasn1.SEQUENCE) {
		return errors.New("tbs: bad SAN sequence")
	}
	for !names.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !names.ReadAnyASN1(&gn, &tag) {
			return errors.New("tbs: bad SAN entry")
		}
		switch tag {
		case cbasn1.Tag(2).ContextSpecific(): // dNSName
			c.DNSNames = append(c.DNSNames, normalizeName(string(gn)))
		case cbasn1.Tag(7).ContextSpecific(): // iPAddress
			c.IPs++
		}
	}
	return nil
}

func parseValidity(elem cryptobyte.String) (time.Time, time.Time, error) {
	var v cryptobyte.String
	if !elem.ReadASN1(&v, cbasn1.SEQUENCE) {
		return time.Time{}, time.Time{}, errors.New("bad validity")
	}
	read := func() (time.Time, error) {
		var t time.Time
		switch {
		case v.PeekASN1Tag(cbasn1.UTCTime):
			if !v.ReadASN1UTCTime(&t) {
				return t, errors.New("bad UTCTime")
			}
		case v.PeekASN1Tag(cbasn1.GeneralizedTime):
			if !v.ReadASN1GeneralizedTime(&t) {
				return t, errors.New("bad GeneralizedTime")
			}
		default:
			return t, errors.New("bad validity time")
		}
		return t, nil
	}
	nb, err := read()
	if err != nil {
		return nb, nb, fmt.Errorf("notBefore: %w", err)
	}
	na, err := read()
	if err != nil {
		return nb, na, fmt.Errorf("notAfter: %w", err)
	}
	return nb, na, nil
}

func parseName(elem cryptobyte.String) (Name, error) {
	var n Name
	var rdns cryptobyte.String
	if !elem.ReadASN1(&rdns, cbasn1.SEQUENCE) {
		return n, errors.New("bad name")
	}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return n, errors.New("bad RDN")
		}
		for !set.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			var val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadAnyASN1(&val, &tag) {
				return n, errors.New("bad attribute")
			}
			var dst *string
			switch {
			case oid.Equal(oidCN):
				dst = &n.CN
			case oid.Equal(oidO):
				dst = &n.O
			case oid.Equal(oidOU):
				dst = &n.OU
			case oid.Equal(oidC):
				dst = &n.C
			default:
				continue
			}
			if *dst == "" {
				*dst = decodeString(val, tag)
			}
		}
	}
	return n, nil
}

// decodeString turns an ASN.1 directory string into Go text.
func decodeString(v []byte, tag cbasn1.Tag) string {
	if tag == 30 { // BMPString, UTF-16BE
		if len(v)%2 != 0 {
			return strings.ToValidUTF8(string(v), "?")
		}
		u := make([]uint16, len(v)/2)
		for i := range u {
			u[i] = uint16(v[2*i])<<8 | uint16(v[2*i+1])
		}
		return string(utf16.Decode(u))
	}
	return strings.ToValidUTF8(string(v), "?")
}

// normalizeName lower-cases a DNS name and drops a trailing dot.
func normalizeName(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
