package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkRequestSpans is the tracing of one audited read as the server
// does it: the traceparent extracted, a server span and its authn, policy,
// store and audit children. "none" is the default (ids only); "recorded"
// records every span and hands it to an exporter that drops it (the cost
// of recording, before any real exporter's).
func BenchmarkRequestSpans(b *testing.B) {
	for _, mode := range []string{"none", "recorded"} {
		b.Run(mode, func(b *testing.B) {
			b.Setenv(EnvExporter, "none")
			var opt Options
			if mode == "recorded" {
				opt.SpanProcessors = []SpanProcessor{sdktrace.NewSimpleSpanProcessor(tracetest.NewNoopExporter())}
			}
			tel, err := New(opt)
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Shutdown(context.Background())
			carrier := propagation.HeaderCarrier{"Traceparent": []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
			tr := tel.Tracer()
			b.ReportAllocs()
			for b.Loop() {
				ctx := tel.Propagator().Extract(context.Background(), carrier)
				ctx, span := tr.Start(ctx, "GET /fhir/:type/:id", trace.WithSpanKind(trace.SpanKindServer))
				for _, name := range []string{"authn", "policy", "store", "audit"} {
					_, child := tr.Start(ctx, name)
					child.End()
				}
				span.End()
			}
		})
	}
}
