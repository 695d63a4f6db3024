package caa

import (
	"context"
	"sync"
	"time"
)

// BatchOptions controls Batch.
type BatchOptions struct {
	// Concurrency is how many names are checked at once; 16 when zero.
	Concurrency int
	// Rate caps names started per second; zero means no cap.
	Rate float64
}

// Batch checks every request read from in with a pool of workers and calls
// out with each decision as it completes (out is never called concurrently).
// Memory stays flat however many names come in: only the requests in flight
// are held. It returns when in is closed and drained, or ctx ends.
func (r *Resolver) Batch(ctx context.Context, in <-chan Request, opt BatchOptions, out func(Decision)) {
	n := opt.Concurrency
	if n <= 0 {
		n = 16
	}
	var lim *limiter
	if opt.Rate > 0 {
		lim = &limiter{interval: time.Duration(float64(time.Second) / opt.Rate)}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var req Request
				var ok bool
				select {
				case <-ctx.Done():
					return
				case req, ok = <-in:
				}
				if !ok {
					return
				}
				if lim != nil && !lim.wait(ctx) {
					return
				}
				d := r.Check(ctx, req)
				mu.Lock()
				out(d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// limiter spaces events at least interval apart, shared by all workers.
type limiter struct {
	mu       sync.Mutex
	next     time.Time
	interval time.Duration
}

func (l *limiter) wait(ctx context.Context) bool {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(l.interval)
	l.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
