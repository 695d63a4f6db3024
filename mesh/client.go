package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// FetchReport reads a running mesh's timings from its admin URL
// (http://127.0.0.1:9901 by default): what `srekit mesh status` and the
// /mesh page of `srekit serve` show.
func FetchReport(ctx context.Context, admin string) (*TimingsReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(admin, "/")+"/api/v1/mesh/timings", nil)
	if err != nil {
		return nil, fmt.Errorf("mesh admin URL %q: %w", admin, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mesh admin: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mesh admin %s: %s", admin, res.Status)
	}
	var rep TimingsReport
	if err := json.NewDecoder(io.LimitReader(res.Body, 32<<20)).Decode(&rep); err != nil {
		return nil, fmt.Errorf("mesh admin %s: bad timings JSON: %w", admin, err)
	}
	return &rep, nil
}
