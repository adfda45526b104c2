package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/store"
)

// TestAuditReview covers what a black-box review of the audit found: an
// auditor's patient criterion was recorded as typed (a hub id or an INS
// kept in the chain for good), and a transaction refused at its second
// entry answered with the X-Decision-Id of its first entry's allow.
func TestAuditReview(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Auditee")
	record := func(id string) audit.Record {
		t.Helper()
		if err := h.s.audit.Flush(); err != nil {
			t.Fatal(err)
		}
		var rec audit.Record
		var ok bool
		h.s.db.View(func(tx *store.Tx) error { rec, ok = audit.Find(tx, id); return nil })
		if !ok {
			t.Fatalf("no record %s", id)
		}
		return rec
	}
	read := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid, nil)
	pseudonym := record(read.header.Get("X-Decision-Id")).Labels[audit.LabelPatient]
	if !strings.HasPrefix(pseudonym, "p-") {
		t.Fatalf("the read's record names patient %q", pseudonym)
	}

	t.Run("an auditor's criterion is recorded as a pseudonym", func(t *testing.T) {
		ins := strings.TrimPrefix(testINS("Auditee"), insSystem+"|")
		for value, want := range map[string]string{pseudonym: pseudonym, pid: pseudonym, ins: pseudonym, "Patient/" + pid: pseudonym, "no-such-patient": ""} {
			r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?patient="+value, nil)
			if r.status != http.StatusOK {
				t.Fatalf("AuditEvent?patient=%s: %d %s", value, r.status, r.raw)
			}
			rec := record(r.header.Get("X-Decision-Id"))
			got := rec.Labels[audit.LabelQueried]
			raw := strings.TrimPrefix(value, "Patient/")
			if b, _ := json.Marshal(rec); raw != pseudonym && strings.Contains(string(b), raw) {
				t.Errorf("AuditEvent?patient=%s: the record keeps the value as typed: %s", value, b)
			}
			if want != "" && got != want {
				t.Errorf("AuditEvent?patient=%s: queried %q, want the patient's pseudonym %q", value, got, want)
			}
			if want == "" && !strings.HasPrefix(got, "p-") {
				t.Errorf("AuditEvent?patient=%s: queried %q, want a keyed digest", value, got)
			}
		}
	})

	t.Run("several patients", func(t *testing.T) {
		other := seedHospital(t, h, "Auditee2")
		read2 := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+other, nil)
		pseudonym2 := record(read2.header.Get("X-Decision-Id")).Labels[audit.LabelPatient]
		count := func(q string) (int, audit.Record) {
			r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?_count=0&patient="+q, nil)
			return num(r.body, "total"), record(r.header.Get("X-Decision-Id"))
		}
		one, _ := count(pseudonym)
		two, _ := count(pseudonym2)
		both, rec := count(pseudonym + "," + pseudonym2)
		if one == 0 || two == 0 || both < max(one, two) {
			t.Errorf("AuditEvent?patient=a,b: total %d, a alone %d, b alone %d: want any of them", both, one, two)
		}
		if q := rec.Labels[audit.LabelQueried]; !strings.Contains(q, pseudonym) || !strings.Contains(q, pseudonym2) {
			t.Errorf("patient=a,b recorded as queried %q, want both pseudonyms", q)
		}
		if _, rec := count(pid + "," + other); !strings.Contains(rec.Labels[audit.LabelQueried], pseudonym2) {
			t.Errorf("patient=<id>,<id> recorded as queried %q, want both pseudonyms", rec.Labels[audit.LabelQueried])
		}
	})

	t.Run("AuditEvent search tokens", func(t *testing.T) {
		if r := h.as("gp", "TREAT", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusForbidden {
			t.Fatalf("gp outside the care team reads %d", r.status)
		}
		batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
			map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}}}}
		b := h.as("gp", "TREAT", http.MethodPost, "", batch)
		if b.status != http.StatusOK {
			t.Fatalf("batch: %d %s", b.status, b.raw)
		}
		search := func(q string) reply {
			r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?"+q, nil)
			if r.status != http.StatusOK {
				t.Fatalf("AuditEvent?%s: %d %s", q, r.status, r.raw)
			}
			return r
		}
		total := func(q string) int { return num(search(q).body, "total") }
		v3 := "http://terminology.hl7.org/CodeSystem/v3-ActReason|"
		for _, c := range []struct{ list, a, b string }{
			// (not the auditor's: each of these searches is a record)
			{"purpose=TREAT,HOPERAT", "purpose=TREAT", "purpose=HOPERAT"},
			{"purpose=" + v3 + "TREAT," + v3 + "HOPERAT", "purpose=TREAT", "purpose=HOPERAT"},
			{"agent=gp,hospital-it", "agent=gp", "agent=hospital-it"},
			{"outcome=http://terminology.hl7.org/CodeSystem/audit-event-outcome|4", "outcome=4", ""},
		} {
			want := total(c.a)
			if c.b != "" {
				want += total(c.b)
			}
			if got := total(c.list); got != want || got == 0 {
				t.Errorf("AuditEvent?%s: total %d, want %d", c.list, got, want)
			}
		}
		// A subtype is filtered in the log: the first page holds the
		// first match, and the total is given.
		r := search("subtype=read&_count=1")
		if n := len(anySlice(r.body["entry"])); n != 1 || str(r.body, "entry", 0, "resource", "subtype", 0, "code") != "read" || num(r.body, "total") < 2 {
			t.Errorf("AuditEvent?subtype=read&_count=1: %d entries, total %d: %.300s", n, num(r.body, "total"), r.raw)
		}
		// A developer hub's AuditEvents are test data (HTEST).
		if code := str(r.body, "entry", 0, "resource", "meta", "security", 0, "code"); !h.s.cfg.Dev || code != "HTEST" {
			t.Errorf("a dev hub's AuditEvent: meta.security %q (dev %v), want HTEST", code, h.s.cfg.Dev)
		}
		// _count=0: the total, no entries.
		if r := search("_count=0"); len(anySlice(r.body["entry"])) != 0 || num(r.body, "total") == 0 || strings.Contains(string(r.raw), `"next"`) {
			t.Errorf("AuditEvent?_count=0: %.300s, want the total only", r.raw)
		}
		// review is filtered page by page: no total to answer.
		if r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?review=requested&_count=0", nil); r.status != http.StatusBadRequest {
			t.Errorf("AuditEvent?review=requested&_count=0: %d, want 400 (no total for review)", r.status)
		}
		// A batch entry's record shows what the entry answered.
		ev := search("agent=gp&entity-type=Patient&_count=1")
		found := false
		for _, d := range anySlice(dig(ev.body, "entry", 0, "resource", "entity")) {
			for _, x := range anySlice(dig(d, "detail")) {
				found = found || str(x, "type") == "entry_status" && str(x, "valueString") == "403"
			}
		}
		if !found {
			t.Errorf("the gp's batch entry record lacks entry_status 403: %.600s", ev.raw)
		}
	})

	t.Run("a refusal names the decision that refused", func(t *testing.T) {
		obs := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"}, "subject": map[string]any{"reference": "Patient/" + pid}}
		tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
			map[string]any{"resource": obs, "request": map[string]any{"method": "POST", "url": "Observation"}},
			map[string]any{"request": map[string]any{"method": "DELETE", "url": "AuditEvent/x"}},
		}}
		r := h.as("hospital-clinician", "TREAT", http.MethodPost, "", tx)
		if r.status != http.StatusForbidden {
			t.Fatalf("transaction: %d %s", r.status, r.raw)
		}
		rec := record(r.header.Get("X-Decision-Id"))
		if rec.Labels[audit.LabelOutcome] != audit.OutcomeDeny || rec.Labels[audit.LabelHTTPStatus] != "403" {
			t.Errorf("the refused transaction's X-Decision-Id names a record with outcome %q, http_status %q: want the deny, 403",
				rec.Labels[audit.LabelOutcome], rec.Labels[audit.LabelHTTPStatus])
		}
	})
}
