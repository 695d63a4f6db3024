package mesh

import "strconv"

const (
	chunkSize = iota
	chunkData
	chunkCRLF
	chunkTrailer
)

// chunkRelay re-frames a chunked body as it arrives, in any pieces: chunk
// sizes normalised, extensions dropped, trailers kept (as relayChunked
// does on the goroutine path).
type chunkRelay struct {
	phase int8
	left  int64 // bytes of the current chunk still to copy
}

// relay consumes what it can of in, appending the re-framed bytes to out,
// and returns how many bytes it used; a line cut short is left unused
// until more arrives. done: the body (with its trailers) ended; not ok: the
// framing is broken.
func (cr *chunkRelay) relay(in []byte, out *byteBuf) (used int, done, ok bool) {
	for used < len(in) {
		buf := in[used:]
		switch cr.phase {
		case chunkSize, chunkTrailer:
			i := indexNL(buf)
			if i < 0 {
				return used, false, len(buf) < 4096
			}
			line := buf[:i+1]
			if len(line) < 2 || line[len(line)-2] != '\r' {
				return used, false, false
			}
			used += len(line)
			if cr.phase == chunkTrailer {
				out.Write(line)
				if len(line) == 2 {
					return used, true, true
				}
				continue
			}
			size, ok := parseChunkSize(line[:len(line)-2])
			if !ok {
				return used, false, false
			}
			if size == 0 {
				out.WriteString("0\r\n")
				cr.phase = chunkTrailer
				continue
			}
			var nb [16]byte
			out.Write(strconv.AppendInt(nb[:0], size, 16))
			out.WriteString("\r\n")
			cr.phase, cr.left = chunkData, size
		case chunkData:
			k := int(min(cr.left, int64(len(buf))))
			out.Write(buf[:k])
			used += k
			cr.left -= int64(k)
			if cr.left == 0 {
				cr.phase = chunkCRLF
			}
		case chunkCRLF:
			if len(buf) < 2 {
				return used, false, buf[0] == '\r'
			}
			if buf[0] != '\r' || buf[1] != '\n' {
				return used, false, false
			}
			used += 2
			out.WriteString("\r\n")
			cr.phase = chunkSize
		}
	}
	return used, false, true
}

func indexNL(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// byteBuf gathers heads and bodies for one write.
type byteBuf struct{ b []byte }

func (w *byteBuf) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *byteBuf) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

func (w *byteBuf) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}
