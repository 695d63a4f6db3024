package web

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/srekit/srekit/profiling"
)

// The agents' side of the profiling part: their authentication, registration,
// the capture queue they long-poll, and captures requested from the page or API.

// agentAuth lets agents in with the shared agent token (EnvAgentToken), the
// write token, or a per-agent token; a per-agent token binds the request to
// its agent's name, which the handlers check with p.asAgent.
func (p *profilingWeb) agentAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		ok := false
		for _, tok := range []string{p.agentToken, p.s.Config.Token} {
			if tok != "" && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
				ok = true
			}
		}
		if !ok && got != "" {
			name, err := p.svc.DB.AgentForToken(r.Context(), got)
			if err != nil {
				Error(w, http.StatusInternalServerError, err.Error())
				return
			}
			if name != "" {
				r = r.WithContext(context.WithValue(r.Context(), boundAgentKey{}, name))
				ok = true
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="srekit"`)
			Error(w, http.StatusUnauthorized, "missing or wrong agent token (give the agent its own token, "+EnvAgentToken+" or the write token)")
			return
		}
		h(w, r)
	}
}

type boundAgentKey struct{}

// asAgent refuses (403) a request made with another agent's per-agent token.
func (p *profilingWeb) asAgent(w http.ResponseWriter, r *http.Request, name string) bool {
	bound, _ := r.Context().Value(boundAgentKey{}).(string)
	if bound != "" && bound != name {
		Error(w, http.StatusForbidden, fmt.Sprintf("this token belongs to agent %q, not %q", bound, name))
		return false
	}
	return true
}

// captureOfAgent reads the capture id from the path and checks that the
// calling agent may answer for it; false when it has already answered the
// request with the error.
func (p *profilingWeb) captureOfAgent(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return 0, false
	}
	return id, p.asCaptureAgent(w, r, id)
}

// asCaptureAgent is asAgent for the agent a capture was requested of.
func (p *profilingWeb) asCaptureAgent(w http.ResponseWriter, r *http.Request, id int64) bool {
	if _, bound := r.Context().Value(boundAgentKey{}).(string); !bound {
		return true
	}
	c, err := p.svc.Capture(r.Context(), id)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return false
	}
	return p.asAgent(w, r, c.Agent)
}

func (p *profilingWeb) register(w http.ResponseWriter, r *http.Request) {
	var a profiling.Agent
	if err := DecodeJSON(r, &a); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if !p.asAgent(w, r, a.Name) {
		return
	}
	if err := p.svc.Register(r.Context(), a); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"name": a.Name, "next": "/api/v1/profiling/agents/" + a.Name + "/next"})
}

// next is the agents' long poll: it answers with a capture to run, or 204
// after wait seconds (25 by default, at most 55).
func (p *profilingWeb) next(w http.ResponseWriter, r *http.Request) {
	wait := 25 * time.Second
	if s := r.URL.Query().Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 55 {
			Error(w, http.StatusBadRequest, "wait: want 0 to 55 seconds")
			return
		}
		wait = time.Duration(n) * time.Second
	}
	if !p.asAgent(w, r, r.PathValue("name")) {
		return
	}
	c, err := p.svc.Next(r.Context(), r.PathValue("name"), wait)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	if c == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (p *profilingWeb) result(w http.ResponseWriter, r *http.Request) {
	id, ok := p.captureOfAgent(w, r)
	if !ok {
		return
	}
	v := r.URL.Query()
	data, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	res := profiling.CaptureResult{Format: v.Get("format"), Data: data, Preroll: v.Get("preroll") == "true"}
	now := time.Now()
	if res.Start, err = parseTime(v.Get("start"), now); err == nil {
		res.End, err = parseTime(v.Get("end"), now)
	}
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := p.svc.Complete(r.Context(), id, res)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (p *profilingWeb) fail(w http.ResponseWriter, r *http.Request) {
	id, ok := p.captureOfAgent(w, r)
	if !ok {
		return
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := p.svc.Fail(r.Context(), id, body.Error); err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"id": id, "status": profiling.StatusFailed})
}

func (p *profilingWeb) requestCapture(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Agent   string            `json:"agent"`
		Target  string            `json:"target"`
		Kind    string            `json:"kind"`
		Seconds int               `json:"seconds"`
		Preroll bool              `json:"preroll"`
		Labels  map[string]string `json:"labels"`
		// perf only: the process (0 or absent: the whole host) and Hz.
		PID       int `json:"pid"`
		Frequency int `json:"frequency"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := p.svc.Request(r.Context(), profiling.Capture{Agent: body.Agent, Target: body.Target, Kind: body.Kind,
		Seconds: body.Seconds, Preroll: body.Preroll, Labels: body.Labels, Reason: "on demand", PID: body.PID, Frequency: body.Frequency})
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusCreated, c)
}

func (p *profilingWeb) listCaptures(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	cs, err := p.svc.Captures(r.Context(), n)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, cs)
}

func (p *profilingWeb) getCapture(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := p.svc.Capture(r.Context(), id)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, c)
}
