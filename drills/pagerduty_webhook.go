package drills

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// PagerDutyAck is an acknowledgement read from a PagerDuty v3 webhook.
type PagerDutyAck struct {
	DedupKey string
	At       time.Time
}

// ParsePagerDutyWebhook verifies a PagerDuty v3 webhook (X-PagerDuty-Signature:
// "v1=HEX[,v1=HEX]", HMAC-SHA256 of the raw body with the subscription's
// secret) and returns the acknowledgement it carries, if any. Events other
// than incident.acknowledged return ok=false and no error.
func ParsePagerDutyWebhook(secret, signature string, body []byte) (ack PagerDutyAck, ok bool, err error) {
	if secret == "" {
		return ack, false, errors.New("no pagerduty_webhook_secret configured")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	valid := false
	for _, part := range strings.Split(signature, ",") {
		if v, found := strings.CutPrefix(strings.TrimSpace(part), "v1="); found && hmac.Equal([]byte(v), []byte(want)) {
			valid = true
		}
	}
	if !valid {
		return ack, false, errors.New("PagerDuty signature does not match")
	}
	var msg struct {
		Event struct {
			EventType  string    `json:"event_type"`
			OccurredAt time.Time `json:"occurred_at"`
			Data       struct {
				IncidentKey string `json:"incident_key"`
			} `json:"data"`
		} `json:"event"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return ack, false, errors.New("PagerDuty webhook body is not the v3 JSON shape")
	}
	if msg.Event.EventType != "incident.acknowledged" || msg.Event.Data.IncidentKey == "" {
		return ack, false, nil
	}
	at := msg.Event.OccurredAt
	if at.IsZero() {
		at = time.Now()
	}
	return PagerDutyAck{DedupKey: msg.Event.Data.IncidentKey, At: at}, true, nil
}
