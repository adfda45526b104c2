package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// otelEnv lists every variable these tests set, so that each case starts
// from a clean environment.
var otelEnv = []string{EnvExporter, EnvSampler, "OTEL_TRACES_SAMPLER_ARG", EnvServiceName, EnvProtocol, EnvTracesProtocol,
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_RESOURCE_ATTRIBUTES"}

func setEnv(t *testing.T, kv map[string]string) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, kv[k])
	}
}

// consoleSpan is the part of stdouttrace's JSON these tests read.
type consoleSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Resource    []struct {
		Key   string
		Value struct{ Value any }
	}
}

func readConsole(t *testing.T, b []byte) []consoleSpan {
	t.Helper()
	var out []consoleSpan
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var s consoleSpan
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("console output is not a stream of JSON spans: %v: %s", err, b)
		}
		out = append(out, s)
	}
	return out
}

func (s consoleSpan) resource(key string) any {
	for _, kv := range s.Resource {
		if kv.Key == key {
			return kv.Value.Value
		}
	}
	return nil
}

// TestTracesExporterEnv: OTEL_TRACES_EXPORTER picks the exporter; every
// configuration gives spans ids, only an exporter records them.
func TestTracesExporterEnv(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		recording bool
		console   []string // span names written to the console writer
		service   string   // service.name on the console spans
	}{
		{name: "default is none", env: nil},
		{name: "none", env: map[string]string{EnvExporter: "none"}},
		{name: "console", env: map[string]string{EnvExporter: "console"}, recording: true, console: []string{"child", "request"}, service: "parcours"},
		{name: "stdout alias, service name from the environment", env: map[string]string{EnvExporter: "stdout", EnvServiceName: "hub-a"},
			recording: true, console: []string{"child", "request"}, service: "hub-a"},
		{name: "sampler always_off records nothing", env: map[string]string{EnvExporter: "console", EnvSampler: "always_off"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			var out bytes.Buffer
			tel, err := New(Options{Console: &out})
			if err != nil {
				t.Fatal(err)
			}
			ctx, span := tel.Tracer().Start(context.Background(), "request")
			_, child := tel.Tracer().Start(ctx, "child")
			if !span.SpanContext().IsValid() || !child.SpanContext().IsValid() {
				t.Errorf("span contexts %v, %v: want valid ids whatever the exporter", span.SpanContext(), child.SpanContext())
			}
			if child.SpanContext().TraceID() != span.SpanContext().TraceID() {
				t.Error("the child span is not in its parent's trace")
			}
			if got := span.IsRecording(); got != tt.recording {
				t.Errorf("recording %v, want %v", got, tt.recording)
			}
			child.End()
			span.End()
			if err := tel.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			spans := readConsole(t, out.Bytes())
			var names []string
			for _, s := range spans {
				names = append(names, s.Name)
				if s.SpanContext.TraceID != span.SpanContext().TraceID().String() {
					t.Errorf("console span %s has trace id %s, want %s", s.Name, s.SpanContext.TraceID, span.SpanContext().TraceID())
				}
				if got := s.resource("service.name"); got != tt.service {
					t.Errorf("console span %s: service.name %v, want %s", s.Name, got, tt.service)
				}
			}
			if diff := cmp.Diff(tt.console, names); diff != "" {
				t.Errorf("console spans (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTracesConfigErrors: a misspelt variable is refused, not ignored.
func TestTracesConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // in the error
	}{
		{"unknown exporter", map[string]string{EnvExporter: "zipkin"}, `OTEL_TRACES_EXPORTER="zipkin": unknown exporter "zipkin"`},
		{"unknown exporter in a list", map[string]string{EnvExporter: "console,jaeger"}, `unknown exporter "jaeger"`},
		{"unsupported OTLP protocol", map[string]string{EnvExporter: "otlp", EnvProtocol: "http/json"}, `OTLP protocol "http/json"`},
		{"unknown sampler", map[string]string{EnvExporter: "console", EnvSampler: "sometimes"}, `OTEL_TRACES_SAMPLER="sometimes": unknown sampler`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			tel, err := New(Options{Console: io.Discard})
			if err == nil {
				tel.Shutdown(context.Background())
				t.Fatalf("New succeeded, want an error with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestOTLPHTTPExport: with OTEL_TRACES_EXPORTER=otlp (http/protobuf, the
// default protocol) the spans reach the collector named by
// OTEL_EXPORTER_OTLP_ENDPOINT when the provider shuts down.
func TestOTLPHTTPExport(t *testing.T) {
	var posts atomic.Int32
	var path, contentType atomic.Value
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		contentType.Store(r.Header.Get("Content-Type"))
		_, _ = io.Copy(io.Discard, r.Body)
		posts.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	setEnv(t, map[string]string{EnvExporter: "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL})
	tel, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.Tracer().Start(context.Background(), "request")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no export reached the collector")
	}
	if got, want := path.Load(), "/v1/traces"; got != want {
		t.Errorf("export to %v, want %s", got, want)
	}
	if got, want := contentType.Load(), "application/x-protobuf"; got != want {
		t.Errorf("Content-Type %v, want %s", got, want)
	}
}

// TestSpanProcessorOption: an injected processor records spans even with
// the exporter none, and an incoming traceparent's trace id is kept.
func TestSpanProcessorOption(t *testing.T) {
	setEnv(t, nil)
	rec := tracetest.NewSpanRecorder()
	tel, err := New(Options{SpanProcessors: []SpanProcessor{rec}})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := tel.Propagator().Extract(context.Background(), propagation.HeaderCarrier{"Traceparent": []string{incoming}})
	_, span := tel.Tracer().Start(ctx, "request", trace.WithSpanKind(trace.SpanKindServer))
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans recorded, want 1", len(ended))
	}
	got := ended[0]
	if got.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || got.Parent().SpanID().String() != "00f067aa0ba902b7" || !got.Parent().IsRemote() {
		t.Errorf("span %v with parent %v: want the incoming trace and parent", got.SpanContext(), got.Parent())
	}
}

// TestLogHandler: records logged with a span's context carry its ids;
// others do not; wrapping twice adds them once.
func TestLogHandler(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 1}, SpanID: trace.SpanID{0x00, 0xf0, 2}, TraceFlags: trace.FlagsSampled,
	})
	spanCtx := trace.ContextWithSpanContext(context.Background(), sc)
	tests := []struct {
		name   string
		log    func(*slog.Logger)
		wantID bool
	}{
		{"ErrorContext with a span", func(l *slog.Logger) { l.ErrorContext(spanCtx, "boom", "k", "v") }, true},
		{"With attrs then InfoContext", func(l *slog.Logger) { l.With("a", 1).InfoContext(spanCtx, "boom") }, true},
		{"Error without a context", func(l *slog.Logger) { l.Error("boom") }, false},
		{"ErrorContext without a span", func(l *slog.Logger) { l.ErrorContext(context.Background(), "boom") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := slog.New(LogHandler(LogHandler(slog.NewJSONHandler(&buf, nil))))
			tt.log(l)
			sc := bufio.NewScanner(&buf)
			lines := 0
			for sc.Scan() {
				lines++
				if n := strings.Count(sc.Text(), `"trace_id"`); tt.wantID && n != 1 || !tt.wantID && n != 0 {
					t.Errorf("%d trace_id in %s", n, sc.Text())
				}
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatal(err)
				}
				if tt.wantID {
					want := map[string]any{"trace_id": "4bf90100000000000000000000000000", "span_id": "00f0020000000000"}
					got := map[string]any{"trace_id": m["trace_id"], "span_id": m["span_id"]}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("ids (-want +got):\n%s", diff)
					}
				}
			}
			if lines != 1 {
				t.Errorf("%d lines logged, want 1", lines)
			}
		})
	}
}
