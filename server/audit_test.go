package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/store"
)

// TestAuditTrail: every decision — allowed, denied by the policy, refused
// before it (401, 403) and each batch entry — is recorded before the answer
// leaves, readable by auditors only as AuditEvents, and the chain verifies.
func TestAuditTrail(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Audit")
	read := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid, nil)
	denied := h.as("mutual-claims", "underwriting-pricing", http.MethodGet, "/Patient/"+pid, nil)
	unauth := h.do(http.MethodGet, "/Patient/"+pid, nil, "X-Purpose-Of-Use", "TREAT")
	nopurpose := h.do(http.MethodGet, "/Patient/"+pid, nil, "Authorization", "Bearer "+h.token("gp"))
	batch := h.as("gp", "TREAT", http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}},
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}},
	}})
	for name, r := range map[string]reply{"read": read, "denied": denied, "401": unauth, "no purpose": nopurpose, "batch": batch} {
		if r.header.Get("X-Decision-Id") == "" {
			t.Errorf("%s: no X-Decision-Id", name)
		}
	}
	var recs []audit.Record
	if err := h.s.audit.Flush(); err != nil { // the journal's records into the chain
		t.Fatal(err)
	}
	h.s.db.View(func(tx *store.Tx) error {
		for _, id := range []string{read.header.Get("X-Decision-Id"), denied.header.Get("X-Decision-Id"), unauth.header.Get("X-Decision-Id"), nopurpose.header.Get("X-Decision-Id")} {
			rec, ok := audit.Find(tx, id)
			if !ok {
				t.Errorf("decision %s not in the log", id)
				continue
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if len(recs) == 4 {
		want := []struct{ outcome, status string }{{"allow", "200"}, {"deny", "403"}, {"deny", "401"}, {"deny", "403"}}
		for i, w := range want {
			if recs[i].Labels[audit.LabelOutcome] != w.outcome || recs[i].Labels[audit.LabelHTTPStatus] != w.status {
				t.Errorf("record %d: outcome %s status %s, want %s %s", i, recs[i].Labels[audit.LabelOutcome], recs[i].Labels[audit.LabelHTTPStatus], w.outcome, w.status)
			}
		}
		if strings.Contains(string(recs[0].Input), "Audit") || strings.Contains(string(recs[0].Input), pid) {
			t.Error("the recorded input carries a name or the patient's id (it must carry the pseudonym)")
		}
		if recs[0].Labels[audit.LabelPatient] == "" {
			t.Error("no patient pseudonym on the read's record")
		}
	}
	// Auditors read the log as AuditEvents; others may not.
	if r := h.as("gp", "TREAT", http.MethodGet, "/AuditEvent", nil); r.status != http.StatusForbidden {
		t.Errorf("gp reads the audit log: %d", r.status)
	}
	r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?outcome=deny&_count=100", nil)
	if r.status != http.StatusOK {
		t.Fatalf("auditor search: %d %s", r.status, r.raw)
	}
	if n := len(r.body["entry"].([]any)); n < 3 {
		t.Errorf("%d denied AuditEvents, want at least 3 (pricing, 401, no purpose)", n)
	}
	for _, e := range r.body["entry"].([]any) {
		ev := e.(map[string]any)["resource"].(map[string]any)
		if ev["outcome"] != "4" {
			t.Errorf("outcome=deny returned an AuditEvent with outcome %v", ev["outcome"])
		}
	}
	one := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent/"+denied.header.Get("X-Decision-Id"), nil)
	if one.status != http.StatusOK || str(one.body, "resourceType") != "AuditEvent" {
		t.Errorf("auditor reads one AuditEvent: %d %s", one.status, one.raw)
	}
	if r := h.as("auditor", "HCOMPL", http.MethodPost, "/AuditEvent", map[string]any{"resourceType": "AuditEvent"}); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST AuditEvent: %d, want 405", r.status)
	}
	v := h.as("auditor", "HCOMPL", http.MethodGet, "/$audit-verify", nil)
	if v.status != http.StatusOK || !strings.Contains(string(v.raw), `"valueBoolean":true`) {
		t.Errorf("$audit-verify: %d %s", v.status, v.raw)
	}
	// Auditing the auditors: their own searches are in the log.
	mine := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?agent=auditor", nil)
	if mine.status != http.StatusOK || len(mine.body["entry"].([]any)) == 0 {
		t.Errorf("the auditors' own requests are not audited: %d %s", mine.status, mine.raw)
	}
}

// TestAuditEventParameters: the decision log's search applies the
// parameters the CapabilityStatement declares for AuditEvent, and no
// others: an unknown one is refused under Prefer: handling=strict, and
// otherwise left out of the self link (it filtered nothing); _summary=count
// answers the total without entries.
func TestAuditEventParameters(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Params")
	for range 3 {
		h.as("mutual-claims", "underwriting-pricing", http.MethodGet, "/Patient/"+pid, nil) // denied
	}
	strict := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?outcome=deny&entity=Patient/"+pid+"&_include=AuditEvent:agent", nil, "Prefer", "handling=strict")
	if strict.status != http.StatusBadRequest {
		t.Fatalf("unknown parameters under handling=strict: %d %s, want 400", strict.status, strict.raw)
	}
	for _, want := range []string{`"expression":["_include"]`, `"expression":["entity"]`, "not-supported"} {
		if !strings.Contains(string(strict.raw), want) {
			t.Errorf("the 400 lacks %s: %s", want, strict.raw)
		}
	}
	lenient := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?outcome=deny&entity=Patient/"+pid, nil)
	if lenient.status != http.StatusOK {
		t.Fatalf("lenient: %d %s", lenient.status, lenient.raw)
	}
	self := str(dig(lenient.body, "link", 0), "url")
	if !strings.Contains(self, "outcome=deny") || strings.Contains(self, "entity=") {
		t.Errorf("self link %q: want the applied outcome and not the ignored entity", self)
	}
	count := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?outcome=deny&_summary=count", nil)
	total, _ := count.body["total"].(float64)
	if count.status != http.StatusOK || total < 3 || len(anySlice(count.body["entry"])) != 0 {
		t.Errorf("_summary=count: %d total %v, %d entries: want the total (≥ 3) and no entry", count.status, count.body["total"], len(anySlice(count.body["entry"])))
	}
	if full := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?outcome=deny&_count=100", nil); float64(len(anySlice(full.body["entry"]))) != total {
		t.Errorf("_summary=count says %v, the search returns %d", total, len(anySlice(full.body["entry"])))
	}
	if bad := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?_summary=true", nil); bad.status != http.StatusBadRequest {
		t.Errorf("_summary=true: %d, want 400 (count only)", bad.status)
	}
	// Dates cover their precision, several intersect; the standard forms
	// of purpose (system|code), patient (Patient/<pseudonym>) and outcome
	// (a list) filter as the short ones (black-box review: a month and a
	// year matched nothing, an instant a whole day, purpose system|code
	// nothing).
	countOf := func(query string) int {
		r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?agent=mutual-claims&_summary=count&"+query, nil)
		if r.status != http.StatusOK {
			t.Fatalf("AuditEvent?%s: %d %s", query, r.status, r.raw)
		}
		return num(r.body, "total")
	}
	all := countOf("")
	first := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?agent=mutual-claims&_count=1", nil)
	recorded := str(dig(first.body, "entry", 0), "resource", "recorded")
	now := time.Now().UTC()
	day, month, tomorrow := now.Format("2006-01-02"), now.Format("2006-01"), now.AddDate(0, 0, 1).Format("2006-01-02")
	pseudo := str(dig(first.body, "entry", 0), "resource", "entity", 0, "what", "identifier", "value")
	for q, want := range map[string]int{
		"date=" + day: all, "date=" + month: all, "date=" + now.Format("2006"): all, "date=le" + day: all,
		"date=gt" + day: 0, "date=ge" + tomorrow: 0, "date=lt" + day: 0,
		"date=ge" + recorded + "&date=le" + recorded:                                                            countOf("date=" + url.QueryEscape(recorded)),
		"purpose=" + url.QueryEscape("http://terminology.hl7.org/CodeSystem/v3-ActReason|underwriting-pricing"): countOf("purpose=underwriting-pricing"),
		"outcome=4,0": all,
	} {
		if got := countOf(strings.ReplaceAll(q, "+", "%2B")); got != want {
			t.Errorf("AuditEvent?agent=mutual-claims&%s: %d, want %d", q, got, want)
		}
	}
	if n := countOf("date=" + url.QueryEscape(recorded)); n < 1 || n >= all && all > 1 {
		t.Errorf("date=%s (one instant): %d of %d", recorded, n, all)
	}
	if pseudo != "" && countOf("patient=Patient/"+pseudo) != countOf("patient="+pseudo) {
		t.Errorf("patient=Patient/%s and patient=%s differ", pseudo, pseudo)
	}

	// No history is declared, none is served (once a 200 with an empty
	// Bundle, and a 404 "no decision with this id" for the type's).
	id := str(dig(lenient.body, "entry", 0), "resource", "id")
	for _, path := range []string{"/AuditEvent/_history", "/AuditEvent/" + id + "/_history", "/AuditEvent/" + id + "/_history/1"} {
		if r := h.as("auditor", "HCOMPL", http.MethodGet, path, nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, r.status)
		}
	}
}

// TestEveryAnswerRecorded: the X-Decision-Id of every answer names a
// record of the log — reads, searches, compartment searches, $everything
// and $pathway (allowed and refused), history, batch entries, and requests
// refused before any decision (unknown type, malformed or invalid body) —
// and no record carries the patient's real id anywhere (its URL label
// included): the auditors see the pseudonym only. Batch entries' records
// name their entry and the status it answered.
func TestEveryAnswerRecorded(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Recorded")
	type call struct {
		name, actor, purpose, method, path string
		body                               any
	}
	batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}},
		map[string]any{"request": map[string]any{"method": "GET", "url": "Observation/does-not-exist"}},
	}}
	calls := []call{
		{"read", "hospital-clinician", "TREAT", "GET", "/Patient/" + pid, nil},
		{"refused read", "mutual-claims", "underwriting-pricing", "GET", "/Patient/" + pid, nil},
		{"search", "hospital-clinician", "TREAT", "GET", "/Observation?subject=Patient/" + pid, nil},
		{"compartment search", "hospital-clinician", "TREAT", "GET", "/Patient/" + pid + "/Observation", nil},
		{"$everything", "hospital-clinician", "TREAT", "GET", "/Patient/" + pid + "/$everything", nil},
		{"refused $everything", "mutual-claims", "underwriting-pricing", "GET", "/Patient/" + pid + "/$everything", nil},
		{"$pathway", "hospital-clinician", "TREAT", "GET", "/Patient/" + pid + "/$pathway", nil},
		{"history", "hospital-clinician", "TREAT", "GET", "/Patient/" + pid + "/_history", nil},
		{"batch", "hospital-clinician", "TREAT", "POST", "", batch},
		{"unknown type", "hospital-clinician", "TREAT", "GET", "/Nonsense/1", nil},
		{"malformed JSON", "hospital-it", "HOPERAT", "POST", "/Observation", []byte(`{"resourceType":`)},
		{"invalid resource", "hospital-it", "HOPERAT", "POST", "/Observation", map[string]any{"resourceType": "Observation", "status": 12}},
		{"PATCH", "hospital-clinician", "TREAT", "PATCH", "/Patient/" + pid, nil},
		{"lower-case type", "gp", "TREAT", "GET", "/patient/" + pid, nil},
		{"OPTIONS", "gp", "TREAT", "OPTIONS", "/Patient/" + pid, nil},
		{"a patient's id as an Observation's", "gp", "TREAT", "GET", "/Observation/" + pid, nil},
		{"XML asked", "hospital-clinician", "TREAT", "GET", "/Patient/" + pid, nil}, // Accept below
	}
	ids := map[string]string{}
	statuses := map[string]int{}
	for _, c := range calls {
		var extra []string
		if c.name == "XML asked" {
			extra = []string{"Accept", "application/fhir+xml"}
		}
		r := h.as(c.actor, c.purpose, c.method, c.path, c.body, extra...)
		id := r.header.Get("X-Decision-Id")
		if id == "" {
			t.Errorf("%s: no X-Decision-Id (status %d)", c.name, r.status)
			continue
		}
		ids[c.name], statuses[c.name] = id, r.status
	}
	if statuses["refused $everything"] != http.StatusForbidden || statuses["$everything"] != http.StatusOK || statuses["unknown type"] != http.StatusNotFound ||
		statuses["PATCH"] != http.StatusMethodNotAllowed || statuses["XML asked"] != http.StatusNotAcceptable || statuses["OPTIONS"] != http.StatusMethodNotAllowed {
		t.Fatalf("statuses %v: the scenario is not what it tests", statuses)
	}
	if err := h.s.audit.Flush(); err != nil {
		t.Fatal(err)
	}
	var entryLabels []string
	h.s.db.View(func(tx *store.Tx) error {
		for name, id := range ids {
			rec, ok := audit.Find(tx, id)
			if !ok {
				t.Errorf("%s: decision %s (status %d) is not in the log", name, id, statuses[name])
				continue
			}
			if got, want := rec.Labels[audit.LabelHTTPStatus], strconv.Itoa(statuses[name]); got != want {
				t.Errorf("%s: record with http_status %q, want %q", name, got, want)
			}
			res, _ := rec.Decision()
			undecided := slices.Contains(res.Reasons, reasonUndecided)
			if wantUndecided := slices.Contains([]string{"unknown type", "malformed JSON", "invalid resource", "PATCH", "XML asked", "lower-case type", "OPTIONS"}, name); undecided != wantUndecided || undecided == (rec.Labels[audit.LabelInteraction] != "") {
				t.Errorf("%s: record reasons %v, interaction %q: want a policy decision, or 'refused before decision' for a request refused before any", name, res.Reasons, rec.Labels[audit.LabelInteraction])
			}
		}
		for seq := uint64(1); seq <= audit.Len(tx); seq++ {
			rec, _ := audit.At(tx, seq)
			b, _ := json.Marshal(rec)
			if strings.Contains(string(b), pid) {
				t.Errorf("record %d carries the patient's real id: %s", seq, b)
			}
			if rec.Labels[audit.LabelEntry] != "" {
				entryLabels = append(entryLabels, rec.Labels[audit.LabelEntry]+":"+rec.Labels[audit.LabelEntryStatus])
			}
		}
		return nil
	})
	slices.Sort(entryLabels)
	if diff := cmp.Diff([]string{"0:200", "1:404"}, entryLabels); diff != "" {
		t.Errorf("batch entry records, entry:status (-want +got):\n%s", diff)
	}
}

// TestDisclosuresSearchable: a search, a compartment search and a history
// that return a patient's resources list the patient's pseudonym on their
// record (LabelDisclosed), so that an auditor asking for that patient's
// AuditEvents finds them — and not a search that returned another
// patient's only.
func TestDisclosuresSearchable(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Disclosed")
	other := seedHospital(t, h, "Other")
	read := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid, nil)
	calls := map[string]string{
		"search":             "/Observation?subject=Patient/" + pid,
		"compartment search": "/Patient/" + pid + "/Observation",
		"history":            "/Observation/_history",
	}
	ids := map[string]string{}
	for name, path := range calls {
		r := h.as("hospital-clinician", "TREAT", http.MethodGet, path, nil)
		if r.status != http.StatusOK || len(anySlice(r.body["entry"])) == 0 {
			t.Fatalf("%s: %d, %d entries", name, r.status, len(anySlice(r.body["entry"])))
		}
		ids[name] = r.header.Get("X-Decision-Id")
	}
	elsewhere := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation?subject=Patient/"+other, nil)
	if err := h.s.audit.Flush(); err != nil {
		t.Fatal(err)
	}
	var pseudonym string
	h.s.db.View(func(tx *store.Tx) error {
		rec, _ := audit.Find(tx, read.header.Get("X-Decision-Id"))
		pseudonym = rec.Labels[audit.LabelPatient]
		return nil
	})
	if pseudonym == "" {
		t.Fatal("the read's record has no patient pseudonym")
	}
	r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?patient="+pseudonym+"&_count=100", nil)
	found := map[string]map[string]any{}
	for _, e := range anySlice(r.body["entry"]) {
		ev := e.(map[string]any)["resource"].(map[string]any)
		found[str(ev, "id")] = ev
	}
	for name, id := range ids {
		ev, ok := found[id]
		if !ok {
			t.Errorf("%s (decision %s) is not among the AuditEvents of patient %s", name, id, pseudonym)
			continue
		}
		if !strings.Contains(string(jsonBytes(t, ev)), `"value":"`+pseudonym+`"`) {
			t.Errorf("%s: the AuditEvent has no patient entity %s: %s", name, pseudonym, jsonBytes(t, ev))
		}
	}
	if _, ok := found[elsewhere.header.Get("X-Decision-Id")]; ok {
		t.Error("a search that returned another patient's resources only is listed under this patient")
	}
}

func jsonBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBreakGlassReview: a break-the-glass access shows in the auditors'
// AuditEvents as awaiting review (review=requested, with the review
// extension); an auditor's $review completes its Task (the reviewer and
// time in a note) and moves it to review=completed; a second review
// changes nothing; only auditors may review, and only break-the-glass
// decisions.
func TestBreakGlassReview(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Urgence")
	btg := h.as("gp", "BTG", http.MethodGet, "/Patient/"+pid, nil, "X-Break-Glass-Reason", "SAMU: patient unconscious")
	if btg.status != http.StatusOK {
		t.Fatalf("break-the-glass read: %d %s", btg.status, btg.raw)
	}
	plain := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid, nil)
	id := btg.header.Get("X-Decision-Id")
	listed := func(review string) []string {
		t.Helper()
		r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?review="+review, nil)
		if r.status != http.StatusOK {
			t.Fatalf("review=%s: %d %s", review, r.status, r.raw)
		}
		var ids []string
		for _, e := range anySlice(r.body["entry"]) {
			ev := e.(map[string]any)["resource"].(map[string]any)
			ids = append(ids, str(ev, "id"))
			if !strings.Contains(string(jsonBytes(t, ev)), `"url":"`+ReviewExtensionURL+`","valueCode":"`+review+`"`) {
				t.Errorf("review=%s lists %s without its review extension: %s", review, str(ev, "id"), jsonBytes(t, ev))
			}
		}
		return ids
	}
	if got := listed("requested"); !slices.Equal(got, []string{id}) {
		t.Fatalf("awaiting review: %v, want the break-the-glass decision %s only", got, id)
	}
	if got := listed("completed"); len(got) != 0 {
		t.Errorf("already reviewed: %v, want none", got)
	}
	review := "/AuditEvent/" + id + "/$review"
	if r := h.as("gp", "TREAT", http.MethodPost, review, nil); r.status != http.StatusForbidden {
		t.Errorf("a GP reviews: %d, want 403", r.status)
	}
	if r := h.as("auditor", "HCOMPL", http.MethodPost, "/AuditEvent/"+plain.header.Get("X-Decision-Id")+"/$review", nil); r.status != http.StatusUnprocessableEntity {
		t.Errorf("review of an ordinary read: %d %s, want 422", r.status, r.raw)
	}
	r := h.as("auditor", "HCOMPL", http.MethodPost, review, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.raw), `"valueCode":"completed"`) || strings.Contains(string(r.raw), pid) {
		t.Fatalf("auditor reviews: %d %s (want completed, and no patient id)", r.status, r.raw)
	}
	if got := listed("completed"); !slices.Equal(got, []string{id}) {
		t.Errorf("reviewed: %v, want %s", got, id)
	}
	if got := listed("requested"); len(got) != 0 {
		t.Errorf("awaiting review after the review: %v, want none", got)
	}
	var task map[string]any
	h.s.db.View(func(tx *store.Tx) error {
		for _, tid := range tx.Lookup("Task", "identifier", breakGlassSystem+"|dr-generaliste|Patient/"+pid) {
			r, _ := tx.Get("Task", tid)
			task = decodeStored(r.JSON)
		}
		return nil
	})
	if str(task, "status") != "completed" || str(task, "note", 0, "authorString") != "auditeur-dpo" {
		t.Errorf("review Task: status %q, note %v; want completed by auditeur-dpo", str(task, "status"), task["note"])
	}
	version := str(task, "meta", "versionId")
	if again := h.as("auditor", "HCOMPL", http.MethodPost, review, nil); again.status != http.StatusOK {
		t.Errorf("second review: %d %s", again.status, again.raw)
	}
	h.s.db.View(func(tx *store.Tx) error {
		for _, tid := range tx.Lookup("Task", "identifier", breakGlassSystem+"|dr-generaliste|Patient/"+pid) {
			if r, _ := tx.Get("Task", tid); strconv.FormatUint(r.Version, 10) != version {
				t.Errorf("a second review wrote the Task again (version %d, was %s)", r.Version, version)
			}
		}
		return nil
	})
}

// TestCreateRecordsNameTheResource: the record of a create (decided before
// the resource had its id) names what was created once it is — the
// resource, or for a Patient its pseudonym — alone or in a transaction.
func TestCreateRecordsNameTheResource(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Created")
	obs := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"}, "subject": map[string]any{"reference": "Patient/" + pid}}
	single := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", obs)
	tx := h.as("hospital-it", "HOPERAT", http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": patient("Nouveau", testINS("Nouveau")), "request": map[string]any{"method": "POST", "url": "Patient"}},
		map[string]any{"resource": map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "y"},
			"subject": map[string]any{"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}}, "request": map[string]any{"method": "POST", "url": "Observation"}},
	}})
	if single.status != http.StatusCreated || tx.status != http.StatusOK {
		t.Fatalf("creates: %d, %d %s", single.status, tx.status, tx.raw)
	}
	created := func(location string) string {
		parts := strings.Split(location, "/")
		for i := range parts {
			if parts[i] == "_history" {
				return parts[i-1]
			}
		}
		return ""
	}
	obsID := created(single.header.Get("Location"))
	newPatient := created(str(tx.body, "entry", 0, "response", "location"))
	txObs := created(str(tx.body, "entry", 1, "response", "location"))
	if err := h.s.audit.Flush(); err != nil {
		t.Fatal(err)
	}
	h.s.db.View(func(tx2 *store.Tx) error {
		rec, _ := audit.Find(tx2, single.header.Get("X-Decision-Id"))
		if got := rec.Labels[audit.LabelResourceID]; got != obsID {
			t.Errorf("single create: resource_id %q, want %q", got, obsID)
		}
		pseudo := h.s.patientPseudonym(tx2, "audit", "Patient/"+newPatient)
		got := map[string]string{}
		for seq := uint64(1); seq <= audit.Len(tx2); seq++ {
			r, _ := audit.At(tx2, seq)
			if r.RequestID == "" || r.Labels[audit.LabelEntry] == "" || r.Labels[audit.LabelInteraction] != "create" {
				continue
			}
			got[r.Labels[audit.LabelEntry]] = r.Labels[audit.LabelResourceID]
		}
		if got["0"] != pseudo || got["1"] != txObs || pseudo == newPatient {
			t.Errorf("transaction creates: resource ids %v, want entry 0 the new Patient's pseudonym %s, entry 1 %s", got, pseudo, txObs)
		}
		return nil
	})
}

// TestCareRelationDeclared: a professional who writes a stay for a patient
// whose care team it is not in becomes a member on its own word (the
// matrix's design: "audited like every write"); that write's record says
// so, and auditors list such writes (AuditEvent subtype
// care-relation-declared). A member's write is not flagged. (Found in a
// black-box review: any GP could join any care team unnoticed.)
func TestCareRelationDeclared(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Relation")
	enc := map[string]any{"resourceType": "Encounter", "status": "finished",
		"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject": map[string]any{"reference": "Patient/" + pid}}
	before := h.as("gp", "TREAT", http.MethodGet, "/Patient/"+pid, nil)
	declared := h.as("gp", "TREAT", http.MethodPost, "/Encounter", enc)
	member := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Encounter", enc)
	after := h.as("gp", "TREAT", http.MethodGet, "/Patient/"+pid, nil)
	if before.status != http.StatusForbidden || declared.status != http.StatusCreated || member.status != http.StatusCreated || after.status != http.StatusOK {
		t.Fatalf("scenario: gp read %d, gp stay %d, hospital stay %d, gp read after %d; want 403, 201, 201, 200", before.status, declared.status, member.status, after.status)
	}
	// declaredIDs lists the care-relation-declared AuditEvents.
	declaredIDs := func() []string {
		r := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?subtype=care-relation-declared", nil)
		var ids []string
		for _, e := range anySlice(r.body["entry"]) {
			ids = append(ids, str(e, "resource", "id"))
		}
		return ids
	}
	if ids := declaredIDs(); !slices.Equal(ids, []string{declared.header.Get("X-Decision-Id")}) {
		t.Errorf("care-relation-declared AuditEvents %v, want the GP's stay %s only", ids, declared.header.Get("X-Decision-Id"))
	}
	// A CareTeam covering two patients, one outside the writer's care team
	// and one inside, decided last (ids are time-ordered: the inside one
	// is created after), is flagged (once only the last patient decided
	// counted: black-box review).
	cab := h.as("gp", "TREAT", http.MethodPost, "/Patient", patient("Cabinet2", testINS("Cabinet2")))
	if cab.status != http.StatusCreated {
		t.Fatalf("gp registers a patient: %d %s", cab.status, cab.raw)
	}
	outside := strings.Split(strings.TrimPrefix(cab.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	inside := seedHospital(t, h, "Equipe")
	team := map[string]any{"resourceType": "CareTeam", "status": "active", "subject": map[string]any{"reference": "Patient/" + outside},
		"participant": []any{map[string]any{"member": map[string]any{"reference": "Patient/" + inside}},
			map[string]any{"member": map[string]any{"identifier": map[string]any{"system": "https://finess.esante.gouv.fr", "value": "750712184"}}}}}
	teamW := h.as("hospital-clinician", "TREAT", http.MethodPost, "/CareTeam", team)
	if teamW.status != http.StatusCreated {
		t.Fatalf("clinician's two-patient CareTeam: %d %s", teamW.status, teamW.raw)
	}
	if ids := declaredIDs(); !slices.Contains(ids, teamW.header.Get("X-Decision-Id")) {
		t.Errorf("care-relation-declared AuditEvents %v lack the two-patient CareTeam %s", ids, teamW.header.Get("X-Decision-Id"))
	}
	// A Consent written by an organisation outside the care team (the
	// programme operator granting itself the patient's consent) is
	// flagged too.
	other := seedHospital(t, h, "Consentie")
	consent := map[string]any{"resourceType": "Consent", "status": "active",
		"scope":    map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":  map[string]any{"reference": "Patient/" + other},
		"provision": map[string]any{"type": "permit", "actor": []any{map[string]any{
			"role":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}},
			"reference": map[string]any{"identifier": map[string]any{"system": "https://sirene.fr", "value": "552100554"}}}}}}
	granted := h.as("programme-operator", "prevention-programme-delivery", http.MethodPost, "/Consent", consent)
	if granted.status != http.StatusCreated {
		t.Fatalf("programme operator's Consent: %d %s", granted.status, granted.raw)
	}
	if ids := declaredIDs(); !slices.Contains(ids, granted.header.Get("X-Decision-Id")) {
		t.Errorf("care-relation-declared AuditEvents %v lack the programme operator's Consent %s", ids, granted.header.Get("X-Decision-Id"))
	}
}

// TestBatchEntriesRecorded: every entry of a batch or transaction has a
// record, those refused before any decision (an unknown type, an invalid
// resource, an unsupported method) included, naming their entry (once
// only the decided entries had one: black-box review).
func TestBatchEntriesRecorded(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Lots")
	for _, kind := range []string{"batch", "transaction"} {
		b := map[string]any{"resourceType": "Bundle", "type": kind, "entry": []any{
			map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}},
			map[string]any{"request": map[string]any{"method": "GET", "url": "Foo/1"}},
			map[string]any{"request": map[string]any{"method": "POST", "url": "Observation"}, "resource": map[string]any{"resourceType": "Observation", "status": "bogus"}},
		}}
		r := h.as("hospital-clinician", "TREAT", http.MethodPost, "", b)
		reqID := r.header.Get("X-Request-Id")
		if err := h.s.audit.Flush(); err != nil {
			t.Fatal(err)
		}
		entries := map[string]bool{}
		h.s.db.View(func(tx *store.Tx) error {
			for seq := uint64(1); seq <= audit.Len(tx); seq++ {
				rec, _ := audit.At(tx, seq)
				if rec.RequestID == reqID {
					entries[rec.Labels[audit.LabelEntry]] = true
				}
			}
			return nil
		})
		want := []string{"0", "1", "2"}
		if kind == "transaction" {
			want = want[1:] // refused whole before its first entry ran: nothing was decided for it
		}
		for _, e := range want {
			if !entries[e] {
				t.Errorf("%s (status %d): no record for entry %s (records for entries %v)", kind, r.status, e, entries)
			}
		}
	}
}

// TestQueriedPatientsFindable: a search naming a patient in its criteria,
// refused or not, and an auditor's lookup of a patient's records, are found
// by AuditEvent?patient= (they were not: black-box review).
func TestQueriedPatientsFindable(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Cherche")
	pseudo := patientPseudonymOf(t, h.hub, "audit", pid)
	refused := h.as("mutual-claims", "HPAYMT", http.MethodGet, "/Observation?patient="+pid, nil)
	if refused.status != http.StatusForbidden {
		t.Fatalf("mutual-claims search: %d, want 403", refused.status)
	}
	lookup := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?patient="+pseudo, nil)
	found := h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?patient="+pseudo+"&_count=100", nil)
	ids := map[string]bool{}
	for _, e := range anySlice(found.body["entry"]) {
		ids[str(e, "resource", "id")] = true
	}
	for name, id := range map[string]string{"the refused search": refused.header.Get("X-Decision-Id"), "the auditor's lookup": lookup.header.Get("X-Decision-Id")} {
		if !ids[id] {
			t.Errorf("%s (%s) is not found by AuditEvent?patient=%s", name, id, pseudo)
		}
	}
}

// TestCareRelationDeclaredByLinkedEntry: a stay written for an existing
// patient through a bundle entry that links to it (a conditional create on
// the INS that matches, cited by its fullUrl), as $ingest and transactions
// do, declares a care relationship like a stay citing Patient/id: it was
// decided as if for a new patient, and not flagged.
func TestCareRelationDeclaredByLinkedEntry(t *testing.T) {
	h := newSecureHub(t)
	declared := func() int {
		return len(anySlice(h.as("auditor", "HCOMPL", http.MethodGet, "/AuditEvent?subtype=care-relation-declared", nil).body["entry"]))
	}
	for i, name := range []string{"Ingeree", "Transmise"} {
		if r := h.as("gp", "TREAT", http.MethodPost, "/Patient", patient(name, testINS(name))); r.status != http.StatusCreated {
			t.Fatalf("gp registers: %d %s", r.status, r.raw)
		}
		ins := strings.TrimPrefix(testINS(name), insSystem+"|")
		before := declared()
		var r reply
		if i == 0 {
			csv := "finess;stay_id;ins_nir;birth_date;sex;postcode;admission_date;discharge_date;admission_mode;admission_source;discharge_mode;ghm;main_diagnosis;related_diagnosis;other_diagnoses;acts;unit_type\n" +
				"750712184;H-9;" + ins + ";1955-03-14;1;75011;2026-03-02;2026-03-10;8;5;8;05M09T;I50.9;;;;MCO\n"
			r = h.as("hospital-it", "HOPERAT", http.MethodPost, "/$ingest?source=hospital-stays", csv, "Content-Type", "text/csv")
		} else {
			const uPat = "urn:uuid:44444444-4444-4444-8444-444444444444"
			pat := bundleEntry(uPat, "POST", "Patient", patient(name, testINS(name)))
			pat["request"].(map[string]any)["ifNoneExist"] = "identifier=" + testINS(name)
			r = h.as("hospital-it", "HOPERAT", http.MethodPost, "", newBundle("transaction", pat,
				bundleEntry("", "POST", "Encounter", map[string]any{"resourceType": "Encounter", "status": "finished",
					"class":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
					"subject": map[string]any{"reference": uPat}})))
		}
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", name, r.status, r.raw)
		}
		if n := declared(); n <= before {
			t.Errorf("%s: %d care-relation-declared AuditEvents after the stay, want more than %d", name, n, before)
		}
	}
}
