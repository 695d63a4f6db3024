package ctlogtest

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Throttle answers 429 with Retry-After to chosen requests and counts the
// requests that arrive while the client was told to wait, as a log operator
// would see a client that hammers it.
type Throttle struct {
	Next http.Handler
	// On lists the request numbers (1-based) that get a 429.
	On         map[int]bool
	RetryAfter time.Duration
	// Grace excuses requests already in flight when the 429 was sent.
	Grace time.Duration

	mu         sync.Mutex
	n          int
	until      time.Time
	sentAt     time.Time
	Throttled  int
	Violations int
	Late       []time.Duration // how long after the 429 each violation came
}

func (t *Throttle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	t.n++
	now := time.Now()
	if now.Before(t.until) && now.Sub(t.sentAt) > t.Grace {
		t.Violations++
		t.Late = append(t.Late, now.Sub(t.sentAt))
	}
	if t.On[t.n] {
		t.Throttled++
		t.sentAt, t.until = now, now.Add(t.RetryAfter)
		t.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(int(t.RetryAfter/time.Second)))
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	t.mu.Unlock()
	t.Next.ServeHTTP(w, r)
}

// Counts returns the number of requests, 429s sent, and violations.
func (t *Throttle) Counts() (requests, throttled, violations int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n, t.Throttled, t.Violations
}
