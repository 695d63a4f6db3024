package ct

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/certificate-transparency-go/loglist3"
)

// Kind is the API a log is read through.
type Kind string

const (
	RFC6962 Kind = "rfc6962"
	Static  Kind = "static" // c2sp.org/static-ct-api (tiles)
)

// LogInfo is one log from a log list.
type LogInfo struct {
	ID          [32]byte
	Description string
	Operator    string
	Kind        Kind
	// URL is the monitoring prefix (the RFC 6962 URL, or the static-ct-api
	// monitoring prefix), always ending in "/".
	URL           string
	SubmissionURL string
	Key           []byte // DER SubjectPublicKeyInfo
	PublicKey     crypto.PublicKey
	MMD           time.Duration
	// State is the log list state: pending, qualified, usable, readonly,
	// retired, rejected (or "" when the list gives none).
	State     string
	StateTime time.Time
	// Interval is the accepted notAfter range, when the log is sharded by time.
	IntervalStart, IntervalEnd time.Time
}

// IDString is the log ID as base64, the way log lists write it.
func (l *LogInfo) IDString() string { return b64(l.ID[:]) }

// LogList is a parsed v3 log list.
type LogList struct {
	Timestamp time.Time
	Version   string
	Logs      []*LogInfo
}

// Find returns the log with the given ID, or nil.
func (ll *LogList) Find(id [32]byte) *LogInfo {
	for _, l := range ll.Logs {
		if l.ID == id {
			return l
		}
	}
	return nil
}

// ParseLogList parses a log list in the v3 JSON format (Chrome's and
// Apple's lists), with RFC 6962 logs ("logs") and static-ct-api logs
// ("tiled_logs"). Each key is checked against its log ID.
func ParseLogList(data []byte) (*LogList, error) {
	var raw loglist3.LogList
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("log list: %w", err)
	}
	if raw.Operators == nil {
		return nil, fmt.Errorf("log list: no \"operators\": not a v3 log list")
	}
	ll := &LogList{Timestamp: raw.LogListTimestamp, Version: raw.Version}
	add := func(op string, kind Kind, desc, url, sub string, id, key []byte, mmd int32, st *loglist3.LogStates, ti *loglist3.TemporalInterval) error {
		l := &LogInfo{Description: desc, Operator: op, Kind: kind, Key: key, MMD: time.Duration(mmd) * time.Second, SubmissionURL: sub}
		if !strings.HasSuffix(url, "/") {
			url += "/"
		}
		l.URL = url
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return fmt.Errorf("log %q: url %q is not http(s)", desc, url)
		}
		pk, err := x509.ParsePKIXPublicKey(key)
		if err != nil {
			return fmt.Errorf("log %q: key: %w", desc, err)
		}
		l.PublicKey = pk
		l.ID = sha256.Sum256(key)
		if len(id) > 0 && string(id) != string(l.ID[:]) {
			return fmt.Errorf("log %q: log_id %s is not the SHA-256 of its key (%s)", desc, b64(id), l.IDString())
		}
		if st != nil {
			l.State = strings.ToLower(strings.TrimSuffix(st.LogStatus().String(), "LogStatus"))
			for _, s := range []*loglist3.LogState{st.Pending, st.Qualified, st.Usable, st.Retired, st.Rejected} {
				if s != nil {
					l.StateTime = s.Timestamp
				}
			}
			if st.ReadOnly != nil {
				l.StateTime = st.ReadOnly.Timestamp
			}
		}
		if ti != nil {
			l.IntervalStart, l.IntervalEnd = ti.StartInclusive, ti.EndExclusive
		}
		ll.Logs = append(ll.Logs, l)
		return nil
	}
	for _, op := range raw.Operators {
		for _, l := range op.Logs {
			if err := add(op.Name, RFC6962, l.Description, l.URL, l.URL, l.LogID, l.Key, l.MMD, l.State, l.TemporalInterval); err != nil {
				return nil, err
			}
		}
		for _, l := range op.TiledLogs {
			if err := add(op.Name, Static, l.Description, l.MonitoringURL, l.SubmissionURL, l.LogID, l.Key, l.MMD, l.State, l.TemporalInterval); err != nil {
				return nil, err
			}
		}
	}
	return ll, nil
}

// LoadLogList reads a log list from a file path or an http(s) URL.
func LoadLogList(ctx context.Context, src string, hc *http.Client) (*LogList, error) {
	var data []byte
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if hc == nil {
			hc = http.DefaultClient
		}
		req, err := http.NewRequestWithContext(ctx, "GET", src, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch log list: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("fetch log list %s: HTTP %s", src, resp.Status)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		if err != nil {
			return nil, fmt.Errorf("fetch log list: %w", err)
		}
	} else {
		var err error
		if data, err = os.ReadFile(src); err != nil {
			return nil, fmt.Errorf("read log list: %w", err)
		}
	}
	ll, err := ParseLogList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return ll, nil
}
