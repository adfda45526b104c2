package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The environment variables read here (the exporters and the SDK read the
// rest of the OTEL_* family themselves: OTEL_EXPORTER_OTLP_ENDPOINT,
// _HEADERS, _TIMEOUT…, OTEL_RESOURCE_ATTRIBUTES, OTEL_SPAN_*_LIMIT).
const (
	EnvExporter          = "OTEL_TRACES_EXPORTER"               // none (default), console (alias stdout), otlp; comma-separated
	EnvSampler           = "OTEL_TRACES_SAMPLER"                // default parentbased_always_on
	EnvServiceName       = "OTEL_SERVICE_NAME"                  // default "parcours"
	EnvProtocol          = "OTEL_EXPORTER_OTLP_PROTOCOL"        // http/protobuf (default) or grpc
	EnvTracesProtocol    = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" // overrides EnvProtocol for traces
	defaultServiceName   = "parcours"
	defaultOTLPProtocol  = "http/protobuf"
	instrumentationScope = "github.com/parcours-sante/parcours/server"
)

// propagator is W3C trace context (traceparent, tracestate) and baggage.
var propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

var setGlobal sync.Once

// setPropagators installs propagator as the global one (once).
func setPropagators() {
	setGlobal.Do(func() { otel.SetTextMapPropagator(propagator) })
}

// newResource names the service: "parcours" unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES say otherwise.
func newResource(version string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", defaultServiceName)}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	res, err := resource.New(context.Background(),
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: the environment wins
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	return res, nil
}

// newTracerProvider builds the tracer provider of OTEL_TRACES_EXPORTER.
// Without any exporter or extra processor nothing is recorded (the sampler
// drops every span), but spans still carry trace and span ids.
func newTracerProvider(res *resource.Resource, opt Options) (*sdktrace.TracerProvider, error) {
	exporters, err := spanExporters(opt)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, e := range exporters {
		opts = append(opts, sdktrace.WithBatcher(e))
	}
	for _, p := range opt.SpanProcessors {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	if len(exporters) == 0 && len(opt.SpanProcessors) == 0 {
		// Nothing would read a recorded span: ids only.
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	} else if err := checkSampler(); err != nil {
		for _, e := range exporters {
			_ = e.Shutdown(context.Background())
		}
		return nil, err
	}
	// Otherwise the SDK reads OTEL_TRACES_SAMPLER and _ARG itself
	// (default parentbased_always_on).
	return sdktrace.NewTracerProvider(opts...), nil
}

// spanExporters returns the exporters OTEL_TRACES_EXPORTER names.
func spanExporters(opt Options) ([]sdktrace.SpanExporter, error) {
	value := strings.ToLower(strings.TrimSpace(os.Getenv(EnvExporter)))
	var out []sdktrace.SpanExporter
	fail := func(err error) ([]sdktrace.SpanExporter, error) {
		for _, e := range out {
			_ = e.Shutdown(context.Background())
		}
		return nil, err
	}
	for _, name := range strings.Split(value, ",") {
		switch name = strings.TrimSpace(name); name {
		case "", "none":
		case "console", "stdout":
			w := opt.Console
			if w == nil {
				w = os.Stdout
			}
			e, err := stdouttrace.New(stdouttrace.WithWriter(w))
			if err != nil {
				return fail(fmt.Errorf("%s=%s: %w", EnvExporter, name, err))
			}
			out = append(out, e)
		case "otlp":
			e, err := otlpExporter()
			if err != nil {
				return fail(err)
			}
			out = append(out, e)
		default:
			return fail(fmt.Errorf("%s=%q: unknown exporter %q (want none, console or otlp)", EnvExporter, value, name))
		}
	}
	return out, nil
}

// otlpExporter is the OTLP exporter of the configured protocol; the
// exporter reads its endpoint, headers, TLS and timeout from the
// environment.
func otlpExporter() (sdktrace.SpanExporter, error) {
	protocol := strings.TrimSpace(os.Getenv(EnvTracesProtocol))
	if protocol == "" {
		protocol = strings.TrimSpace(os.Getenv(EnvProtocol))
	}
	if protocol == "" {
		protocol = defaultOTLPProtocol
	}
	var e sdktrace.SpanExporter
	var err error
	switch protocol {
	case "http/protobuf":
		e, err = otlptracehttp.New(context.Background())
	case "grpc":
		e, err = otlptracegrpc.New(context.Background())
	default:
		return nil, fmt.Errorf("OTLP protocol %q: want http/protobuf or grpc (%s, %s)", protocol, EnvTracesProtocol, EnvProtocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP %s trace exporter: %w", protocol, err)
	}
	return e, nil
}

// checkSampler refuses an OTEL_TRACES_SAMPLER the SDK would silently
// replace by its default.
func checkSampler() error {
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv(EnvSampler))); v {
	case "", "always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio":
		return nil
	default:
		return fmt.Errorf("%s=%q: unknown sampler (want always_on, always_off, traceidratio or their parentbased_ forms)", EnvSampler, v)
	}
}
