package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
	"github.com/parcours-sante/parcours/server/telemetry"
)

// Span attributes. Their values are codes, types, route templates and
// counts: never an identifier (patient, resource, INS, subject), a query
// value or health content.
const (
	attrMethod       = attribute.Key("http.request.method")
	attrRoute        = attribute.Key("http.route")
	attrStatus       = attribute.Key("http.response.status_code")
	attrInteraction  = attribute.Key("fhir.interaction")
	attrResourceType = attribute.Key("fhir.resource_type")
	attrPurpose      = attribute.Key("parcours.purpose")
	attrActorType    = attribute.Key("parcours.actor_type")
	attrDecision     = attribute.Key("parcours.decision") // allow or deny
	attrReasons      = attribute.Key("parcours.policy.reasons")
	attrObligations  = attribute.Key("parcours.policy.obligations")
	attrRevision     = attribute.Key("parcours.policy.revision")
	attrCached       = attribute.Key("parcours.policy.cached")
	attrAuthn        = attribute.Key("parcours.authn.result") // ok or the denial reason
	attrKept         = attribute.Key("parcours.filter.kept")
	attrHidden       = attribute.Key("parcours.filter.hidden")
	attrStoreTx      = attribute.Key("parcours.store.tx") // read or write
	attrRecords      = attribute.Key("parcours.audit.records")
	attrSource       = attribute.Key("parcours.ingest.source")
	attrRows         = attribute.Key("parcours.ingest.rows")
	attrRowsMapped   = attribute.Key("parcours.ingest.rows_mapped")
)

// observe is the outermost middleware: the request's server span (a child
// of the caller's W3C traceparent, if any), named by route template, and
// the request metrics.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	tracer, prop := s.tel.Tracer(), s.tel.Propagator()
	return func(c echo.Context) error {
		start := time.Now()
		r := c.Request()
		route, method := c.Path(), r.Method
		if route == "" {
			route = "unmatched"
		}
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, method+" "+route, trace.WithSpanKind(trace.SpanKindServer))
		c.SetRequest(r.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = outcome.StatusOf(err)
			var he *echo.HTTPError
			if errors.As(err, &he) {
				status = he.Code
			}
		}
		if span.IsRecording() {
			span.SetAttributes(attrMethod.String(method), attrRoute.String(route), attrStatus.Int(status))
			if status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
		}
		span.End()
		s.tel.Requests.Add(ctx, 1, s.tel.RequestAttrs.Add(route, method, statusText(status))...)
		s.tel.Latency.Record(ctx, time.Since(start).Seconds(), s.tel.LatencyAttrs.Record(route, method)...)
		return err
	}
}

// statusCodes are the decimal texts of the HTTP status codes.
var statusCodes = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// statusText is strconv.Itoa(code), without allocating for a status code.
func statusText(code int) string {
	if code >= 0 && code < len(statusCodes) {
		return statusCodes[code]
	}
	return strconv.Itoa(code)
}

// child starts span name under ctx's span. Without one (startup work) it
// starts nothing: the returned span is ctx's no-op span.
func (s *Server) child(ctx context.Context, name string) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return s.tel.Tracer().Start(ctx, name)
}

// end ends span, marking it failed on an error that answers 5xx (a 404 or
// a deny is an answer, not a failure). The error text is not recorded: it
// may name a resource.
func end(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		if status := outcome.StatusOf(err); status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// view is db.View traced as the request's store span.
func (s *Server) view(ctx context.Context, fn func(*store.Tx) error) error {
	_, span := s.storeSpan(ctx, "read")
	err := s.db.View(fn)
	end(span, err)
	return err
}

// commit is db.Update (group-committed) traced as the request's store span:
// it lasts until the write is durable.
func (s *Server) commit(ctx context.Context, fn func(*store.Tx) error) error {
	_, span := s.storeSpan(ctx, "write")
	err := s.db.Update(ctx, fn)
	end(span, err)
	return err
}

// storeSpan starts a store span for a transaction of kind tx (read or
// write), for store calls that are not a plain View or Update.
func (s *Server) storeSpan(ctx context.Context, tx string) (context.Context, trace.Span) {
	ctx, span := s.child(ctx, "store")
	if span.IsRecording() {
		span.SetAttributes(attribute.String("db.system.name", "bbolt"), attrStoreTx.String(tx))
	}
	return ctx, span
}

// obligations is applyObligations traced as an obligations span, started
// only when the decision has obligations to apply to the content.
func (s *Server) obligations(ctx context.Context, tx *store.Tx, d policy.Decision, b []byte) ([]byte, error) {
	_, pseudo := d.Obligation("pseudonymise")
	_, redact := d.Obligation("redact")
	if !pseudo && !redact {
		return b, nil
	}
	_, span := s.child(ctx, "obligations")
	if span.IsRecording() {
		var applied []string
		if pseudo {
			applied = append(applied, "pseudonymise")
		}
		if redact {
			applied = append(applied, "redact")
		}
		span.SetAttributes(attrObligations.StringSlice(applied))
	}
	out, err := s.applyObligations(tx, d, b)
	end(span, err)
	return out, err
}

// mapNative maps a native file with m, traced as the mapping span, and
// counts its rows (parcours.ingest.rows by source and outcome). $ingest
// calls it in place of m.Map.
func (s *Server) mapNative(ctx context.Context, m mappings.Mapper, source string, r io.Reader, opt mappings.Options) (*mappings.Result, error) {
	_, span := s.child(ctx, "mapping")
	res, err := m.Map(r, opt)
	if err == nil && res != nil {
		s.ingestRows(ctx, source, "mapped", res.Good)
		s.ingestRows(ctx, source, "rejected", res.Rows-res.Good)
		if span.IsRecording() {
			span.SetAttributes(attrSource.String(source), attrRows.Int(res.Rows), attrRowsMapped.Int(res.Good))
		}
	} else if span.IsRecording() {
		span.SetAttributes(attrSource.String(source))
		span.SetStatus(codes.Error, "the file could not be read")
	}
	span.End()
	return res, err
}

// ingestRows counts n native rows of source by outcome of their mapping
// (mapped, rejected). Zero counts are not recorded.
func (s *Server) ingestRows(ctx context.Context, source, outcome string, n int) {
	if n > 0 {
		s.tel.IngestRows.Add(ctx, int64(n), telemetry.Attrs("source", source, "outcome", outcome))
	}
}

// describe puts the request's first decision on its server span: the
// interaction, resource type and outcome of the decision X-Decision-Id
// names.
func (cl *caller) describe(q question, outcome string) {
	if cl.described || cl.span == nil {
		return
	}
	cl.described = true
	if !cl.span.IsRecording() {
		return
	}
	interaction := q.interaction
	if q.operation != "" {
		interaction = q.operation
	}
	cl.span.SetAttributes(attrDecision.String(outcome))
	if interaction != "" {
		cl.span.SetAttributes(attrInteraction.String(interaction))
	}
	if q.typ != "" {
		cl.span.SetAttributes(attrResourceType.String(q.typ))
	}
}

// policySpan starts the span of one decision: under ctx's span, or the
// request's server span when ctx carries none (decisions taken with a
// background context inside a request).
func (s *Server) policySpan(ctx context.Context, cl *caller) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() && cl.span != nil {
		ctx = trace.ContextWithSpan(ctx, cl.span)
	}
	return s.child(ctx, "policy")
}

// reasonCodes keeps the plain reason codes of a decision ("no-consent",
// "patient-objection"): references such as "consent:<id>" or
// "write-scope:<id>" name resources and stay in the audit record.
func reasonCodes(reasons []string) []string {
	var out []string
	for _, r := range reasons {
		if !strings.Contains(r, ":") {
			out = append(out, r)
		}
	}
	return out
}

// endPolicySpan records the decision on its span and ends it.
func endPolicySpan(span trace.Span, cl *caller, q question, d policy.Decision, outcome string, err error) {
	if span.IsRecording() {
		interaction := q.interaction
		if q.operation != "" {
			interaction = q.operation
		}
		span.SetAttributes(
			attrInteraction.String(interaction),
			attrPurpose.String(cl.purpose),
			attrActorType.String(cl.claims.ActorType),
			attrDecision.String(outcome),
			attrRevision.String(d.Revision),
			attrCached.Bool(d.Cached),
		)
		if q.typ != "" {
			span.SetAttributes(attrResourceType.String(q.typ))
		}
		if q.ingestSource != "" {
			span.SetAttributes(attrSource.String(q.ingestSource))
		}
		if rc := reasonCodes(d.Reasons); len(rc) > 0 && !d.Allow {
			span.SetAttributes(attrReasons.StringSlice(rc))
		}
		if len(d.Obligations) > 0 {
			types := make([]string, len(d.Obligations))
			for i, o := range d.Obligations {
				types[i] = o.Type
			}
			span.SetAttributes(attrObligations.StringSlice(types))
		}
		if err != nil {
			span.SetStatus(codes.Error, "the policy could not be evaluated")
		}
	}
	span.End()
}
