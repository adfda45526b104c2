package server

import (
	"bytes"
	"strings"
	"sync"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/store"
)

// The stage of a fact depends on the patient's history (brief §3.4: the
// same colonoscopy is screening, diagnosis or follow-up): the dependsOn
// rules of the ConceptMaps read the patient's diagnoses, recent abnormal
// results and dispensed drugs (vocab.Context). A native file brings the
// history its rows tell (the mappers gather it); what the hub already
// stores comes from here, as a mappings.History, for $ingest
// (mappings.Options.Prior, ingestPrior) and for facts sent as FHIR
// (addStage). It is read without the caller's policy, like the pathway
// worker's reads: it decides a code of the hub's vocabulary, and what the
// caller is answered is that code.

// storedHistory reads what tx stores about the patients (ids, without
// "Patient/") that the stage rules use: CIM-10 Conditions (not refuted or
// entered in error) dated by onset, recorded date or encounter start;
// Observations with a LOINC code and an abnormal or positive
// interpretation, dated by their effective time or issue; ATC
// MedicationDispenses, dated when handed over or prepared. nil when there
// is nothing.
func storedHistory(tx *store.Tx, ids ...string) *mappings.History {
	h := &mappings.History{}
	for _, id := range ids {
		owner := "Patient/" + id
		historyEach(tx, "Condition", owner, vocab.SystemCIM10, func(r map[string]any) {
			if v := historyCodings(r["verificationStatus"], ""); len(v) > 0 && (v[0].Code == "refuted" || v[0].Code == "entered-in-error") {
				return
			}
			day := historyDay(historyString(r, "onsetDateTime", "onsetPeriod.start", "recordedDate"))
			if day == 0 {
				if enc, _ := r["encounter"].(map[string]any); enc != nil {
					if ref, _ := enc["reference"].(string); strings.HasPrefix(ref, "Encounter/") {
						if e, err := tx.Get("Encounter", strings.TrimPrefix(ref, "Encounter/")); err == nil && !e.Deleted() {
							day = historyDay(historyString(decodeStored(e.JSON), "period.start"))
						}
					}
				}
			}
			for _, c := range historyCodings(r["code"], vocab.SystemCIM10) {
				h.AddCondition(c, day)
			}
		})
		historyEach(tx, "Observation", owner, vocab.SystemLOINC, func(r map[string]any) {
			switch s, _ := r["status"].(string); s {
			case "entered-in-error", "cancelled":
				return
			}
			if !abnormalResult(r["interpretation"]) {
				return
			}
			day := historyDay(historyString(r, "effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"))
			for _, c := range historyCodings(r["code"], vocab.SystemLOINC) {
				h.AddResult(c, day)
			}
		})
		historyEach(tx, "MedicationDispense", owner, vocab.SystemATC, func(r map[string]any) {
			switch s, _ := r["status"].(string); s {
			case "entered-in-error", "cancelled", "declined":
				return
			}
			day := historyDay(historyString(r, "whenHandedOver", "whenPrepared"))
			for _, c := range historyCodings(r["medicationCodeableConcept"], vocab.SystemATC) {
				h.AddMedication(c, day)
			}
		})
	}
	if h.Empty() {
		return nil
	}
	return h
}

// historyEach calls fn with the current resources of typ in a patient's
// compartment whose JSON names system (the others cannot matter: they are
// not decoded).
func historyEach(tx *store.Tx, typ, owner, system string, fn func(map[string]any)) {
	sys := []byte(`"` + system + `"`)
	for _, id := range tx.Lookup(typ, paramPatient, owner) {
		r, err := tx.Get(typ, id)
		if err != nil || r.Deleted() || !bytes.Contains(r.JSON, sys) {
			continue
		}
		if m := decodeStored(r.JSON); m != nil {
			fn(m)
		}
	}
}

func abnormalResult(interp any) bool {
	for _, cc := range asList(interp) {
		for _, c := range historyCodings(cc, "") {
			if (c.System == vocab.SystemV3Interpretation || c.System == "") && vocab.AbnormalInterpretation(c.Code) {
				return true
			}
		}
	}
	return false
}

// historyCodings lists the codings of a CodeableConcept of system ("": any).
func historyCodings(cc any, system string) []vocab.Coding {
	m, _ := cc.(map[string]any)
	var out []vocab.Coding
	for _, c := range asList(m["coding"]) {
		cm, _ := c.(map[string]any)
		s, _ := cm["system"].(string)
		code, _ := cm["code"].(string)
		if code != "" && (system == "" || s == system) {
			out = append(out, vocab.Coding{System: s, Code: code})
		}
	}
	return out
}

// historyString is the first non-empty string among paths ("a" or "a.b").
func historyString(r map[string]any, paths ...string) string {
	for _, p := range paths {
		var v any = r
		for _, k := range strings.Split(p, ".") {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		if s, _ := v.(string); s != "" {
			return s
		}
	}
	return ""
}

// historyDay is the DayNumber of a FHIR date or dateTime (its day as written);
// a partial date counts from its first day (2024-05 → 2024-05-01). 0 when
// it is not one.
func historyDay(s string) uint32 {
	return mappings.DayNumber(historyDayString(s))
}

// historyDayString is the YYYY-MM-DD of a FHIR date or dateTime ("" when it is
// not one); a partial date is its first day.
func historyDayString(s string) string {
	switch {
	case len(s) >= 10:
		s = s[:10]
	case len(s) == 7:
		s += "-01"
	case len(s) == 4:
		s += "-01-01"
	default:
		return ""
	}
	if mappings.DayNumber(s) == 0 {
		return ""
	}
	return s
}

// patientsOfINS are the ids of the Patients with an INS-NIR (one, as the
// hub links patients on it; none when it is not stored).
func patientsOfINS(tx *store.Tx, ins string) []string {
	return tx.Lookup("Patient", "identifier", insSystem+"|"+ins)
}

// ingestPriorCacheSize bounds the patients whose History one upload keeps
// (the file streams: its memory must not follow the number of patients).
var ingestPriorCacheSize = 4096

// priorCache is mappings.Options.Prior for one upload: the stored History
// of a patient by INS-NIR, read from the store (a short read transaction,
// never held while the upload's chunks commit) once while it stays in the
// cache. It keeps the patients of two generations of up to half its size
// each: a patient found in the older one moves to the newer, and when the
// newer is full the older is dropped. Not safe for concurrent use: the
// mapping calls it from one goroutine.
//
// A patient read again after being dropped may show the facts of the
// upload's earlier chunks, committed meanwhile: they are the rows of the
// same file, which the mappers count anyway (with the file's wider
// windows), so the stages do not depend on when the store was read.
type priorCache struct {
	db       *store.DB
	size     int
	cur, old map[string]*mappings.History
	reads    int // store reads (tests)
}

func newPriorCache(db *store.DB) *priorCache {
	return &priorCache{db: db, size: max(ingestPriorCacheSize, 2), cur: map[string]*mappings.History{}}
}

func (c *priorCache) get(ins string) *mappings.History {
	if h, ok := c.cur[ins]; ok {
		return h
	}
	h, ok := c.old[ins]
	if ok {
		delete(c.old, ins)
	} else {
		c.reads++
		_ = c.db.View(func(tx *store.Tx) error {
			if ids := patientsOfINS(tx, ins); len(ids) > 0 {
				h = storedHistory(tx, ids...)
			}
			return nil
		}) // a failed read leaves the file as the only context; the commits will fail too
	}
	if len(c.cur) >= c.size/2 {
		c.old, c.cur = c.cur, make(map[string]*mappings.History, c.size/2)
	}
	c.cur[ins] = h
	return h
}

// factHistory is the stored History of the patient of a FHIR-sent fact
// (its subject, or patient for an Immunization: Patient/<id>, an absolute
// reference to it, a conditional reference or a logical one on the
// INS-NIR) and the fact's day (YYYY-MM-DD: its occurrence, or tx's day
// when it has none). A patient created in the same transaction Bundle
// (urn:uuid) has no stored history: nil.
func factHistory(tx *store.Tx, typ string, res map[string]any) (*mappings.History, string) {
	el := "subject"
	if typ == "Immunization" {
		el = "patient"
	}
	ref, _ := res[el].(map[string]any)
	if ref == nil {
		return nil, ""
	}
	var ids []string
	if r, _ := ref["reference"].(string); r != "" {
		if i := strings.Index(r, "/_history/"); i >= 0 {
			r = r[:i]
		}
		switch {
		case strings.HasPrefix(r, "Patient?"):
			if ins, ok := strings.CutPrefix(r, "Patient?identifier="+insSystem+"|"); ok && !strings.ContainsAny(ins, "&,") {
				ids = patientsOfINS(tx, ins)
			} else if ins, ok := strings.CutPrefix(r, "Patient?identifier="+strings.ReplaceAll(insSystem, ":", "%3A")+"%7C"); ok && !strings.ContainsAny(ins, "&,%") {
				ids = patientsOfINS(tx, ins)
			}
		case !strings.HasPrefix(r, "urn:") && !strings.HasPrefix(r, "#"):
			parts := strings.Split(r, "/")
			if n := len(parts); n >= 2 && parts[n-2] == "Patient" && parts[n-1] != "" {
				ids = []string{parts[n-1]}
			}
		}
	} else if ident, _ := ref["identifier"].(map[string]any); ident != nil && ident["system"] == insSystem {
		if ins, _ := ident["value"].(string); ins != "" {
			ids = patientsOfINS(tx, ins)
		}
	}
	if len(ids) == 0 {
		return nil, ""
	}
	day := historyDayString(factDate(typ, res))
	if day == "" {
		day = tx.Now().UTC().Format(mappings.DateLayout)
	}
	return memoHistory(tx, ids), day
}

// factDate is when a fact happened, as written ("" when it does not say).
func factDate(typ string, res map[string]any) string {
	paths := map[string][]string{
		"Condition":          {"onsetDateTime", "onsetPeriod.start", "recordedDate"},
		"Procedure":          {"performedDateTime", "performedPeriod.start"},
		"Observation":        {"effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"},
		"DiagnosticReport":   {"effectiveDateTime", "effectivePeriod.start", "issued"},
		"Encounter":          {"period.start"},
		"MedicationDispense": {"whenHandedOver", "whenPrepared"},
		"MedicationRequest":  {"authoredOn"},
		"Immunization":       {"occurrenceDateTime", "recorded"},
		"AdverseEvent":       {"date", "recordedDate"},
	}[typ]
	return historyString(res, paths...)
}

// historyMemo keeps the Histories read in the last read transaction, so
// that a transaction Bundle of many facts of one patient (decided in one
// read transaction) reads the patient's history once. Keyed by the
// transaction itself: while the memo holds it, no other can be at its
// address, and it sees one snapshot. A write transaction (whose content
// changes as it writes) is not memoised.
var historyMemo struct {
	sync.Mutex
	tx    *store.Tx
	byIDs map[string]*mappings.History
}

const historyMemoSize = 256

func memoHistory(tx *store.Tx, ids []string) *mappings.History {
	if tx.Snapshot() == 0 {
		return storedHistory(tx, ids...)
	}
	key := strings.Join(ids, ",")
	historyMemo.Lock()
	if historyMemo.tx == tx {
		if h, ok := historyMemo.byIDs[key]; ok {
			historyMemo.Unlock()
			return h
		}
	}
	historyMemo.Unlock()
	h := storedHistory(tx, ids...)
	historyMemo.Lock()
	defer historyMemo.Unlock()
	if historyMemo.tx != tx || len(historyMemo.byIDs) >= historyMemoSize {
		historyMemo.tx, historyMemo.byIDs = tx, map[string]*mappings.History{}
	}
	historyMemo.byIDs[key] = h
	return h
}
