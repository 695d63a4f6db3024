// Package cab reads and writes Microsoft cabinet files (MS-CAB), the container
// of LVFS firmware packages: uncompressed and MSZIP folders, which is what
// fwupd and gcab produce and accept.
//
// The reader is written for untrusted input: every offset and count is
// checked against the file, file names that would escape a directory are
// rejected, block checksums are verified, and the total decompressed size is
// capped so that a small cabinet cannot expand into gigabytes.
package cab

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// File is one file of a cabinet.
type File struct {
	Name     string // slash-separated, relative, never escaping ("firmware.bin", "dir/x.bin")
	Data     []byte
	Modified time.Time
}

// Compression is a folder's compression method.
type Compression uint16

const (
	None  Compression = 0
	MSZIP Compression = 1
)

// DefaultLimit is the default cap on the total decompressed size of a cabinet.
const DefaultLimit = 512 << 20

// ErrLimit is returned (wrapped) when a cabinet would decompress past the limit.
var ErrLimit = errors.New("decompressed size over the limit")

const (
	headerSize  = 36
	folderSize  = 8
	fileSize    = 16
	dataSize    = 8
	blockMax    = 32768
	flagPrev    = 0x0001
	flagNext    = 0x0002
	flagReserve = 0x0004
	attrUTF8    = 0x0080
)

// Read parses a whole cabinet held in memory. limit caps the total
// decompressed size (DefaultLimit when <= 0).
func Read(data []byte, limit int64) ([]File, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	if len(data) < headerSize || string(data[:4]) != "MSCF" {
		return nil, errors.New("not a cabinet file (no MSCF signature)")
	}
	le := binary.LittleEndian
	cbCabinet := le.Uint32(data[8:])
	coffFiles := le.Uint32(data[16:])
	verMinor, verMajor := data[24], data[25]
	nFolders := int(le.Uint16(data[26:]))
	nFiles := int(le.Uint16(data[28:]))
	flags := le.Uint16(data[30:])
	if verMajor != 1 || verMinor != 3 {
		return nil, fmt.Errorf("cabinet version %d.%d is not 1.3", verMajor, verMinor)
	}
	if int64(cbCabinet) > int64(len(data)) {
		return nil, fmt.Errorf("truncated cabinet: the header says %d bytes, the file has %d", cbCabinet, len(data))
	}
	if flags&(flagPrev|flagNext) != 0 {
		return nil, errors.New("multi-volume cabinets are not supported")
	}
	off := headerSize
	var resFolder, resData int
	if flags&flagReserve != 0 {
		if len(data) < off+4 {
			return nil, errors.New("truncated cabinet header")
		}
		resHeader := int(le.Uint16(data[off:]))
		resFolder = int(data[off+2])
		resData = int(data[off+3])
		off += 4 + resHeader
	}
	type folder struct {
		start  uint32
		blocks int
		comp   Compression
	}
	folders := make([]folder, nFolders)
	for i := range folders {
		if off+folderSize > len(data) {
			return nil, fmt.Errorf("truncated folder table (folder %d)", i)
		}
		folders[i] = folder{le.Uint32(data[off:]), int(le.Uint16(data[off+4:])), Compression(le.Uint16(data[off+6:]) & 0x0f)}
		off += folderSize + resFolder
	}
	type entry struct {
		size, offset uint32
		folder       int
		date, time   uint16
		name         string
	}
	entries := make([]entry, nFiles)
	off = int(coffFiles)
	seen := map[string]bool{}
	var declared int64
	for i := range entries {
		if off < 0 || off+fileSize > len(data) {
			return nil, fmt.Errorf("truncated file table (file %d)", i)
		}
		e := entry{size: le.Uint32(data[off:]), offset: le.Uint32(data[off+4:]), folder: int(le.Uint16(data[off+8:])),
			date: le.Uint16(data[off+10:]), time: le.Uint16(data[off+12:])}
		nameStart := off + fileSize
		end := bytes.IndexByte(data[nameStart:], 0)
		if end < 0 || end > 1024 {
			return nil, fmt.Errorf("file %d: name is not terminated", i)
		}
		name, err := CleanName(string(data[nameStart : nameStart+end]))
		if err != nil {
			return nil, fmt.Errorf("file %d: %w", i, err)
		}
		if seen[name] {
			return nil, fmt.Errorf("file %q appears twice", name)
		}
		seen[name] = true
		e.name = name
		if e.folder >= nFolders {
			return nil, fmt.Errorf("file %q: folder %d does not exist (continued files are not supported)", name, e.folder)
		}
		declared += int64(e.size)
		if declared > limit {
			return nil, fmt.Errorf("files declare %d bytes: %w of %d bytes", declared, ErrLimit, limit)
		}
		entries[i] = e
		off = nameStart + end + 1
	}
	// Decompress each folder that a file uses.
	contents := make([][]byte, nFolders)
	var total int64
	for fi, f := range folders {
		need := int64(0)
		for _, e := range entries {
			if e.folder == fi {
				need = max(need, int64(e.offset)+int64(e.size))
			}
		}
		if need == 0 {
			continue
		}
		out, err := readFolder(data, int(f.start), f.blocks, f.comp, resData, need, limit-total)
		if err != nil {
			return nil, fmt.Errorf("folder %d: %w", fi, err)
		}
		total += int64(len(out))
		contents[fi] = out
	}
	files := make([]File, len(entries))
	for i, e := range entries {
		c := contents[e.folder]
		if int64(e.offset)+int64(e.size) > int64(len(c)) {
			return nil, fmt.Errorf("file %q: data past the end of its folder", e.name)
		}
		files[i] = File{Name: e.name, Data: c[e.offset : e.offset+e.size : e.offset+e.size], Modified: dosTime(e.date, e.time)}
	}
	return files, nil
}

func readFolder(data []byte, off, blocks int, comp Compression, resData int, need, limit int64) ([]byte, error) {
	if comp != None && comp != MSZIP {
		return nil, fmt.Errorf("compression %d is not supported (only none and MSZIP)", comp)
	}
	le := binary.LittleEndian
	// need is bounded by the limit (checked on the declared sizes), so
	// sizing the buffer once is safe and saves regrowing it per block.
	out := make([]byte, 0, min(need, limit))
	var zr io.ReadCloser // one inflater, reset per block
	for b := 0; b < blocks && int64(len(out)) < need; b++ {
		if off < 0 || off+dataSize+resData > len(data) {
			return nil, fmt.Errorf("block %d: truncated header", b)
		}
		sum := le.Uint32(data[off:])
		cbData := int(le.Uint16(data[off+4:]))
		cbUncomp := int(le.Uint16(data[off+6:]))
		start := off + dataSize + resData
		if start+cbData > len(data) {
			return nil, fmt.Errorf("block %d: %d bytes of data past the end of the file", b, cbData)
		}
		raw := data[start : start+cbData]
		if sum != 0 {
			if got := Checksum(raw, data[off+4:off+8]); got != sum {
				return nil, fmt.Errorf("block %d: checksum %08x does not match %08x", b, got, sum)
			}
		}
		if cbUncomp > blockMax {
			return nil, fmt.Errorf("block %d: %d uncompressed bytes, more than %d", b, cbUncomp, blockMax)
		}
		if int64(len(out)+cbUncomp) > limit {
			return nil, fmt.Errorf("%w of %d bytes", ErrLimit, limit)
		}
		switch comp {
		case None:
			if cbData != cbUncomp {
				return nil, fmt.Errorf("block %d: stored block sizes differ (%d, %d)", b, cbData, cbUncomp)
			}
			out = append(out, raw...)
		case MSZIP:
			if len(raw) < 2 || raw[0] != 'C' || raw[1] != 'K' {
				return nil, fmt.Errorf("block %d: MSZIP block without its CK signature", b)
			}
			// Each block continues the deflate history of the previous one.
			dict := out[max(0, len(out)-blockMax):]
			if zr == nil {
				zr = flate.NewReaderDict(bytes.NewReader(raw[2:]), dict)
			} else if err := zr.(flate.Resetter).Reset(bytes.NewReader(raw[2:]), dict); err != nil {
				return nil, fmt.Errorf("block %d: inflate: %w", b, err)
			}
			n := len(out)
			if cap(out)-n >= cbUncomp {
				out = out[:n+cbUncomp]
			} else {
				out = append(out, make([]byte, cbUncomp)...)
			}
			if _, err := io.ReadFull(zr, out[n:]); err != nil {
				return nil, fmt.Errorf("block %d: inflate: %w", b, err)
			}
			// A block must not hold more than it declares.
			var one [1]byte
			if k, _ := zr.Read(one[:]); k != 0 {
				return nil, fmt.Errorf("block %d: inflates past its declared %d bytes", b, cbUncomp)
			}
		}
		off = start + cbData
	}
	if int64(len(out)) < need {
		return nil, fmt.Errorf("folder holds %d bytes but its files need %d", len(out), need)
	}
	return out, nil
}

// Checksum is the MS-CAB block checksum over the block's data and then its
// four size bytes (cbData, cbUncomp).
func Checksum(data, sizes []byte) uint32 {
	return csum(sizes, csum(data, 0))
}

func csum(b []byte, seed uint32) uint32 {
	c := seed
	n := len(b) / 4
	for i := 0; i < n; i++ {
		c ^= binary.LittleEndian.Uint32(b[4*i:])
	}
	var ul uint32
	rest := b[4*n:]
	switch len(rest) {
	case 3:
		ul = uint32(rest[0])<<16 | uint32(rest[1])<<8 | uint32(rest[2])
	case 2:
		ul = uint32(rest[0])<<8 | uint32(rest[1])
	case 1:
		ul = uint32(rest[0])
	}
	return c ^ ul
}

// CleanName turns a cabinet file name into a safe relative slash path, or
// returns an error for names that are empty, absolute, have a drive letter,
// control characters, or ".." elements that would escape the directory the
// cabinet is extracted into.
func CleanName(name string) (string, error) {
	n := strings.ReplaceAll(name, "\\", "/")
	if n == "" {
		return "", errors.New("empty file name")
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("file name %q has a control character", name)
		}
	}
	if strings.HasPrefix(n, "/") || (len(n) >= 2 && n[1] == ':') {
		return "", fmt.Errorf("file name %q is absolute", name)
	}
	for _, el := range strings.Split(n, "/") {
		if el == ".." {
			return "", fmt.Errorf("file name %q escapes the directory (path traversal)", name)
		}
	}
	c := path.Clean(n)
	if c == "." {
		return "", fmt.Errorf("file name %q names no file", name)
	}
	return c, nil
}

// Write writes files as a single-folder cabinet, compressed with comp (None
// or MSZIP). Files are stored in name order so the output is reproducible.
func Write(w io.Writer, files []File, comp Compression) error {
	if comp != None && comp != MSZIP {
		return fmt.Errorf("compression %d is not supported", comp)
	}
	if len(files) == 0 {
		return errors.New("a cabinet needs at least one file")
	}
	if len(files) > 0xffff {
		return errors.New("too many files for one cabinet")
	}
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var folder []byte
	names := make([][]byte, len(files))
	for i, f := range files {
		n, err := CleanName(f.Name)
		if err != nil {
			return err
		}
		if i > 0 && n == files[i-1].Name {
			return fmt.Errorf("file %q appears twice", n)
		}
		names[i] = []byte(strings.ReplaceAll(n, "/", "\\"))
		if int64(len(folder))+int64(len(f.Data)) > 0x7fff0000 {
			return errors.New("cabinet contents over 2 GiB")
		}
		folder = append(folder, f.Data...)
	}
	// Blocks.
	var blocks bytes.Buffer
	nBlocks := 0
	le := binary.LittleEndian
	for start := 0; start < len(folder) || (start == 0 && len(folder) == 0); start += blockMax {
		chunk := folder[start:min(start+blockMax, len(folder))]
		payload := chunk
		if comp == MSZIP {
			var zb bytes.Buffer
			zb.WriteString("CK")
			dict := folder[max(0, start-blockMax):start]
			zw, err := flate.NewWriterDict(&zb, flate.DefaultCompression, dict)
			if err != nil {
				return err
			}
			zw.Write(chunk)
			if err := zw.Close(); err != nil {
				return err
			}
			payload = zb.Bytes()
			if len(payload) > 0xffff {
				return errors.New("an MSZIP block did not fit 64 KiB")
			}
		}
		var hdr [dataSize]byte
		le.PutUint16(hdr[4:], uint16(len(payload)))
		le.PutUint16(hdr[6:], uint16(len(chunk)))
		le.PutUint32(hdr[0:], Checksum(payload, hdr[4:8]))
		blocks.Write(hdr[:])
		blocks.Write(payload)
		nBlocks++
		if len(folder) == 0 {
			break
		}
	}
	if nBlocks > 0xffff {
		return errors.New("too many blocks for one folder")
	}
	// Header, folder, files.
	filesOff := headerSize + folderSize
	filesLen := 0
	for _, n := range names {
		filesLen += fileSize + len(n) + 1
	}
	dataOff := filesOff + filesLen
	total := dataOff + blocks.Len()
	var hb bytes.Buffer
	h := make([]byte, headerSize)
	copy(h, "MSCF")
	le.PutUint32(h[8:], uint32(total))
	le.PutUint32(h[16:], uint32(filesOff))
	h[24], h[25] = 3, 1
	le.PutUint16(h[26:], 1)
	le.PutUint16(h[28:], uint16(len(files)))
	hb.Write(h)
	fo := make([]byte, folderSize)
	le.PutUint32(fo[0:], uint32(dataOff))
	le.PutUint16(fo[4:], uint16(nBlocks))
	le.PutUint16(fo[6:], uint16(comp))
	hb.Write(fo)
	var offset uint32
	for i, f := range files {
		fe := make([]byte, fileSize)
		le.PutUint32(fe[0:], uint32(len(f.Data)))
		le.PutUint32(fe[4:], offset)
		d, t := dosDate(f.Modified)
		le.PutUint16(fe[10:], d)
		le.PutUint16(fe[12:], t)
		attr := uint16(0x20) // archive
		if !isASCII(names[i]) {
			attr |= attrUTF8
		}
		le.PutUint16(fe[14:], attr)
		hb.Write(fe)
		hb.Write(names[i])
		hb.WriteByte(0)
		offset += uint32(len(f.Data))
	}
	if _, err := w.Write(hb.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(blocks.Bytes())
	return err
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func dosTime(d, t uint16) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Date(1980+int(d>>9), time.Month(d>>5&0x0f), int(d&0x1f), int(t>>11), int(t>>5&0x3f), int(t&0x1f)*2, 0, time.UTC)
}

func dosDate(tm time.Time) (uint16, uint16) {
	if tm.IsZero() || tm.Year() < 1980 || tm.Year() > 2107 {
		tm = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	tm = tm.UTC()
	return uint16((tm.Year()-1980)<<9 | int(tm.Month())<<5 | tm.Day()), uint16(tm.Hour()<<11 | tm.Minute()<<5 | tm.Second()/2)
}
