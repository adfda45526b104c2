package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Options tune New. The zero value reads everything from the environment.
type Options struct {
	// ServiceVersion is the service.version resource attribute ("" leaves
	// it out).
	ServiceVersion string
	// Console is where the console exporter writes its JSON spans
	// (default os.Stdout).
	Console io.Writer
	// SpanProcessors are added to the tracer provider whatever
	// OTEL_TRACES_EXPORTER says, and make spans recorded even with the
	// exporter "none" (tests: an in-memory recorder).
	SpanProcessors []SpanProcessor
}

// SpanProcessor receives spans as they start and end
// (go.opentelemetry.io/otel/sdk/trace.SpanProcessor; tests inject
// tracetest.SpanRecorder).
type SpanProcessor = sdktrace.SpanProcessor

// Telemetry owns the tracer and meter providers and the /metrics handler.
type Telemetry struct {
	provider *sdkmetric.MeterProvider
	tracing  *sdktrace.TracerProvider
	tracer   trace.Tracer
	handler  http.Handler
	Instruments
	// The attribute sets of Requests {route, method, status}, Latency
	// {route, method} and Decisions {outcome, purpose, actor_type},
	// memoised.
	RequestAttrs, LatencyAttrs, DecisionAttrs *AttrSet
}

// Instruments are the hub's metrics.
type Instruments struct {
	Requests    metric.Int64Counter     // parcours.http.requests {route, method, status}
	Latency     metric.Float64Histogram // parcours.http.duration (s) {route, method}
	Decisions   metric.Int64Counter     // parcours.policy.decisions {outcome, purpose, actor_type}
	Alerts      metric.Int64Counter     // parcours.policy.alerts {purpose, actor_type}
	CommitBatch metric.Int64Histogram   // parcours.store.commit.batch (writes per commit)
	AuditBatch  metric.Int64Histogram   // parcours.audit.commit.records (audit records per journal group)
	IngestRows  metric.Int64Counter     // parcours.ingest.rows {source, outcome}
}

// New builds the tracer provider (see Options and the package doc for the
// environment it reads) and a meter provider exporting to its own
// Prometheus registry. It sets the W3C trace-context and baggage
// propagators as the global ones; the tracer provider stays the hub's own
// (Tracer), so that several hubs in one process do not share it.
func New(opt Options) (*Telemetry, error) {
	res, err := newResource(opt.ServiceVersion)
	if err != nil {
		return nil, err
	}
	tp, err := newTracerProvider(res, opt)
	if err != nil {
		return nil, err
	}
	setPropagators()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		_ = tp.Shutdown(context.Background())
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	m := mp.Meter("parcours")
	t := &Telemetry{provider: mp, tracing: tp, tracer: tp.Tracer(instrumentationScope), handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		RequestAttrs: NewAttrSet("route", "method", "status"), LatencyAttrs: NewAttrSet("route", "method"), DecisionAttrs: NewAttrSet("outcome", "purpose", "actor_type")}
	var errs [7]error
	t.Requests, errs[0] = m.Int64Counter("parcours.http.requests", metric.WithDescription("HTTP requests by route template, method and status"))
	t.Latency, errs[1] = m.Float64Histogram("parcours.http.duration", metric.WithUnit("s"), metric.WithDescription("HTTP request latency"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
	t.Decisions, errs[2] = m.Int64Counter("parcours.policy.decisions", metric.WithDescription("policy decisions by outcome, purpose and actor type"))
	t.Alerts, errs[3] = m.Int64Counter("parcours.policy.alerts", metric.WithDescription("security alerts: attempts at forbidden purposes (pricing, marketing, per-patient data for insurers)"))
	t.CommitBatch, errs[4] = m.Int64Histogram("parcours.store.commit.batch", metric.WithDescription("write functions sharing one group commit"),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256))
	t.AuditBatch, errs[5] = m.Int64Histogram("parcours.audit.commit.records", metric.WithDescription("audit records made durable by one group commit (one journal fdatasync)"),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
	t.IngestRows, errs[6] = m.Int64Counter("parcours.ingest.rows", metric.WithDescription("native rows read by $ingest, by source and outcome of the mapping (mapped, rejected)"))
	if err := errors.Join(errs[:]...); err != nil {
		_ = tp.Shutdown(context.Background())
		return nil, err
	}
	return t, nil
}

// Handler serves /metrics.
func (t *Telemetry) Handler() http.Handler { return t.handler }

// Tracer is the hub's tracer.
func (t *Telemetry) Tracer() trace.Tracer { return t.tracer }

// Propagator reads and writes W3C traceparent, tracestate and baggage.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return propagator }

// Shutdown flushes pending spans to the exporters and stops both
// providers; ctx bounds the wait (an unreachable OTLP collector).
func (t *Telemetry) Shutdown(ctx context.Context) error {
	return errors.Join(t.tracing.Shutdown(ctx), t.provider.Shutdown(ctx))
}

// Attrs is a shorthand for attribute sets.
func Attrs(kv ...string) metric.MeasurementOption {
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	return metric.WithAttributes(attrs...)
}
