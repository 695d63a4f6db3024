package mesh

import (
	"bytes"
	"errors"
)

// reqHead is an HTTP/1.1 request head parsed in place: every slice points
// into the connection's read buffer, and the struct is reused from one
// request to the next, so parsing allocates nothing. It only describes the
// requests the fast path serves itself (see parseRequestHead); anything
// else is handed to net/http.
type reqHead struct {
	method, target []byte
	path, query    []byte // target split at '?'; query includes no '?'
	host           []byte
	headers        []headerField
	connTokens     [][]byte // header names listed in Connection
	close          bool     // Connection: close
	te             bool     // a TE header asks for trailers
	xff            [][]byte // X-Forwarded-For values, in order
	xfp, xfh       []byte   // first X-Forwarded-Proto and -Host values
	hasXFP, hasXFH bool
	hasUA          bool
}

type headerField struct{ name, value []byte }

func (h *reqHead) reset() {
	headers, conn, xff := h.headers[:0], h.connTokens[:0], h.xff[:0]
	*h = reqHead{headers: headers, connTokens: conn, xff: xff}
}

// errHandOff means the request is valid HTTP the fast path does not serve
// (or possibly invalid HTTP whose exact error answer net/http knows best):
// the connection goes to net/http with the bytes replayed.
var errHandOff = errors.New("request not for the fast path")

// headEnd returns the length of the request head in b (through the blank
// line) and whether the head ends with CRLF CRLF; 0 when b holds no
// complete head yet. A bare LF line ending is reported as not clean so that
// the caller hands such a request to net/http, which accepts it.
func headEnd(b []byte) (n int, clean bool) {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2, false
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3, i > 0 && b[i-1] == '\r'
		}
	}
	return 0, false
}

// tokenChar marks the bytes allowed in a method or header name (RFC 9110 tchar).
var tokenChar = func() (t [256]bool) {
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	return
}()

// pathChar marks the path bytes the fast path forwards unchanged: exactly
// those net/url leaves alone when it re-encodes a path, so that the bytes
// sent upstream are the same as on the net/http path. A path with any other
// byte (such as '%', '!' or '*') goes to net/http.
var pathChar = func() (t [256]bool) {
	for _, c := range []byte("-_.~$&+,/:;=@") {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	return
}()

// parseRequestHead parses head (one complete request head, CRLF line
// endings, ending with the blank line) into h. It returns errHandOff for
// anything it does not serve itself: not exactly HTTP/1.1, a target that is
// not a plain origin-form path, CONNECT, a body (Content-Length other than 0,
// Transfer-Encoding), Expect, Upgrade, missing or repeated Host, obsolete
// line folding, bytes net/http would reject. It never fails otherwise: a
// request it accepts is one net/http would accept the same way.
func parseRequestHead(head []byte, h *reqHead) error {
	h.reset()
	line, rest, ok := cutLine(head)
	if !ok {
		return errHandOff
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return errHandOff
	}
	h.method = line[:sp]
	for _, c := range h.method {
		if !tokenChar[c] {
			return errHandOff
		}
	}
	if string(h.method) == "CONNECT" {
		return errHandOff
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || string(line[sp+1:]) != "HTTP/1.1" {
		return errHandOff
	}
	h.target = line[:sp]
	if h.target[0] != '/' {
		return errHandOff
	}
	h.path = h.target
	if q := bytes.IndexByte(h.target, '?'); q >= 0 {
		h.path, h.query = h.target[:q], h.target[q+1:]
		for _, c := range h.query {
			if c <= ' ' || c >= 0x7f || c == '#' {
				return errHandOff
			}
		}
	}
	for _, c := range h.path {
		if !pathChar[c] {
			return errHandOff
		}
	}
	hosts := 0
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return errHandOff
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errHandOff
		}
		name := line[:colon]
		for _, c := range name {
			if !tokenChar[c] {
				return errHandOff
			}
		}
		value := trimOWS(line[colon+1:])
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return errHandOff
			}
		}
		switch {
		case equalFold(name, "Host"):
			hosts++
			h.host = value
			continue // written first, by itself
		case equalFold(name, "Content-Length"):
			if string(value) != "0" {
				return errHandOff
			}
			continue // a GET never carries it upstream; POST gets its own
		case equalFold(name, "Transfer-Encoding"), equalFold(name, "Expect"), equalFold(name, "Upgrade"):
			return errHandOff
		case equalFold(name, "Connection"):
			for len(value) > 0 {
				var tok []byte
				tok, value, _ = bytes.Cut(value, []byte{','})
				tok = trimOWS(tok)
				if equalFold(tok, "close") {
					h.close = true
				}
				if equalFold(tok, "upgrade") {
					return errHandOff
				}
				if len(tok) > 0 {
					h.connTokens = append(h.connTokens, tok)
				}
			}
			continue
		case equalFold(name, "Te"):
			if containsFold(value, "trailers") {
				h.te = true
			}
			continue
		case equalFold(name, "X-Forwarded-For"):
			h.xff = append(h.xff, value)
		case equalFold(name, "X-Forwarded-Proto"):
			if !h.hasXFP {
				h.xfp, h.hasXFP = value, true
			}
		case equalFold(name, "X-Forwarded-Host"):
			if !h.hasXFH {
				h.xfh, h.hasXFH = value, true
			}
		case equalFold(name, "User-Agent"):
			h.hasUA = true
		}
		h.headers = append(h.headers, headerField{name, value})
	}
	if len(rest) != 0 || hosts != 1 || !validHost(h.host) {
		return errHandOff
	}
	return nil
}

// cutLine splits off one CRLF-terminated line.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	if len(b) > i+1 && (b[i+1] == ' ' || b[i+1] == '\t') {
		return nil, nil, false // obsolete line folding: net/http decides
	}
	return line, b[i+1:], true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x|0x20 != y|0x20 {
			return false
		}
		if x != y && (x|0x20 < 'a' || x|0x20 > 'z') {
			return false
		}
	}
	return true
}

// validHost accepts the Host values the fast path serves: a name or IPv4
// address with an optional port, or a bracketed IPv6 address with an
// optional port. Anything else goes to net/http, which answers 400 where it
// must.
func validHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// containsFold reports whether b contains the lower-case ASCII word s, in any case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if equalFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}
