// Package redfish is a small DMTF Redfish client for what firmware work
// needs: the service root, UpdateService, the FirmwareInventory collection,
// installing an image (SimpleUpdate, or an HTTP push, multipart or raw) and
// following the resulting task to its end.
//
// It is written over net/http and encoding/json rather than on gofish
// (github.com/stmcginnis/gofish), which is not available to this build; it
// reads only the properties srekit uses and ignores the rest, so it works
// with BMCs that implement older or newer schema versions.
package redfish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one BMC.
type Client struct {
	// BaseURL is the BMC's scheme and host ("https://10.0.0.5"); the
	// service root is BaseURL + "/redfish/v1/".
	BaseURL  string
	User     string
	Password string
	// HTTP is the client used; http.DefaultClient when nil. BMCs commonly
	// have self-signed certificates: pass a client with the BMC's CA.
	HTTP *http.Client
	// MaxBody caps any response read (8 MiB when zero).
	MaxBody int64
}

// Link is an @odata.id reference.
type Link struct {
	ID string `json:"@odata.id"`
}

// ServiceRoot is the part of /redfish/v1/ srekit reads.
type ServiceRoot struct {
	RedfishVersion string
	UUID           string
	UpdateService  Link
	Tasks          Link
	Managers       Link
}

// UpdateService is the part of the UpdateService resource srekit reads.
type UpdateService struct {
	ServiceEnabled         *bool
	HttpPushUri            string
	MultipartHttpPushUri   string
	HttpPushUriOptionsBusy bool
	FirmwareInventory      Link
	Actions                struct {
		SimpleUpdate *struct {
			Target string `json:"target"`
		} `json:"#UpdateService.SimpleUpdate"`
	}
}

// SoftwareInventory is one member of FirmwareInventory.
type SoftwareInventory struct {
	ODataID                string `json:"@odata.id"`
	Id                     string
	Name                   string
	Manufacturer           string
	Version                string
	ReleaseDate            string
	SoftwareId             string
	LowestSupportedVersion string
	Updateable             bool
	Status                 struct{ State, Health string }
}

// Task is a Redfish task: the progress of an asynchronous operation.
type Task struct {
	ODataID         string `json:"@odata.id"`
	Id              string
	TaskState       string // New Starting Running Suspended Interrupted Pending Stopping Completed Killed Exception Service Cancelling Cancelled
	TaskStatus      string // OK Warning Critical
	PercentComplete *int
	Messages        []struct {
		MessageId string
		Message   string
		Severity  string
	}
}

// Done reports whether the task reached a final state.
func (t Task) Done() bool {
	switch t.TaskState {
	case "Completed", "Killed", "Exception", "Cancelled":
		return true
	}
	return false
}

// OK reports whether a finished task succeeded.
func (t Task) OK() bool {
	return t.TaskState == "Completed" && (t.TaskStatus == "" || t.TaskStatus == "OK" || t.TaskStatus == "Warning")
}

// Summary is one line about the task's last message.
func (t Task) Summary() string {
	s := t.TaskState
	if t.TaskStatus != "" {
		s += "/" + t.TaskStatus
	}
	if n := len(t.Messages); n > 0 {
		s += ": " + t.Messages[n-1].Message
	}
	return s
}

// Error is a non-2xx answer, with the Redfish error message when there is one.
type Error struct {
	Status  int
	Method  string
	URL     string
	Message string
}

func (e *Error) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s %s: %d: %s", e.Method, e.URL, e.Status, e.Message)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
}

func (c *Client) httpc() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) abs(path string) (string, error) {
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path, nil
	}
	base, err := url.Parse(c.BaseURL)
	if err != nil || base.Host == "" {
		return "", fmt.Errorf("BMC address %q is not a URL", c.BaseURL)
	}
	ref, err := url.Parse(path)
	if err != nil {
		return "", fmt.Errorf("bad Redfish path %q", path)
	}
	return base.ResolveReference(ref).String(), nil
}

// do sends a request and returns the response with the body read.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, []byte, error) {
	u, err := c.abs(path)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	resp, err := c.httpc().Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	limit := c.MaxBody
	if limit <= 0 {
		limit = 8 << 20
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%s %s: response over %d bytes", method, u, limit)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode, Method: method, URL: u}
		var eb struct {
			Error struct {
				Message  string `json:"message"`
				Extended []struct {
					Message string
				} `json:"@Message.ExtendedInfo"`
			} `json:"error"`
		}
		if json.Unmarshal(b, &eb) == nil {
			e.Message = eb.Error.Message
			if len(eb.Error.Extended) > 0 && eb.Error.Extended[0].Message != "" {
				e.Message = eb.Error.Extended[0].Message
			}
		}
		return resp, b, e
	}
	return resp, b, nil
}

// Get reads the resource at path into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	_, b, err := c.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: bad JSON: %w", path, err)
	}
	return nil
}

// ServiceRoot reads /redfish/v1/.
func (c *Client) ServiceRoot(ctx context.Context) (ServiceRoot, error) {
	var r ServiceRoot
	err := c.Get(ctx, "/redfish/v1/", &r)
	return r, err
}

// UpdateService reads the UpdateService the service root links to.
func (c *Client) UpdateService(ctx context.Context) (UpdateService, error) {
	root, err := c.ServiceRoot(ctx)
	if err != nil {
		return UpdateService{}, err
	}
	if root.UpdateService.ID == "" {
		return UpdateService{}, errors.New("this BMC has no UpdateService")
	}
	var u UpdateService
	err = c.Get(ctx, root.UpdateService.ID, &u)
	return u, err
}

// FirmwareInventory reads every member of the FirmwareInventory collection.
func (c *Client) FirmwareInventory(ctx context.Context) ([]SoftwareInventory, error) {
	us, err := c.UpdateService(ctx)
	if err != nil {
		return nil, err
	}
	if us.FirmwareInventory.ID == "" {
		return nil, errors.New("this BMC's UpdateService has no FirmwareInventory")
	}
	var coll struct{ Members []Link }
	if err := c.Get(ctx, us.FirmwareInventory.ID, &coll); err != nil {
		return nil, err
	}
	out := make([]SoftwareInventory, 0, len(coll.Members))
	for _, m := range coll.Members {
		var si SoftwareInventory
		if err := c.Get(ctx, m.ID, &si); err != nil {
			return nil, err
		}
		out = append(out, si)
	}
	return out, nil
}

// Manager is the part of a Manager (the BMC itself) srekit reads: which
// firmware image is active, and which images it keeps.
type Manager struct {
	ODataID string `json:"@odata.id"`
	Id      string
	Links   struct {
		ActiveSoftwareImage Link
		SoftwareImages      []Link
	}
}

// Managers reads every member of the service root's Managers collection.
func (c *Client) Managers(ctx context.Context) ([]Manager, error) {
	root, err := c.ServiceRoot(ctx)
	if err != nil {
		return nil, err
	}
	if root.Managers.ID == "" {
		return nil, nil
	}
	var coll struct{ Members []Link }
	if err := c.Get(ctx, root.Managers.ID, &coll); err != nil {
		return nil, err
	}
	var out []Manager
	for _, m := range coll.Members {
		var mg Manager
		if err := c.Get(ctx, m.ID, &mg); err != nil {
			return nil, err
		}
		if mg.ODataID == "" {
			mg.ODataID = m.ID
		}
		out = append(out, mg)
	}
	return out, nil
}

// SetActiveImage selects which kept image a manager runs after its next
// restart (Manager.Links.ActiveSoftwareImage). It does not restart anything.
func (c *Client) SetActiveImage(ctx context.Context, manager, image string) error {
	b, _ := json.Marshal(map[string]any{"Links": map[string]any{"ActiveSoftwareImage": map[string]string{"@odata.id": image}}})
	_, _, err := c.do(ctx, http.MethodPatch, manager, bytes.NewReader(b), "application/json")
	return err
}

// RunningTasks lists the tasks of the TaskService that have not finished:
// after a crash, an update in flight shows up here.
func (c *Client) RunningTasks(ctx context.Context) ([]Task, error) {
	root, err := c.ServiceRoot(ctx)
	if err != nil {
		return nil, err
	}
	if root.Tasks.ID == "" {
		return nil, nil
	}
	var ts struct{ Tasks Link }
	if err := c.Get(ctx, root.Tasks.ID, &ts); err != nil {
		return nil, err
	}
	if ts.Tasks.ID == "" {
		return nil, nil
	}
	var coll struct{ Members []Link }
	if err := c.Get(ctx, ts.Tasks.ID, &coll); err != nil {
		return nil, err
	}
	var out []Task
	for _, m := range coll.Members {
		var t Task
		if err := c.Get(ctx, m.ID, &t); err != nil {
			var re *Error
			if errors.As(err, &re) && re.Status == http.StatusNotFound {
				continue // removed since the listing
			}
			return nil, err
		}
		if t.ODataID == "" {
			t.ODataID = m.ID
		}
		if !t.Done() {
			out = append(out, t)
		}
	}
	return out, nil
}

// SimpleUpdate asks the BMC to fetch and install the image at imageURI, on
// the inventory members named by targets (all applicable when empty). It
// returns the URI to follow with WaitTask.
func (c *Client) SimpleUpdate(ctx context.Context, imageURI string, targets []string) (string, error) {
	us, err := c.UpdateService(ctx)
	if err != nil {
		return "", err
	}
	if us.Actions.SimpleUpdate == nil || us.Actions.SimpleUpdate.Target == "" {
		return "", errors.New("this BMC does not offer UpdateService.SimpleUpdate")
	}
	body := map[string]any{"ImageURI": imageURI}
	if u, err := url.Parse(imageURI); err == nil && u.Scheme != "" {
		body["TransferProtocol"] = strings.ToUpper(u.Scheme)
	}
	if len(targets) > 0 {
		body["Targets"] = targets
	}
	b, _ := json.Marshal(body)
	resp, rb, err := c.do(ctx, http.MethodPost, us.Actions.SimpleUpdate.Target, bytes.NewReader(b), "application/json")
	if err != nil {
		return "", err
	}
	return taskURI(resp, rb)
}

// Push uploads an image and installs it: multipart to MultipartHttpPushUri
// when the BMC has one (with the targets in UpdateParameters), otherwise a
// raw POST to HttpPushUri. It returns the URI to follow with WaitTask.
func (c *Client) Push(ctx context.Context, filename string, image []byte, targets []string) (string, error) {
	us, err := c.UpdateService(ctx)
	if err != nil {
		return "", err
	}
	if us.HttpPushUriOptionsBusy {
		return "", errors.New("the BMC's push URI is busy with another update")
	}
	var resp *http.Response
	var rb []byte
	switch {
	case us.MultipartHttpPushUri != "":
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		params := map[string]any{"@Redfish.OperationApplyTime": "Immediate"}
		if len(targets) > 0 {
			params["Targets"] = targets
		}
		pb, _ := json.Marshal(params)
		pw, _ := mw.CreatePart(map[string][]string{
			"Content-Disposition": {`form-data; name="UpdateParameters"`},
			"Content-Type":        {"application/json"},
		})
		pw.Write(pb)
		fw, _ := mw.CreatePart(map[string][]string{
			"Content-Disposition": {fmt.Sprintf(`form-data; name="UpdateFile"; filename=%q`, filename)},
			"Content-Type":        {"application/octet-stream"},
		})
		fw.Write(image)
		mw.Close()
		resp, rb, err = c.do(ctx, http.MethodPost, us.MultipartHttpPushUri, &buf, mw.FormDataContentType())
	case us.HttpPushUri != "":
		resp, rb, err = c.do(ctx, http.MethodPost, us.HttpPushUri, bytes.NewReader(image), "application/octet-stream")
	default:
		return "", errors.New("this BMC offers no push URI (HttpPushUri or MultipartHttpPushUri)")
	}
	if err != nil {
		return "", err
	}
	return taskURI(resp, rb)
}

// taskURI finds what to follow after an update request: the Location header
// (a task monitor) or the @odata.id of a Task in the body. An empty string
// with no error means the BMC finished synchronously.
func taskURI(resp *http.Response, body []byte) (string, error) {
	if loc := resp.Header.Get("Location"); loc != "" {
		return loc, nil
	}
	var t Task
	if json.Unmarshal(body, &t) == nil && t.ODataID != "" {
		return t.ODataID, nil
	}
	if resp.StatusCode == http.StatusAccepted {
		return "", errors.New("the BMC accepted the update but named no task to follow")
	}
	return "", nil
}

// WaitOptions tune WaitTask.
type WaitOptions struct {
	Poll time.Duration // between polls; 2s when zero
	// Stall is how long the task may show no change (state, percentage,
	// messages) before WaitTask gives up; 10 minutes when zero. Giving up
	// never resets the BMC: a flash in progress must not be interrupted.
	Stall time.Duration
	// Progress, when set, is called with every task state seen.
	Progress func(Task)
}

// ErrStalled is returned (wrapped) when a task shows no progress for Stall.
var ErrStalled = errors.New("task stalled")

// WaitTask polls a task (or task monitor) until it finishes, the context
// ends, or it stalls. It returns the final task; a task that finished
// unsuccessfully is returned with an error.
func (c *Client) WaitTask(ctx context.Context, uri string, o WaitOptions) (Task, error) {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Stall <= 0 {
		o.Stall = 10 * time.Minute
	}
	var last string
	changed := time.Now()
	for {
		_, b, err := c.do(ctx, http.MethodGet, uri, nil, "")
		if err != nil {
			return Task{}, err
		}
		var t Task
		if err := json.Unmarshal(b, &t); err != nil {
			return Task{}, fmt.Errorf("task %s: bad JSON: %w", uri, err)
		}
		if o.Progress != nil {
			o.Progress(t)
		}
		if t.Done() {
			if !t.OK() {
				return t, fmt.Errorf("task %s ended %s", uri, t.Summary())
			}
			return t, nil
		}
		pct := -1
		if t.PercentComplete != nil {
			pct = *t.PercentComplete
		}
		sig := fmt.Sprintf("%s|%d|%d", t.TaskState, pct, len(t.Messages))
		if sig != last {
			last, changed = sig, time.Now()
		} else if time.Since(changed) > o.Stall {
			return t, fmt.Errorf("task %s at %s, %d%%, unchanged for %s: %w (the BMC was not reset)", uri, t.TaskState, pct, o.Stall, ErrStalled)
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}
