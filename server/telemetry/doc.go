// Package telemetry sets up OpenTelemetry for Parcours: a tracer provider
// configured from the standard OTEL_* environment variables (exporter none,
// console or OTLP), the W3C trace-context and baggage propagators, metrics
// exposed in the Prometheus text format on /metrics, and a log/slog handler
// that stamps the trace and span ids on every record logged with a context.
// It sits under package server and is the only importer of the
// OpenTelemetry SDK and exporters; the rest of the hub uses the OpenTelemetry
// API through the Tracer and Instruments it returns.
//
// Attributes never carry health content or identifiers: routes are
// templates, actors are types, purposes are codes.
//
// With the exporter "none" (the default) spans are not recorded, but every
// request still gets a trace id and every span a span id (an incoming W3C
// traceparent's trace id is kept), so that audit records and logs can name
// them: the cost is an id and a small allocation per span.
package telemetry
