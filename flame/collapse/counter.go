package collapse

import "github.com/srekit/srekit/flame"

// counter sums counts by stack (';'-joined), hashing each key once per add.
type counter struct {
	idx  map[string]int
	keys []string
	vals []int64
}

func newCounter() *counter { return &counter{idx: make(map[string]int)} }

// add adds v to the count of key, saturating rather than wrapping.
func (c *counter) add(key []byte, v int64) {
	i, ok := c.idx[string(key)]
	if !ok {
		i = len(c.vals)
		k := string(key)
		c.idx[k] = i
		c.keys = append(c.keys, k)
		c.vals = append(c.vals, 0)
	}
	c.vals[i] = flame.SatAdd(c.vals[i], v)
}

// profile returns the counts as a profile.
func (c *counter) profile(skipped flame.Skips) *flame.Profile {
	m := make(map[string]int64, len(c.keys))
	for i, k := range c.keys {
		m[k] = c.vals[i]
	}
	p := flame.FromCounts(m)
	p.Skipped = skipped
	return p
}
