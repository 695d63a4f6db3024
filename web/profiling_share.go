package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// Sharing a view: every flame graph view (a snapshot, a time range, a
// merge, a diff) exports as one offline HTML file. A server may also publish
// that file to an outbound share service that answers with a link; a switch
// forbids it for servers whose profiles must not leave the building.

// EnvShareURL is the outbound share service: srekit POSTs the offline HTML
// of a view to it (Content-Type text/html) and it answers with the link,
// as JSON {"url": "..."} or as the first line of a text body.
const EnvShareURL = "SREKIT_PROFILING_SHARE_URL"

// EnvNoOutboundSharing=1 forbids any outbound sharing link, whatever
// EnvShareURL says: the share API answers 403, the page hides the action,
// and nothing leaves the server. Exports stay available.
const EnvNoOutboundSharing = "SREKIT_PROFILING_NO_OUTBOUND_SHARING"

// profilingCSP is the Content-Security-Policy of the profiling page: its own
// scripts, styles and API only, so the page cannot contact any other host.
const profilingCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'"

// exportCSP is the policy of exported views (SVG and offline HTML), which
// carry their own inline script and style and need nothing else: not even
// the server they came from.
const exportCSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

// withExportCSP puts exportCSP into an offline HTML file as a meta tag, so
// that the policy travels with the file when it is opened from disk.
func withExportCSP(html []byte) []byte {
	meta := []byte(`<meta charset="utf-8">`)
	tag := []byte(`<meta http-equiv="Content-Security-Policy" content="` + exportCSP + `">`)
	if i := bytes.Index(html, meta); i >= 0 {
		i += len(meta)
		out := make([]byte, 0, len(html)+len(tag))
		out = append(out, html[:i]...)
		out = append(out, tag...)
		return append(out, html[i:]...)
	}
	return append(tag, html...)
}

// shareConfig is read once at mount.
type shareConfig struct {
	url       string // the share service; empty: none configured
	forbidden bool   // EnvNoOutboundSharing
}

func readShareConfig() (shareConfig, error) {
	c := shareConfig{url: strings.TrimSpace(os.Getenv(EnvShareURL))}
	switch v := os.Getenv(EnvNoOutboundSharing); v {
	case "", "0", "false":
	case "1", "true":
		c.forbidden = true
	default:
		return c, fmt.Errorf("%s=%q: want 1 or 0", EnvNoOutboundSharing, v)
	}
	if c.url != "" {
		u, err := url.Parse(c.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("%s=%q: want an http(s) URL", EnvShareURL, c.url)
		}
	}
	return c, nil
}

// enabled says whether the page offers the Share action.
func (c shareConfig) enabled() bool { return c.url != "" && !c.forbidden }

// sharePaths are the views that can be shared: flame graph views only.
var sharePaths = []string{"/api/v1/profiling/snapshots/", "/api/v1/profiling/merge", "/api/v1/profiling/diff"}

// share answers POST /api/v1/profiling/share {"view": "/api/v1/profiling/merge?..."}:
// it renders the view as offline HTML and publishes it to the share service.
func (p *profilingWeb) share(w http.ResponseWriter, r *http.Request) {
	if p.sharing.forbidden {
		Error(w, http.StatusForbidden, "outbound sharing is forbidden on this server ("+EnvNoOutboundSharing+"=1): export the view as offline HTML instead")
		return
	}
	if p.sharing.url == "" {
		Error(w, http.StatusNotFound, "no share service is configured (set "+EnvShareURL+"): export the view as offline HTML instead")
		return
	}
	var body struct {
		View string `json:"view"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	view, err := url.Parse(body.View)
	ok := err == nil && view.Scheme == "" && view.Host == "" && view.Path == path.Clean(view.Path)
	if ok {
		ok = false
		for _, pre := range sharePaths {
			if strings.HasPrefix(view.Path, pre) {
				ok = true
			}
		}
	}
	if !ok {
		Error(w, http.StatusBadRequest, "view: want the path of a flame graph view, e.g. /api/v1/profiling/merge?query=api&from=now-1h")
		return
	}
	q := view.Query()
	q.Set("format", "html")
	q.Del("download")
	view.RawQuery = q.Encode()
	// Render the view through the server's own routes, with the caller's
	// credentials, so a share shows exactly what an export would.
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, view.RequestURI(), nil)
	if err != nil {
		Error(w, http.StatusBadRequest, "view: "+err.Error())
		return
	}
	req.RequestURI = view.RequestURI()
	req.Header.Set("Authorization", r.Header.Get("Authorization"))
	rec := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
	p.s.mux.ServeHTTP(rec, req)
	if rec.code != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rec.body.Bytes(), &e) != nil || e.Error == "" {
			e.Error = http.StatusText(rec.code)
		}
		Error(w, rec.code, "view: "+strings.TrimSpace(e.Error))
		return
	}
	link, err := p.publish(r.Context(), rec.body.Bytes())
	if err != nil {
		Error(w, http.StatusBadGateway, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"url": link, "bytes": rec.body.Len()})
}

// publish POSTs the offline HTML to the share service and returns its link.
func (p *profilingWeb) publish(ctx context.Context, html []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.sharing.url, bytes.NewReader(html))
	if err != nil {
		return "", fmt.Errorf("share service: %w", err)
	}
	req.Header.Set("Content-Type", "text/html; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("share service: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("share service: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("share service answered %s: %.200s", resp.Status, strings.TrimSpace(string(b)))
	}
	link := ""
	var j struct {
		URL  string `json:"url"`
		Link string `json:"link"`
	}
	if json.Unmarshal(b, &j) == nil {
		link = j.URL
		if link == "" {
			link = j.Link
		}
	} else {
		link, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	}
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("share service: its answer holds no http(s) link")
	}
	return u.String(), nil
}
