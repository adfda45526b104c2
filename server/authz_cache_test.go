package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/store"
)

// TestAuthzMemoConsentNextRequest: with the patient contexts memoised
// (no audit log, so that no commit separates the reads), an objection,
// its withdrawal and a new stay each decide the very next read.
func TestAuthzMemoConsentNextRequest(t *testing.T) {
	h := newSecureHubWith(t, func(c *Config) { c.NoAudit = true })
	seed := []string{"Authorization", "Bearer " + h.token("hospital-it"), "X-Purpose-Of-Use", "HOPERAT"}
	created := func(typ string, body map[string]any, headers []string) string {
		t.Helper()
		r := h.do(http.MethodPost, "/"+typ, body, headers...)
		loc := strings.Split(r.header.Get("Location"), "/")
		if r.status != http.StatusCreated || len(loc) < 4 {
			t.Fatalf("POST /%s: %d %.300s", typ, r.status, r.raw)
		}
		return loc[len(loc)-3]
	}
	pid := created("Patient", patient("Memo"), seed)
	obs := created("Observation", map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "HbA1c"},
		"subject": map[string]any{"reference": "Patient/" + pid}}, seed)
	self := []string{"Authorization", "Bearer " + h.token("patient", scSelfPatient(pid)), "X-Purpose-Of-Use", "PATRQT"}
	reader := []string{"Authorization", "Bearer " + h.token("hospital-clinician"), "X-Purpose-Of-Use", "TREAT"}
	reads := func(want int, reason string) {
		t.Helper()
		for _, path := range []string{"/Patient/" + pid, "/Observation/" + obs} {
			for range 3 { // the first read may fill the memo, the next use it
				r := h.do(http.MethodGet, path, nil, reader...)
				if r.status != want || !strings.Contains(string(r.raw), reason) {
					t.Fatalf("GET %s: %d %.300s, want %d %s", path, r.status, r.raw, want, reason)
				}
			}
		}
	}
	reads(http.StatusOK, "")
	// The reads were decided with memoised contexts.
	var now uint64
	if err := h.s.db.View(func(tx *store.Tx) error { now = tx.Snapshot(); return nil }); err != nil {
		t.Fatal(err)
	}
	m := h.s.memo()
	m.contextsMu.RLock()
	n, at := len(m.contexts), m.contextsAt
	m.contextsMu.RUnlock()
	if n == 0 || at != now {
		t.Fatalf("%d memoised contexts at snapshot %d (now %d): the memo is not used", n, at, now)
	}

	objection := scConsentOf(pid, "patient-privacy", "OPTOUT", map[string]any{
		"type":    "deny",
		"actor":   []any{scActor("IRCP", scIdentifierRef(auth.DevHospital))},
		"purpose": []any{scCoding(scSysActReason, "TREAT")},
	})
	consent := created("Consent", objection, self)
	reads(http.StatusForbidden, "patient-objection")
	if r := h.do(http.MethodPut, "/Consent/"+consent, scWithID(scWithStatus(objection, "inactive"), consent), self...); r.status != http.StatusOK {
		t.Fatalf("withdraw the objection: %d %.300s", r.status, r.raw)
	}
	reads(http.StatusOK, "")

	// The same with other readers filling the memo meanwhile: each write
	// decides the read that follows it.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req := httptest.NewRequest(http.MethodGet, "/fhir/Observation/"+obs, nil)
				req.Header.Set("Authorization", reader[1])
				req.Header.Set("X-Purpose-Of-Use", "TREAT")
				h.s.Handler().ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
	for i := range 6 {
		status, want, reason := "active", http.StatusForbidden, "patient-objection"
		if i%2 == 1 {
			status, want, reason = "inactive", http.StatusOK, ""
		}
		if r := h.do(http.MethodPut, "/Consent/"+consent, scWithID(scWithStatus(objection, status), consent), self...); r.status != http.StatusOK {
			t.Fatalf("consent %s: %d %.300s", status, r.status, r.raw)
		}
		reads(want, reason)
	}
}

// TestAccessMemoNextRequest: a new version's security labels decide the
// very next read, its previous version's access metadata being memoised.
func TestAccessMemoNextRequest(t *testing.T) {
	h := newSecureHubWith(t, func(c *Config) { c.NoAudit = true })
	writer := []string{"Authorization", "Bearer " + h.token("hospital-it"), "X-Purpose-Of-Use", "HOPERAT"}
	r := h.do(http.MethodPost, "/Patient", patient("Memo"), writer...)
	loc := strings.Split(r.header.Get("Location"), "/")
	if r.status != http.StatusCreated || len(loc) < 4 {
		t.Fatalf("POST /Patient: %d %.300s", r.status, r.raw)
	}
	pid := loc[len(loc)-3]
	oid := store.NewID()
	obs := func(labels ...string) map[string]any {
		res := map[string]any{"resourceType": "Observation", "id": oid, "status": "final", "code": map[string]any{"text": "HbA1c"},
			"subject": map[string]any{"reference": "Patient/" + pid}}
		for _, l := range labels {
			res["meta"] = map[string]any{"security": []any{map[string]any{"system": "urn:parcours:test", "code": l}}}
		}
		return res
	}
	self := []string{"Authorization", "Bearer " + h.token("patient", scSelfPatient(pid)), "X-Purpose-Of-Use", "PATRQT"}
	reads := func(want int, reason string) {
		t.Helper()
		for range 3 { // the first read may fill the memo, the next use it
			r := h.do(http.MethodGet, "/Observation/"+oid, nil, self...)
			if r.status != want || !strings.Contains(string(r.raw), reason) {
				t.Fatalf("GET /Observation: %d %.300s, want %d %s", r.status, r.raw, want, reason)
			}
		}
	}
	for i, labels := range [][]string{nil, {"INVISIBLE_PATIENT"}, nil, {"INVISIBLE_PATIENT"}} {
		if r := h.do(http.MethodPut, "/Observation/"+oid, obs(labels...), writer...); r.status/100 != 2 {
			t.Fatalf("PUT /Observation (%v): %d %.300s", labels, r.status, r.raw)
		}
		if i%2 == 0 {
			reads(http.StatusOK, "")
		} else {
			reads(http.StatusForbidden, "security-label-hidden-from-patient")
		}
	}
	m := h.s.memo()
	m.mu.RLock()
	n := len(m.access)
	m.mu.RUnlock()
	if n < 4 {
		t.Errorf("%d memoised versions: the memo is not used", n)
	}
}

// TestReadOnly: the access memo is used in read transactions only, told
// apart by their snapshot (store.Tx.Snapshot, 0 in a write).
func TestReadOnly(t *testing.T) {
	h := newSecureHubWith(t, func(c *Config) { c.NoAudit = true })
	var view, update bool
	if err := h.s.db.View(func(tx *store.Tx) error { view = readOnly(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := h.s.db.Update(context.Background(), func(tx *store.Tx) error { update = readOnly(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	if !view || update {
		t.Errorf("read-only: View %v, Update %v; want true, false", view, update)
	}
}

// TestCurrentAccessMemo: the memoised access metadata of a current version
// is the index's, and a new version's replaces it.
func TestCurrentAccessMemo(t *testing.T) {
	h := newSecureHubWith(t, func(c *Config) { c.NoAudit = true })
	ctx := context.Background()
	cl := &caller{memo: h.s.memo()}
	id := store.NewID()
	put := func(label string) {
		t.Helper()
		obs := map[string]any{"resourceType": "Observation", "status": "final", "subject": map[string]any{"reference": "Patient/p1"},
			"meta": map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": label}}}}
		if err := h.s.db.Update(ctx, func(tx *store.Tx) error { _, err := tx.Upsert("Observation", id, obs); return err }); err != nil {
			t.Fatal(err)
		}
	}
	check := func(label string) {
		t.Helper()
		for range 2 { // read, then memoised
			if err := h.s.db.View(func(tx *store.Tx) error {
				r, err := tx.Get("Observation", id)
				if err != nil {
					return err
				}
				got, want := h.s.currentAccess(cl, tx, r), storedAccess(tx, "Observation", id)
				if diff := cmp.Diff(want, got, cmp.AllowUnexported(accessInfo{})); diff != "" {
					t.Errorf("access of version %d (-index +memo):\n%s", r.Version, diff)
				}
				if !slices.Contains(got.labels, label) {
					t.Errorf("labels %v, want %s", got.labels, label)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("N")
	check("N")
	put("R")
	check("R")
}

// TestConsentSummaryFollowsNamedActor: a Consent naming an Organization by
// reference matches callers by that Organization's identifiers as they
// are now, not as they were when the Consent was first summarised; a
// Consent naming none is memoised per version, one server's memo apart
// from another's.
func TestConsentSummaryFollowsNamedActor(t *testing.T) {
	h := newHub(t)
	org := func(value string) map[string]any {
		return map[string]any{"resourceType": "Organization", "id": "o1",
			"identifier": []any{map[string]any{"system": "https://finess.esante.gouv.fr", "value": value}}}
	}
	consent := func(actor map[string]any) map[string]any {
		return map[string]any{"resourceType": "Consent", "id": "c1", "status": "active",
			"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
			"category": []any{map[string]any{"text": "x"}}, "patient": map[string]any{"reference": "Patient/p1"},
			"provision": map[string]any{"type": "deny", "actor": []any{map[string]any{"role": map[string]any{"text": "x"}, "reference": actor}}}}
	}
	put := func(typ, id string, res map[string]any) {
		t.Helper()
		if r := h.do(http.MethodPut, "/"+typ+"/"+id, res); r.status >= 300 {
			t.Fatalf("PUT %s/%s: %d %.300s", typ, id, r.status, r.raw)
		}
	}
	actors := func(s *Server) []string {
		var out []string
		s.db.View(func(tx *store.Tx) error {
			r, err := tx.Get("Consent", "c1")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range s.consentSummary(tx, r).Provisions {
				out = append(out, p.Actors...)
			}
			return nil
		})
		return out
	}
	put("Patient", "p1", map[string]any{"resourceType": "Patient", "id": "p1"})
	put("Organization", "o1", org("111111111"))
	put("Consent", "c1", consent(map[string]any{"reference": "Organization/o1"}))
	if got := actors(h.s); !slices.Contains(got, "https://finess.esante.gouv.fr|111111111") {
		t.Fatalf("actors %v: the named Organization's FINESS is missing", got)
	}
	put("Organization", "o1", org("222222222"))
	got := actors(h.s)
	// A deny names the Organization as it was and as it is: whoever edits
	// it cannot move the objection off itself (black-box review).
	if !slices.Contains(got, "https://finess.esante.gouv.fr|222222222") || !slices.Contains(got, "https://finess.esante.gouv.fr|111111111") {
		t.Errorf("deny actors %v after the Organization's FINESS changed, want 111111111 and 222222222", got)
	}
	// A permit names it only by what it was and still is: adding an
	// identifier to it does not hand the permit to another organisation.
	permit := consent(map[string]any{"reference": "Organization/o1"})
	permit["provision"].(map[string]any)["type"] = "permit"
	put("Consent", "c1", permit)
	put("Organization", "o1", map[string]any{"resourceType": "Organization", "id": "o1", "identifier": []any{
		map[string]any{"system": "https://finess.esante.gouv.fr", "value": "222222222"},
		map[string]any{"system": "https://finess.esante.gouv.fr", "value": "333333333"}}})
	if got := actors(h.s); !slices.Contains(got, "https://finess.esante.gouv.fr|222222222") || slices.Contains(got, "https://finess.esante.gouv.fr|333333333") {
		t.Errorf("permit actors %v after an identifier was added, want 222222222 and not 333333333", got)
	}
	// The same Consent id and version in another hub, naming another actor
	// by identifier: its own summary, not the first hub's.
	other := newHub(t)
	if r := other.do(http.MethodPut, "/Consent/c1", consent(map[string]any{"identifier": map[string]any{"system": "urn:x", "value": "y"}})); r.status >= 300 {
		t.Fatalf("PUT: %d %.300s", r.status, r.raw)
	}
	put("Consent", "c1", consent(map[string]any{"identifier": map[string]any{"system": "urn:x", "value": "z"}}))
	for _, tc := range []struct {
		s    *Server
		want string
	}{{other.s, "urn:x|y"}, {h.s, "urn:x|z"}, {other.s, "urn:x|y"}} {
		if got := actors(tc.s); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("actors %v, want [%s]", got, tc.want)
		}
	}
}
