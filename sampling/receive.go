package sampling

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed OTLP/gRPC
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// DecodeOTLP checks an OTLP/HTTP trace export body, "proto" (binary
// protobuf) or "json" (OTLP JSON), and returns it as protobuf, the form the
// sampler buffers. Protobuf is validated and returned as it is (the
// sampler never decodes it into pdata); JSON is decoded and re-encoded. It
// is the one decode path of both receivers.
func DecodeOTLP(body []byte, encoding string) ([]byte, error) {
	if encoding == "json" {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalJSON(body); err != nil {
			return nil, fmt.Errorf("malformed OTLP json: %w", err)
		}
		pb, err := req.MarshalProto()
		if err != nil {
			return nil, fmt.Errorf("malformed OTLP json: %w", err)
		}
		return pb, nil
	}
	if err := requestMsg.validate(body, 0); err != nil {
		return nil, fmt.Errorf("malformed OTLP proto: %w", err)
	}
	return body, nil
}

// consume takes a body from a receiver.
func (s *Sampler) consume(body []byte, encoding string) error {
	if encoding == "json" {
		pb, err := DecodeOTLP(body, encoding)
		if err != nil {
			return err
		}
		body = pb
	}
	// ConsumeRequest validates protobuf as it splits it.
	if err := s.ConsumeRequest(body); err != nil {
		return fmt.Errorf("malformed OTLP %s: %w", encoding, err)
	}
	return nil
}

// ---- gRPC ----

// rawMsg carries an undecoded request (or an encoded response) through
// gRPC, so that the sampler decodes requests itself and can answer a
// malformed one with InvalidArgument (gRPC's own codec would say Internal).
// An unmarshalled message holds a reference to a pooled buffer: free it
// once the data is no longer needed (the sampler copies what it keeps).
type rawMsg struct {
	data []byte
	buf  mem.Buffer
}

func (m *rawMsg) free() {
	if m.buf != nil {
		m.buf.Free()
		m.buf, m.data = nil, nil
	}
}

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.data)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	m.buf = data.MaterializeToBuffer(mem.DefaultBufferPool())
	m.data = m.buf.ReadOnlyData()
	return nil
}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in rawMsg
			if err := dec(&in); err != nil {
				return nil, err
			}
			defer in.free()
			return srv.(*Sampler).exportGRPC(ctx, in.data)
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

func (s *Sampler) exportGRPC(_ context.Context, body []byte) (*rawMsg, error) {
	if err := s.consume(body, "proto"); err != nil {
		s.malformedGRPC.Add(1)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	out, _ := ptraceotlp.NewExportResponse().MarshalProto()
	return &rawMsg{data: out}, nil
}

// GRPCServer returns a gRPC server with the OTLP trace service.
func (s *Sampler) GRPCServer() *grpc.Server {
	gs := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.MaxRecvMsgSize(int(s.cfg.Receivers.MaxRequestBytes)))
	gs.RegisterService(&traceServiceDesc, s)
	return gs
}

// ---- HTTP ----

// HTTPHandler serves OTLP/HTTP: POST /v1/traces with protobuf or JSON,
// optionally gzip-compressed. Malformed bodies get 400 with a
// google.rpc.Status in the request's encoding.
func (s *Sampler) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", s.serveHTTP)
	return mux
}

func (s *Sampler) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "OTLP/HTTP wants POST", http.StatusMethodNotAllowed)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var enc string
	switch ct {
	case "application/x-protobuf", "application/protobuf":
		enc = "proto"
	case "application/json":
		enc = "json"
	default:
		s.malformedHTTP.Add(1)
		http.Error(w, fmt.Sprintf("unsupported content type %q: want application/x-protobuf or application/json", ct), http.StatusUnsupportedMediaType)
		return
	}
	limit := int64(s.cfg.Receivers.MaxRequestBytes)
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			s.httpError(w, enc, http.StatusBadRequest, "bad gzip body: "+err.Error())
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, limit+1)
	}
	data, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || int64(len(data)) > limit {
		s.httpError(w, enc, http.StatusRequestEntityTooLarge, fmt.Sprintf("request over %d bytes", limit))
		return
	}
	if err != nil {
		s.httpError(w, enc, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if err := s.consume(data, enc); err != nil {
		s.httpError(w, enc, http.StatusBadRequest, err.Error())
		return
	}
	resp := ptraceotlp.NewExportResponse()
	var out []byte
	if enc == "json" {
		out, _ = resp.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
	} else {
		out, _ = resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.Write(out)
}

func (s *Sampler) httpError(w http.ResponseWriter, enc string, code int, msg string) {
	s.malformedHTTP.Add(1)
	st := status.New(codes.InvalidArgument, msg).Proto()
	if enc == "json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, "{\"code\":%d,\"message\":%q}\n", codes.InvalidArgument, msg)
		return
	}
	b, _ := proto.Marshal(st)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(code)
	w.Write(b)
}

// Serve runs the receivers on the given listeners (either may be nil) until
// ctx ends.
func (s *Sampler) Serve(ctx context.Context, grpcLn, httpLn net.Listener) error {
	errc := make(chan error, 2)
	var gs *grpc.Server
	var hs *http.Server
	if grpcLn != nil {
		gs = s.GRPCServer()
		go func() { errc <- gs.Serve(grpcLn) }()
	}
	if httpLn != nil {
		hs = &http.Server{Handler: s.HTTPHandler()}
		go func() { errc <- hs.Serve(httpLn) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if gs != nil {
		gs.GracefulStop()
	}
	if hs != nil {
		hs.Shutdown(context.Background())
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
