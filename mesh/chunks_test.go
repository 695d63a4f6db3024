package mesh

import (
	"bufio"
	"bytes"
	"testing"
)

// relayInPieces feeds data to a chunkRelay cut at the given offsets, as the
// event loop does when a body arrives over several reads.
func relayInPieces(data []byte, cuts []int) (out []byte, used int, done, ok bool) {
	var cr chunkRelay
	var w byteBuf
	var pending []byte
	prev := 0
	for _, c := range append(cuts, len(data)) {
		if c < prev || c > len(data) {
			continue
		}
		pending = append(pending, data[prev:c]...)
		prev = c
		n, d, k := cr.relay(pending, &w)
		pending = pending[n:]
		used += n
		if d || !k {
			return w.b, used, d, k
		}
	}
	return w.b, used, false, true
}

// relayWhole runs the goroutine path's relayChunked over all of data.
func relayWhole(data []byte) (out []byte, used int, ok bool) {
	r := bytes.NewReader(data)
	br := bufio.NewReader(r)
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	ok, _ = relayChunked(br, w)
	w.Flush()
	return buf.Bytes(), len(data) - r.Len() - br.Buffered(), ok
}

func TestChunkRelayPieces(t *testing.T) {
	body := []byte("5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\nNEXT")
	want := "5\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n"
	for cut := 0; cut <= len(body); cut++ {
		for cut2 := cut; cut2 <= len(body); cut2 += 3 {
			out, used, done, ok := relayInPieces(body, []int{cut, cut2})
			if !done || !ok || string(out) != want || used != len(body)-len("NEXT") {
				t.Fatalf("cuts %d,%d: done=%v ok=%v used=%d out=%q", cut, cut2, done, ok, used, out)
			}
		}
	}
	for _, bad := range []string{"zz\r\nhello\r\n", "5\nhello\r\n", "5\r\nhelloXY", "0\r\nX: y\n\r\n", "fffffffffffffffff\r\n"} {
		if _, _, done, ok := relayInPieces([]byte(bad), nil); done || ok {
			t.Errorf("%q: done=%v ok=%v, want a framing error", bad, done, ok)
		}
	}
}

// FuzzChunkRelay checks the event loop's chunked relay against the
// goroutine path's on the same bytes, whatever pieces they arrive in: a
// body one completes, the other completes with the same output and the same
// bytes used; a body one rejects or finds incomplete, the other does not
// complete either.
func FuzzChunkRelay(f *testing.F) {
	f.Add([]byte("5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n"), uint16(3), uint16(17))
	f.Add([]byte("0\r\n\r\n"), uint16(1), uint16(2))
	f.Add([]byte("A\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), uint16(12), uint16(14))
	f.Add([]byte("1\r\nx\r\n1 ; a=b\r\ny\r\n0\r\nT: 1\r\nU: 2\r\n\r\n"), uint16(0), uint16(9))
	f.Add([]byte("3\r\nab"), uint16(2), uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, a, b uint16) {
		if len(data) > 64<<10 {
			return
		}
		cuts := []int{int(a) % (len(data) + 1), int(b) % (len(data) + 1)}
		if cuts[0] > cuts[1] {
			cuts[0], cuts[1] = cuts[1], cuts[0]
		}
		out, used, done, ok := relayInPieces(data, cuts)
		wout, wused, wok := relayWhole(data)
		if wok {
			if !done || !bytes.Equal(out, wout) || used != wused {
				t.Fatalf("goroutine path completes (used %d, %q), event loop: done=%v ok=%v used=%d %q", wused, wout, done, ok, used, out)
			}
		} else if done {
			t.Fatalf("goroutine path fails, event loop completes: used=%d %q", used, out)
		}
	})
}
