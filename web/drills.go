package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/srekit/srekit/chart"
	"github.com/srekit/srekit/drills"
	"github.com/srekit/srekit/store"
)

func init() {
	Register(Part{
		Slug:    "drills",
		Title:   "Drills",
		Summary: "opt-in random on-call paging drills under strict rules, so on-call skills do not atrophy",
		Order:   90,
		Mount:   mountDrills,
		Demo:    drillsDemo,
		Run:     runDrills,
	})
}

func mountDrills(s *Server) error {
	s.HandleFunc("GET /drills", s.drillsPage)
	s.HandleFunc("GET /api/v1/drills/plan", s.drillsAPIRecords(drills.StatusPlanned))
	s.HandleFunc("GET /api/v1/drills/history", s.drillsAPIRecords(drills.StatusPaged, drills.StatusDryRun, drills.StatusSkipped, drills.StatusFailed))
	s.HandleFunc("GET /api/v1/drills/report", s.drillsAPIReport)
	s.HandleFunc("GET /api/v1/drills/findings", s.drillsAPIFindings)
	s.HandleFunc("PUT /api/v1/drills/config", s.drillsAPIConfig, Write(), BodyLimit(4<<20))
	s.HandleFunc("POST /api/v1/drills/optin", s.drillsAPIOptIn, Write())
	s.HandleFunc("POST /api/v1/drills/pause", s.drillsAPIPause, Write())
	// Acknowledgement links and PagerDuty webhooks carry their own signatures.
	s.HandleFunc("GET /drills/ack/{id}", s.drillsAckPage)
	s.HandleFunc("POST /drills/ack/{id}", s.drillsAckPost, BodyLimit(64<<10))
	s.HandleFunc("POST /api/v1/drills/pagerduty", s.drillsPagerDutyWebhook, BodyLimit(1<<20))
	return nil
}

// runDrills plans and pages the stored configuration's drills while the
// server runs. The configuration is read again every round, so `srekit drills
// apply` and the page's switches take effect without a restart.
func runDrills(ctx context.Context, s *Server) {
	base := "http://" + s.Config.Addr
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		c, ok, err := drills.LoadConfig(ctx, s.Store)
		switch {
		case err != nil && ctx.Err() == nil:
			s.Log.Error("drills configuration", "err", err)
		case ok:
			r := &drills.Runner{Store: s.Store, Config: c, Log: s.Log, BaseURL: base, Horizon: 45 * 24 * time.Hour}
			if _, err := r.PlanAhead(ctx); err != nil && ctx.Err() == nil {
				s.Log.Error("plan drills", "err", err)
			}
			if _, err := r.RunDue(ctx); err != nil && ctx.Err() == nil {
				s.Log.Error("run drills", "err", err)
			}
			if am := c.Incidents.AlertmanagerURL; am != "" {
				r.PollSilences(ctx, am)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drillsDemo stores the demo configuration and a past of dry-run drills
// (acknowledged after a few minutes, some with findings) so the page has
// history and charts to show. Everything is dry run: nobody is paged.
func drillsDemo(ctx context.Context, st *store.Store) error {
	c, err := drills.SaveConfig(ctx, st, drills.DemoConfig)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	past := c.Plan(now.AddDate(0, -5, 0), now, nil)
	if _, err := drills.SavePlan(ctx, st, past, true); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(2019, 11))
	recs, err := drills.Records(ctx, st, time.Time{}, now, drills.StatusPlanned)
	if err != nil {
		return err
	}
	findings := []struct{ text, tags string }{
		{"Runbook still names the old load balancer", "missing-runbook"},
		{"IPv6 health check was never configured on the edge", "ipv6,firewall"},
		{"Renewal job image is two years old", "outdated-software"},
		{"Could not reach the bastion from home: firewall allow-list stale", "firewall"},
	}
	for i, rec := range recs {
		paged := rec.At
		if _, err := st.Exec(ctx, "UPDATE drills_pages SET status = ?, reason = ?, paged_ms = ? WHERE id = ?",
			drills.StatusDryRun, "demo data", paged.UnixMilli(), rec.ID); err != nil {
			return err
		}
		// Acknowledgement times improve over the months, as drills intend.
		age := now.Sub(paged).Hours() / 24
		ack := time.Duration((2+age/12)*(0.5+rng.Float64())*60) * time.Second
		if err := drills.Acknowledge(ctx, st, rec.ID, paged.Add(ack), "demo"); err != nil {
			return err
		}
		if err := drills.Mitigate(ctx, st, rec.ID, paged.Add(ack*4)); err != nil {
			return err
		}
		if i%3 == 0 {
			f := findings[(i/3)%len(findings)]
			if err := drills.AddFinding(ctx, st, rec.ID, f.text, strings.Split(f.tags, ","), paged.Add(time.Hour)); err != nil {
				return err
			}
		}
	}
	return drills.AddRealPage(ctx, st, "Chidi", "storage", now.AddDate(0, 0, -3), "demo")
}

type drillsPerson struct {
	Name, Team, Timezone, Hours, OptInUntil string
	OptedIn                                 bool
	Pager                                   string
	DaysSince                               string
}

type drillsView struct {
	Configured bool
	ConfigErr  string
	DryRun     bool
	Paused     bool
	People     []drillsPerson
	Upcoming   []drillsRow
	History    []drillsRow
	Findings   []drills.Finding
	TagCounts  []tagCount
	Underload  template.HTML
	AckTrend   template.HTML
}

type tagCount struct {
	Tag   string
	Count int
}

type drillsRow struct {
	drills.Record
	Title, Local, Ack, Mitigate string
}

func (s *Server) drillsPage(w http.ResponseWriter, r *http.Request) {
	v, err := s.buildDrillsView(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.Render(w, "drills.html", Page{Title: "On-call drills", Active: "drills", Data: v})
}

func (s *Server) buildDrillsView(ctx context.Context) (drillsView, error) {
	var v drillsView
	c, ok, err := drills.LoadConfig(ctx, s.Store)
	if err != nil {
		v.ConfigErr = err.Error()
		return v, nil
	}
	if !ok {
		return v, nil
	}
	v.Configured, v.DryRun = true, c.IsDryRun()
	if v.Paused, err = drills.Paused(ctx, s.Store, c); err != nil {
		return v, err
	}
	now := time.Now().UTC()
	rep, err := drills.BuildReport(ctx, s.Store, c, now)
	if err != nil {
		return v, err
	}
	since := map[string]int{}
	for _, st := range rep.People {
		since[st.Name] = st.DaysSince
	}
	for _, p := range c.People {
		days := "never"
		if d := since[p.Name]; d >= 0 {
			days = strconv.Itoa(d)
		}
		v.People = append(v.People, drillsPerson{Name: p.Name, Team: p.Team, Timezone: p.Timezone, Hours: p.WorkHours,
			OptInUntil: p.OptInUntil, OptedIn: p.OptedIn(now), Pager: p.Pager.Kind, DaysSince: days})
	}
	row := func(rec drills.Record) drillsRow {
		out := drillsRow{Record: rec, Title: rec.DrillID, Ack: "-", Mitigate: "-"}
		if d, ok := c.Drill(rec.DrillID); ok {
			out.Title = d.Title
		}
		if p, ok := c.Person(rec.Person); ok {
			out.Local = rec.At.In(p.Location()).Format("Mon 02 Jan 15:04 MST")
		}
		start := rec.At
		if rec.PagedAt != nil {
			start = *rec.PagedAt
		}
		if rec.AckedAt != nil {
			out.Ack = rec.AckedAt.Sub(start).Round(time.Second).String()
		}
		if rec.MitigatedAt != nil {
			out.Mitigate = rec.MitigatedAt.Sub(start).Round(time.Second).String()
		}
		return out
	}
	upcoming, err := drills.Records(ctx, s.Store, now, now.AddDate(0, 2, 0), drills.StatusPlanned)
	if err != nil {
		return v, err
	}
	for _, rec := range upcoming {
		v.Upcoming = append(v.Upcoming, row(rec))
	}
	hist, err := drills.Records(ctx, s.Store, time.Time{}, now.Add(time.Minute), drills.StatusPaged, drills.StatusDryRun, drills.StatusSkipped, drills.StatusFailed)
	if err != nil {
		return v, err
	}
	for i := len(hist) - 1; i >= 0 && len(v.History) < 40; i-- {
		v.History = append(v.History, row(hist[i]))
	}
	if v.Findings, err = drills.Findings(ctx, s.Store); err != nil {
		return v, err
	}
	if len(v.Findings) > 30 {
		v.Findings = v.Findings[:30]
	}
	for tag, n := range rep.FindingTags {
		v.TagCounts = append(v.TagCounts, tagCount{tag, n})
	}
	sort.Slice(v.TagCounts, func(i, j int) bool {
		if v.TagCounts[i].Count != v.TagCounts[j].Count {
			return v.TagCounts[i].Count > v.TagCounts[j].Count
		}
		return v.TagCounts[i].Tag < v.TagCounts[j].Tag
	})
	v.Underload, v.AckTrend = drillsCharts(rep)
	return v, nil
}

// drillsCharts draws days since each person's last page (underload before it
// becomes atrophy) and each team's median time to acknowledge per month.
func drillsCharts(rep *drills.Report) (template.HTML, template.HTML) {
	var labels []string
	days := chart.Series{Name: "days since last page", Color: "#d1495b"}
	for _, p := range rep.People {
		labels = append(labels, p.Name)
		d := float64(p.DaysSince)
		if d < 0 {
			d = 0
		}
		days.Y = append(days.Y, d)
	}
	under := chart.Chart{ID: "drills-underload-chart", Title: "Days since the last page of any kind (drill or real)",
		Labels: labels, Series: []chart.Series{days}, Width: 760, Height: 300}
	months := map[string]bool{}
	for _, t := range rep.Teams {
		for _, mv := range t.Trend {
			months[mv.Month] = true
		}
	}
	var monthList []string
	for m := range months {
		monthList = append(monthList, m)
	}
	sort.Strings(monthList)
	index := map[string]int{}
	for i, m := range monthList {
		index[m] = i
	}
	var series []chart.Series
	for _, t := range rep.Teams {
		s := chart.Series{Name: t.Name}
		for _, mv := range t.Trend {
			s.X = append(s.X, float64(index[mv.Month]))
			s.Y = append(s.Y, mv.Value/60)
		}
		series = append(series, s)
	}
	trend := chart.Chart{ID: "drills-ack-chart", Title: "Median time to acknowledge a drill, per team (minutes)",
		XLabel: "month", YLabel: "minutes", Series: series, Width: 760, Height: 300, FromZero: true,
		XFormat: func(x float64) string {
			i := int(x)
			if float64(i) != x || i < 0 || i >= len(monthList) {
				return ""
			}
			return monthList[i]
		}}
	return template.HTML(under.BarSVG()), template.HTML(trend.SVG())
}

func (s *Server) drillsAPIRecords(status ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		recs, err := drills.Records(r.Context(), s.Store, time.Time{}, time.Time{}, status...)
		if err != nil {
			Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		if recs == nil {
			recs = []drills.Record{}
		}
		WriteJSON(w, http.StatusOK, recs)
	}
}

func (s *Server) drillsConfig(w http.ResponseWriter, r *http.Request) (*drills.Config, bool) {
	c, ok, err := drills.LoadConfig(r.Context(), s.Store)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return nil, false
	}
	if !ok {
		Error(w, http.StatusNotFound, "no drills configuration: store one with PUT /api/v1/drills/config or `srekit drills apply`")
		return nil, false
	}
	return c, true
}

func (s *Server) drillsAPIReport(w http.ResponseWriter, r *http.Request) {
	c, ok := s.drillsConfig(w, r)
	if !ok {
		return
	}
	rep, err := drills.BuildReport(r.Context(), s.Store, c, time.Now())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, rep)
}

func (s *Server) drillsAPIFindings(w http.ResponseWriter, r *http.Request) {
	fs, err := drills.Findings(r.Context(), s.Store)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if fs == nil {
		fs = []drills.Finding{}
	}
	WriteJSON(w, http.StatusOK, fs)
}

func (s *Server) drillsAPIConfig(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	c, err := drills.SaveConfig(r.Context(), s.Store, string(body))
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	s.Store.LogEvent(r.Context(), "drills", "config", fmt.Sprintf("%d people, dry run %v", len(c.People), c.IsDryRun()))
	WriteJSON(w, http.StatusOK, map[string]any{"people": len(c.People), "drills": len(c.Catalogue), "dry_run": c.IsDryRun()})
}

func (s *Server) drillsAPIOptIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Person string `json:"person"`
		Until  string `json:"until"` // YYYY-MM-DD, or "" to opt out
	}
	if err := DecodeJSON(r, &req); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, ok := s.drillsConfig(w, r)
	if !ok {
		return
	}
	if _, found := c.Person(req.Person); !found {
		Error(w, http.StatusNotFound, fmt.Sprintf("no person %q on the roster", req.Person))
		return
	}
	if err := drills.SetOptIn(r.Context(), s.Store, req.Person, req.Until, time.Now()); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Until == "" {
		// Opting out cancels what was planned for that person.
		s.Store.Exec(r.Context(), "UPDATE drills_pages SET status = ?, reason = ? WHERE person = ? AND status = ?",
			drills.StatusCancelled, "opted out", req.Person, drills.StatusPlanned)
	}
	s.Store.LogEvent(r.Context(), "drills", "opt-in", req.Person+" until "+req.Until)
	WriteJSON(w, http.StatusOK, map[string]string{"person": req.Person, "until": req.Until})
}

func (s *Server) drillsAPIPause(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Paused bool `json:"paused"`
	}
	if err := DecodeJSON(r, &req); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := drills.SetPaused(r.Context(), s.Store, req.Paused); err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.Store.LogEvent(r.Context(), "drills", "pause", strconv.FormatBool(req.Paused))
	WriteJSON(w, http.StatusOK, map[string]bool{"paused": req.Paused})
}

type drillsAckView struct {
	Record  drills.Record
	Drill   *drills.Drill
	Sig     string
	Message string
	Error   string
}

// drillAckAuth checks the signed one-click link of a drill.
func (s *Server) drillAckAuth(w http.ResponseWriter, r *http.Request, sig string) (drills.Record, *drills.Drill, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad drill id", http.StatusBadRequest)
		return drills.Record{}, nil, false
	}
	secret, err := drills.AckSecret(r.Context(), s.Store)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return drills.Record{}, nil, false
	}
	if !drills.CheckAckSignature(secret, id, sig) {
		http.Error(w, "this acknowledgement link is not valid (bad or missing signature)", http.StatusForbidden)
		return drills.Record{}, nil, false
	}
	rec, err := drills.RecordByID(r.Context(), s.Store, id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return drills.Record{}, nil, false
	}
	d := &drills.Drill{ID: rec.DrillID, Title: rec.DrillID}
	if c, ok, _ := drills.LoadConfig(r.Context(), s.Store); ok {
		if found, ok := c.Drill(rec.DrillID); ok {
			d = found
		}
	}
	return rec, d, true
}

func (s *Server) drillsAckPage(w http.ResponseWriter, r *http.Request) {
	sig := r.URL.Query().Get("sig")
	rec, d, ok := s.drillAckAuth(w, r, sig)
	if !ok {
		return
	}
	s.Render(w, "drills_ack.html", Page{Title: "Drill " + d.Title, Active: "drills", Data: drillsAckView{Record: rec, Drill: d, Sig: sig}})
}

// drillsAckPost records an acknowledgement, a mitigation or a finding from
// the signed link's page (a form POST, so following a link never acts).
func (s *Server) drillsAckPost(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sig := r.PostForm.Get("sig")
	rec, d, ok := s.drillAckAuth(w, r, sig)
	if !ok {
		return
	}
	now := time.Now()
	view := drillsAckView{Drill: d, Sig: sig}
	var err error
	switch r.PostForm.Get("action") {
	case "ack":
		err = drills.Acknowledge(r.Context(), s.Store, rec.ID, now, "link")
		view.Message = "Acknowledged. Thank you: the clock for time-to-acknowledge stopped now."
		if errors.Is(err, drills.ErrAlreadyAcked) {
			err, view.Message = nil, "This drill was already acknowledged."
		}
	case "mitigate":
		err = drills.Mitigate(r.Context(), s.Store, rec.ID, now)
		view.Message = "Marked as mitigated."
	case "finding":
		var tags []string
		for _, t := range strings.FieldsFunc(r.PostForm.Get("tags"), func(c rune) bool { return c == ',' || c == ' ' }) {
			tags = append(tags, t)
		}
		err = drills.AddFinding(r.Context(), s.Store, rec.ID, r.PostForm.Get("text"), tags, now)
		view.Message = "Finding recorded."
	default:
		err = errors.New("unknown action")
	}
	if err != nil {
		view.Message, view.Error = "", err.Error()
		w.WriteHeader(http.StatusBadRequest)
	}
	view.Record, _ = drills.RecordByID(r.Context(), s.Store, rec.ID)
	s.Render(w, "drills_ack.html", Page{Title: "Drill " + d.Title, Active: "drills", Data: view})
}

func (s *Server) drillsPagerDutyWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	c, ok := s.drillsConfig(w, r)
	if !ok {
		return
	}
	ack, isAck, err := drills.ParsePagerDutyWebhook(c.PagerDutyWebhookSecret, r.Header.Get("X-PagerDuty-Signature"), body)
	if err != nil {
		Error(w, http.StatusUnauthorized, err.Error())
		return
	}
	if !isAck {
		WriteJSON(w, http.StatusOK, map[string]string{"ignored": "not an acknowledgement of a drill"})
		return
	}
	rec, err := drills.RecordByKey(r.Context(), s.Store, ack.DedupKey)
	if err != nil {
		WriteJSON(w, http.StatusOK, map[string]string{"ignored": "not a srekit drill"})
		return
	}
	if err := drills.Acknowledge(r.Context(), s.Store, rec.ID, ack.At, "pagerduty"); err != nil && !errors.Is(err, drills.ErrAlreadyAcked) {
		Error(w, http.StatusConflict, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"acknowledged": rec.DedupKey})
}
