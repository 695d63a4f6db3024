package mesh

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxy measures the proxy's own cost per request over loopback:
// a client, the mesh and a backend in one process, keep-alive everywhere.
func BenchmarkProxy(b *testing.B) {
	be := newBackend(b, "a", "127.0.0.2", 0)
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters: [{name: api, endpoints: [{address: "{{a}}", region: eu}]}]
`
	_, url := startMesh(b, y, map[string]string{"a": be.addr})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Get(url + "/")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
}
