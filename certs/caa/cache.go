package caa

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cache remembers lookups for their DNS TTL (capped by MaxAge), so that a
// batch of names under the same parents asks for each parent once, and
// concurrent lookups of one name share one query. Failed and bogus lookups
// are never cached: they are retried. The Baseline Requirements let a CA
// reuse a CAA answer for its TTL, up to 8 hours. A Cache is safe for
// concurrent use; the zero value is not: use NewCache.
type Cache struct {
	MaxAge time.Duration

	mu      sync.Mutex
	entries map[string]cacheEntry
	group   singleflight.Group
	now     func() time.Time
}

type cacheEntry struct {
	l       Lookup
	expires time.Time
}

// NewCache returns a cache whose entries live at most maxAge.
func NewCache(maxAge time.Duration) *Cache {
	return &Cache{MaxAge: maxAge, entries: map[string]cacheEntry{}, now: time.Now}
}

// maxCacheEntries bounds the cache so a long batch keeps flat memory: when
// full, expired entries are dropped, and if none are, everything is.
const maxCacheEntries = 20_000

func (c *Cache) lookup(ctx context.Context, r *Resolver, name string) Lookup {
	key := strings.ToLower(name)
	now := c.now()
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		l := e.l
		l.Cached = true
		return l
	}
	c.mu.Unlock()
	v, _, shared := c.group.Do(key, func() (any, error) {
		l := r.lookup(ctx, name)
		age := time.Duration(l.ttl) * time.Second
		if age > c.MaxAge {
			age = c.MaxAge
		}
		if !l.Failed() && age > 0 {
			c.mu.Lock()
			if len(c.entries) >= maxCacheEntries {
				for k, e := range c.entries {
					if !now.Before(e.expires) {
						delete(c.entries, k)
					}
				}
				if len(c.entries) >= maxCacheEntries {
					c.entries = map[string]cacheEntry{}
				}
			}
			c.entries[key] = cacheEntry{l: l, expires: c.now().Add(age)}
			c.mu.Unlock()
		}
		return l, nil
	})
	l := v.(Lookup)
	if shared {
		l.Cached = true
	}
	// Each caller gets its own copies of the slices.
	l.Records = append([]Record{}, l.Records...)
	l.Aliases = append([]Alias(nil), l.Aliases...)
	return l
}
