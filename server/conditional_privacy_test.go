package server

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestConditionalOracles: conditional operations tell a caller nothing
// about data it may not see (found in a black-box review):
//   - a caller that may not write a type is refused before its criteria
//     are evaluated, whatever they match (it used to get 412 "criteria
//     match 5", counting diagnoses it may not read);
//   - a 412 for several matches gives no count;
//   - _has and chains in If-None-Exist go through visible resources only:
//     a GP outside the care team gets the same answer whether the patient
//     has the diagnosis or not.
func TestConditionalOracles(t *testing.T) {
	h := newSecureHub(t)
	var pids []string
	for _, family := range []string{"Un", "Deux", "Trois"} {
		pid := seedHospital(t, h, family)
		pids = append(pids, pid)
		cond := map[string]any{"resourceType": "Condition", "code": map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11.9"}}},
			"subject": map[string]any{"reference": "Patient/" + pid}}
		if family != "Trois" { // Trois has no diabetes
			if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Condition", cond); r.status != http.StatusCreated {
				t.Fatalf("create Condition: %d %s", r.status, r.raw)
			}
		}
	}
	count := regexp.MustCompile(`match(es)? \d`)
	// No write scope: refused before the criteria, whatever they match.
	for _, criteria := range []string{"code=E11.9", "code=E11.9&subject=Patient/" + pids[0], "code=Z99.9"} {
		for _, method := range []string{http.MethodDelete, http.MethodPut} {
			var body any
			if method == http.MethodPut {
				body = map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + pids[0]}}
			}
			r := h.as("mutual-claims", "underwriting-pricing", method, "/Condition?"+criteria, body)
			if r.status != http.StatusForbidden || count.Match(r.raw) {
				t.Errorf("mutual-claims %s /Condition?%s: %d %s, want 403 without a count", method, criteria, r.status, r.raw)
			}
		}
	}
	// A writer's 412 says several, not how many.
	r := h.as("hospital-it", "HOPERAT", http.MethodDelete, "/Condition?code=E11.9", nil)
	if r.status != http.StatusPreconditionFailed || count.Match(r.raw) {
		t.Errorf("hospital-it conditional delete of two: %d %s, want 412 without a count", r.status, r.raw)
	}
	// A writer refused on what its criteria matched gets the answer it
	// gets when they match nothing: the refusal's reasons (another
	// organisation's resource…) would tell them apart.
	refusal := func(pid string) string {
		r := h.as("gp", "TREAT", http.MethodDelete, "/Condition?code=E11.9&subject=Patient/"+pid, nil)
		if r.status != http.StatusForbidden {
			t.Errorf("gp conditional delete for %s: %d %s, want 403", pid, r.status, r.raw)
		}
		return string(r.raw)
	}
	if with, without := refusal(pids[0]), refusal(pids[2]); with != without {
		t.Errorf("conditional delete refused with %s when it matches a hidden Condition, %s when it matches none", with, without)
	}
	// _has over Conditions the GP may not read: the same answer for a
	// patient with and without the diagnosis.
	answer := func(family string) int {
		q := url.Values{"identifier": {testINS(family)}, "_has:Condition:subject:code": {"E11.9"}}
		r := h.as("gp", "TREAT", http.MethodPost, "/Patient", patient(family+"-bis"), "If-None-Exist", q.Encode())
		return r.status
	}
	if with, without := answer("Un"), answer("Trois"); with != without {
		t.Errorf("If-None-Exist with _has on a hidden diagnosis: %d for the diabetic patient, %d for the other; want the same", with, without)
	}
}

// TestConditionalContentCriteria: conditional criteria on content (a code)
// match only what the caller may read or its organisation supplied: hospital
// IT probing another organisation's patient for a diagnosis gets the same
// answer whether the diagnosis exists or not (it got "a matching resource
// exists" and its Location: black-box review). Criteria by identifier still
// link to what exists.
func TestConditionalContentCriteria(t *testing.T) {
	h := newSecureHub(t)
	own := seedHospital(t, h, "Propre")
	r := h.as("gp", "TREAT", http.MethodPost, "/Patient", patient("Cabinet", testINS("Cabinet")))
	if r.status != http.StatusCreated {
		t.Fatalf("gp registers a patient: %d %s", r.status, r.raw)
	}
	gpPatient := strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	cond := map[string]any{"resourceType": "Condition", "code": map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/sid/icd-10", "code": "B20"}}},
		"subject": map[string]any{"reference": "Patient/" + gpPatient}}
	if r := h.as("gp", "TREAT", http.MethodPost, "/Condition", cond); r.status != http.StatusCreated {
		t.Fatalf("gp writes a Condition: %d %s", r.status, r.raw)
	}
	probe := func(code string) (int, string) {
		body := map[string]any{"resourceType": "Condition", "code": map[string]any{"text": "probe"}, "subject": map[string]any{"reference": "Patient/" + own}}
		r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Condition", body, "If-None-Exist", "subject=Patient/"+gpPatient+"&code="+code)
		return r.status, r.header.Get("Location")
	}
	withStatus, withLoc := probe("B20")
	withoutStatus, _ := probe("Z96")
	if withStatus != withoutStatus || withStatus != http.StatusCreated || strings.Contains(withLoc, "/Condition/") && !strings.Contains(withLoc, "_history/1") {
		t.Errorf("hospital-it probing another organisation's patient: %d (%s) with the diagnosis, %d without; want the same 201", withStatus, withLoc, withoutStatus)
	}
	// By identifier, a writer links to the Patient it names.
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", patient("Cabinet-bis", testINS("Cabinet")), "If-None-Exist", "identifier="+testINS("Cabinet")); r.status != http.StatusOK || !strings.Contains(r.header.Get("Location"), gpPatient) {
		t.Errorf("conditional create by INS: %d %s, want 200 naming the existing Patient", r.status, r.header.Get("Location"))
	}
}
