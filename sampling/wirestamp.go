package sampling

import "google.golang.org/protobuf/encoding/protowire"

// Writing the threshold into kept spans, as they are encoded for export.

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
