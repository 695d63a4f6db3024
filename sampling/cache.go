package sampling

// fpSet remembers 64-bit trace fingerprints (and optionally a value each) in
// two generations of open-addressing tables: inserts go to the current one;
// when it is half full it becomes the previous one and the old previous is
// cleared and reused. So it always remembers the last capacity/2 .. capacity
// inserted IDs in fixed memory: 8 bytes a slot (16 with values), no pointers
// for the garbage collector to scan. A false positive needs two different
// trace IDs with the same 64-bit fingerprint (about n/2^64).
//
// It is the decision cache for late spans: kept IDs with their threshold,
// dropped IDs without values (the compact filter). Not safe for concurrent
// use; each buffer shard has its own.
type fpSet struct {
	cur, prev fpTable
	withVals  bool
}

type fpTable struct {
	keys []uint64
	vals []uint64
	n    int
}

// fpSetSize is the table size for n entries: n rounded up to a power of
// two, at least 16.
func fpSetSize(n int) int {
	n = min(n, 1<<40) // the config allows far less; no overflow below
	size := 16
	for size < n {
		size *= 2
	}
	return size
}

// fpSetBytes is the memory of newFPSet(n, withVals).
func fpSetBytes(n int, withVals bool) int64 {
	per := int64(8)
	if withVals {
		per = 16
	}
	return 2 * per * int64(fpSetSize(n))
}

// newFPSet remembers at least n/2 and at most n recent entries (n rounded
// up to a power of two, at least 16).
func newFPSet(n int, withVals bool) *fpSet {
	size := fpSetSize(n)
	// Each generation holds size/2 entries at 50% load: 'size' slots.
	mk := func() fpTable {
		t := fpTable{keys: make([]uint64, size)}
		if withVals {
			t.vals = make([]uint64, size)
		}
		return t
	}
	return &fpSet{cur: mk(), prev: mk(), withVals: withVals}
}

func (t *fpTable) find(fp uint64) (int, bool) {
	mask := uint64(len(t.keys) - 1)
	for i := fp & mask; ; i = (i + 1) & mask {
		switch t.keys[i] {
		case fp:
			return int(i), true
		case 0:
			return int(i), false
		}
	}
}

// Get returns the value stored for fp and whether fp is remembered.
func (s *fpSet) Get(fp uint64) (uint64, bool) {
	if i, ok := s.cur.find(fp); ok {
		if s.withVals {
			return s.cur.vals[i], true
		}
		return 0, true
	}
	if i, ok := s.prev.find(fp); ok {
		if s.withVals {
			return s.prev.vals[i], true
		}
		return 0, true
	}
	return 0, false
}

// Put remembers fp with value v (ignored without values).
func (s *fpSet) Put(fp, v uint64) {
	i, ok := s.cur.find(fp)
	if !ok {
		if s.cur.n >= len(s.cur.keys)/2 {
			s.rotate()
			i, _ = s.cur.find(fp)
		}
		s.cur.keys[i] = fp
		s.cur.n++
	}
	if s.withVals {
		s.cur.vals[i] = v
	}
}

func (s *fpSet) rotate() {
	s.cur, s.prev = s.prev, s.cur
	clear(s.cur.keys)
	clear(s.cur.vals)
	s.cur.n = 0
}

// Len is the number of remembered fingerprints.
func (s *fpSet) Len() int { return s.cur.n + s.prev.n }

// Bytes is the memory the set's tables take.
func (s *fpSet) Bytes() int64 {
	per := int64(8)
	if s.withVals {
		per = 16
	}
	return per * int64(len(s.cur.keys)+len(s.prev.keys))
}
