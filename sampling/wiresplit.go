package sampling

import (
	"math"
	"slices"
	"sync"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// Splitting a validated request by trace into fragments, and reading the
// summary the policies need from each span (see wire.go for the design).

// fragSummary is what the policies need from a fragment's spans.
type fragSummary struct {
	spans            int
	minStart, maxEnd uint64
	hasRoot          bool
	rootName         string
	rootKind         int32
	rootService      string
	rootStart        uint64
	rootEnd          uint64
	errStatus        bool // a span with status code Error
	errHTTP          bool // an HTTP 5xx response code
	errException     bool // an "exception" event
	inTh             Threshold
	hasInTh          bool
}

// header is the resource and scope a run of spans sits under, encoded.
// Its key (all four parts, length-prefixed) is both its identity and the
// storage the parts slice into. Each buffer shard interns headers, so the
// buffered spans of a service share one copy of its resource and scope.
type header struct {
	key                                 []byte
	resource, rsSchema, scope, ssSchema []byte
	hasRes, hasScope                    bool
	refs                                int // segments referring to it (interned headers)
}

// newHeader builds a header (its key owns copies of the parts).
func newHeader(rs *rsPart, ss *ssPart) *header {
	var flags byte
	if rs.hasRes {
		flags |= 1
	}
	if ss.hasScope {
		flags |= 2
	}
	parts := [4][]byte{rs.resource, rs.schema, ss.scope, ss.schema}
	n := 1
	for _, p := range parts {
		n += protowire.SizeBytes(len(p))
	}
	key := make([]byte, 1, n)
	key[0] = flags
	for _, p := range parts {
		key = protowire.AppendBytes(key, p)
	}
	return parseHeader(key)
}

// parseHeader slices a header's parts out of its key.
func parseHeader(key []byte) *header {
	h := &header{key: key, hasRes: key[0]&1 != 0, hasScope: key[0]&2 != 0}
	rest := key[1:]
	for _, dst := range []*[]byte{&h.resource, &h.rsSchema, &h.scope, &h.ssSchema} {
		v, n := readBytes(rest)
		*dst, rest = v, rest[n:]
	}
	return h
}

// headerBytes is what an interned header takes.
func headerBytes(h *header) int64 { return int64(cap(h.key)) + int64(unsafe.Sizeof(header{})) + 32 }

// seg is a run of one trace's spans under one header: the encoded span
// fields (tag, length, span) one after another.
type seg struct {
	hdr   *header
	spans []byte
	n     int32
	// while splitting: the ScopeSpans index and the run's encoded size
	ss   int32
	size int32
}

// fragment is the spans of one trace from one request, encoded.
type fragment struct {
	id  pcommon.TraceID
	fp  uint64
	sum fragSummary
	// firstService is the service of the fragment's first span; firstState
	// and firstFlags are its tracestate and flags (the trace's randomness
	// comes from them).
	firstService string
	firstState   string
	firstFlags   uint32
	segs         []seg
	// size is the bytes its span runs take (their allocations).
	size int64
}

// encoded is the fragment as an export body (for forwarding to a peer).
func (f *fragment) encoded(dst []byte) []byte {
	dst, _ = encodeSegs(dst, f.segs, nil)
	return dst
}

type rsPart struct {
	resource, schema []byte
	hasRes           bool
	service          string
}

type ssPart struct {
	scope, schema []byte
	hasScope      bool
	rs            int32 // its ResourceSpans
	hdr           *header
}

// splitScratch is the working memory of splitRequest, reused from a pool:
// the fragments it returns live in it, so they are valid until the scratch
// is put back (their span runs are fresh allocations that the buffer keeps).
type splitScratch struct {
	byID    map[pcommon.TraceID]int32
	slab    []fragment
	frags   []*fragment
	rsParts []rsPart
	ssParts []ssPart // all ScopeSpans of the request, in order
	entries []spanEntry
}

// spanEntry is one span, in request order, and the run it goes to.
type spanEntry struct {
	sp        []byte
	frag, seg int32
}

var scratchPool = sync.Pool{New: func() any { return &splitScratch{byID: map[pcommon.TraceID]int32{}} }}

func getScratch() *splitScratch { return scratchPool.Get().(*splitScratch) }

func putScratch(sc *splitScratch) {
	clear(sc.byID)
	for i := range sc.slab {
		segs := sc.slab[i].segs
		clear(segs)
		sc.slab[i] = fragment{segs: segs[:0]}
	}
	clear(sc.frags)
	clear(sc.rsParts)
	clear(sc.ssParts)
	clear(sc.entries)
	sc.slab, sc.frags, sc.rsParts, sc.ssParts, sc.entries = sc.slab[:0], sc.frags[:0], sc.rsParts[:0], sc.ssParts[:0], sc.entries[:0]
	if len(sc.byID) < 1<<16 {
		scratchPool.Put(sc)
	}
}

// splitRequest validates an ExportTraceServiceRequest and splits its spans
// by trace ID into fragments, using sc (nil: a fresh one). invalid counts
// spans without a valid trace ID (dropped).
func splitRequest(body []byte, sc *splitScratch) (frags []*fragment, invalid int, err error) {
	if err := requestMsg.validate(body, 0); err != nil {
		return nil, 0, err
	}
	if sc == nil {
		sc = &splitScratch{byID: map[pcommon.TraceID]int32{}}
	}
	for b := body; len(b) > 0; {
		f, rest, ok := nextField(b)
		if !ok {
			break
		}
		b = rest
		if f.num != 1 || f.typ != protowire.BytesType {
			continue
		}
		ri := len(sc.rsParts)
		sc.rsParts = append(sc.rsParts, rsPart{})
		forFields(f.v, func(num int32, v []byte) {
			rp := &sc.rsParts[ri]
			switch num {
			case 1:
				rp.resource, rp.hasRes = v, true
				rp.service = serviceName(v)
			case 3:
				rp.schema = v
			}
		})
		forFields(f.v, func(num int32, ssb []byte) {
			if num != 2 {
				return
			}
			si := int32(len(sc.ssParts))
			sc.ssParts = append(sc.ssParts, ssPart{rs: int32(ri)})
			forFields(ssb, func(num int32, v []byte) {
				sp := &sc.ssParts[si]
				switch num {
				case 1:
					sp.scope, sp.hasScope = v, true
				case 3:
					sp.schema = v
				}
			})
			rp := &sc.rsParts[ri]
			forFields(ssb, func(num int32, sp []byte) {
				if num != 2 {
					return
				}
				var info spanInfo
				info.read(sp)
				if info.traceID.IsEmpty() {
					invalid++
					return
				}
				fi, ok := sc.byID[info.traceID]
				if !ok {
					fi = int32(len(sc.slab))
					sc.byID[info.traceID] = fi
					sc.slab = append(sc.slab, fragment{})
					fr := &sc.slab[fi]
					fr.id, fr.fp = info.traceID, fingerprint(info.traceID)
					fr.firstService, fr.firstState, fr.firstFlags = rp.service, string(info.traceState), info.flags
				}
				fr := &sc.slab[fi]
				fr.sum.add(&info, rp.service)
				g := int32(len(fr.segs)) - 1
				if g < 0 || fr.segs[g].ss != si {
					fr.segs = append(fr.segs, seg{ss: si})
					g++
				}
				fr.segs[g].n++
				fr.segs[g].size += int32(lenField(len(sp)))
				sc.entries = append(sc.entries, spanEntry{sp: sp, frag: fi, seg: g})
			})
		})
	}
	// One exact allocation per run, then the spans in request order.
	for i := range sc.slab {
		fr := &sc.slab[i]
		for j := range fr.segs {
			sg := &fr.segs[j]
			p := &sc.ssParts[sg.ss]
			if p.hdr == nil {
				p.hdr = newHeader(&sc.rsParts[p.rs], p)
			}
			sg.hdr = p.hdr
			sg.spans = slices.Grow([]byte(nil), int(sg.size))
			fr.size += int64(cap(sg.spans))
		}
		sc.frags = append(sc.frags, fr)
	}
	for _, e := range sc.entries {
		sg := &sc.slab[e.frag].segs[e.seg]
		sg.spans = appendLen(sg.spans, 2, e.sp)
	}
	return sc.frags, invalid, nil
}

// forFields calls fn with every length-delimited field of a validated message.
func forFields(b []byte, fn func(num int32, v []byte)) {
	for len(b) > 0 {
		f, rest, ok := nextField(b)
		if !ok {
			return
		}
		if f.typ == protowire.BytesType {
			fn(f.num, f.v)
		}
		b = rest
	}
}

func lenField(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func appendLen(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// serviceName reads service.name from an encoded Resource.
func serviceName(res []byte) string {
	var svc string
	forFields(res, func(num int32, kv []byte) {
		if num != 1 {
			return
		}
		if k, v, ok := keyValue(kv); ok && string(k) == "service.name" {
			if s, ok := anyString(v); ok {
				svc = s
			}
		}
	})
	return svc
}

// keyValue splits an encoded KeyValue.
func keyValue(kv []byte) (key, val []byte, ok bool) {
	forFields(kv, func(num int32, v []byte) {
		switch num {
		case 1:
			key = v
		case 2:
			val, ok = v, true
		}
	})
	return key, val, ok
}

// anyString is an AnyValue's string value.
func anyString(v []byte) (string, bool) {
	var s string
	found := false
	forFields(v, func(num int32, x []byte) {
		if num == 1 {
			s, found = string(x), true
		}
	})
	return s, found
}

// anyHTTPCode reads an AnyValue as an HTTP status code: an int, a double
// or a three-digit string.
func anyHTTPCode(v []byte) int64 {
	var code int64
	for len(v) > 0 {
		f, rest, ok := nextField(v)
		if !ok {
			break
		}
		v = rest
		switch {
		case f.num == 3 && f.typ == protowire.VarintType:
			code = int64(f.x)
		case f.num == 4 && f.typ == protowire.Fixed64Type:
			code = int64(math.Float64frombits(f.x))
		case f.num == 1 && f.typ == protowire.BytesType:
			s := f.v
			code = 0
			if len(s) == 3 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9' {
				code = int64(s[0]-'0')*100 + int64(s[1]-'0')*10 + int64(s[2]-'0')
			}
		default:
			code = 0
		}
	}
	return code
}

// spanInfo is what is read from one encoded span.
type spanInfo struct {
	traceID          pcommon.TraceID
	parentEmpty      bool
	traceState, name []byte
	kind             int32
	start, end       uint64
	flags            uint32
	errStatus        bool
	errHTTP          bool
	errException     bool
}

// read fills the info from a validated span.
func (s *spanInfo) read(b []byte) {
	s.parentEmpty = true
	for len(b) > 0 {
		f, rest, ok := nextField(b)
		if !ok {
			break
		}
		b = rest
		switch f.typ {
		case protowire.BytesType:
			v := f.v
			switch f.num {
			case 1:
				s.traceID = pcommon.TraceID{}
				if len(v) == 16 {
					copy(s.traceID[:], v)
				}
			case 3:
				s.traceState = v
			case 4:
				s.parentEmpty = allZero(v)
			case 5:
				s.name = v
			case 9:
				if !s.errHTTP {
					if k, val, ok := keyValue(v); ok && (string(k) == "http.response.status_code" || string(k) == "http.status_code") {
						if c := anyHTTPCode(val); c >= 500 && c <= 599 {
							s.errHTTP = true
						}
					}
				}
			case 11:
				if !s.errException {
					forFields(v, func(num int32, x []byte) {
						if num == 2 && string(x) == "exception" {
							s.errException = true
						}
					})
				}
			case 15:
				s.errStatus = statusIsError(v)
			}
		case protowire.VarintType:
			if f.num == 6 {
				s.kind = int32(f.x)
			}
		case protowire.Fixed64Type:
			switch f.num {
			case 7:
				s.start = f.x
			case 8:
				s.end = f.x
			}
		case protowire.Fixed32Type:
			if f.num == 16 {
				s.flags = uint32(f.x)
			}
		}
	}
}

func statusIsError(v []byte) bool {
	code := uint64(0)
	for len(v) > 0 {
		f, rest, ok := nextField(v)
		if !ok {
			break
		}
		v = rest
		if f.num == 3 && f.typ == protowire.VarintType {
			code = f.x
		}
	}
	return int32(code) == 2 // STATUS_CODE_ERROR
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// add folds one span into the summary. The root is the first span without
// a parent (as in the decoded form).
func (f *fragSummary) add(s *spanInfo, service string) {
	if f.spans == 0 || s.start < f.minStart {
		f.minStart = s.start
	}
	if s.end > f.maxEnd {
		f.maxEnd = s.end
	}
	f.spans++
	if s.parentEmpty && !f.hasRoot {
		f.hasRoot, f.rootName, f.rootKind, f.rootService = true, string(s.name), s.kind, service
		f.rootStart, f.rootEnd = s.start, s.end
	}
	f.errStatus = f.errStatus || s.errStatus
	f.errHTTP = f.errHTTP || s.errHTTP
	f.errException = f.errException || s.errException
	if len(s.traceState) > 0 {
		if ot := ParseTraceState(string(s.traceState)); ot.HasThreshold && (!f.hasInTh || ot.Threshold > f.inTh) {
			f.inTh, f.hasInTh = ot.Threshold, true
		}
	}
}
