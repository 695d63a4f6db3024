package sampling

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Exporter sends kept spans over OTLP (gRPC or HTTP protobuf) from a
// bounded queue: when the queue is full new batches are dropped (and
// counted) rather than growing memory; failed exports are retried with
// exponential backoff while the error is transient, up to a time limit.
type Exporter struct {
	cfg    ExporterConfig
	log    *slog.Logger
	queue  chan batch
	send   func(ctx context.Context, body []byte) error
	closer func() error
	wg     sync.WaitGroup
	stop   chan struct{}
	once   sync.Once

	spansSent, batchesSent, retries atomic.Int64
	droppedQueueFull, droppedFailed atomic.Int64
	lastError                       atomic.Pointer[string]
}

// ExporterStatus is the exporter's counters.
type ExporterStatus struct {
	Endpoint         string `json:"endpoint"`
	Queued           int    `json:"queued_batches"`
	Capacity         int    `json:"queue_capacity"`
	SpansSent        int64  `json:"spans_sent"`
	Retries          int64  `json:"retries"`
	DroppedQueueFull int64  `json:"dropped_spans_queue_full"`
	DroppedFailed    int64  `json:"dropped_spans_export_failed"`
	LastError        string `json:"last_error,omitempty"`
}

// NewExporter connects (lazily) to cfg.Endpoint. An empty endpoint gives an
// exporter that counts and discards.
func NewExporter(cfg ExporterConfig, log *slog.Logger) (*Exporter, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	e := &Exporter{cfg: cfg, log: log, queue: make(chan batch, cfg.QueueSize), stop: make(chan struct{})}
	switch {
	case cfg.Endpoint == "":
		e.send = func(context.Context, []byte) error { return nil }
	case cfg.Protocol == "http":
		client := &http.Client{Timeout: cfg.Timeout}
		e.send = func(ctx context.Context, body []byte) error { return e.sendHTTP(ctx, client, body) }
	default:
		conn, err := grpc.NewClient(cfg.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("exporter endpoint %q: %w", cfg.Endpoint, err)
		}
		e.closer = conn.Close
		e.send = func(ctx context.Context, body []byte) error {
			// The body is already an encoded request: send it as it is.
			var resp rawMsg
			err := conn.Invoke(ctx, exportMethod, &rawMsg{data: body}, &resp, grpc.ForceCodecV2(rawCodec{}))
			resp.free()
			return err
		}
	}
	return e, nil
}

// Start runs the export workers.
func (e *Exporter) Start() {
	for i := 0; i < e.cfg.Workers; i++ {
		e.wg.Add(1)
		go e.worker()
	}
}

// batch is one encoded export request and its span count.
type batch struct {
	body  []byte
	spans int
}

// exportMethod is the OTLP trace service's method.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// Emit queues an encoded export request of spans spans without blocking;
// a full queue drops it. It is the sampler's Emitter.
func (e *Exporter) Emit(body []byte, spans int) {
	select {
	case e.queue <- batch{body, spans}:
	default:
		e.droppedQueueFull.Add(int64(spans))
	}
}

// EmitTraces queues decoded traces (encoding them).
func (e *Exporter) EmitTraces(td ptrace.Traces) {
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		e.droppedFailed.Add(int64(td.SpanCount()))
		return
	}
	e.Emit(body, td.SpanCount())
}

// Close stops accepting batches, exports what is queued (retrying no longer
// than the retry limit) and closes the connection.
func (e *Exporter) Close() {
	e.once.Do(func() {
		close(e.stop)
		e.wg.Wait()
		// Export what the workers left behind, once each.
		for {
			select {
			case td := <-e.queue:
				e.export(td, false)
				continue
			default:
			}
			break
		}
		if e.closer != nil {
			e.closer()
		}
	})
}

func (e *Exporter) worker() {
	defer e.wg.Done()
	for {
		select {
		case <-e.stop:
			return
		case td := <-e.queue:
			e.export(td, true)
		}
	}
}

// permanentError is an export error that retrying will not fix.
type permanentError struct{ error }

func (e *Exporter) export(bt batch, retry bool) {
	n := int64(bt.spans)
	backoff := e.cfg.Retry.Initial
	if backoff <= 0 {
		backoff = 100 * time.Millisecond
	}
	deadline := time.Now().Add(e.cfg.Retry.MaxElapsed)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout)
		err := e.send(ctx, bt.body)
		cancel()
		if err == nil {
			e.spansSent.Add(n)
			e.batchesSent.Add(1)
			return
		}
		msg := err.Error()
		e.lastError.Store(&msg)
		var perm permanentError
		if !retry || errors.As(err, &perm) || !retryableGRPC(err) || time.Now().Add(backoff).After(deadline) {
			e.droppedFailed.Add(n)
			e.log.Warn("export failed, spans dropped", "spans", n, "err", err)
			return
		}
		e.retries.Add(1)
		select {
		case <-time.After(backoff):
		case <-e.stop:
			retry = false // one last try at shutdown
		}
		backoff *= 2
		if max := e.cfg.Retry.Max; max > 0 && backoff > max {
			backoff = max
		}
	}
}

// retryableGRPC: the codes the OTLP specification lists as retryable; any
// non-gRPC error (connection refused...) is retryable too.
func retryableGRPC(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return true
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange,
		codes.Unavailable, codes.DataLoss, codes.ResourceExhausted:
		return true
	}
	return false
}

func (e *Exporter) sendHTTP(ctx context.Context, client *http.Client, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.Endpoint, bytes.NewReader(body))
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range e.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == 429 || resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 && s < 60 {
			time.Sleep(time.Duration(s) * time.Second)
		}
		return fmt.Errorf("export: HTTP %s", resp.Status)
	default:
		return permanentError{fmt.Errorf("export: HTTP %s", resp.Status)}
	}
}

// Status reads the counters.
func (e *Exporter) Status() ExporterStatus {
	s := ExporterStatus{Endpoint: e.cfg.Endpoint, Queued: len(e.queue), Capacity: cap(e.queue),
		SpansSent: e.spansSent.Load(), Retries: e.retries.Load(),
		DroppedQueueFull: e.droppedQueueFull.Load(), DroppedFailed: e.droppedFailed.Load()}
	if p := e.lastError.Load(); p != nil {
		s.LastError = *p
	}
	return s
}
