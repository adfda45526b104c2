// Package telemetry sets up OpenTelemetry metrics for Parcours and exposes
// them in the Prometheus text format on /metrics. It is the only importer of
// the OpenTelemetry SDK; the rest of the hub records through the
// Instruments it returns. Attributes never carry health content or
// identifiers: routes are templates, actors are types, purposes are codes.
package telemetry

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Telemetry owns the meter provider and the /metrics handler.
type Telemetry struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
	Instruments
}

// Instruments are the hub's metrics.
type Instruments struct {
	Requests    metric.Int64Counter     // parcours.http.requests {route, method, status}
	Latency     metric.Float64Histogram // parcours.http.duration (s) {route, method}
	Decisions   metric.Int64Counter     // parcours.policy.decisions {outcome, purpose, actor_type}
	Alerts      metric.Int64Counter     // parcours.policy.alerts {purpose, actor_type}
	CommitBatch metric.Int64Histogram   // parcours.store.commit.batch (writes per commit)
}

// New builds a meter provider exporting to its own Prometheus registry.
func New() (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	m := mp.Meter("parcours")
	t := &Telemetry{provider: mp, handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	var errs [5]error
	t.Requests, errs[0] = m.Int64Counter("parcours.http.requests", metric.WithDescription("HTTP requests by route template, method and status"))
	t.Latency, errs[1] = m.Float64Histogram("parcours.http.duration", metric.WithUnit("s"), metric.WithDescription("HTTP request latency"),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
	t.Decisions, errs[2] = m.Int64Counter("parcours.policy.decisions", metric.WithDescription("policy decisions by outcome, purpose and actor type"))
	t.Alerts, errs[3] = m.Int64Counter("parcours.policy.alerts", metric.WithDescription("security alerts: attempts at forbidden purposes (pricing, marketing, per-patient data for insurers)"))
	t.CommitBatch, errs[4] = m.Int64Histogram("parcours.store.commit.batch", metric.WithDescription("write functions sharing one group commit"),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256))
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Handler serves /metrics.
func (t *Telemetry) Handler() http.Handler { return t.handler }

// Shutdown flushes and stops the provider.
func (t *Telemetry) Shutdown(ctx context.Context) error { return t.provider.Shutdown(ctx) }

// Attrs is a shorthand for attribute sets.
func Attrs(kv ...string) metric.MeasurementOption {
	attrs := make([]attribute.KeyValue, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	return metric.WithAttributes(attrs...)
}
