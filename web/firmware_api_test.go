package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/srekit/srekit/firmware"
	"github.com/srekit/srekit/web/webtest"
)

func fwPost(t *testing.T, url, token, ctype string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

func fwGet(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestFirmwareAPI: inventory and packages go in through the write API (token
// required, bad input refused with nothing stored), and the queries come out.
func TestFirmwareAPI(t *testing.T) {
	srv, base := webtest.StartServer(t, false)
	// The page on an empty database says how to fill it.
	resp, err := http.Get(base + "/firmware")
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(page.String(), `id="fw-empty"`) || strings.Contains(page.String(), `class="error"`) {
		t.Errorf("empty page: %d\n%s", resp.StatusCode, page.String())
	}
	if resp, _ := http.Get(base + "/firmware/hosts/nope"); resp == nil || resp.StatusCode != 404 {
		t.Errorf("unknown host page: %v", resp)
	}
	hosts := []firmware.Host{
		{Name: "db1", Model: "R650", Components: []firmware.Observed{{Slot: "BMC", Kind: "bmc", Vendor: "Contoso", Model: "BMC", Version: "1.45.0", Source: "redfish"}}},
		{Name: "db2", Model: "R650", Components: []firmware.Observed{{Slot: "BMC", Kind: "bmc", Vendor: "Contoso", Model: "BMC", Version: "1.46.0", Source: "redfish"}}},
	}
	body, _ := json.Marshal(hosts)
	if code, _ := fwPost(t, base+"/api/v1/firmware/inventory", "", "application/json", body); code != http.StatusUnauthorized {
		t.Errorf("inventory without token: %d", code)
	}
	if code, msg := fwPost(t, base+"/api/v1/firmware/inventory", webtest.Token, "application/json", body); code != 200 {
		t.Fatalf("inventory: %d %s", code, msg)
	}
	bad, _ := json.Marshal([]firmware.Host{{Name: "db3", Components: []firmware.Observed{{Slot: "x", Version: "1"}}}})
	if code, msg := fwPost(t, base+"/api/v1/firmware/inventory", webtest.Token, "application/json", bad); code != 400 || !strings.Contains(msg, "no source") {
		t.Errorf("bad inventory: %d %s", code, msg)
	}

	// A cabinet upload.
	spec := &firmware.PackSpec{ID: "com.contoso.Bmc.firmware", GUIDs: []string{"1624a9df-5e13-47fc-874a-df3aff143089"}, VersionFormat: "triplet", Payload: "bmc.bin"}
	spec.Release.Version = "1.46.0"
	spec.Release.Issues = []string{"CVE-2023-34329"}
	c, err := spec.Component("bmc.bin", []byte("image"))
	if err != nil {
		t.Fatal(err)
	}
	var cab bytes.Buffer
	firmware.Pack(&cab, c, "bmc.bin", []byte("image"))
	if code, msg := fwPost(t, base+"/api/v1/firmware/releases?component=Contoso/BMC/bmc", webtest.Token, "application/vnd.ms-cab-compressed", cab.Bytes()); code != 200 {
		t.Fatalf("release upload: %d %s", code, msg)
	}
	corrupt := append([]byte(nil), cab.Bytes()...)
	corrupt[len(corrupt)-3] ^= 0xff
	if code, msg := fwPost(t, base+"/api/v1/firmware/releases?component=Contoso/BMC/bmc", webtest.Token, "application/octet-stream", corrupt); code != 400 || !strings.Contains(msg, "checksum") {
		t.Errorf("corrupt cabinet: %d %s", code, msg)
	}
	tb, _ := json.Marshal(map[string]any{"model": "R650", "component": firmware.ComponentKey{Vendor: "Contoso", Model: "BMC", Kind: "bmc"}, "version": "1.46.0"})
	if code, msg := fwPost(t, base+"/api/v1/firmware/targets", webtest.Token, "application/json", tb); code != 200 {
		t.Fatalf("target: %d %s", code, msg)
	}
	var behind []firmware.Status
	fwGet(t, base+"/api/v1/firmware/behind", &behind)
	if len(behind) != 1 || behind[0].Host != "db1" {
		t.Errorf("behind = %+v", behind)
	}
	var affected []firmware.Affected
	fwGet(t, base+"/api/v1/firmware/cve/CVE-2023-34329", &affected)
	if len(affected) != 1 || affected[0].Host != "db1" || affected[0].FixedIn != "1.46.0" {
		t.Errorf("affected = %+v", affected)
	}
	if resp, err := http.Get(base + "/api/v1/firmware/cve/CVE-1999-0001"); err != nil || resp.StatusCode != 404 {
		t.Errorf("a CVE no release fixes: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	var rels []firmware.StoredRelease
	fwGet(t, base+"/api/v1/firmware/releases", &rels)
	if len(rels) != 1 {
		t.Fatalf("releases = %+v", rels)
	}
	mb, _ := json.Marshal(map[string]any{"reason": "bricks"})
	if code, msg := fwPost(t, base+"/api/v1/firmware/releases/"+itoa64(rels[0].ID)+"/bad", webtest.Token, "application/json", mb); code != 200 {
		t.Fatalf("mark bad: %d %s", code, msg)
	}
	var onBad []firmware.Status
	fwGet(t, base+"/api/v1/firmware/bad", &onBad)
	if len(onBad) != 1 || onBad[0].Host != "db2" {
		t.Errorf("on known-bad = %+v", onBad)
	}

	// What is not stored is 404, a malformed id 400; a failing store is 500,
	// not blamed on the request.
	if code, msg := fwPost(t, base+"/api/v1/firmware/releases/999999/bad", webtest.Token, "application/json", mb); code != 404 || !strings.Contains(msg, "no release with id 999999") {
		t.Errorf("mark bad on a missing release: %d %s, want 404", code, msg)
	}
	for path, want := range map[string]int{"/api/v1/firmware/rollouts/999999": 404, "/api/v1/firmware/rollouts/x": 400} {
		if code := fwStatus(t, base+path); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	srv.Store.Close()
	if code := fwStatus(t, base+"/api/v1/firmware/spread"); code != 500 {
		t.Errorf("GET spread with the store closed: %d, want 500", code)
	}
}

func fwStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }
