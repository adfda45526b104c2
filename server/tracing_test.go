package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/store"
	"github.com/parcours-sante/parcours/server/telemetry"
)

// newTracedHub is a secure hub whose spans are recorded in memory.
func newTracedHub(t *testing.T, tune ...func(*Config)) (*secureHub, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	h := newSecureHubWith(t, func(c *Config) {
		c.Telemetry.SpanProcessors = []telemetry.SpanProcessor{rec}
		for _, f := range tune {
			f(c)
		}
	})
	return h, rec
}

// traceparent is a W3C traceparent header for a fresh trace, and its ids.
func traceparent(t *testing.T, n byte) (header string, tid trace.TraceID, parent trace.SpanID) {
	t.Helper()
	tid = trace.TraceID{0x0a, 0x11, n, 0x5e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, n}
	parent = trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, n}
	return "00-" + tid.String() + "-" + parent.String() + "-01", tid, parent
}

// spansOf returns the ended spans of trace tid.
func spansOf(spans []sdktrace.ReadOnlySpan, tid trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == tid {
			out = append(out, s)
		}
	}
	return out
}

func named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs is a span's attributes as strings.
func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	out := map[string]string{}
	for _, kv := range s.Attributes() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

// auditRecord reads the first record of a decision.
func auditRecord(t *testing.T, h *secureHub, decisionID string) audit.Record {
	t.Helper()
	if err := h.s.audit.Flush(); err != nil { // the journal's records into the chain
		t.Fatal(err)
	}
	var rec audit.Record
	var ok bool
	if err := h.s.db.View(func(tx *store.Tx) error { rec, ok = audit.Find(tx, decisionID); return nil }); err != nil || !ok {
		t.Fatalf("no audit record for decision %q (%v)", decisionID, err)
	}
	return rec
}

// TestTracing runs requests through a hub with recorded spans: one trace
// per request, the caller's traceparent continued, the request's spans
// and attributes, the trace and span ids in the audit records, and no
// identifier or query value anywhere in the spans.
func TestTracing(t *testing.T) {
	h, rec := newTracedHub(t)
	const ins, insValue = "urn:oid:1.2.250.1.213.1.4.8|255081416802538", "255081416802538"
	w := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", patient("Tracedfamily", ins))
	if w.status != http.StatusCreated {
		t.Fatalf("create Patient: %d %s", w.status, w.raw)
	}
	pid := strings.Split(strings.TrimPrefix(w.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	w = h.as("hospital-it", "HOPERAT", http.MethodPost, "/Encounter", map[string]any{"resourceType": "Encounter", "status": "finished",
		"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}, "subject": map[string]any{"reference": "Patient/" + pid}})
	if w.status != http.StatusCreated {
		t.Fatalf("create Encounter: %d %s", w.status, w.raw)
	}
	w = h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": "Glycemia-secret"}, "subject": map[string]any{"reference": "Patient/" + pid}, "valueQuantity": map[string]any{"value": 7.9, "unit": "%"}})
	if w.status != http.StatusCreated {
		t.Fatalf("create Observation: %d %s", w.status, w.raw)
	}
	oid := strings.Split(strings.TrimPrefix(w.header.Get("Location"), h.url+"/Observation/"), "/")[0]
	seeded := len(rec.Ended())

	readTP, readTrace, readParent := traceparent(t, 1)
	pseudoTP, pseudoTrace, _ := traceparent(t, 2)
	anonTP, anonTrace, _ := traceparent(t, 3)
	type call struct {
		name                  string
		actor, purpose        string
		method, path          string
		body                  any
		traceparent           string
		status                int
		route                 string
		spans                 []string // child span names the trace must have
		interaction, resource string   // server span attributes (when decided)
		decision              string
	}
	calls := []call{
		{name: "read", actor: "hospital-clinician", purpose: "TREAT", method: http.MethodGet, path: "/Observation/" + oid, traceparent: readTP, status: 200,
			route: "GET /fhir/:type/:id", spans: []string{"audit", "authn", "policy", "store"}, interaction: "read", resource: "Observation", decision: "allow"},
		{name: "pseudonymised read", actor: "researcher", purpose: "HRESCH", method: http.MethodGet, path: "/Patient/" + patientPseudonymOf(t, h.hub, "research", pid), traceparent: pseudoTP, status: 200,
			route: "GET /fhir/:type/:id", spans: []string{"audit", "authn", "obligations", "policy", "store"}, interaction: "read", resource: "Patient", decision: "allow"},
		{name: "unauthenticated", method: http.MethodGet, path: "/Patient/" + pid, traceparent: anonTP, status: 401,
			route: "GET /fhir/:type/:id", spans: []string{"audit", "authn"}, decision: "deny"},
		{name: "search with values", actor: "hospital-clinician", purpose: "TREAT", method: http.MethodGet,
			path: "/Observation?subject=Patient/" + pid + "&code:text=Glycemia-secret", status: 200,
			route: "GET /fhir/:type", spans: []string{"audit", "authn", "policy", "store"}, interaction: "search-type", resource: "Observation", decision: "allow"},
		{name: "search by INS", actor: "hospital-clinician", purpose: "TREAT", method: http.MethodGet, path: "/Patient?identifier=" + url.QueryEscape(ins), status: 200,
			route: "GET /fhir/:type", spans: []string{"audit", "authn", "policy", "store"}, interaction: "search-type", resource: "Patient", decision: "allow"},
		{name: "history", actor: "hospital-clinician", purpose: "TREAT", method: http.MethodGet, path: "/Patient/" + pid + "/_history", status: 200,
			route: "GET /fhir/:type/:id/_history", spans: []string{"audit", "authn", "policy", "store"}, interaction: "history-instance", resource: "Patient", decision: "allow"},
		{name: "write", actor: "hospital-it", purpose: "HOPERAT", method: http.MethodPost, path: "/Observation", status: 201,
			body:  map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "Glycemia-secret"}, "subject": map[string]any{"reference": "Patient/" + pid}},
			route: "POST /fhir/:type", spans: []string{"audit", "authn", "policy", "store"}, interaction: "create", resource: "Observation", decision: "allow"},
		{name: "denied read", actor: "mutual-claims", purpose: "underwriting-pricing", method: http.MethodGet, path: "/Patient/" + pid, status: 403,
			route: "GET /fhir/:type/:id", spans: []string{"audit", "authn", "policy", "store"}, interaction: "read", resource: "Patient", decision: "deny"},
		{name: "purpose not granted", actor: "gp", purpose: "HMARKT", method: http.MethodGet, path: "/Patient/" + pid, status: 403,
			route: "GET /fhir/:type/:id", spans: []string{"audit", "authn"}, decision: "deny"},
	}
	decisions := map[string]string{} // call name → X-Decision-Id
	for _, c := range calls {
		var headers []string
		if c.traceparent != "" {
			headers = append(headers, "Traceparent", c.traceparent)
		}
		var r reply
		if c.actor == "" {
			r = h.do(c.method, c.path, c.body, headers...)
		} else {
			r = h.as(c.actor, c.purpose, c.method, c.path, c.body, headers...)
		}
		if r.status != c.status {
			t.Fatalf("%s: status %d, want %d: %.300s", c.name, r.status, c.status, r.raw)
		}
		decisions[c.name] = r.header.Get("X-Decision-Id")
	}
	spans := rec.Ended()[seeded:]

	// One trace per request, each with one server span at its root and
	// every other span under it.
	traces := map[trace.TraceID][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		traces[s.SpanContext().TraceID()] = append(traces[s.SpanContext().TraceID()], s)
	}
	if len(traces) != len(calls) {
		t.Errorf("%d traces for %d requests", len(traces), len(calls))
	}
	servers := map[string]sdktrace.ReadOnlySpan{} // call name → server span
	for tid, ts := range traces {
		var root []sdktrace.ReadOnlySpan
		ids := map[trace.SpanID]bool{}
		for _, s := range ts {
			ids[s.SpanContext().SpanID()] = true
			if s.SpanKind() == trace.SpanKindServer {
				root = append(root, s)
			}
		}
		if len(root) != 1 {
			t.Errorf("trace %s has %d server spans, want 1", tid, len(root))
			continue
		}
		for _, s := range ts {
			if s != root[0] && !ids[s.Parent().SpanID()] {
				t.Errorf("span %s of trace %s has a parent outside the trace", s.Name(), tid)
			}
		}
	}
	// The requests ran one after the other: the i-th server span by start
	// time is the i-th call's.
	var servs []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindServer {
			servs = append(servs, s)
		}
	}
	slices.SortFunc(servs, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	if len(servs) != len(calls) {
		t.Fatalf("%d server spans for %d requests", len(servs), len(calls))
	}
	for i, c := range calls {
		srv := servs[i]
		servers[c.name] = srv
		t.Run(c.name, func(t *testing.T) {
			if srv.Name() != c.route {
				t.Errorf("server span %q, want %q", srv.Name(), c.route)
			}
			var children []string
			for _, s := range traces[srv.SpanContext().TraceID()] {
				if s != srv && !slices.Contains(children, s.Name()) {
					children = append(children, s.Name())
				}
			}
			slices.Sort(children)
			if diff := cmp.Diff(c.spans, children); diff != "" {
				t.Errorf("child spans (-want +got):\n%s", diff)
			}
			a := attrs(srv)
			want := map[string]string{"http.request.method": c.method, "http.response.status_code": itoa(c.status), "parcours.decision": c.decision}
			got := map[string]string{"http.request.method": a["http.request.method"], "http.response.status_code": a["http.response.status_code"], "parcours.decision": a["parcours.decision"]}
			if c.interaction != "" {
				want["fhir.interaction"], want["fhir.resource_type"], want["parcours.purpose"], want["parcours.actor_type"] = c.interaction, c.resource, c.purpose, c.actor
				got["fhir.interaction"], got["fhir.resource_type"], got["parcours.purpose"], got["parcours.actor_type"] = a["fhir.interaction"], a["fhir.resource_type"], a["parcours.purpose"], a["parcours.actor_type"]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("server span attributes (-want +got):\n%s", diff)
			}
		})
	}

	// The caller's traceparent is continued, and the read's audit record
	// names its trace and its policy span.
	read := servers["read"]
	if read.SpanContext().TraceID() != readTrace || read.Parent().SpanID() != readParent || !read.Parent().IsRemote() {
		t.Errorf("read: server span %v under %v, want trace %s under the remote span %s", read.SpanContext(), read.Parent(), readTrace, readParent)
	}
	policy := named(spansOf(spans, readTrace), "policy")
	if len(policy) != 1 {
		t.Fatalf("read: %d policy spans, want 1", len(policy))
	}
	pa := attrs(policy[0])
	if diff := cmp.Diff(map[string]string{"parcours.decision": "allow", "parcours.purpose": "TREAT", "parcours.actor_type": "hospital-clinician", "fhir.interaction": "read", "fhir.resource_type": "Observation"},
		map[string]string{"parcours.decision": pa["parcours.decision"], "parcours.purpose": pa["parcours.purpose"], "parcours.actor_type": pa["parcours.actor_type"], "fhir.interaction": pa["fhir.interaction"], "fhir.resource_type": pa["fhir.resource_type"]}); diff != "" {
		t.Errorf("read: policy span attributes (-want +got):\n%s", diff)
	}
	if pa["parcours.policy.revision"] != h.s.policy.Revision() {
		t.Errorf("read: policy revision %q, want %q", pa["parcours.policy.revision"], h.s.policy.Revision())
	}
	r := auditRecord(t, h, decisions["read"])
	if diff := cmp.Diff([2]string{readTrace.String(), policy[0].SpanContext().SpanID().String()}, [2]string{r.TraceID, r.SpanID}); diff != "" {
		t.Errorf("read: audit record trace and span ids (-want +got):\n%s", diff)
	}
	// The refused request's record names its authn span.
	authn := named(spansOf(spans, anonTrace), "authn")
	if len(authn) != 1 || attrs(authn[0])["parcours.authn.result"] != "unauthenticated" {
		t.Fatalf("unauthenticated: authn spans %v", authn)
	}
	r = auditRecord(t, h, decisions["unauthenticated"])
	if diff := cmp.Diff([2]string{anonTrace.String(), authn[0].SpanContext().SpanID().String()}, [2]string{r.TraceID, r.SpanID}); diff != "" {
		t.Errorf("unauthenticated: audit record trace and span ids (-want +got):\n%s", diff)
	}
	// Every record of every request carries its request's trace id.
	for _, c := range calls {
		r := auditRecord(t, h, decisions[c.name])
		if want := servers[c.name].SpanContext().TraceID().String(); r.TraceID != want {
			t.Errorf("%s: audit record trace id %q, want %q", c.name, r.TraceID, want)
		}
	}
	if ob := named(spansOf(spans, pseudoTrace), "obligations"); len(ob) != 1 || attrs(ob[0])["parcours.policy.obligations"] != `["pseudonymise"]` {
		var got []map[string]string
		for _, s := range ob {
			got = append(got, attrs(s))
		}
		t.Errorf("pseudonymised read: obligations spans %v, want one applying pseudonymise", got)
	}
	if st := named(spansOf(spans, servers["write"].SpanContext().TraceID()), "store"); !slices.ContainsFunc(st, func(s sdktrace.ReadOnlySpan) bool { return attrs(s)["parcours.store.tx"] == "write" }) {
		t.Error("write: no store span of a write transaction")
	}

	// No identifier, health content or query value in any span of the
	// scenario (names, attributes, status).
	secrets := []string{pid, oid, insValue, "1.2.250.1.213.1.4.8", "Tracedfamily", "Glycemia-secret", devClaims(t, "hospital-clinician").Subject}
	for _, s := range spans {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			texts = append(texts, string(kv.Key)+"="+kv.Value.Emit())
		}
		for _, text := range texts {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(text, secret) {
					t.Errorf("span %s carries %q: %s", s.Name(), secret, text)
				}
			}
		}
	}
}

func itoa(n int) string { return attribute.IntValue(n).Emit() }

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("metric value %q: %v", s, err)
	}
	return f
}

// TestTracingIngest: $ingest's mapping is a span of the upload's trace
// (with row counts, never the file's INS), and the ingest rows and the
// audit group-commit batch sizes are on /metrics.
func TestTracingIngest(t *testing.T) {
	h, rec := newTracedHub(t)
	b, err := os.ReadFile(filepath.Join("..", "testdata", "native", "hospital-stays.csv"))
	if err != nil {
		t.Fatal(err)
	}
	tp, tid, _ := traceparent(t, 7)
	r := h.do(http.MethodPost, "/$ingest?source=hospital-stays", b, "Authorization", "Bearer "+h.token("hospital-it"), "X-Purpose-Of-Use", "HOPERAT",
		"Content-Type", "text/csv", "Traceparent", tp)
	if r.status != http.StatusOK {
		t.Fatalf("$ingest: %d %s", r.status, r.raw)
	}
	spans := spansOf(rec.Ended(), tid)
	mapping := named(spans, "mapping")
	if len(mapping) != 1 {
		t.Fatalf("%d mapping spans in the upload's trace, want 1", len(mapping))
	}
	rows := strings.Count(strings.TrimSpace(string(b)), "\n") // lines after the header
	a := attrs(mapping[0])
	if diff := cmp.Diff(map[string]string{"parcours.ingest.source": "hospital-stays", "parcours.ingest.rows": itoa(rows), "parcours.ingest.rows_mapped": itoa(rows)},
		map[string]string{"parcours.ingest.source": a["parcours.ingest.source"], "parcours.ingest.rows": a["parcours.ingest.rows"], "parcours.ingest.rows_mapped": a["parcours.ingest.rows_mapped"]}); diff != "" {
		t.Errorf("mapping span (-want +got):\n%s", diff)
	}
	if srv := named(spans, "POST /fhir/$ingest"); len(srv) != 1 || attrs(srv[0])["fhir.interaction"] != "$ingest" {
		t.Errorf("no server span of $ingest in the trace: %v", srv)
	}
	if !hasWriteSpan(spans) {
		t.Error("no store span of a write in the upload's trace")
	}
	// The file's INS (first row) appears in no span.
	ins := strings.Split(strings.Split(string(b), "\n")[1], ";")[2]
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.Emit(), ins) {
				t.Errorf("span %s carries the INS %s in %s", s.Name(), ins, kv.Key)
			}
		}
	}

	if err := h.s.audit.Flush(); err != nil { // the journal's records into the chain (counted per commit)
		t.Fatal(err)
	}
	resp, err := http.Get(h.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := map[string]string{} // series (name and labels) → value
	sc := bufio.NewScanner(bytes.NewReader(page))
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				metrics[line[:i]] = line[i+1:]
			}
		}
	}
	find := func(prefix string, labels ...string) (string, bool) {
		for k, v := range metrics {
			if !strings.HasPrefix(k, prefix) {
				continue
			}
			all := true
			for _, l := range labels {
				all = all && strings.Contains(k, l)
			}
			if all {
				return v, true
			}
		}
		return "", false
	}
	if v, ok := find("parcours_ingest_rows_total{", `outcome="mapped"`, `source="hospital-stays"`); !ok || v != itoa(rows) {
		t.Errorf("parcours_ingest_rows_total mapped = %q (%v), want %d", v, ok, rows)
	}
	// The upload was audited: commits carried audit records, none more
	// than the log holds.
	if v, ok := find("parcours_audit_commit_records_count{"); !ok || v == "0" {
		t.Errorf("parcours_audit_commit_records_count = %q (%v), want commits counted", v, ok)
	}
	var n uint64
	_ = h.s.db.View(func(tx *store.Tx) error { n = audit.Head(tx).Seq; return nil })
	if v, ok := find("parcours_audit_commit_records_sum{"); !ok || v == "0" || mustFloat(t, v) > float64(n) {
		t.Errorf("parcours_audit_commit_records_sum = %q (%v), want between 1 and the %d records of the log", v, ok, n)
	}
}

// lockedBuffer is a log destination shared with the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(l.b.Bytes()))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log is not JSON lines: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// TestErrorLogTraceID: the error logged for a request (here a policy that
// cannot be evaluated: its decision has no boolean allow) carries the
// request's trace id, the caller's traceparent's.
func TestErrorLogTraceID(t *testing.T) {
	var logs lockedBuffer
	broken := fstest.MapFS{"authz.rego": {Data: []byte("package parcours.authz\n\ndecision := {\"allowed\": true}\n")}}
	h, _ := newTracedHub(t, func(c *Config) {
		c.Policies = broken
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	tp, tid, _ := traceparent(t, 9)
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient", nil, "Traceparent", tp); r.status != http.StatusForbidden {
		t.Fatalf("status %d, want 403 (policy not evaluable): %s", r.status, r.raw)
	}
	var found bool
	for _, l := range logs.lines(t) {
		if l["msg"] != "policy evaluation failed" {
			continue
		}
		found = true
		if l["trace_id"] != tid.String() {
			t.Errorf("trace_id %v, want %s: %v", l["trace_id"], tid, l)
		}
		if sid, _ := l["span_id"].(string); len(sid) != 16 {
			t.Errorf("span_id %v, want a span id: %v", l["span_id"], l)
		}
	}
	if !found {
		t.Fatalf("no policy error logged: %+v", logs.lines(t))
	}
}

// hasWriteSpan reports whether spans hold a store span of a write.
func hasWriteSpan(spans []sdktrace.ReadOnlySpan) bool {
	for _, st := range named(spans, "store") {
		if attrs(st)[string(attrStoreTx)] == "write" {
			return true
		}
	}
	return false
}

// TestTracingBundles: a batch and a transaction are traced as such (not
// as their first entry's create), with a store span for their writes.
func TestTracingBundles(t *testing.T) {
	h, rec := newTracedHub(t)
	for i, kind := range []string{"batch", "transaction"} {
		tp, tid, _ := traceparent(t, byte(20+i))
		r := h.do(http.MethodPost, "", newBundle(kind, bundleEntry("", "POST", "Patient", patient("Trace", testINS("Trace"+kind)))),
			"Authorization", "Bearer "+h.token("hospital-it"), "X-Purpose-Of-Use", "HOPERAT", "Traceparent", tp)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", kind, r.status, r.raw)
		}
		spans := spansOf(rec.Ended(), tid)
		if srv := named(spans, "POST /fhir"); len(srv) != 1 || attrs(srv[0])["fhir.interaction"] != kind || attrs(srv[0])["fhir.resource_type"] != "" {
			t.Errorf("%s: server span %v, want fhir.interaction %s and no resource type", kind, srv, kind)
		}
		if !hasWriteSpan(spans) {
			t.Errorf("%s: no store span of a write in its trace", kind)
		}
	}
}

// TestForbiddenPurposeAlertLogged: a forbidden purpose the token does not
// grant is a security alert in the log too (it was only counted), with the
// request's trace id and no identifier.
func TestForbiddenPurposeAlertLogged(t *testing.T) {
	var logs lockedBuffer
	h, _ := newTracedHub(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	tp, tid, _ := traceparent(t, 30)
	if r := h.as("gp", "underwriting-pricing", http.MethodGet, "/Patient/some-id", nil, "Traceparent", tp); r.status != http.StatusForbidden {
		t.Fatalf("status %d, want 403: %s", r.status, r.raw)
	}
	var found bool
	for _, l := range logs.lines(t) {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "security alert") && l["purpose"] == "underwriting-pricing" && l["actor_type"] == "gp" {
			found = true
			if l["trace_id"] != tid.String() {
				t.Errorf("trace_id %v, want %s", l["trace_id"], tid)
			}
			if strings.Contains(fmt.Sprint(l), "some-id") {
				t.Errorf("the alert names the resource: %v", l)
			}
		}
	}
	if !found {
		t.Errorf("no security alert logged for the forbidden purpose: %+v", logs.lines(t))
	}
}
