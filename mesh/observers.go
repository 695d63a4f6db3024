package mesh

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// observers caches a cluster's Prometheus children so that the hot path
// does not look label values up (WithLabelValues hashes and locks) for
// every request.
type observers struct {
	mu       sync.RWMutex
	requests map[reqKey]prometheus.Observer
	upstream map[upKey]prometheus.Observer
	reused   prometheus.Counter
	dialed   prometheus.Counter
}

type reqKey struct {
	region string
	class  string
}

type upKey struct {
	e     *Endpoint
	label string
}

func (c *cluster) initObservers() {
	c.obs.requests = map[reqKey]prometheus.Observer{}
	c.obs.upstream = map[upKey]prometheus.Observer{}
	c.obs.reused = c.m.conns.WithLabelValues(c.cfg.Name, "true")
	c.obs.dialed = c.m.conns.WithLabelValues(c.cfg.Name, "false")
}

func (c *cluster) requestObserver(region string, code int) prometheus.Observer {
	k := reqKey{region, codeClass(code)}
	c.obs.mu.RLock()
	o := c.obs.requests[k]
	c.obs.mu.RUnlock()
	if o == nil {
		o = c.m.requests.WithLabelValues(c.cfg.Name, region, k.class)
		c.obs.mu.Lock()
		c.obs.requests[k] = o
		c.obs.mu.Unlock()
	}
	return o
}

func (c *cluster) upstreamObserver(e *Endpoint, label string) prometheus.Observer {
	k := upKey{e, label}
	c.obs.mu.RLock()
	o := c.obs.upstream[k]
	c.obs.mu.RUnlock()
	if o == nil {
		o = c.m.upstream.WithLabelValues(c.cfg.Name, e.Region, e.Addr, label)
		c.obs.mu.Lock()
		c.obs.upstream[k] = o
		c.obs.mu.Unlock()
	}
	return o
}

// connObserved counts a backend connection used by an attempt.
func (c *cluster) connObserved(reused bool) {
	if reused {
		c.obs.reused.Inc()
	} else {
		c.obs.dialed.Inc()
	}
}
