package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/store"
)

const (
	stageHospitalHeader = "finess;stay_id;ins_nir;birth_date;sex;postcode;admission_date;discharge_date;admission_mode;admission_source;discharge_mode;ghm;main_diagnosis;related_diagnosis;other_diagnoses;acts;unit_type\n"
	stageCityHeader     = "rpps;specialty;ins_nir;birth_date;sex;date;kind;code_system;code;value;unit;interpretation;quantity;days_supply\n"
)

// stageCRCStay is a hospital-stays row: a stay coded colorectal cancer
// (C18.7).
func stageCRCStay(id, ins, admission, discharge string) string {
	return "750712184;" + id + ";" + ins + ";1964-01-15;2;75011;" + admission + ";" + discharge + ";8;;8;;C18.7;;;;MCO\n"
}

// stageColonoscopy is a city-activity row: a colonoscopy (HHQE002).
func stageColonoscopy(ins, date string) string {
	return "10015464117;gastro-enterologie;" + ins + ";1964-01-15;2;" + date + ";procedure;ccam;HHQE002;;;;;\n"
}

// stageOf is the pathway-stage code of a resource.
func stageOf(res map[string]any) string {
	for _, e := range anySlice(res["extension"]) {
		if str(e, "url") == vocab.StageExtensionURL {
			return str(e, "valueCoding", "code")
		}
	}
	return ""
}

// stagesOf lists the stages of a patient's resources of typ with a code.
func (h *secureHub) stagesOf(typ, patient, code string) []string {
	var out []string
	for _, r := range h.resourcesOf(typ, patient) {
		for _, c := range anySlice(dig(r, "code", "coding")) {
			if str(c, "code") == code {
				out = append(out, stageOf(r))
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestIngestStageStoredContext: the dependsOn context rules of an
// uploaded row see what the hub already stores about the patient, not only
// the rows of the same upload (found in review: a colonoscopy of a patient
// whose colorectal cancer came with an earlier hospital-stays upload was
// diagnostic, where ccam-to-parcours-stage says follow-up). Only what is
// dated before the row counts, and a row sent again after the context grew
// is the record already stored (not a conflict), which keeps its stage.
func TestIngestStageStoredContext(t *testing.T) {
	h := newSecureHub(t)
	const crc = "264013335536605"                                      // C18.7 stored before the colonoscopy
	late := strings.TrimPrefix(testINS("stage-late"), insSystem+"|")   // C18.7 stored, dated after it
	again := strings.TrimPrefix(testINS("stage-again"), insSystem+"|") // colonoscopy stored first, C18.7 after
	city := func(body string) {
		t.Helper()
		if r := h.upload("gp", "TREAT", "city-activity", "text/csv", []byte(stageCityHeader+body), ""); r.status != http.StatusOK {
			t.Fatalf("city-activity upload: %d %s", r.status, r.raw)
		}
	}
	city(stageColonoscopy(again, "2026-09-01"))
	hosp := stageHospitalHeader + stageCRCStay("CRC-1", crc, "2026-03-02", "2026-03-10") +
		stageCRCStay("CRC-2", late, "2026-10-01", "2026-10-05") + stageCRCStay("CRC-3", again, "2026-03-02", "2026-03-10")
	if r := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", []byte(hosp), ""); r.status != http.StatusOK {
		t.Fatalf("hospital-stays upload: %d %s", r.status, r.raw)
	}
	city(stageColonoscopy(crc, "2026-09-01") + stageColonoscopy(late, "2026-09-01") + stageColonoscopy(again, "2026-09-01"))

	for _, c := range []struct {
		ins, want, why string
	}{
		{crc, "suivi", "a colorectal cancer stored before the colonoscopy"},
		{late, "diagnostic", "a colorectal cancer stored, dated after the colonoscopy"},
		{again, "diagnostic", "the colonoscopy stored before the cancer, sent again: the stored record"},
	} {
		got := h.stagesOf("Procedure", h.patientByINS(c.ins), "HHQE002")
		if !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s: colonoscopy stages %v, want [%s]", c.why, got, c.want)
		}
	}
}

// TestFHIRStageStoredContext: a fact sent as FHIR without a stage gets the
// one its patient's stored record gives (found in review: an HbA1c of a
// patient with a stored type 2 diabetes was bilan-biologique, where
// $translate with has-condition E11.9 answers surveillance-biologique),
// for a create and in a transaction Bundle (the patient named by id or by
// a conditional reference on the INS-NIR), dated before the fact only.
func TestFHIRStageStoredContext(t *testing.T) {
	h := newSecureHub(t)
	ins := testINS("stage-fhir")
	r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", patient("StageFhir", ins))
	if r.status != http.StatusCreated {
		t.Fatalf("create Patient: %d %s", r.status, r.raw)
	}
	pid := strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	cond := map[string]any{
		"resourceType": "Condition",
		"code":         map[string]any{"coding": []any{map[string]any{"system": vocab.SystemCIM10, "code": "E11.9"}}},
		"subject":      map[string]any{"reference": "Patient/" + pid},
		"recordedDate": "2026-02-01",
	}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Condition", cond); r.status != http.StatusCreated {
		t.Fatalf("create Condition: %d %s", r.status, r.raw)
	}
	hba1c := func(subject, date, value string) map[string]any {
		return map[string]any{
			"resourceType":      "Observation",
			"status":            "final",
			"code":              map[string]any{"coding": []any{map[string]any{"system": vocab.SystemLOINC, "code": "4548-4"}}},
			"subject":           map[string]any{"reference": subject},
			"effectiveDateTime": date,
			"valueQuantity":     map[string]any{"value": json.Number(value), "unit": "%"},
		}
	}
	for _, o := range []map[string]any{hba1c("Patient/"+pid, "2026-03-01", "7.1"), hba1c("Patient/"+pid, "2026-01-15", "7.4")} {
		if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", o); r.status != http.StatusCreated {
			t.Fatalf("create Observation: %d %s", r.status, r.raw)
		}
	}
	bundle := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"resource": hba1c("Patient/"+pid, "2026-04-01T09:00:00+02:00", "7.2"), "request": map[string]any{"method": "POST", "url": "Observation"}},
		map[string]any{"resource": hba1c("Patient?identifier="+ins, "2026-05-01", "7.3"), "request": map[string]any{"method": "POST", "url": "Observation"}},
	}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "", bundle); r.status != http.StatusOK {
		t.Fatalf("transaction: %d %s", r.status, r.raw)
	}

	// What $translate answers with the stored condition as dependency.
	known, _ := vocab.Stage(vocab.SystemLOINC, "4548-4", vocab.Context{Setting: vocab.SettingHospital,
		PriorConditions: []vocab.Coding{{System: vocab.SystemCIM10, Code: "E11.9"}}})
	if known.Code != "surveillance-biologique" {
		t.Fatalf("the map changed: HbA1c of a diabetic is %s", known.Code)
	}
	got := map[string]string{}
	for _, o := range h.resourcesOf("Observation", pid) {
		got[fmt.Sprint(dig(o, "valueQuantity", "value"))] = stageOf(o)
	}
	want := map[string]string{
		"7.1": known.Code,         // create, after the stored diabetes
		"7.4": "bilan-biologique", // create, dated before it
		"7.2": known.Code,         // transaction, Patient/<id>
		"7.3": known.Code,         // transaction, conditional reference on the INS-NIR
	}
	for v, st := range want {
		if got[v] != st {
			t.Errorf("HbA1c %s: stage %q, want %q (all: %v)", v, got[v], st, got)
		}
	}
}

// TestPriorCache: an upload reads a patient's stored history once while
// the patient is in its bounded cache, and the history holds the stored
// facts by their dates.
func TestPriorCache(t *testing.T) {
	h := newSecureHub(t)
	const crc = "264013335536605"
	hosp := stageHospitalHeader + stageCRCStay("CRC-1", crc, "2026-03-02", "2026-03-10")
	if r := h.upload("hospital-it", "HOPERAT", "hospital-stays", "text/csv", []byte(hosp), ""); r.status != http.StatusOK {
		t.Fatalf("hospital-stays upload: %d %s", r.status, r.raw)
	}
	old := ingestPriorCacheSize
	ingestPriorCacheSize = 4
	defer func() { ingestPriorCacheSize = old }()
	c := newPriorCache(h.s.db)
	got := c.get(crc)
	want := []mappings.Dated{{Code: vocab.Coding{System: vocab.SystemCIM10, Code: "C18.7"}, Day: mappings.DayNumber("2026-03-10")}}
	if got == nil || !slices.Equal(got.Conditions, want) || len(got.Results)+len(got.Medications) > 0 {
		t.Fatalf("stored history %+v, want the condition C18.7 of 2026-03-10", got)
	}
	c.get(crc)
	if c.reads != 1 {
		t.Errorf("%d reads for one patient asked twice, want 1", c.reads)
	}
	for i := range 6 { // unknown patients: nothing stored, and the cache stays bounded
		if h := c.get(strings.TrimPrefix(testINS("stage-cache-"+string(rune('a'+i))), insSystem+"|")); h != nil {
			t.Errorf("history %+v for an unknown patient", h)
		}
		if n := len(c.cur) + len(c.old); n > ingestPriorCacheSize {
			t.Fatalf("%d patients cached, more than %d", n, ingestPriorCacheSize)
		}
	}
	c.get(crc)
	if c.reads != 8 {
		t.Errorf("%d reads, want 8 (the first patient read again once dropped)", c.reads)
	}
	// The FHIR path reads the same history.
	h.s.db.View(func(tx *store.Tx) error {
		if got := storedHistory(tx, patientsOfINS(tx, crc)...); got == nil || !slices.Equal(got.Conditions, want) {
			t.Errorf("storedHistory %+v", got)
		}
		return nil
	})
}
