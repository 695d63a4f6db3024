package web

import (
	"net/http"

	"github.com/srekit/srekit/profiling"
)

// What users configure in the profiling part: schedules, Alertmanager rules
// and its webhook, pull targets and per-agent tokens.

func (p *profilingWeb) saveSchedule(w http.ResponseWriter, r *http.Request) {
	var sc profiling.Schedule
	if err := DecodeJSON(r, &sc); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.Method == http.MethodPut {
		id, err := pathID(r, "id")
		if err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		sc.ID = id
	} else {
		sc.ID = 0
	}
	out, err := p.svc.SaveSchedule(r.Context(), sc)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (p *profilingWeb) saveRule(w http.ResponseWriter, r *http.Request) {
	var rule profiling.AlertRule
	if err := DecodeJSON(r, &rule); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := p.svc.SaveAlertRule(r.Context(), rule)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

// alertmanager is Alertmanager's webhook receiver (webhook_configs url:
// http://srekit:8080/api/v1/alerts/alertmanager, with the write token as
// http_config.authorization.credentials).
func (p *profilingWeb) alertmanager(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	payload, err := profiling.ParseAlertmanager(body)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := p.svc.HandleAlerts(r.Context(), payload)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"outcomes": out})
}

// listPullTargets lists the stored pull targets and those of EnvPull.
func (p *profilingWeb) listPullTargets(w http.ResponseWriter, r *http.Request) {
	ts, err := p.svc.DB.PullTargets(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	env := []map[string]string{}
	for _, t := range p.pull {
		env = append(env, map[string]string{"name": t.Name, "url": t.URL})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"stored": ts, "environment": env})
}

func (p *profilingWeb) savePullTarget(w http.ResponseWriter, r *http.Request) {
	var t profiling.PullTarget
	if err := DecodeJSON(r, &t); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := p.svc.DB.SavePullTarget(r.Context(), t); err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, t)
}

func (p *profilingWeb) deletePullTarget(w http.ResponseWriter, r *http.Request) {
	if err := p.svc.DB.DeletePullTarget(r.Context(), r.PathValue("name")); err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"deleted": r.PathValue("name")})
}

// issueAgentToken answers POST {"agent": NAME} with a new token for that
// agent, shown this once.
func (p *profilingWeb) issueAgentToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Agent string `json:"agent"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	tok, err := p.svc.DB.IssueAgentToken(r.Context(), body.Agent)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]string{"agent": body.Agent, "token": tok,
		"note": "shown once: run srekit agent --name " + body.Agent + " --token TOKEN"})
}

func (p *profilingWeb) revokeAgentToken(w http.ResponseWriter, r *http.Request) {
	if err := p.svc.DB.RevokeAgentToken(r.Context(), r.PathValue("agent")); err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"revoked": r.PathValue("agent")})
}
