package suite

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// badDate is a Patient.birthDate no R4 server may accept (month 13).
const badDate = "1970-13-45"

// observation is a valid R4 Observation with one identifier in the run's
// system, a LOINC code and a quantity.
func (r *runner) observation(value, subject, code, display, date string, qty int, unit string) map[string]any {
	return map[string]any{
		"resourceType": "Observation",
		"identifier":   []any{map[string]any{"system": r.system, "value": value}},
		"status":       "final",
		"code": map[string]any{"coding": []any{map[string]any{
			"system": "http://loinc.org", "code": code, "display": display}}},
		"subject":           map[string]any{"reference": subject},
		"effectiveDateTime": date,
		"valueQuantity": map[string]any{
			"value": qty, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
	}
}

func newUUID() string {
	return "urn:uuid:" + uuid4()
}

// uuid4 is a random RFC 9562 version 4 UUID.
func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func entry(fullURL string, res map[string]any, method, url string) map[string]any {
	e := map[string]any{"request": map[string]any{"method": method, "url": url}}
	if fullURL != "" {
		e["fullUrl"] = fullURL
	}
	if res != nil {
		e["resource"] = res
	}
	return e
}

func bundle(typ string, entries ...any) map[string]any {
	return map[string]any{"resourceType": "Bundle", "type": typ, "entry": entries}
}

// entryStatus is the code of entry.response.status ("201 Created" → 201).
func entryStatus(e map[string]any) int {
	s := str(e, "response", "status")
	code, _, _ := strings.Cut(s, " ")
	n, _ := strconv.Atoi(code)
	return n
}

// postBundle POSTs a batch or transaction to the base.
func (r *runner) postBundle(ctx context.Context, b map[string]any) (*response, error) {
	return r.do(ctx, http.MethodPost, "", b)
}

// trackEntries remembers what the created entries of a response name.
func (r *runner) trackEntries(x *response) {
	for _, e := range list(x.res, "entry") {
		if entryStatus(obj(e)) == http.StatusCreated {
			if typ, id, _ := parseRef(str(e, "response", "location")); id != "" {
				r.track(typ, id)
			}
		}
	}
}

type bundleChecks struct{ *runner }

func (r *runner) bundleChecks() []check {
	s := bundleChecks{r}
	return []check{
		{"transaction, urn:uuid references rewritten", s.transaction},
		{"transaction is all or nothing", s.atomic},
		{"batch, one outcome per entry", s.batch},
	}
}

func (s bundleChecks) transaction(ctx context.Context) (string, error) {
	if err := s.caps.needSystem("transaction"); err != nil {
		return "", err
	}
	pURL, oURL := newUUID(), newUUID()
	b := bundle("transaction",
		entry(pURL, s.patient("tx", "Transaction"), "POST", "Patient"),
		entry(oURL, s.observation("tx", pURL, "8867-4", "Heart rate", "2024-02-01T08:00:00Z", 72, "/min"), "POST", "Observation"),
	)
	x, err := s.postBundle(ctx, b)
	if err != nil {
		return "", err
	}
	s.trackEntries(x)
	if err := x.want("POST transaction", http.StatusOK); err != nil {
		return "", err
	}
	if t := str(x.res, "type"); str(x.res, "resourceType") != "Bundle" || t != "transaction-response" {
		return "", fmt.Errorf("answered %s of type %q, want a transaction-response Bundle", x.brief(), t)
	}
	entries := list(x.res, "entry")
	if len(entries) != 2 {
		return "", fmt.Errorf("%d response entries, want 2", len(entries))
	}
	var ids [2]string
	for i, e := range entries {
		typ, id, _ := parseRef(str(e, "response", "location"))
		want := [2]string{"Patient", "Observation"}[i]
		if st := entryStatus(obj(e)); st != http.StatusCreated || typ != want || id == "" {
			return "", fmt.Errorf("entry %d: response status %q location %q, want 201 and a %s location",
				i, str(e, "response", "status"), str(e, "response", "location"), want)
		}
		ids[i] = id
	}
	y, err := s.do(ctx, http.MethodGet, "Observation/"+ids[1], nil)
	if err != nil {
		return "", err
	}
	if err := y.want("GET the Observation created", http.StatusOK); err != nil {
		return "", err
	}
	ref := str(y.res, "subject", "reference")
	if typ, id, _ := parseRef(ref); typ != "Patient" || id != ids[0] {
		return "", fmt.Errorf("Observation.subject.reference %q, want Patient/%s (the urn:uuid rewritten)", ref, ids[0])
	}
	return "subject " + ref, nil
}

func (s bundleChecks) atomic(ctx context.Context) (string, error) {
	if err := s.caps.needSystem("transaction"); err != nil {
		return "", err
	}
	bad := with(s.patient("tx-atomic-bad", "TransactionBad"), "birthDate", badDate)
	b := bundle("transaction",
		entry(newUUID(), s.patient("tx-atomic", "TransactionGood"), "POST", "Patient"),
		entry(newUUID(), bad, "POST", "Patient"),
	)
	x, err := s.postBundle(ctx, b)
	if err != nil {
		return "", err
	}
	if x.status/100 == 2 {
		s.trackEntries(x)
		return "", fmt.Errorf("a transaction with an invalid birthDate answered %s, want 4xx", x.brief())
	}
	if x.status/100 != 4 {
		return "", fmt.Errorf("a transaction with an invalid birthDate answered %s, want 4xx", x.brief())
	}
	var p problems
	if err := x.outcome("POST transaction with an invalid birthDate"); err != nil {
		p.add("%v", err)
	}
	if err := s.caps.needSearch("Patient", "identifier"); err != nil {
		return fmt.Sprintf("%s; not verified by search (%v)", x.brief(), err), p.err()
	}
	sr, err := s.search(ctx, "Patient", "identifier", s.system+"|tx-atomic")
	if err != nil {
		p.add("%v", err)
		return "", p.err()
	}
	if len(sr.matches) > 0 {
		for _, id := range sr.matches {
			s.track("Patient", id)
		}
		p.add("answered %d but stored the valid entry (Patient/%s)", x.status, sr.matches[0])
	}
	return x.brief() + ", nothing stored", p.err()
}

func (s bundleChecks) batch(ctx context.Context) (string, error) {
	if err := s.caps.needSystem("batch"); err != nil {
		return "", err
	}
	bad := with(s.patient("batch-bad", "BatchBad"), "birthDate", badDate)
	b := bundle("batch",
		entry(newUUID(), s.patient("batch-ok", "BatchGood"), "POST", "Patient"),
		entry(newUUID(), bad, "POST", "Patient"),
	)
	x, err := s.postBundle(ctx, b)
	if err != nil {
		return "", err
	}
	s.trackEntries(x)
	if err := x.want("POST batch", http.StatusOK); err != nil {
		return "", err
	}
	if t := str(x.res, "type"); str(x.res, "resourceType") != "Bundle" || t != "batch-response" {
		return "", fmt.Errorf("answered %s of type %q, want a batch-response Bundle", x.brief(), t)
	}
	entries := list(x.res, "entry")
	if len(entries) != 2 {
		return "", fmt.Errorf("%d response entries, want 2", len(entries))
	}
	ok, failed := obj(entries[0]), obj(entries[1])
	var p problems
	if st := entryStatus(ok); st != http.StatusCreated {
		p.add("valid entry: status %q, want 201", str(ok, "response", "status"))
	}
	if st := entryStatus(failed); st/100 != 4 {
		p.add("invalid entry: status %q, want 4xx", str(failed, "response", "status"))
	}
	if _, id, _ := parseRef(str(ok, "response", "location")); id == "" {
		p.add("valid entry: no response.location")
	} else if y, err := s.do(ctx, http.MethodGet, "Patient/"+id, nil); err != nil {
		p.add("reading the created Patient: %v", err)
	} else if err := y.want("GET the Patient created", http.StatusOK); err != nil {
		p.add("%v", err)
	}
	return fmt.Sprintf("entries %s, %s", str(ok, "response", "status"), str(failed, "response", "status")), p.err()
}
