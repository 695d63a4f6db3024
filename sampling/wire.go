package sampling

import (
	"encoding/binary"
	"errors"
	"fmt"

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
