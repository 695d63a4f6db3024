// Package ctlogtest is an in-process Certificate Transparency log for tests
// and benchmarks: a real Merkle tree, tree heads and SCTs signed with a test
// key, served over HTTP both as RFC 6962 (/ct/v1/...) and as the
// static-ct-api (checkpoint and data tiles), plus a test CA that issues real
// certificates and precertificates to fill it.
package ctlogtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"
)

// CA is a test certificate authority with a self-signed root.
type CA struct {
	Name    string
	Key     *ecdsa.PrivateKey
	Cert    *x509.Certificate
	DER     []byte
	leafKey *ecdsa.PrivateKey // shared by all leaves: speed over realism
	serial  atomic.Int64
}

// NewCA creates a CA whose certificates carry organisation org.
func NewCA(org string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{org}, CommonName: org + " Test Root", Country: []string{"ZZ"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &CA{Name: org, Key: key, Cert: cert, DER: der, leafKey: leafKey}
	ca.serial.Store(1000)
	return ca, nil
}

// KeyHash is SHA-256 of the CA's SubjectPublicKeyInfo (a precert entry's issuer_key_hash).
func (ca *CA) KeyHash() [32]byte { return sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo) }

var (
	oidPoison  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// Template returns a leaf template for names, valid for the given days.
func (ca *CA) Template(names []string, days int) *x509.Certificate {
	now := time.Now().Truncate(time.Second)
	cn := ""
	if len(names) > 0 {
		cn = names[0]
	}
	return &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Duration(days) * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// Issue signs tmpl as a final certificate. sctList, when not nil, is the
// TLS-encoded SignedCertificateTimestampList to embed.
func (ca *CA) Issue(tmpl *x509.Certificate, sctList []byte) ([]byte, error) {
	t := *tmpl
	t.ExtraExtensions = nil
	if sctList != nil {
		v, err := asn1.Marshal(sctList)
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = []pkix.Extension{{Id: oidSCTList, Value: v}}
	}
	return ca.sign(&t)
}

// IssuePrecert signs tmpl as a precertificate (with the critical poison extension).
func (ca *CA) IssuePrecert(tmpl *x509.Certificate) ([]byte, error) {
	t := *tmpl
	t.ExtraExtensions = []pkix.Extension{{Id: oidPoison, Critical: true, Value: []byte{0x05, 0x00}}}
	return ca.sign(&t)
}

func (ca *CA) sign(t *x509.Certificate) ([]byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, t, ca.Cert, ca.leafKey.Public(), crypto.Signer(ca.Key))
	if err != nil {
		return nil, fmt.Errorf("issue %v: %w", t.DNSNames, err)
	}
	return der, nil
}

// LeafKey is the private key of every leaf the CA issues (for TLS servers in tests).
func (ca *CA) LeafKey() *ecdsa.PrivateKey { return ca.leafKey }
