package drills

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Notice is everything a pager needs to send one drill page.
type Notice struct {
	DedupKey string
	Person   *Person
	Drill    *Drill
	// AckURL is the signed one-click acknowledgement link.
	AckURL string
	At     time.Time
}

// Summary is the page's one line: it always starts with "[DRILL]", so no
// responder mistakes a drill for a real incident.
func (n Notice) Summary() string {
	return fmt.Sprintf("[DRILL] %s (for %s, %s)", n.Drill.Title, n.Person.Name, n.Person.Team)
}

// PermanentError is a pager refusal that a retry will not fix (a 4xx).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// DefaultPagerDutyURL is the PagerDuty Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// Send pages the person of n through their configured pager.
func Send(ctx context.Context, client *http.Client, n Notice) error {
	switch n.Person.Pager.Kind {
	case "pagerduty":
		return sendPagerDuty(ctx, client, n)
	case "alertmanager":
		return sendAlertmanager(ctx, client, n)
	case "webhook":
		return sendWebhook(ctx, client, n)
	}
	return &PermanentError{fmt.Errorf("unknown pager kind %q", n.Person.Pager.Kind)}
}

func post(ctx context.Context, client *http.Client, u string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return &PermanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(msg)))
	default:
		return &PermanentError{fmt.Errorf("%s answered %s: %s", u, resp.Status, strings.TrimSpace(string(msg)))}
	}
}

// sendPagerDuty triggers an Events API v2 alert. The dedup key makes a
// repeated trigger the same incident.
func sendPagerDuty(ctx context.Context, client *http.Client, n Notice) error {
	u := n.Person.Pager.URL
	if u == "" {
		u = DefaultPagerDutyURL
	}
	ev := map[string]any{
		"routing_key":  n.Person.Pager.RoutingKey,
		"event_action": "trigger",
		"dedup_key":    n.DedupKey,
		"payload": map[string]any{
			"summary":   n.Summary(),
			"source":    "srekit drills",
			"severity":  n.Drill.Severity,
			"timestamp": n.At.UTC().Format(time.RFC3339),
			"component": n.Drill.ID,
			"group":     n.Person.Team,
			"class":     "drill",
			"custom_details": map[string]any{
				"drill":            true,
				"scenario":         n.Drill.Scenario,
				"expected_actions": n.Drill.ExpectedActions,
				"acknowledge":      n.AckURL,
			},
		},
	}
	if n.Drill.Runbook != "" {
		ev["links"] = []map[string]string{{"href": n.Drill.Runbook, "text": "runbook"}}
	}
	body, _ := json.Marshal(ev)
	return post(ctx, client, u, body, nil)
}

// ResolvePagerDuty resolves a drill's PagerDuty alert.
func ResolvePagerDuty(ctx context.Context, client *http.Client, p *Person, dedupKey string) error {
	u := p.Pager.URL
	if u == "" {
		u = DefaultPagerDutyURL
	}
	body, _ := json.Marshal(map[string]any{"routing_key": p.Pager.RoutingKey, "event_action": "resolve", "dedup_key": dedupKey})
	return post(ctx, client, u, body, nil)
}

// sendAlertmanager posts an alert with drill="true" to Alertmanager's v2 API.
// Alertmanager identifies an alert by its labels, so a repeat is the same alert.
func sendAlertmanager(ctx context.Context, client *http.Client, n Notice) error {
	labels := map[string]string{
		"alertname": "SrekitDrill",
		"drill":     "true",
		"drill_id":  n.Drill.ID,
		"dedup_key": n.DedupKey,
		"person":    n.Person.Name,
		"team":      n.Person.Team,
		"severity":  n.Drill.Severity,
	}
	if n.Person.Pager.Receiver != "" {
		labels["receiver"] = n.Person.Pager.Receiver
	}
	alerts := []map[string]any{{
		"labels": labels,
		"annotations": map[string]string{
			"summary":     n.Summary(),
			"description": n.Drill.Scenario,
			"runbook_url": n.Drill.Runbook,
			"acknowledge": n.AckURL,
		},
		"startsAt": n.At.UTC().Format(time.RFC3339),
		"endsAt":   n.At.Add(4 * time.Hour).UTC().Format(time.RFC3339),
	}}
	body, _ := json.Marshal(alerts)
	return post(ctx, client, strings.TrimRight(n.Person.Pager.URL, "/")+"/api/v2/alerts", body, nil)
}

// SignatureHeader carries the HMAC of a webhook: "t=UNIX,v1=HEX" where HEX is
// HMAC-SHA256(secret, "UNIX." + body). The timestamp lets receivers refuse replays.
const SignatureHeader = "X-Srekit-Signature"

// Sign returns the signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header against body, refusing signatures older
// (or newer) than maxSkew from now.
func Verify(secret, header string, body []byte, now time.Time, maxSkew time.Duration) error {
	var ts int64
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return errors.New("malformed signature header: want t=UNIX,v1=HEX")
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errors.New("malformed signature header: bad timestamp")
			}
			ts = n
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts == 0 || len(sigs) == 0 {
		return errors.New("malformed signature header: want t=UNIX,v1=HEX")
	}
	at := time.Unix(ts, 0)
	if d := now.Sub(at); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("signature timestamp %s is more than %v from now", at.UTC().Format(time.RFC3339), maxSkew)
	}
	want := Sign(secret, at, body)
	_, wantSig, _ := strings.Cut(want, ",v1=")
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(wantSig)) {
			return nil
		}
	}
	return errors.New("signature does not match")
}

func sendWebhook(ctx context.Context, client *http.Client, n Notice) error {
	body, _ := json.Marshal(map[string]any{
		"event":            "drill.trigger",
		"drill":            true,
		"dedup_key":        n.DedupKey,
		"summary":          n.Summary(),
		"person":           n.Person.Name,
		"team":             n.Person.Team,
		"drill_id":         n.Drill.ID,
		"title":            n.Drill.Title,
		"scenario":         n.Drill.Scenario,
		"runbook":          n.Drill.Runbook,
		"severity":         n.Drill.Severity,
		"expected_actions": n.Drill.ExpectedActions,
		"acknowledge":      n.AckURL,
		"at":               n.At.UTC().Format(time.RFC3339),
	})
	h := http.Header{}
	h.Set(SignatureHeader, Sign(n.Person.Pager.Secret, time.Now(), body))
	h.Set("Idempotency-Key", n.DedupKey)
	return post(ctx, client, n.Person.Pager.URL, body, h)
}

// IncidentOpen asks the configured sources whether a real incident is open.
// Drills never page during one. An error means "cannot tell", and the
// caller must not page.
func IncidentOpen(ctx context.Context, client *http.Client, in Incidents) (bool, string, error) {
	if in.AlertmanagerURL != "" {
		q := url.Values{"active": {"true"}, "silenced": {"false"}, "inhibited": {"false"}}
		for _, m := range in.Matchers {
			q.Add("filter", m)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(in.AlertmanagerURL, "/")+"/api/v2/alerts?"+q.Encode(), nil)
		if err != nil {
			return false, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, "", fmt.Errorf("ask alertmanager for open incidents: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, "", fmt.Errorf("ask alertmanager for open incidents: %s", resp.Status)
		}
		var alerts []struct {
			Labels map[string]string `json:"labels"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&alerts); err != nil {
			return false, "", fmt.Errorf("read alertmanager alerts: %w", err)
		}
		for _, a := range alerts {
			if a.Labels["drill"] != "true" {
				return true, "alert " + a.Labels["alertname"] + " is firing in Alertmanager", nil
			}
		}
	}
	if in.WebhookURL != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.WebhookURL, nil)
		if err != nil {
			return false, "", err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, "", fmt.Errorf("ask %s for open incidents: %w", in.WebhookURL, err)
		}
		defer resp.Body.Close()
		var v struct {
			Open   *bool  `json:"open"`
			Reason string `json:"reason"`
		}
		if resp.StatusCode != http.StatusOK {
			return false, "", fmt.Errorf("ask %s for open incidents: %s", in.WebhookURL, resp.Status)
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil || v.Open == nil {
			return false, "", fmt.Errorf("incident webhook %s: want {\"open\": true|false}", in.WebhookURL)
		}
		if *v.Open {
			r := v.Reason
			if r == "" {
				r = "the incident webhook says an incident is open"
			}
			return true, r, nil
		}
	}
	return false, "", nil
}

// Silences lists the dedup keys of drills silenced in Alertmanager and when:
// a silence matching dedup_key=KEY acknowledges that drill.
func Silences(ctx context.Context, client *http.Client, alertmanagerURL string) (map[string]time.Time, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(alertmanagerURL, "/")+"/api/v2/silences", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list silences: %s", resp.Status)
	}
	var silences []struct {
		Matchers []struct {
			Name    string `json:"name"`
			Value   string `json:"value"`
			IsEqual *bool  `json:"isEqual"`
		} `json:"matchers"`
		StartsAt time.Time `json:"startsAt"`
		Status   struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(&silences); err != nil {
		return nil, fmt.Errorf("read silences: %w", err)
	}
	out := map[string]time.Time{}
	for _, s := range silences {
		if s.Status.State == "pending" {
			continue
		}
		for _, m := range s.Matchers {
			if m.Name == "dedup_key" && (m.IsEqual == nil || *m.IsEqual) {
				if t, ok := out[m.Value]; !ok || s.StartsAt.Before(t) {
					out[m.Value] = s.StartsAt
				}
			}
		}
	}
	return out, nil
}
