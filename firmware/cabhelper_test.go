package firmware

import (
	"io"
	"testing"

	"github.com/srekit/srekit/firmware/cab"
)

func writeCab(t *testing.T, w io.Writer, files map[string][]byte) {
	t.Helper()
	var fs []cab.File
	for n, b := range files {
		fs = append(fs, cab.File{Name: n, Data: b})
	}
	if err := cab.Write(w, fs, cab.MSZIP); err != nil {
		t.Fatal(err)
	}
}
