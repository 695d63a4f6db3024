package flame

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// LineReader reads lines for the parsers: without copying while a line fits
// its buffer, and skipping (not failing on) lines longer than MaxLineBytes,
// which it counts in Skipped so that they are reported, not silently lost.
type LineReader struct {
	br      *bufio.Reader
	long    []byte
	n       int64
	err     error
	Skipped *Skips // where over-long lines are recorded; may be nil
}

// NewLineReader returns a LineReader over r.
func NewLineReader(r io.Reader, skipped *Skips) *LineReader {
	return &LineReader{br: bufio.NewReaderSize(r, 256<<10), Skipped: skipped}
}

// Next returns the next line without its "\n" (and without a "\r" before
// it), valid until the following call, or false at the end of input or on error.
func (lr *LineReader) Next() ([]byte, bool) {
	for {
		line, err := lr.br.ReadSlice('\n')
		if err == nil || (err == io.EOF && len(line) > 0) {
			lr.n++
			return trimEOL(line), true
		}
		if err == io.EOF {
			return nil, false
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			lr.err = err
			return nil, false
		}
		// A line longer than the buffer: gather it, up to the limit.
		lr.long = append(lr.long[:0], line...)
		tooLong := false
		for {
			line, err = lr.br.ReadSlice('\n')
			if !tooLong {
				if len(lr.long)+len(line) > MaxLineBytes {
					tooLong = true
				} else {
					lr.long = append(lr.long, line...)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && err != io.EOF {
				lr.err = err
				return nil, false
			}
			break
		}
		lr.n++
		if tooLong {
			if lr.Skipped != nil {
				lr.Skipped.Add(lr.n, string(lr.long[:80]), fmt.Sprintf("line longer than %d bytes", MaxLineBytes))
			}
			if err == io.EOF {
				return nil, false
			}
			continue
		}
		return trimEOL(lr.long), true
	}
}

// Line is the number of the line last returned (1-based).
func (lr *LineReader) Line() int64 { return lr.n }

// Err is the read error that ended the input, if any, with the line number.
func (lr *LineReader) Err() error {
	if lr.err == nil {
		return nil
	}
	return fmt.Errorf("line %d: %w", lr.n+1, lr.err)
}

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}
