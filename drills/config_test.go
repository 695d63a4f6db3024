package drills

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

const okPerson = "people:\n  - {name: ann, team: web, timezone: Europe/Dublin, opt_in_until: '2030-01-01', pager: {kind: pagerduty, routing_key: k}}\n"
const okCatalogue = "catalogue:\n  - {id: dns, title: DNS fails}\n"

func TestConfigBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown timezone", strings.Replace(okPerson, "Europe/Dublin", "Mars/Olympus", 1) + okCatalogue, `timezone "Mars/Olympus": unknown`},
		{"no pager", "people:\n  - {name: ann, team: web, timezone: UTC}\n" + okCatalogue, "no way to page this person"},
		{"pagerduty without key", "people:\n  - {name: ann, team: web, timezone: UTC, pager: {kind: pagerduty}}\n" + okCatalogue, "needs a routing_key"},
		{"webhook without secret", "people:\n  - {name: ann, team: web, timezone: UTC, pager: {kind: webhook, url: 'http://x'}}\n" + okCatalogue, "needs a url and a secret"},
		{"unknown pager", "people:\n  - {name: ann, team: web, timezone: UTC, pager: {kind: pigeon}}\n" + okCatalogue, `kind "pigeon"`},
		{"working hours too short", "people:\n  - {name: ann, team: web, timezone: UTC, work_hours: '09:00-09:10', pager: {kind: pagerduty, routing_key: k}}\n" + okCatalogue, "no drill could ever be scheduled"},
		{"bad working hours", "people:\n  - {name: ann, team: web, timezone: UTC, work_hours: 'nine to five', pager: {kind: pagerduty, routing_key: k}}\n" + okCatalogue, "want HH:MM-HH:MM"},
		{"every day excluded", "rules: {excluded_weekdays: [monday, tuesday, wednesday, thursday, friday]}\n" + okPerson + okCatalogue, "every working day is excluded"},
		{"target above cap", "rules: {max_per_month: 1, target_per_month: 3}\n" + okPerson + okCatalogue, "can never be met"},
		{"interval over a year", "rules: {min_interval_person: 400d}\n" + okPerson + okCatalogue, "more than a year"},
		{"bad weekday", "rules: {excluded_weekdays: [caturday]}\n" + okPerson + okCatalogue, `"caturday" is not a weekday`},
		{"bad holiday", "rules: {holidays: ['25/12/2027']}\n" + okPerson + okCatalogue, "is not a date"},
		{"bad duration", "rules: {min_interval_person: soon}\n" + okPerson + okCatalogue, "is not a duration"},
		{"empty catalogue", okPerson, "no drills"},
		{"no drill for the team", okPerson + "catalogue:\n  - {id: dns, title: DNS fails, team: db}\n", `no drill in the catalogue is for team "web"`},
		{"duplicate drill", okPerson + "catalogue:\n  - {id: dns, title: a}\n  - {id: dns, title: b}\n", `duplicate id "dns"`},
		{"bad severity", okPerson + "catalogue:\n  - {id: dns, title: a, severity: apocalyptic}\n", "severity"},
		{"duplicate person", okPerson + "  - {name: ann, team: web, timezone: UTC, pager: {kind: pagerduty, routing_key: k}}\n" + okCatalogue, `duplicate name "ann"`},
		{"bad opt-in date", strings.Replace(okPerson, "'2030-01-01'", "'next year'", 1) + okCatalogue, "want a date"},
		{"unknown field", okPerson + okCatalogue + "colour: red\n", "field colour not found"},
		{"empty", "", "empty configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("drills.yaml", strings.NewReader(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error not one line: %q", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig("d.yaml", strings.NewReader(okPerson+okCatalogue))
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsDryRun() {
		t.Fatal("a new configuration must start in dry run")
	}
	p := c.People[0]
	if p.WorkHours != "09:00-17:00" || !p.workdays[1] || p.workdays[0] || p.workdays[6] {
		t.Fatalf("default hours/days wrong: %q %v", p.WorkHours, p.workdays)
	}
	if c.Rules.MaxPerMonth != 2 || c.Rules.TargetPerMonth != 1 || c.Catalogue[0].Weight != 1 || c.Catalogue[0].Severity != "warning" {
		t.Fatalf("defaults: %+v %+v", c.Rules, c.Catalogue[0])
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(okPerson + okCatalogue)
	f.Add("dry_run: false\nrules: {min_interval_person: 3d, holidays: ['2027-01-01']}\n" + okPerson + okCatalogue)
	f.Add("people: [{name: a, team: b, timezone: UTC, work_hours: '24:00-24:59', pager: {kind: webhook, url: u, secret: s}}]\n" + okCatalogue)
	f.Fuzz(func(t *testing.T, in string) {
		c, err := ParseConfig("fuzz.yaml", strings.NewReader(in))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		// A configuration that validates must plan without panicking.
		from := mustTime("2027-01-01T00:00:00Z")
		c.Plan(from, from.AddDate(0, 1, 0), nil)
	})
}

func FuzzVerifySignature(f *testing.F) {
	f.Add("t=1800000000,v1=abcdef", []byte("{}"))
	f.Add("", []byte{})
	f.Add("t=,v1=", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		Verify("secret", header, body, mustTime("2027-01-15T00:00:00Z"), 0)
	})
}

func TestDemoConfigValidates(t *testing.T) {
	c, err := ParseConfig("demo.yaml", strings.NewReader(DemoConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsDryRun() {
		t.Fatal("the demo must never page anyone")
	}
}

func TestPagerDutyWebhook(t *testing.T) {
	body := []byte(`{"event":{"event_type":"incident.acknowledged","occurred_at":"2027-03-03T10:05:00Z","data":{"incident_key":"srekit-drill-abc"}}}`)
	mac := hmacHex("pd-secret", body)
	ack, ok, err := ParsePagerDutyWebhook("pd-secret", "v1=deadbeef,v1="+mac, body)
	if err != nil || !ok || ack.DedupKey != "srekit-drill-abc" || ack.At.Minute() != 5 {
		t.Fatalf("ack %+v ok %v err %v", ack, ok, err)
	}
	if _, _, err := ParsePagerDutyWebhook("pd-secret", "v1=00", body); err == nil {
		t.Fatal("bad signature accepted")
	}
	if _, _, err := ParsePagerDutyWebhook("", "v1="+mac, body); err == nil {
		t.Fatal("no secret configured, yet accepted")
	}
	other := []byte(`{"event":{"event_type":"incident.triggered","data":{"incident_key":"k"}}}`)
	if _, ok, err := ParsePagerDutyWebhook("pd-secret", "v1="+hmacHex("pd-secret", other), other); ok || err != nil {
		t.Fatalf("a trigger event was taken as an ack: %v %v", ok, err)
	}
}

func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
