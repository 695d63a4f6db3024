package sct

import (
	"crypto/x509"
	"encoding/base64"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func parseStd(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }
