package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Batch and transaction (http.html#transaction): reference rewriting,
// all-or-nothing, processing order, per-entry answers.

// bundleEntry is a Bundle.entry with request method and url; fullUrl and
// resource may be empty; extra are request fields such as ifMatch.
func bundleEntry(fullURL, method, url string, resource map[string]any, extra ...string) map[string]any {
	req := map[string]any{"method": method, "url": url}
	for i := 0; i+1 < len(extra); i += 2 {
		req[extra[i]] = extra[i+1]
	}
	e := map[string]any{"request": req}
	if fullURL != "" {
		e["fullUrl"] = fullURL
	}
	if resource != nil {
		e["resource"] = resource
	}
	return e
}

func newBundle(kind string, list ...map[string]any) map[string]any {
	es := make([]any, len(list))
	for i, e := range list {
		es[i] = e
	}
	return map[string]any{"resourceType": "Bundle", "type": kind, "entry": es}
}

func observation(subject string, more map[string]any) map[string]any {
	o := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "poids"}}
	if subject != "" {
		o["subject"] = map[string]any{"reference": subject}
	}
	for k, v := range more {
		o[k] = v
	}
	return o
}

// entryTarget is Type/id of a response entry's location.
func entryTarget(t *testing.T, e any) string {
	t.Helper()
	loc := str(e, "response", "location")
	parts := strings.Split(loc, "/")
	if len(parts) != 4 || parts[2] != "_history" {
		t.Fatalf("response.location %q, want Type/id/_history/version", loc)
	}
	return parts[0] + "/" + parts[1]
}

func TestTransactionReferences(t *testing.T) {
	h := newHub(t)
	pract := h.create("Practitioner", map[string]any{"resourceType": "Practitioner", "identifier": []any{map[string]any{"system": "urn:npi", "value": "123"}}})
	const uPat, uEnc, uPut = "urn:uuid:11111111-1111-4111-8111-111111111111", "urn:uuid:22222222-2222-4222-8222-222222222222", "urn:uuid:33333333-3333-4333-8333-333333333333"
	chosen := patient("Choisi")
	chosen["id"] = "chosen"
	b := newBundle("transaction",
		bundleEntry("", "POST", "Observation", observation(uPat, map[string]any{
			"encounter": map[string]any{"reference": uEnc},
			"performer": []any{
				map[string]any{"reference": "Practitioner?identifier=urn:npi%7C123"},
				map[string]any{"reference": uPut},
			},
			"extension": []any{
				map[string]any{"url": "http://example.org/fhir/ext", "valueReference": map[string]any{"reference": uPat}},
				map[string]any{"url": "http://example.org/fhir/uri", "valueUri": uEnc},
			},
			"text": map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml"><a href="` + uEnc + `">stay</a> of <a title="x" href="` + uPat + `">the patient</a></div>`},
		})),
		bundleEntry(uEnc, "POST", "Encounter", map[string]any{
			"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "AMB"},
			"subject":     map[string]any{"reference": uPat},
			"participant": []any{map[string]any{"individual": map[string]any{"reference": "Practitioner?identifier=urn:npi|123"}}},
		}),
		bundleEntry(uPat, "POST", "Patient", patient("Martin", "urn:sys|t1")),
		bundleEntry(uPut, "PUT", "Patient/chosen", chosen),
	)
	r := h.do(http.MethodPost, "", b)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if got := str(r.body, "type"); got != "transaction-response" {
		t.Errorf("Bundle.type %q, want transaction-response", got)
	}
	es := bundleEntries(r.body)
	if len(es) != 4 {
		t.Fatalf("%d response entries, want 4", len(es))
	}
	var statuses []string
	for _, e := range es {
		statuses = append(statuses, str(e, "response", "status"))
		if e := str(e, "response", "etag"); e != `W/"1"` {
			t.Errorf("response.etag %q, want W/\"1\"", e)
		}
	}
	if diff := cmp.Diff([]string{"201 Created", "201 Created", "201 Created", "201 Created"}, statuses); diff != "" {
		t.Errorf("statuses in request order (-want +got):\n%s", diff)
	}
	obs, enc, pat := entryTarget(t, es[0]), entryTarget(t, es[1]), entryTarget(t, es[2])
	if got := entryTarget(t, es[3]); got != "Patient/chosen" {
		t.Errorf("PUT entry location %q, want Patient/chosen", got)
	}
	o := h.do(http.MethodGet, "/"+obs, nil).body
	e := h.do(http.MethodGet, "/"+enc, nil).body
	got := map[string]string{
		"Observation.subject":                  str(o, "subject", "reference"),
		"Observation.encounter":                str(o, "encounter", "reference"),
		"Observation.performer[0]":             str(o, "performer", 0, "reference"),
		"Observation.performer[1]":             str(o, "performer", 1, "reference"),
		"Observation.extension.valueReference": str(o, "extension", 0, "valueReference", "reference"),
		"Encounter.subject":                    str(e, "subject", "reference"),
		"Encounter.participant.individual":     str(e, "participant", 0, "individual", "reference"),
		// Every link to an entry is rewritten: uri elements and the
		// narrative's too (once a bug: only Reference.reference).
		"Observation.extension[1].valueUri": str(o, "extension", 1, "valueUri"),
		"Observation.text.div":              str(o, "text", "div"),
	}
	want := map[string]string{
		"Observation.subject":                  pat,
		"Observation.encounter":                enc,
		"Observation.performer[0]":             "Practitioner/" + pract,
		"Observation.performer[1]":             "Patient/chosen",
		"Observation.extension.valueReference": pat,
		"Encounter.subject":                    pat,
		"Encounter.participant.individual":     "Practitioner/" + pract,
		"Observation.extension[1].valueUri":    enc,
		"Observation.text.div":                 `<div xmlns="http://www.w3.org/1999/xhtml"><a href="` + enc + `">stay</a> of <a title="x" href="` + pat + `">the patient</a></div>`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("references after the transaction (-want +got):\n%s", diff)
	}
	t.Run("Prefer: return=representation", func(t *testing.T) {
		r := h.do(http.MethodPost, "", newBundle("transaction", bundleEntry("", "POST", "Patient", patient("Rep"))), "Prefer", "return=representation")
		if str(r.body, "entry", 0, "resource", "name", 0, "family") != "Rep" || str(r.body, "entry", 0, "resource", "id") == "" {
			t.Errorf("want the created resource in the response entry: %.400s", r.raw)
		}
	})
}

func TestTransactionAllOrNothing(t *testing.T) {
	h := newHub(t)
	exist := patient("Existe")
	exist["id"] = "exist"
	h.do(http.MethodPut, "/Patient/exist", exist)
	h.create("Patient", patient("Dup", "urn:sys|dup"))
	h.create("Patient", patient("Dup bis", "urn:sys|dup"))
	good := func() map[string]any { return bundleEntry("", "POST", "Patient", patient("Bon", "urn:sys|good")) }
	bad := patient("Mauvais")
	bad["birthDate"] = "31/12/1990"
	unknown := patient("Inconnu")
	unknown["nickname"] = "x"
	mismatch := patient("Autre")
	mismatch["id"] = "other"
	tests := []struct {
		name        string
		entries     []map[string]any
		status      int
		expressions []string // exact, sorted; nil: every expression starts with prefix
		prefix      string
	}{
		{
			name:        "one invalid entry",
			entries:     []map[string]any{good(), bundleEntry("", "POST", "Patient", bad)},
			status:      400,
			expressions: []string{"Bundle.entry[1].resource.birthDate"},
		},
		{
			name:        "every invalid entry is reported",
			entries:     []map[string]any{bundleEntry("", "POST", "Patient", bad), good(), bundleEntry("", "POST", "Patient", unknown)},
			status:      400,
			expressions: []string{"Bundle.entry[0].resource.birthDate", "Bundle.entry[2].resource.nickname"},
		},
		{
			name:        "resource type differs from the url",
			entries:     []map[string]any{good(), bundleEntry("", "POST", "Observation", patient("X"))},
			status:      400,
			expressions: []string{"Bundle.entry[1].resource.resourceType"},
		},
		{
			name:        "PUT id differs from the url",
			entries:     []map[string]any{good(), bundleEntry("", "PUT", "Patient/exist", mismatch)},
			status:      400,
			expressions: []string{"Bundle.entry[1].resource.id"},
		},
		{
			name:    "version conflict",
			entries: []map[string]any{good(), bundleEntry("", "PUT", "Patient/exist", exist, "ifMatch", `W/"9"`)},
			status:  412,
			prefix:  "Bundle.entry[1]",
		},
		{
			name:    "delete with a version conflict",
			entries: []map[string]any{good(), bundleEntry("", "DELETE", "Patient/exist", nil, "ifMatch", `W/"9"`)},
			status:  412,
			prefix:  "Bundle.entry[1]",
		},
		{
			name:        "dangling urn:uuid reference",
			entries:     []map[string]any{good(), bundleEntry("", "POST", "Observation", observation("urn:uuid:99999999-9999-4999-8999-999999999999", nil))},
			status:      422,
			expressions: []string{"Bundle.entry[1].resource.subject.reference"},
		},
		{
			name:        "conditional reference without a match",
			entries:     []map[string]any{good(), bundleEntry("", "POST", "Observation", observation("Patient?identifier=urn:sys|none", nil))},
			status:      422,
			expressions: []string{"Bundle.entry[1].resource.subject.reference"},
		},
		{
			name:        "conditional reference with two matches",
			entries:     []map[string]any{good(), bundleEntry("", "POST", "Observation", observation("Patient?identifier=urn:sys|dup", nil))},
			status:      412,
			expressions: []string{"Bundle.entry[1].resource.subject.reference"},
		},
		{
			name:        "two writes of the same resource",
			entries:     []map[string]any{good(), bundleEntry("", "PUT", "Patient/exist", exist), bundleEntry("", "DELETE", "Patient/exist", nil)},
			status:      409,
			expressions: []string{"Bundle.entry[1].request"},
		},
		{
			name:    "ifNoneExist with two matches",
			entries: []map[string]any{good(), bundleEntry("", "POST", "Patient", patient("X"), "ifNoneExist", "identifier=urn:sys|dup")},
			status:  412,
			prefix:  "Bundle.entry[1]",
		},
		{
			name:    "read of a missing resource",
			entries: []map[string]any{good(), bundleEntry("", "GET", "Patient/nobody", nil)},
			status:  404,
			prefix:  "Bundle.entry[1]",
		},
		{
			name:        "entry without request",
			entries:     []map[string]any{good(), {"resource": patient("X")}},
			status:      400,
			expressions: []string{"Bundle.entry[1].request"},
		},
		{
			name:        "unknown type in the url",
			entries:     []map[string]any{good(), bundleEntry("", "POST", "Foo", map[string]any{"resourceType": "Foo"})},
			status:      400,
			expressions: []string{"Bundle.entry[1].request.url"},
		},
		{
			name:    "unsupported method",
			entries: []map[string]any{good(), bundleEntry("", "PATCH", "Patient/exist", nil)},
			status:  405,
			prefix:  "Bundle.entry[1].request",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.total("/_history")
			issues := wantOutcome(t, h.do(http.MethodPost, "", newBundle("transaction", tt.entries...)), tt.status)
			got := expressions(issues)
			if tt.expressions != nil {
				if diff := cmp.Diff(tt.expressions, got); diff != "" {
					t.Errorf("expressions (-want +got):\n%s", diff)
				}
			} else {
				if len(got) == 0 {
					t.Errorf("no expression, want one under %s", tt.prefix)
				}
				for _, x := range got {
					if !strings.HasPrefix(x, tt.prefix) {
						t.Errorf("expression %q, want one under %s", x, tt.prefix)
					}
				}
			}
			if n := h.total("/_history"); n != before {
				t.Errorf("history has %d versions, want %d: a failed transaction wrote", n, before)
			}
			if n := h.total("/Patient?identifier=urn:sys%7Cgood"); n != 0 {
				t.Errorf("the valid entry was stored (%d matches)", n)
			}
			if r := h.do(http.MethodGet, "/Patient/exist", nil); r.status != http.StatusOK || str(r.body, "meta", "versionId") != "1" {
				t.Errorf("Patient/exist changed: status %d: %.200s", r.status, r.raw)
			}
		})
	}
}

func TestTransactionOrder(t *testing.T) {
	t.Run("GET sees the PUT of the same transaction", func(t *testing.T) {
		h := newHub(t)
		p := patient("Martin")
		p["id"] = "t1"
		r := h.do(http.MethodPost, "", newBundle("transaction",
			bundleEntry("", "GET", "Patient/t1", nil),
			bundleEntry("", "PUT", "Patient/t1", p),
		))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
		got := []string{str(r.body, "entry", 0, "response", "status"), str(r.body, "entry", 0, "resource", "name", 0, "family"), str(r.body, "entry", 1, "response", "status")}
		if diff := cmp.Diff([]string{"200 OK", "Martin", "201 Created"}, got); diff != "" {
			t.Errorf("GET status, GET family, PUT status (-want +got):\n%s", diff)
		}
	})
	t.Run("DELETE runs before the POST of the same identifier", func(t *testing.T) {
		h := newHub(t)
		old := h.create("Patient", patient("Ancien", "urn:sys|x"))
		const u = "urn:uuid:44444444-4444-4444-8444-444444444444"
		r := h.do(http.MethodPost, "", newBundle("transaction",
			bundleEntry(u, "POST", "Patient", patient("Nouveau", "urn:sys|x"), "ifNoneExist", "identifier=urn:sys|x"),
			bundleEntry("", "POST", "Observation", observation(u, nil)),
			bundleEntry("", "DELETE", "Patient?identifier=urn:sys|x", nil),
		))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
		es := bundleEntries(r.body)
		if st := str(es[0], "response", "status"); st != "201 Created" {
			t.Fatalf("POST entry: status %q, want 201 Created (the DELETE ran first, so ifNoneExist matches nothing)", st)
		}
		if st := str(es[2], "response", "status"); st != "200 OK" && st != "204 No Content" {
			t.Errorf("DELETE entry: status %q", st)
		}
		created := entryTarget(t, es[0])
		if created == "Patient/"+old {
			t.Fatalf("the POST answered the deleted Patient %s", old)
		}
		if r := h.do(http.MethodGet, "/Patient/"+old, nil); r.status != http.StatusGone {
			t.Errorf("old Patient: status %d, want 410", r.status)
		}
		if r := h.do(http.MethodGet, "/"+created, nil); r.status != http.StatusOK {
			t.Errorf("new Patient: status %d, want 200", r.status)
		}
		// A regression check: the Observation once pointed at the deleted
		// Patient (resolveTarget mapped the POST's fullUrl before anything
		// ran, when ifNoneExist still matched the old Patient; the DELETE
		// removed it and the POST created a new one, but references kept
		// the old target).
		o := h.do(http.MethodGet, "/"+entryTarget(t, es[1]), nil)
		if got := str(o.body, "subject", "reference"); got != created {
			t.Errorf("Observation.subject %q, want %q (the Patient the POST created)", got, created)
		}
	})
}

// TestTransactionIfNoneExistTwice posts two entries with the same
// ifNoneExist criteria and a reference to the second: the reference must
// end at the resource the second entry answers (or the transaction fail),
// never at a resource that does not exist.
func TestTransactionIfNoneExistTwice(t *testing.T) {
	h := newHub(t)
	const a, b = "urn:uuid:aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "urn:uuid:bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
	r := h.do(http.MethodPost, "", newBundle("transaction",
		bundleEntry(a, "POST", "Patient", patient("A", "urn:sys|x"), "ifNoneExist", "identifier=urn:sys|x"),
		bundleEntry(b, "POST", "Patient", patient("B", "urn:sys|x"), "ifNoneExist", "identifier=urn:sys|x"),
		bundleEntry("", "POST", "Observation", observation(b, nil)),
	))
	if r.status != http.StatusOK {
		wantOutcome(t, r, r.status) // refusing the transaction is acceptable
		if n := h.total("/_history"); n != 0 {
			t.Errorf("a refused transaction wrote %d versions", n)
		}
		return
	}
	es := bundleEntries(r.body)
	second := entryTarget(t, es[1])
	o := h.do(http.MethodGet, "/"+entryTarget(t, es[2]), nil)
	subject := str(o.body, "subject", "reference")
	// A regression check: the subject was once Patient/<the id
	// resolveTarget reserved for entry 1>, never created (entry 1 answered
	// 200 with entry 0's Patient): a dangling reference.
	if subject != second {
		t.Errorf("Observation.subject %q, want %q (what entry 1 answered)", subject, second)
	}
	if r := h.do(http.MethodGet, "/"+subject, nil); r.status != http.StatusOK {
		t.Errorf("GET %s (the Observation's subject): status %d", subject, r.status)
	}
}

// TestBundleConditionalUpdateBodyID checks that a conditional update in a
// bundle whose body id differs from the matching resource is refused, as
// PUT /Patient?identifier=… is over HTTP (TestConditionalUpdate).
func TestBundleConditionalUpdateBodyID(t *testing.T) {
	for _, kind := range []string{"batch", "transaction"} {
		t.Run(kind, func(t *testing.T) {
			h := newHub(t)
			one := h.create("Patient", patient("Un", "urn:sys|one"))
			body := patient("Autre", "urn:sys|one")
			body["id"] = "other"
			r := h.do(http.MethodPost, "", newBundle(kind, bundleEntry("", "PUT", "Patient?identifier=urn:sys|one", body)))
			status := r.status
			if kind == "batch" && r.status == http.StatusOK {
				st := str(r.body, "entry", 0, "response", "status")
				status = map[string]int{"400 Bad Request": 400, "200 OK": 200, "201 Created": 201}[st]
			}
			// A regression check: the bundle path (resolveTarget) once
			// overwrote the body id with the match and updated it (200); over
			// HTTP the same request is a 400 with expression Patient.id.
			if status != http.StatusBadRequest {
				t.Errorf("status %d, want 400: %.400s", status, r.raw)
			}
			if v := str(h.do(http.MethodGet, "/Patient/"+one, nil).body, "meta", "versionId"); v != "1" {
				t.Errorf("Patient %s is at version %s, want 1 (unchanged)", one, v)
			}
		})
	}
}

func TestBatch(t *testing.T) {
	h := newHub(t)
	exist := patient("Existe")
	exist["id"] = "exist"
	h.do(http.MethodPut, "/Patient/exist", exist)
	bad := patient("Mauvais")
	bad["birthDate"] = "31/12/1990"
	r := h.do(http.MethodPost, "", newBundle("batch",
		bundleEntry("", "POST", "Patient", patient("Bon", "urn:sys|good")),
		bundleEntry("", "POST", "Patient", bad),
		bundleEntry("", "PUT", "Patient/exist", exist, "ifMatch", `W/"9"`),
		bundleEntry("", "GET", "Patient/nobody", nil),
		bundleEntry("", "GET", "Patient/exist", nil),
		bundleEntry("", "POST", "Observation", observation("urn:uuid:99999999-9999-4999-8999-999999999999", nil)),
		bundleEntry("", "POST", "Observation", observation("Patient?identifier=urn:sys|none", nil)),
		bundleEntry("", "PUT", "Patient/exist", exist),
	))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if got := str(r.body, "type"); got != "batch-response" {
		t.Errorf("Bundle.type %q, want batch-response", got)
	}
	es := bundleEntries(r.body)
	var got []string
	for i, e := range es {
		st := str(e, "response", "status")
		got = append(got, st)
		failed := !strings.HasPrefix(st, "2")
		if oo := dig(e, "response", "outcome"); failed && oo == nil {
			t.Errorf("entry %d: failed (%s) without an OperationOutcome", i, st)
		} else if failed && len(outcomeIssues(t, oo)) == 0 {
			t.Errorf("entry %d: OperationOutcome without issues", i)
		}
	}
	want := []string{"201 Created", "400 Bad Request", "412 Precondition Failed", "404 Not Found", "200 OK", "422 Unprocessable Entity", "422 Unprocessable Entity", "200 OK"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry statuses (-want +got):\n%s", diff)
	}
	if len(es) != len(want) {
		t.FailNow()
	}
	if got := str(es[4], "resource", "id"); got != "exist" {
		t.Errorf("GET entry: resource id %q, want exist", got)
	}
	if r := h.do(http.MethodGet, "/"+str(es[0], "response", "location"), nil); r.status != http.StatusOK || str(r.body, "name", 0, "family") != "Bon" {
		t.Errorf("the good entry was not stored: status %d: %.200s", r.status, r.raw)
	}
	if got := str(es[7], "response", "location"); got != "Patient/exist/_history/2" {
		t.Errorf("PUT entry location %q, want Patient/exist/_history/2", got)
	}
	if n := h.total("/Patient/_history"); n != 3 {
		t.Errorf("Patient history has %d versions, want 3 (exist v1, v2 and the good create)", n)
	}
	if n := h.total("/Observation/_history"); n != 0 {
		t.Errorf("Observation history has %d versions, want 0", n)
	}
}

func TestBatchIfNoneExist(t *testing.T) {
	h := newHub(t)
	existing := h.create("Patient", patient("Existe", "urn:sys|e"))
	h.create("Patient", patient("Dup", "urn:sys|dup"))
	h.create("Patient", patient("Dup bis", "urn:sys|dup"))
	r := h.do(http.MethodPost, "", newBundle("batch",
		bundleEntry("", "POST", "Patient", patient("Existe", "urn:sys|e"), "ifNoneExist", "identifier=urn:sys|e"),
		bundleEntry("", "POST", "Patient", patient("Neuf", "urn:sys|new"), "ifNoneExist", "identifier=urn:sys|new"),
		bundleEntry("", "POST", "Patient", patient("Dup", "urn:sys|dup"), "ifNoneExist", "identifier=urn:sys|dup"),
	))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	var got []string
	for _, e := range bundleEntries(r.body) {
		got = append(got, str(e, "response", "status")+" "+str(e, "response", "location"))
	}
	if len(got) == 3 {
		got[1] = strings.SplitN(got[1], "/", 2)[0] // the new id is the server's
	}
	want := []string{"200 OK Patient/" + existing + "/_history/1", "201 Created Patient", "412 Precondition Failed "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status and location of each entry (-want +got):\n%s", diff)
	}
	if n := h.total("/Patient?identifier=urn:sys%7Ce"); n != 1 {
		t.Errorf("%d Patients with urn:sys|e, want 1", n)
	}
}

func TestBundleRejects(t *testing.T) {
	h := newHub(t)
	tests := []struct {
		name        string
		body        any
		status      int
		expressions []string
	}{
		{"not a Bundle", patient("Martin"), 400, []string{"resourceType"}},
		{"a collection", map[string]any{"resourceType": "Bundle", "type": "collection"}, 400, []string{"Bundle.type"}},
		{"a searchset", map[string]any{"resourceType": "Bundle", "type": "searchset"}, 400, []string{"Bundle.type"}},
		{"malformed JSON", `{"resourceType": "Bundle",`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is := wantOutcome(t, h.do(http.MethodPost, "", tt.body), tt.status)
			if tt.expressions != nil {
				if diff := cmp.Diff(tt.expressions, expressions(is)); diff != "" {
					t.Errorf("expressions (-want +got):\n%s", diff)
				}
			}
		})
	}
	for _, kind := range []string{"batch", "transaction"} {
		t.Run("empty "+kind, func(t *testing.T) {
			r := h.do(http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": kind})
			if r.status != http.StatusOK || str(r.body, "type") != kind+"-response" || len(bundleEntries(r.body)) != 0 {
				t.Errorf("status %d: %.300s", r.status, r.raw)
			}
		})
	}
	if n := h.total("/_history"); n != 0 {
		t.Errorf("history has %d versions, want 0", n)
	}
}

// TestBundleDuplicateFullURL: two entries with one fullUrl are refused
// (bdl-7), in a transaction and in a batch, and nothing is stored (found
// in a black-box review: both Patients were created and a reference went
// to the last one).
func TestBundleDuplicateFullURL(t *testing.T) {
	h := newHub(t)
	const u = "urn:uuid:eeeeeeee-2222-4222-8222-222222222222"
	for _, kind := range []string{"transaction", "batch"} {
		b := newBundle(kind,
			bundleEntry(u, "POST", "Patient", patient("Premier")),
			bundleEntry(u, "POST", "Patient", patient("Second")),
			bundleEntry("", "POST", "Observation", observation(u, nil)),
		)
		r := h.do(http.MethodPost, "", b)
		if r.status != http.StatusBadRequest || str(r.body, "issue", 0, "expression", 0) != "Bundle.entry[1].fullUrl" {
			t.Errorf("%s: status %d, want 400 naming Bundle.entry[1].fullUrl: %s", kind, r.status, r.raw)
		}
	}
	if n := h.total("/Patient?_summary=count"); n != 0 {
		t.Errorf("%d Patients stored, want 0", n)
	}
}

// TestTransactionRelativeToAbsoluteFullURL: a relative reference resolves
// against the base of its entry's fullUrl, so Patient/tmp in an entry
// whose fullUrl is http://x/fhir/Observation/o names the entry whose
// fullUrl is http://x/fhir/Patient/tmp: rewritten like the absolute form
// (black-box review: left pointing nowhere). Under another base it names
// nothing of the bundle and stays.
func TestTransactionRelativeToAbsoluteFullURL(t *testing.T) {
	h := newHub(t)
	for _, plain := range []bool{true, false} {
		base := "http://client.example/fhir"
		obs := observation("Patient/tmp", nil)
		if !plain {
			// A conditional reference: the other path, references
			// rewritten inside the transaction.
			h.create("Practitioner", map[string]any{"resourceType": "Practitioner", "identifier": []any{map[string]any{"system": "urn:npi", "value": "rel"}}})
			obs["performer"] = []any{map[string]any{"reference": "Practitioner?identifier=urn:npi|rel"}}
		}
		other := observation("Patient/tmp", nil)
		r := h.do(http.MethodPost, "", newBundle("transaction",
			bundleEntry(base+"/Patient/tmp", "POST", "Patient", patient("Absolu")),
			bundleEntry(base+"/Observation/o", "POST", "Observation", obs),
			bundleEntry("http://elsewhere.example/fhir/Observation/p", "POST", "Observation", other),
		))
		if r.status != http.StatusOK {
			t.Fatalf("plain %v: %d %s", plain, r.status, r.raw)
		}
		es := bundleEntries(r.body)
		pat, o, p := entryTarget(t, es[0]), entryTarget(t, es[1]), entryTarget(t, es[2])
		if got := str(h.do(http.MethodGet, "/"+o, nil).body, "subject", "reference"); got != pat {
			t.Errorf("plain %v: Observation.subject %q, want %q (the entry's new id)", plain, got, pat)
		}
		if got := str(h.do(http.MethodGet, "/"+p, nil).body, "subject", "reference"); got != "Patient/tmp" {
			t.Errorf("plain %v: under another base, Observation.subject %q, want Patient/tmp kept", plain, got)
		}
	}
}
