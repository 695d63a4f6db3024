// Package redfishtest runs fake BMCs for tests: each serves the DMTF
// public-rackmount1 mockup (from ../shared/testdata, read at test time) and
// takes firmware updates through UpdateService (raw or multipart push, and
// SimpleUpdate), with a task that progresses each time it is polled.
//
// An image for a fake BMC is a line of text:
//
//	FAKEFW;target=BMC;version=1.46.0;result=ok
//
// result is ok (the task completes and the inventory shows the new version),
// fail (the task ends in Exception), brick (the task completes but the
// version does not change, so verification fails) or stall (the task never
// moves).
package redfishtest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// MockupDir finds the public-rackmount1 mockup: $SREKIT_TESTDATA/redfish/...
// or ../shared/testdata/redfish/... beside the repository root. When absent
// the test fails under CI and is skipped loudly otherwise.
func MockupDir(t testing.TB) string {
	t.Helper()
	var cands []string
	if d := os.Getenv("SREKIT_TESTDATA"); d != "" {
		cands = append(cands, filepath.Join(d, "redfish", "public-rackmount1"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				cands = append(cands, filepath.Join(d, "..", "shared", "testdata", "redfish", "public-rackmount1"))
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, "index.json")); err == nil {
			return c
		}
	}
	msg := fmt.Sprintf("the DMTF Redfish mockup public-rackmount1 is not at %v (set SREKIT_TESTDATA to the shared testdata directory)", cands)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: Redfish tests NOT RUN: " + msg)
	return ""
}

// Mockup is the mockup's documents by path ("/redfish/v1/UpdateService"),
// loaded once and copied into each BMC.
type Mockup map[string]map[string]any

// LoadMockup reads every index.json under dir.
func LoadMockup(dir string) (Mockup, error) {
	m := Mockup{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "index.json" {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(p))
		key := "/redfish/v1"
		if rel != "." {
			key += "/" + filepath.ToSlash(rel)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		m[key] = doc
		return nil
	})
	if len(m) == 0 && err == nil {
		err = fmt.Errorf("no index.json under %s", dir)
	}
	return m, err
}

// BMC is one fake BMC.
type BMC struct {
	// Steps is how many polls a task takes to finish (3 when zero).
	Steps int
	// Multipart adds a MultipartHttpPushUri to UpdateService.
	Multipart bool
	// User and Password, when set, are required (HTTP basic auth).
	User, Password string
	// Broken makes every update on this BMC end in Exception, whatever the image.
	Broken bool
	// KeepsPrevious gives the BMC a Manager that keeps two images (BMC and
	// BMC-previous) and lets Links.ActiveSoftwareImage be PATCHed, as BMCs
	// with A/B flash do. The mockup has no Managers: this one is made up.
	KeepsPrevious bool

	mu       sync.Mutex
	docs     Mockup
	tasks    map[string]*task
	nextTask int
	installs int
	resets   int
	images   []string
	server   *httptest.Server
}

type task struct {
	polls  int
	target string
	ver    string
	result string
}

// New makes a BMC over a copy of the mockup.
func New(m Mockup) *BMC {
	b := &BMC{docs: Mockup{}, tasks: map[string]*task{}, nextTask: 1000}
	for k, v := range m {
		b.docs[k] = deepCopy(v)
	}
	return b
}

func deepCopy(v map[string]any) map[string]any {
	raw, _ := json.Marshal(v)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return out
}

// Start serves the BMC on a loopback port until the test ends; it returns the base URL.
func (b *BMC) Start(t testing.TB) string {
	if b.Multipart {
		b.docs["/redfish/v1/UpdateService"]["MultipartHttpPushUri"] = "/redfish/v1/UpdateService/upload"
	}
	if b.KeepsPrevious {
		inv := "/redfish/v1/UpdateService/FirmwareInventory/"
		prev := deepCopy(b.docs[inv+"BMC"])
		prev["Id"], prev["@odata.id"] = "BMC-previous", inv+"BMC-previous"
		b.docs[inv+"BMC-previous"] = prev
		b.docs["/redfish/v1/Managers"] = map[string]any{"@odata.id": "/redfish/v1/Managers",
			"Members": []any{map[string]any{"@odata.id": "/redfish/v1/Managers/BMC"}}}
		b.docs["/redfish/v1/Managers/BMC"] = map[string]any{"@odata.id": "/redfish/v1/Managers/BMC", "Id": "BMC",
			"Links": map[string]any{"ActiveSoftwareImage": map[string]any{"@odata.id": inv + "BMC"},
				"SoftwareImages": []any{map[string]any{"@odata.id": inv + "BMC"}, map[string]any{"@odata.id": inv + "BMC-previous"}}}}
	}
	b.server = httptest.NewServer(b)
	t.Cleanup(b.server.Close)
	return b.server.URL
}

// Close stops the BMC's server (to simulate a BMC going away).
func (b *BMC) Close() { b.server.Close() }

// Version is what the FirmwareInventory member id reports now.
func (b *BMC) Version(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	doc := b.docs["/redfish/v1/UpdateService/FirmwareInventory/"+id]
	if doc == nil {
		return ""
	}
	s, _ := doc["Version"].(string)
	return s
}

// SetVersion sets what a FirmwareInventory member reports.
func (b *BMC) SetVersion(id, v string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if doc := b.docs["/redfish/v1/UpdateService/FirmwareInventory/"+id]; doc != nil {
		doc["Version"] = v
	}
}

// Installs is how many updates the BMC accepted; Resets how many reset
// requests it got (srekit must never send one).
func (b *BMC) Installs() int { b.mu.Lock(); defer b.mu.Unlock(); return b.installs }
func (b *BMC) Resets() int   { b.mu.Lock(); defer b.mu.Unlock(); return b.resets }

// Images are the images received, in order.
func (b *BMC) Images() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.images...)
}

func (b *BMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.User != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != b.User || p != b.Password {
			writeError(w, http.StatusUnauthorized, "Base.1.0.InsufficientPrivilege", "authentication required")
			return
		}
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "/redfish" {
		writeJSON(w, 200, map[string]any{"v1": "/redfish/v1/"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		b.get(w, path)
	case http.MethodPatch:
		b.patch(w, r, path)
	case http.MethodPost:
		if strings.Contains(path, "Reset") {
			b.mu.Lock()
			b.resets++
			b.mu.Unlock()
			writeJSON(w, 204, nil)
			return
		}
		b.post(w, r, path)
	default:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.0.OperationNotAllowed", r.Method+" is not allowed")
	}
}

// ActiveImage is the image the Manager will run (KeepsPrevious only).
func (b *BMC) ActiveImage() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.docs["/redfish/v1/Managers/BMC"]
	if m == nil {
		return ""
	}
	links, _ := m["Links"].(map[string]any)
	act, _ := links["ActiveSoftwareImage"].(map[string]any)
	id, _ := act["@odata.id"].(string)
	return id
}

func (b *BMC) patch(w http.ResponseWriter, r *http.Request, path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.docs[path]
	if path != "/redfish/v1/Managers/BMC" || m == nil {
		writeError(w, http.StatusMethodNotAllowed, "Base.1.0.OperationNotAllowed", "PATCH is not allowed on "+path)
		return
	}
	var body struct {
		Links struct {
			ActiveSoftwareImage struct {
				ID string `json:"@odata.id"`
			}
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Links.ActiveSoftwareImage.ID == "" {
		writeError(w, 400, "Base.1.0.MalformedJSON", "want Links.ActiveSoftwareImage")
		return
	}
	if b.docs[body.Links.ActiveSoftwareImage.ID] == nil {
		writeError(w, 400, "Base.1.0.ResourceMissingAtURI", "no image "+body.Links.ActiveSoftwareImage.ID)
		return
	}
	m["Links"].(map[string]any)["ActiveSoftwareImage"] = map[string]any{"@odata.id": body.Links.ActiveSoftwareImage.ID}
	writeJSON(w, 200, m)
}

func (b *BMC) get(w http.ResponseWriter, path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.tasks[path]; ok {
		b.advance(path, t)
	}
	doc, ok := b.docs[path]
	if !ok {
		writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no resource at "+path)
		return
	}
	writeJSON(w, 200, doc)
}

// advance moves a task one poll forward; called with b.mu held.
func (b *BMC) advance(path string, t *task) {
	doc := b.docs[path]
	if doc["TaskState"] == "Completed" || doc["TaskState"] == "Exception" || t.result == "stall" {
		return
	}
	steps := b.Steps
	if steps <= 0 {
		steps = 3
	}
	t.polls++
	doc["TaskState"] = "Running"
	doc["PercentComplete"] = min(100, 100*t.polls/steps)
	if t.polls < steps {
		return
	}
	switch t.result {
	case "fail":
		doc["TaskState"], doc["TaskStatus"] = "Exception", "Critical"
		doc["Messages"] = []any{map[string]any{"MessageId": "Update.1.0.ApplyFailed", "Message": "Flash write verification failed on " + t.target, "Severity": "Critical"}}
	default:
		doc["TaskState"], doc["TaskStatus"] = "Completed", "OK"
		doc["Messages"] = []any{map[string]any{"MessageId": "Update.1.0.UpdateSuccessful", "Message": "Update of " + t.target + " succeeded", "Severity": "OK"}}
		if t.result == "ok" {
			if inv := b.docs["/redfish/v1/UpdateService/FirmwareInventory/"+t.target]; inv != nil {
				inv["Version"] = t.ver
			}
		}
	}
}

func (b *BMC) post(w http.ResponseWriter, r *http.Request, path string) {
	var image []byte
	var err error
	switch path {
	case "/FWUpdate":
		image, err = io.ReadAll(io.LimitReader(r.Body, 64<<20))
	case "/redfish/v1/UpdateService/upload":
		image, err = readMultipart(r)
	case "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate":
		var body struct {
			ImageURI string
		}
		if err = json.NewDecoder(r.Body).Decode(&body); err == nil {
			var resp *http.Response
			if resp, err = http.Get(body.ImageURI); err == nil {
				image, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("fetching %s: %s", body.ImageURI, resp.Status)
				}
			}
		}
	default:
		writeError(w, 404, "Base.1.0.ResourceMissingAtURI", "no action at "+path)
		return
	}
	if err != nil {
		writeError(w, 400, "Base.1.0.MalformedJSON", err.Error())
		return
	}
	target, ver, result, err := parseImage(string(image))
	if err != nil {
		writeError(w, 400, "Update.1.0.InvalidImage", err.Error())
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.docs["/redfish/v1/UpdateService/FirmwareInventory/"+target] == nil {
		writeError(w, 400, "Update.1.0.TargetNotFound", "no firmware "+target+" on this BMC")
		return
	}
	b.installs++
	b.images = append(b.images, string(image))
	b.nextTask++
	tp := fmt.Sprintf("/redfish/v1/TaskService/Tasks/%d", b.nextTask)
	doc := map[string]any{"@odata.id": tp, "@odata.type": "#Task.v1_7_4.Task", "Id": fmt.Sprint(b.nextTask),
		"Name": "Firmware update", "TaskState": "New", "TaskStatus": "OK", "PercentComplete": 0}
	b.docs[tp] = doc
	if coll := b.docs["/redfish/v1/TaskService/Tasks"]; coll != nil {
		members, _ := coll["Members"].([]any)
		coll["Members"] = append(members, map[string]any{"@odata.id": tp})
		coll["Members@odata.count"] = len(members) + 1
	}
	if b.Broken {
		result = "fail"
	}
	b.tasks[tp] = &task{target: target, ver: ver, result: result}
	w.Header().Set("Location", tp)
	writeJSON(w, http.StatusAccepted, doc)
}

func readMultipart(r *http.Request) ([]byte, error) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	sawParams := false
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("multipart: no UpdateFile part: %w", err)
		}
		switch p.FormName() {
		case "UpdateParameters":
			var v map[string]any
			if err := json.NewDecoder(p).Decode(&v); err != nil {
				return nil, fmt.Errorf("UpdateParameters: %w", err)
			}
			sawParams = true
		case "UpdateFile":
			if !sawParams {
				return nil, fmt.Errorf("UpdateParameters must come before UpdateFile")
			}
			return io.ReadAll(io.LimitReader(p, 64<<20))
		}
	}
}

func parseImage(s string) (target, ver, result string, err error) {
	f := strings.Split(strings.TrimSpace(s), ";")
	if len(f) == 0 || f[0] != "FAKEFW" {
		return "", "", "", fmt.Errorf("not a fake firmware image")
	}
	result = "ok"
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "target":
			target = v
		case "version":
			ver = v
		case "result":
			result = v
		}
	}
	if target == "" || ver == "" {
		return "", "", "", fmt.Errorf("image without target or version")
	}
	return target, ver, result, nil
}

// Image builds a fake firmware image.
func Image(target, version, result string) []byte {
	return []byte(fmt.Sprintf("FAKEFW;target=%s;version=%s;result=%s\n", target, version, result))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(code)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, code int, id, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": id, "message": msg,
		"@Message.ExtendedInfo": []any{map[string]any{"MessageId": id, "Message": msg}}}})
}
