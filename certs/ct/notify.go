package ct

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srekit/srekit/store"
)

// Notifier delivers stored findings that have not been delivered yet: the
// findings table is the outbox. A finding is marked delivered in the store
// right after its hook and webhook succeed; a delivery that fails is retried
// later. Each delivery carries a stable ID (Finding.DeliveryID) so that the
// one case a crash can repeat, a crash between a delivery and its mark, can
// be recognised by the receiver.
type Notifier struct {
	Store *store.Store
	// Hook is a shell command run once per finding, with SREKIT_CT_*
	// environment variables and SREKIT_CT_JSON_FILE naming the finding as JSON.
	Hook string
	// Webhook is a URL that receives the finding as a JSON POST, signed with
	// Secret in the X-Srekit-Signature header ("sha256=" + hex HMAC-SHA256 of the body).
	Webhook string
	Secret  []byte
	HTTP    *http.Client
	Logger  *slog.Logger
	// Retry is the wait after a failed delivery (30s when zero).
	Retry time.Duration

	kick chan struct{}
	mu   sync.Mutex // one delivery pass at a time
}

// Kick asks the loop to look for pending findings now.
func (n *Notifier) Kick() {
	n.init()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *Notifier) init() {
	if n.kick == nil {
		n.kick = make(chan struct{}, 1)
	}
}

// Loop delivers pending findings whenever kicked, and every Retry, until ctx ends.
func (n *Notifier) Loop(ctx context.Context) {
	n.init()
	retry := n.Retry
	if retry <= 0 {
		retry = 30 * time.Second
	}
	t := time.NewTicker(retry)
	defer t.Stop()
	for {
		n.Deliver(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-t.C:
		}
	}
}

// Drain delivers until nothing is pending or a delivery fails.
func (n *Notifier) Drain(ctx context.Context) error {
	_, err := n.Deliver(ctx)
	return err
}

// Deliver sends every pending finding once, in order, and returns how many were sent.
func (n *Notifier) Deliver(ctx context.Context) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Hook == "" && n.Webhook == "" {
		// Stored findings are the notification; mark them so the UI shows
		// nothing is waiting.
		_, err := n.Store.Exec(ctx, `UPDATE ct_findings SET notified_ms = ? WHERE notified_ms IS NULL`, nowMS())
		return 0, err
	}
	sent := 0
	for {
		fs, err := Findings(ctx, n.Store, FindingFilter{Pending: true, Limit: 100})
		if err != nil || len(fs) == 0 {
			return sent, err
		}
		for _, f := range fs {
			derr := n.deliverOne(ctx, f)
			if ctx.Err() != nil {
				return sent, ctx.Err()
			}
			if err := markNotified(context.WithoutCancel(ctx), n.Store, f.ID, derr); err != nil {
				return sent, err
			}
			if derr != nil {
				n.logger().Warn("ct notification failed; will retry", "finding", f.ID, "err", derr)
				return sent, derr
			}
			sent++
		}
	}
}

func (n *Notifier) logger() *slog.Logger {
	if n.Logger == nil {
		return slog.Default()
	}
	return n.Logger
}

// Payload is the JSON a hook file and a webhook body carry.
type Payload struct {
	Event      string   `json:"event"` // "finding"
	DeliveryID string   `json:"delivery_id"`
	Finding    *Finding `json:"finding"`
}

func (n *Notifier) deliverOne(ctx context.Context, f *Finding) error {
	body, err := json.Marshal(Payload{Event: "finding", DeliveryID: f.DeliveryID(), Finding: f})
	if err != nil {
		return err
	}
	if n.Hook != "" {
		if err := n.runHook(ctx, f, body); err != nil {
			return err
		}
	}
	if n.Webhook != "" {
		if err := n.post(ctx, f, body); err != nil {
			return err
		}
	}
	return nil
}

// Sign is the X-Srekit-Signature value for body.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks an X-Srekit-Signature header (for receivers).
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

func (n *Notifier) post(ctx context.Context, f *Finding, body []byte) error {
	hc := n.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, "POST", n.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Srekit-Delivery", f.DeliveryID())
	req.Header.Set("X-Srekit-Event", "ct.finding")
	if len(n.Secret) > 0 {
		req.Header.Set("X-Srekit-Signature", Sign(n.Secret, body))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: HTTP %s", resp.Status)
	}
	return nil
}

func (n *Notifier) runHook(ctx context.Context, f *Finding, body []byte) error {
	dir, err := os.MkdirTemp("", "srekit-ct-hook")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "finding.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", n.Hook)
	cmd.Env = append(os.Environ(),
		"SREKIT_CT_EVENT=finding",
		"SREKIT_CT_DELIVERY_ID="+f.DeliveryID(),
		"SREKIT_CT_JSON_FILE="+file,
		"SREKIT_CT_RULE="+f.Rule,
		"SREKIT_CT_KIND="+f.Kind,
		"SREKIT_CT_NAMES="+strings.Join(f.Names, " "),
		"SREKIT_CT_ISSUER="+f.Issuer,
		"SREKIT_CT_ISSUER_EXPECTED="+strconv.FormatBool(f.IssuerExpected),
		"SREKIT_CT_SERIAL="+f.Serial,
		"SREKIT_CT_TBS_SHA256="+f.CertKey,
		"SREKIT_CT_NOT_BEFORE="+f.NotBefore.Format(time.RFC3339),
		"SREKIT_CT_NOT_AFTER="+f.NotAfter.Format(time.RFC3339),
		"SREKIT_CT_LOG_ID="+f.LogID,
		"SREKIT_CT_ENTRY_INDEX="+strconv.FormatUint(f.Index, 10),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(truncate(out, 300)))
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("hook exited with %d: %s", ee.ExitCode(), msg)
		}
		return fmt.Errorf("hook: %w", err)
	}
	return nil
}
