package sampling

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/encoding/protowire"
)

// The sampler keeps buffered spans in their OTLP protobuf encoding, not as
// decoded pdata: a span costs its wire size plus a few bytes of framing,
// instead of several hundred bytes of structs, maps and pointers for the
// garbage collector to trace. A request is validated and split by trace
// into fragments: each fragment holds, per run of spans under one resource
// and scope, the encoded span fields (one exact allocation per run) and a
// reference to the run's header (the encoded resource and scope, interned
// per buffer shard). What the policies look at (root, times, errors, names)
// is read from the bytes once, as they arrive, into a small summary. On
// export, encodeSegs writes each run back as a ResourceSpans field; since an
// ExportTraceServiceRequest is nothing but repeated field 1, the runs of
// many traces concatenate into one export body without decoding anything.

// ---- reading the wire format ----

// The readers below follow the protobuf wire format exactly as pdata's
// decoder reads it (the fuzz target checks that the two accept the same
// requests), so that whatever the sampler accepts and forwards decodes
// downstream. Each returns the bytes consumed, or n <= 0 on malformed input.

func readVarint(b []byte) (uint64, int) {
	var x uint64
	for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
		if shift >= 64 || i >= len(b) {
			return 0, -1
		}
		x |= uint64(b[i]&0x7f) << shift
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
}

func readTag(b []byte) (num int32, typ protowire.Type, n int) {
	x, n := readVarint(b)
	if n <= 0 || int32(x>>3) <= 0 {
		return 0, 0, -1
	}
	return int32(x >> 3), protowire.Type(x & 7), n
}

func readBytes(b []byte) ([]byte, int) {
	l, n := readVarint(b)
	if n <= 0 || int(l) < 0 || n+int(l) < 0 || n+int(l) > len(b) {
		return nil, -1
	}
	return b[n : n+int(l)], n + int(l)
}

// skipField skips a field's value of wire type typ. Groups (never used by
// OTLP) are skipped the lenient way pdata skips them: a start-group tag is
// followed by tags until a scalar or length-delimited value ends it or the
// group closes.
func skipField(b []byte, typ protowire.Type) int {
	pos, depth := 0, 0
	for pos < len(b) {
		switch typ {
		case protowire.VarintType:
			_, n := readVarint(b[pos:])
			return ok(pos, n)
		case protowire.Fixed64Type:
			return ok(pos, fixed(b[pos:], 8))
		case protowire.BytesType:
			_, n := readBytes(b[pos:])
			return ok(pos, n)
		case protowire.Fixed32Type:
			return ok(pos, fixed(b[pos:], 4))
		case protowire.StartGroupType:
			depth++
		case protowire.EndGroupType:
			if depth == 0 {
				return -1
			}
			depth--
		default:
			return -1
		}
		if depth == 0 {
			return pos
		}
		_, t, n := readTag(b[pos:])
		if n <= 0 {
			return -1
		}
		typ, pos = t, pos+n
	}
	return -1
}

func ok(pos, n int) int {
	if n <= 0 {
		return -1
	}
	return pos + n
}

func fixed(b []byte, size int) int {
	if len(b) < size {
		return -1
	}
	return size
}

// field is one field read by nextField.
type field struct {
	num int32
	typ protowire.Type
	raw []byte // the whole field, tag included
	v   []byte // a length-delimited field's value
	x   uint64 // a varint or fixed field's value
}

// nextField reads the first field of b and returns the rest; ok is false
// at the end or on malformed input (which validated input never is).
func nextField(b []byte) (f field, rest []byte, ok bool) {
	num, typ, n := readTag(b)
	if n <= 0 {
		return f, nil, false
	}
	f.num, f.typ = num, typ
	var m int
	switch typ {
	case protowire.BytesType:
		f.v, m = readBytes(b[n:])
	case protowire.VarintType:
		f.x, m = readVarint(b[n:])
	case protowire.Fixed64Type:
		if m = fixed(b[n:], 8); m > 0 {
			f.x = binary.LittleEndian.Uint64(b[n:])
		}
	case protowire.Fixed32Type:
		if m = fixed(b[n:], 4); m > 0 {
			f.x = uint64(binary.LittleEndian.Uint32(b[n:]))
		}
	default:
		m = skipField(b[n:], typ)
	}
	if m < 0 {
		return f, nil, false
	}
	f.raw = b[:n+m]
	return f, b[n+m:], true
}

// ---- validation ----

// wireField is what a field of a known message must look like.
type wireField struct {
	typ protowire.Type
	msg *wireMsg // for LEN fields holding a message
	// ids: the allowed lengths of an ID (0 = any)
	idLen int
	known bool
}

// wireMsg is an OTLP message schema: fields by number.
type wireMsg struct {
	fields map[int32]wireField
	// byNum is fields as a table indexed by field number (for speed).
	byNum []wireField
	// counted messages (attribute values) count towards maxWireDepth.
	counted bool
}

var (
	anyValueMsg, arrayValueMsg, kvListMsg, keyValueMsg   = &wireMsg{}, &wireMsg{}, &wireMsg{}, &wireMsg{}
	resourceMsg, scopeMsg, eventMsg, linkMsg, statusMsg  = &wireMsg{}, &wireMsg{}, &wireMsg{}, &wireMsg{}, &wireMsg{}
	spanMsg, scopeSpansMsg, resourceSpansMsg, requestMsg = &wireMsg{}, &wireMsg{}, &wireMsg{}, &wireMsg{}
)

func init() {
	str := wireField{typ: protowire.BytesType}
	varint := wireField{typ: protowire.VarintType}
	f64 := wireField{typ: protowire.Fixed64Type}
	f32 := wireField{typ: protowire.Fixed32Type}
	msg := func(m *wireMsg) wireField { return wireField{typ: protowire.BytesType, msg: m} }
	id := func(n int) wireField { return wireField{typ: protowire.BytesType, idLen: n} }
	anyValueMsg.fields = map[int32]wireField{1: str, 2: varint, 3: varint, 4: f64, 5: msg(arrayValueMsg), 6: msg(kvListMsg), 7: str, 8: varint}
	arrayValueMsg.fields = map[int32]wireField{1: msg(anyValueMsg)}
	kvListMsg.fields = map[int32]wireField{1: msg(keyValueMsg)}
	keyValueMsg.fields = map[int32]wireField{1: str, 2: msg(anyValueMsg), 3: varint}
	for _, m := range []*wireMsg{anyValueMsg, arrayValueMsg, kvListMsg, keyValueMsg} {
		m.counted = true
	}
	entityRefMsg := &wireMsg{fields: map[int32]wireField{1: str, 2: str, 3: str, 4: str}}
	resourceMsg.fields = map[int32]wireField{1: msg(keyValueMsg), 2: varint, 3: msg(entityRefMsg)}
	scopeMsg.fields = map[int32]wireField{1: str, 2: str, 3: msg(keyValueMsg), 4: varint}
	eventMsg.fields = map[int32]wireField{1: f64, 2: str, 3: msg(keyValueMsg), 4: varint}
	linkMsg.fields = map[int32]wireField{1: id(16), 2: id(8), 3: str, 4: msg(keyValueMsg), 5: varint, 6: f32}
	statusMsg.fields = map[int32]wireField{2: str, 3: varint}
	spanMsg.fields = map[int32]wireField{1: id(16), 2: id(8), 3: str, 4: id(8), 5: str, 6: varint, 7: f64, 8: f64,
		9: msg(keyValueMsg), 10: varint, 11: msg(eventMsg), 12: varint, 13: msg(linkMsg), 14: varint, 15: msg(statusMsg), 16: f32}
	scopeSpansMsg.fields = map[int32]wireField{1: msg(scopeMsg), 2: msg(spanMsg), 3: str}
	resourceSpansMsg.fields = map[int32]wireField{1: msg(resourceMsg), 2: msg(scopeSpansMsg), 3: str}
	requestMsg.fields = map[int32]wireField{1: msg(resourceSpansMsg)}
	for _, m := range []*wireMsg{anyValueMsg, arrayValueMsg, kvListMsg, keyValueMsg, entityRefMsg, resourceMsg, scopeMsg,
		eventMsg, linkMsg, statusMsg, spanMsg, scopeSpansMsg, resourceSpansMsg, requestMsg} {
		for num, f := range m.fields {
			for int(num) >= len(m.byNum) {
				m.byNum = append(m.byNum, wireField{})
			}
			f.known = true
			m.byNum[num] = f
		}
	}
}

// maxWireDepth bounds the nesting of attribute values (arrays and maps in
// arrays...), as pdata does, so a hostile request cannot recurse without end.
const maxWireDepth = 100

var errDepth = errors.New("values nested too deeply")

// validate checks that b is a well-formed encoding of m: every known field
// has the wire type its number calls for, lengths stay inside their
// message, IDs have their length, and nested messages are well formed too.
// Unknown fields are skipped, as protobuf requires. depth counts the
// nesting of attribute values.
func (m *wireMsg) validate(b []byte, depth int) error {
	if m.counted {
		if depth >= maxWireDepth {
			return errDepth
		}
		depth++
	} else {
		depth = 0
	}
	for len(b) > 0 {
		num, typ, n := readTag(b)
		if n <= 0 {
			return errMalformed
		}
		b = b[n:]
		var f wireField
		if int(num) < len(m.byNum) {
			f = m.byNum[num]
		}
		if !f.known {
			if n = skipField(b, typ); n < 0 {
				return errMalformed
			}
			b = b[n:]
			continue
		}
		if typ != f.typ {
			return fmt.Errorf("field %d: wire type %d, want %d", num, typ, f.typ)
		}
		if typ == protowire.BytesType {
			v, n := readBytes(b)
			if n <= 0 {
				return errMalformed
			}
			if f.idLen > 0 && len(v) != 0 && len(v) != f.idLen {
				return fmt.Errorf("field %d: ID of %d bytes, want %d", num, len(v), f.idLen)
			}
			if f.msg != nil {
				if err := f.msg.validate(v, depth); err != nil {
					return fmt.Errorf("field %d: %w", num, err)
				}
			}
			b = b[n:]
			continue
		}
		if n = skipField(b, typ); n < 0 {
			return errMalformed
		}
		b = b[n:]
	}
	return nil
}

var errMalformed = errors.New("truncated or malformed field")

// ---- splitting a request by trace ----

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

// ---- writing the threshold into kept spans ----

// stamper rewrites the tracestate of every span in fragments, for one
// trace's decision; spans of a trace nearly always share one tracestate, so
// the rewrite is computed once per distinct input.
type stamper struct {
	th              Threshold
	rv              uint64
	writeRV         bool
	lastIn, lastOut string
	have            bool
	sizes           []int // new span sizes, in order
}

func (st *stamper) state(in []byte) string {
	if !st.have || string(in) != st.lastIn {
		st.lastIn = string(in)
		st.lastOut = WithThreshold(st.lastIn, st.th, st.rv, st.writeRV)
		st.have = true
	}
	return st.lastOut
}

// encodeSegs appends runs of spans to dst as ResourceSpans fields (an
// export body), each under its header; with a stamper, every span's
// tracestate is replaced. It returns dst and the number of spans.
func encodeSegs(dst []byte, segs []seg, st *stamper) ([]byte, int) {
	spans := 0
	for i := range segs {
		sg := &segs[i]
		h := sg.hdr
		spansSize := len(sg.spans)
		if st != nil {
			st.sizes = st.sizes[:0]
			spansSize = 0
			forFields(sg.spans, func(_ int32, sp []byte) {
				n := st.spanSize(sp)
				st.sizes = append(st.sizes, n)
				spansSize += lenField(n)
			})
		}
		ssSize := spansSize
		if h.hasScope {
			ssSize += lenField(len(h.scope))
		}
		if len(h.ssSchema) > 0 {
			ssSize += lenField(len(h.ssSchema))
		}
		rsSize := lenField(ssSize)
		if h.hasRes {
			rsSize += lenField(len(h.resource))
		}
		if len(h.rsSchema) > 0 {
			rsSize += lenField(len(h.rsSchema))
		}
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(rsSize))
		if h.hasRes {
			dst = appendLen(dst, 1, h.resource)
		}
		dst = protowire.AppendTag(dst, 2, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(ssSize))
		if h.hasScope {
			dst = appendLen(dst, 1, h.scope)
		}
		if st == nil {
			dst = append(dst, sg.spans...)
		} else {
			j := 0
			forFields(sg.spans, func(_ int32, sp []byte) {
				dst = protowire.AppendTag(dst, 2, protowire.BytesType)
				dst = protowire.AppendVarint(dst, uint64(st.sizes[j]))
				dst = st.appendSpan(dst, sp)
				j++
			})
		}
		if len(h.ssSchema) > 0 {
			dst = appendLen(dst, 3, h.ssSchema)
		}
		if len(h.rsSchema) > 0 {
			dst = appendLen(dst, 3, h.rsSchema)
		}
		spans += int(sg.n)
	}
	return dst, spans
}

func isTraceState(f *field) bool { return f.num == 3 && f.typ == protowire.BytesType }

// spanSize is the size of span sp once its tracestate is replaced.
func (st *stamper) spanSize(sp []byte) int {
	size := 0
	var ts []byte
	for b := sp; len(b) > 0; {
		f, rest, ok := nextField(b)
		if !ok {
			break
		}
		b = rest
		if isTraceState(&f) {
			ts = f.v
			continue
		}
		size += len(f.raw)
	}
	if out := st.state(ts); out != "" {
		size += lenField(len(out))
	}
	return size
}

// appendSpan appends span sp with its tracestate replaced.
func (st *stamper) appendSpan(dst, sp []byte) []byte {
	var ts []byte
	for b := sp; len(b) > 0; {
		f, rest, ok := nextField(b)
		if !ok {
			break
		}
		b = rest
		if isTraceState(&f) {
			ts = f.v
			continue
		}
		dst = append(dst, f.raw...)
	}
	if out := st.state(ts); out != "" {
		dst = protowire.AppendTag(dst, 3, protowire.BytesType)
		dst = protowire.AppendString(dst, out)
	}
	return dst
}
