package mesh

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"
)

// upgradeType returns the protocol a request asks to switch to (such as
// "websocket"), or "" when it does not ask.
func upgradeType(h http.Header) string {
	for _, v := range h.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// upgrade relays a protocol switch (WebSocket): the request goes to one
// endpoint, once (an upgrade is not retried), and after a 101 answer bytes
// are copied both ways until either side closes. Upgrade and Connection are
// hop-by-hop, so they are put back for this one purpose.
func (h *handler) upgrade(w http.ResponseWriter, r *http.Request, rt *route, c *cluster, proto string) (int, string) {
	out := h.outgoing(r, rt)
	out.Header.Set("Connection", "Upgrade")
	out.Header.Set("Upgrade", proto)
	e := c.pick(time.Now(), nil)
	if e == nil {
		httpError(w, http.StatusServiceUnavailable, "no healthy endpoint could answer")
		return http.StatusServiceUnavailable, ""
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	req := out.WithContext(ctx)
	u := *out.URL
	u.Scheme, u.Host = c.scheme, e.Addr
	req.URL = &u
	e.inflight.Add(1)
	defer e.inflight.Add(-1)
	e.requests.Add(1)
	start := time.Now()
	res, err := c.transport.RoundTrip(req)
	if err != nil {
		if r.Context().Err() != nil {
			return 499, ""
		}
		c.record(e, time.Now(), time.Since(start), outcomeConnect)
		httpError(w, http.StatusBadGateway, "the backend could not be reached")
		return http.StatusBadGateway, e.Region
	}
	c.record(e, time.Now(), time.Since(start), outcomeOK)
	if res.StatusCode != http.StatusSwitchingProtocols {
		// The backend declined: relay its answer as for any request.
		return h.respond(w, &attempt{e: e, res: res, cancel: cancel, done: func() {}}), e.Region
	}
	backConn, ok := res.Body.(io.ReadWriteCloser)
	if !ok || !strings.EqualFold(res.Header.Get("Upgrade"), proto) {
		res.Body.Close()
		httpError(w, http.StatusBadGateway, "the backend switched to another protocol")
		return http.StatusBadGateway, e.Region
	}
	defer backConn.Close()
	clientConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "this listener cannot switch protocols (HTTP/2)")
		return http.StatusInternalServerError, e.Region
	}
	defer clientConn.Close()
	hdr := res.Header.Clone()
	stripHop(hdr)
	hdr.Set("Connection", "Upgrade")
	hdr.Set("Upgrade", proto)
	res.Header = hdr
	res.Body = nil
	if err := res.Write(brw); err != nil {
		return http.StatusSwitchingProtocols, e.Region
	}
	if err := brw.Flush(); err != nil {
		return http.StatusSwitchingProtocols, e.Region
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(backConn, brw); done <- struct{}{} }() // brw first: bytes the client sent early
	go func() { io.Copy(clientConn, backConn); done <- struct{}{} }()
	<-done
	return http.StatusSwitchingProtocols, e.Region
}
