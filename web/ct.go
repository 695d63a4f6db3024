package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"sort"
	"time"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
	"github.com/srekit/srekit/chart"
	"github.com/srekit/srekit/store"
)

func init() {
	Register(Part{
		Slug:    "ct",
		Title:   "CT",
		Summary: "Certificate Transparency monitor: certificates for your names, unexpected issuers, log health",
		Order:   70,
		Mount:   mountCT,
		Demo:    ctDemo,
	})
}

func mountCT(s *Server) error {
	s.HandleFunc("GET /ct", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/certs/ct", http.StatusFound)
	})
	s.HandleFunc("GET /certs/ct", s.ctPage)
	s.HandleFunc("GET /api/v1/ct/findings", s.ctAPIFindings)
	s.HandleFunc("GET /api/v1/ct/logs", s.ctAPILogs)
	return nil
}

// ctView is what templates/ct.html shows.
type ctView struct {
	Rules      []ctRuleRow
	Findings   []*ct.Finding
	Logs       []ctLogRow
	Problems   []ct.Problem
	Total      int
	Unexpected int
	Pending    int
	Chart      template.HTML
	Error      string
	List       ct.LogListInfo
	HaveList   bool
	ListAge    string
}

type ctRuleRow struct {
	Pattern, Kind, Issuers string
	Findings               int
}

type ctLogRow struct {
	*ct.LogState
	STHAge string
}

func (s *Server) ctPage(w http.ResponseWriter, r *http.Request) {
	v, err := buildCTView(r.Context(), s.Store)
	if err != nil {
		v.Error = err.Error()
	}
	s.Render(w, "ct.html", Page{Title: "Certificate Transparency", Active: "ct", Data: v})
}

func buildCTView(ctx context.Context, st *store.Store) (ctView, error) {
	var v ctView
	rules, err := ct.LoadRules(ctx, st)
	if err != nil {
		return v, err
	}
	all, err := ct.Findings(ctx, st, ct.FindingFilter{NewestOut: true})
	if err != nil {
		return v, err
	}
	perRule := map[string]int{}
	for _, f := range all {
		perRule[f.Rule]++
		if !f.IssuerExpected && f.Kind == "match" {
			v.Unexpected++
		}
		if f.Notified.IsZero() {
			v.Pending++
		}
	}
	v.Total = len(all)
	for _, r := range rules {
		kind := "exact (and wildcards covering it)"
		if r.Subtree() {
			kind = "subtree"
		}
		iss := "any"
		if len(r.Issuers) > 0 {
			iss = fmt.Sprint(r.Issuers)
		}
		v.Rules = append(v.Rules, ctRuleRow{Pattern: r.Pattern, Kind: kind, Issuers: iss, Findings: perRule[r.Pattern]})
	}
	if n := perRule[ct.UnparseableRule]; n > 0 {
		v.Rules = append(v.Rules, ctRuleRow{Pattern: ct.UnparseableRule, Kind: "fail-safe: entries that cannot be parsed", Issuers: "-", Findings: n})
	}
	v.Findings = all
	if len(v.Findings) > 200 {
		v.Findings = v.Findings[:200]
	}
	logs, err := ct.Logs(ctx, st)
	if err != nil {
		return v, err
	}
	for _, l := range logs {
		age := "-"
		if l.LatestTimestamp > 0 {
			age = time.Since(time.UnixMilli(int64(l.LatestTimestamp))).Round(time.Second).String()
		}
		v.Logs = append(v.Logs, ctLogRow{LogState: l, STHAge: age})
	}
	if v.List, v.HaveList, err = ct.LoadLogListInfo(ctx, st); err != nil {
		return v, err
	}
	if v.HaveList && !v.List.Timestamp.IsZero() {
		v.ListAge = v.List.Age().Round(time.Minute).String()
	}
	if v.Problems, err = ct.Problems(ctx, st, 20); err != nil {
		return v, err
	}
	v.Chart = template.HTML(ctChart(all))
	return v, nil
}

// ctChart draws findings per day of logging, expected issuers against
// unexpected ones: a burst of red is what a monitor exists to show.
func ctChart(fs []*ct.Finding) string {
	if len(fs) == 0 {
		return ""
	}
	days := map[string][2]float64{}
	for _, f := range fs {
		d := f.EntryTime.Format("01-02")
		c := days[d]
		if f.IssuerExpected || f.Kind != "match" {
			c[0]++
		} else {
			c[1]++
		}
		days[d] = c
	}
	var labels []string
	for d := range days {
		labels = append(labels, d)
	}
	sort.Strings(labels)
	ok := chart.Series{Name: "expected issuer", Color: "#137333"}
	bad := chart.Series{Name: "unexpected issuer", Color: "#b3261e"}
	for _, d := range labels {
		ok.Y = append(ok.Y, days[d][0])
		bad.Y = append(bad.Y, days[d][1])
	}
	return chart.Chart{Title: "Findings per day logged", YLabel: "certificates", Labels: labels, ID: "ct-chart",
		Series: []chart.Series{ok, bad}, Width: 900, Height: 260}.BarSVG()
}

func (s *Server) ctAPIFindings(w http.ResponseWriter, r *http.Request) {
	fs, err := ct.Findings(r.Context(), s.Store, ct.FindingFilter{Rule: r.URL.Query().Get("rule"), NewestOut: true, Limit: 1000})
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if fs == nil {
		fs = []*ct.Finding{}
	}
	WriteJSON(w, http.StatusOK, fs)
}

func (s *Server) ctAPILogs(w http.ResponseWriter, r *http.Request) {
	logs, err := ct.Logs(r.Context(), s.Store)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	ps, err := ct.Problems(r.Context(), s.Store, 100)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if logs == nil {
		logs = []*ct.LogState{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"logs": logs, "problems": ps})
}

// ctDemo runs the real monitor over two in-process test logs (one RFC 6962,
// one static-ct-api) whose entries span the last three weeks, so the page
// shows genuine findings, an unexpected issuer and verified log state.
func ctDemo(ctx context.Context, st *store.Store) error {
	sc, err := ctlogtest.NewScenario()
	if err != nil {
		return err
	}
	var entries []ctlogtest.LogListEntry
	for i, static := range []bool{false, true} {
		l, err := ctlogtest.NewLog("", static)
		if err != nil {
			return err
		}
		start := time.Now().Add(-21 * 24 * time.Hour)
		n := 0
		l.Clock = func() time.Time { n++; return start.Add(time.Duration(n) * 21 * 24 * time.Hour / 1500) }
		if err := sc.Fill(l, 1500, 25, 200); err != nil {
			return err
		}
		l.Clock = nil
		l.Publish()
		srv := httptest.NewServer(l.Handler())
		defer srv.Close()
		desc := []string{"Demo RFC 6962 log", "Demo static-ct-api log"}[i]
		entries = append(entries, ctlogtest.LogListEntry{Log: l, URL: srv.URL + "/", Description: desc, Operator: fmt.Sprint("Demo operator ", i+1)})
	}
	ll, err := ct.ParseLogList(ctlogtest.LogList(entries...))
	if err != nil {
		return err
	}
	var rules []ct.Rule
	for _, s := range ctlogtest.ScenarioRules {
		r, err := ct.ParseRule(s)
		if err != nil {
			return err
		}
		rules = append(rules, r)
	}
	if err := ct.SaveRules(ctx, st, rules); err != nil {
		return err
	}
	if err := ct.SaveLogListInfo(ctx, st, "demo (in-process test logs)", ll); err != nil {
		return err
	}
	m := &ct.Monitor{Store: st, Logs: ll.Logs, Rules: rules, Once: true, Notifier: &ct.Notifier{Store: st}}
	return m.Run(ctx)
}
