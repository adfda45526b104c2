// Package city maps the city-activity native format (practice, pharmacy
// and lab activity, DESIGN §6.2) to FHIR: per row one fact by kind
// (Encounter for consultation and teleconsultation, MedicationDispense,
// Observation for lab-result, Immunization, Procedure), the professional
// (Practitioner by RPPS and a PractitionerRole for the specialty) and the
// Patient (by INS-NIR). It registers itself as "city-activity" in package
// mappings.
//
// Columns (';'-separated CSV with header, or flat NDJSON):
//
//	rpps; specialty; ins_nir; birth_date; sex; date; kind; code_system;
//	code; value; unit; interpretation; quantity; days_supply
//
// Required: rpps, specialty (a code of vocab's specialty CodeSystem),
// birth_date, sex, date, kind, code_system, code. ins_nir empty makes an
// unlinked patient. kind and the code systems it accepts:
//
//	consultation, teleconsultation   ngap
//	dispensation                     cip13, atc
//	lab-result                       loinc, nabm (translated to LOINC when the map knows it)
//	vaccination                      cip13, atc (ATC J07)
//	procedure                        ccam, ngap
//
// value (decimal, '.'), unit and interpretation (H, L, N, A, HH, LL, AA,
// POS, NEG: v3 ObservationInterpretation) are for lab-result only;
// quantity (packs, decimal > 0) and days_supply (1–366) for dispensation
// only. LOINC and CIP13 check digits are verified.
//
// Decisions where the contract is silent:
//   - One row is one fact; rows carry no identifier, so a fact is keyed by
//     the act (professional, patient, date, kind, code, value): a row
//     repeated as it is is that fact again, one that describes it
//     differently (quantity, unit, interpretation…) is an issue, in the
//     file as in a later upload (409).
//   - A consultation is an Encounter of class AMB, a teleconsultation of
//     class VR, with the NGAP code as Encounter.type. The professional is
//     the participant (PractitionerRole), or the performer of the other
//     facts.
//   - The PractitionerRole is a conditional create on
//     https://example.org/fhir/sid/practitioner-role|<rpps>-<specialty>,
//     with the hub specialty code and the TRE_G15 profession.
//   - quantity is a number of packs (UCUM {pack}); daysSupply is in days.
//   - unit: a UCUM code of the hub's list (vocab.UCUMUnit, the codes of
//     French lab reporting) or an unambiguous spelling of one (UI/L →
//     [IU]/L, µmol/L → umol/L) is stored with system
//     http://unitsofmeasure.org and its code, unit = the text as written;
//     any other text (x, G/L, U/I…) is kept as Quantity.unit only, without
//     system and code (mappings.Row.Unit says why).
//   - Stage context: the patient's abnormal results (H, L, A, HH, LL, AA,
//     POS) of the RecentResultWindow before the row, and the ATC classes
//     dispensed up to the row, both from the same file (an HbA1c of a
//     patient on A10 drugs is biological follow-up; a colonoscopy after a
//     positive FIT is diagnostic), plus what the hub already stores about
//     the patient before the row's date (mappings.Options.Prior: the
//     diagnoses of earlier hospital stays, say).
package city

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/outcome"
)

// Source is the name of the format.
const Source = "city-activity"

// Columns of the format, in the documented order.
var Columns = []string{
	"rpps", "specialty", "ins_nir", "birth_date", "sex", "date", "kind", "code_system",
	"code", "value", "unit", "interpretation", "quantity", "days_supply",
}

// Mapper maps city-activity files.
type Mapper struct{}

var _ mappings.Mapper = (*Mapper)(nil)

func init() { mappings.Register(&Mapper{}) }

// Source names the format.
func (*Mapper) Source() string { return Source }

// Map reads a city-activity file.
func (*Mapper) Map(r io.Reader, opt mappings.Options) (*mappings.Result, error) {
	h := &history{codes: map[vocab.Coding]uint32{}, patients: map[mappings.Key]*patientHistory{}}
	return mappings.Run(mappings.Spec[*activity]{Source: Source, Columns: Columns, Parse: parse, Note: h.note, Build: h.build}, r, opt)
}

var kindSystems = map[string][]string{
	"consultation":     {"ngap"},
	"teleconsultation": {"ngap"},
	"dispensation":     {"cip13", "atc"},
	"lab-result":       {"loinc", "nabm"},
	"vaccination":      {"cip13", "atc"},
	"procedure":        {"ccam", "ngap"},
}

var kinds = []string{"consultation", "teleconsultation", "dispensation", "lab-result", "vaccination", "procedure"}

var interpretations = map[string]string{
	"H": "High", "L": "Low", "N": "Normal", "A": "Abnormal",
	"HH": "Critical high", "LL": "Critical low", "AA": "Critical abnormal",
	"POS": "Positive", "NEG": "Negative",
}

type activity struct {
	line               int
	rpps, specialty    string
	ins, birth, gender string
	date, kind         string
	code               vocab.Coding
	loinc              vocab.Coding // the LOINC of a lab result (given or from NABM)
	value              json.Number
	unit               mappings.Unit
	interp             string
	quantity           json.Number
	daysSupply         int
}

// key is the record key of the act: the act itself, not its line (see
// build).
func (a *activity) key() string {
	return a.rpps + "|" + a.patientKey() + "|" + a.date + "|" + a.kind + "|" + a.code.System + "|" + a.code.Code + "|" + string(a.value)
}

// content is what the row says of the act beyond its key.
func (a *activity) content() string {
	return a.specialty + "|" + a.birth + "|" + a.gender + "|" + a.unit.Text + "|" + a.interp + "|" + string(a.quantity) + "|" + strconv.Itoa(a.daysSupply)
}

// patientKey names the act's patient: its INS-NIR, or for an unlinked
// patient (no INS-NIR: one per row) the row itself, so that the same
// export sent again with rows added before it finds the same patient (a
// key of the row's line did not: black-box review).
func (a *activity) patientKey() string {
	if a.ins != "" {
		return "ins|" + a.ins
	}
	h := sha256.Sum256([]byte(a.rpps + "|" + a.date + "|" + a.kind + "|" + a.code.System + "|" + a.code.Code + "|" + string(a.value) + "|" + a.content()))
	return "row|" + hex.EncodeToString(h[:16])
}

func parse(r *mappings.Row, c *mappings.Checks) *activity {
	a := &activity{line: r.Line}
	a.rpps, _ = r.Match("rpps", true, mappings.ReRPPS, "RPPS number (11 digits)")
	if sp, ok := r.Required("specialty"); ok {
		if _, known := vocab.Lookup(vocab.SpecialtySystem, sp); known {
			a.specialty = sp
		} else {
			r.Fail("specialty", outcome.CodeValue, "specialty must be a code of %s", vocab.SpecialtySystem)
		}
	}
	a.ins, _ = r.INS("ins_nir")
	a.birth, _ = r.Date("birth_date", true)
	a.gender, _ = r.Sex("sex")
	c.SamePerson(r, "ins_nir", a.ins, "birth_date", a.birth, "sex", a.gender)
	a.date, _ = r.Date("date", true)
	if a.birth != "" && a.date != "" && a.date < a.birth {
		r.Fail("date", outcome.CodeValue, "date is before birth_date")
	}
	a.kind, _ = r.OneOf("kind", true, kinds...)
	allowed := kindSystems[a.kind]
	if allowed == nil {
		allowed = []string{"ngap", "ccam", "cip13", "atc", "nabm", "loinc"}
	}
	a.code, _ = r.Code("code_system", "code", true, allowed...)
	if a.kind == "vaccination" && a.code.System == vocab.SystemATC && !strings.HasPrefix(a.code.Code, "J07") {
		r.Fail("code", outcome.CodeValue, "the ATC code of a vaccination must be a vaccine (J07)")
	}
	switch a.code.System {
	case vocab.SystemLOINC:
		a.loinc = a.code
	case vocab.SystemNABM:
		a.loinc, _ = vocab.NABMToLOINC(a.code.Code)
	}
	only := func(col, kind string) bool {
		if r.Text(col) != "" && a.kind != "" && a.kind != kind {
			r.Fail(col, outcome.CodeValue, "%s is only for kind %s", col, kind)
			return false
		}
		return true
	}
	if only("value", "lab-result") {
		a.value, _ = r.Decimal("value", false, -1e9, 1e9)
	}
	if only("unit", "lab-result") {
		a.unit, _ = r.Unit("unit", false)
		if a.unit.Text != "" && r.Text("value") == "" {
			r.Fail("unit", outcome.CodeValue, "unit is given without value")
		}
	}
	if only("interpretation", "lab-result") {
		a.interp, _ = r.OneOf("interpretation", false, "H", "L", "N", "A", "HH", "LL", "AA", "POS", "NEG")
	}
	if only("quantity", "dispensation") {
		a.quantity, _ = r.Decimal("quantity", false, 0.001, 10000)
	}
	if only("days_supply", "dispensation") {
		a.daysSupply, _ = r.Integer("days_supply", false, 1, 366)
	}
	if r.OK() {
		c.SameFact(r, "code", a.key(), a.content())
	}
	return a
}

func cc(cs ...vocab.Coding) map[string]any {
	var l []any
	for _, c := range cs {
		if c.Code != "" {
			l = append(l, c.Map())
		}
	}
	return map[string]any{"coding": l}
}

func (h *history) build(b *mappings.Batch, rows []*activity) {
	for _, a := range rows {
		pat := b.Patient(mappings.Person{INS: a.ins, BirthDate: a.birth, Gender: a.gender, Key: a.patientKey()})
		prac := b.Practitioner(a.rpps)
		sp, _ := vocab.Lookup(vocab.SpecialtySystem, a.specialty)
		roleRes := map[string]any{
			"resourceType": "PractitionerRole",
			"active":       true,
			"practitioner": mappings.Ref(prac),
			"specialty":    []any{cc(sp.Coding())},
		}
		if prof, _ := sp.Properties["profession"].(string); prof != "" {
			roleRes["code"] = []any{cc(vocab.Coding{System: vocab.SystemTREG15, Code: prof})}
		}
		role := b.Conditional(mappings.Identifier{System: vocab.SidPractitionerRole, Value: a.rpps + "-" + a.specialty}, roleRes)

		kind := vocab.Coding{System: vocab.ActivityKindSystem, Code: a.kind}
		code := a.code
		if a.loinc.Code != "" {
			code = a.loinc
		}
		ctx := b.Prior(h.context(a), a.ins, a.date, code, kind)
		st, _ := vocab.Resolve(ctx, code, kind)
		// The record key is the act itself, not its line, so that a file
		// uploaded again (or the same act in another export) is not stored
		// twice. An unlinked patient's act stays keyed by its line.
		key := a.key()
		switch a.kind {
		case "consultation", "teleconsultation":
			class := vocab.Coding{System: vocab.SystemV3ActCode, Code: "AMB", Display: "ambulatory"}
			if a.kind == "teleconsultation" {
				class = vocab.Coding{System: vocab.SystemV3ActCode, Code: "VR", Display: "virtual"}
			}
			b.Fact(map[string]any{
				"resourceType": "Encounter",
				"status":       "finished",
				"class":        class.Map(),
				"type":         []any{cc(a.code)},
				"subject":      mappings.Ref(pat),
				"participant":  []any{map[string]any{"individual": mappings.Ref(role)}},
				"period":       map[string]any{"start": a.date, "end": a.date},
			}, key, st)
		case "dispensation":
			md := map[string]any{
				"resourceType":              "MedicationDispense",
				"status":                    "completed",
				"medicationCodeableConcept": cc(a.code),
				"subject":                   mappings.Ref(pat),
				"performer":                 []any{map[string]any{"actor": mappings.Ref(role)}},
				"whenHandedOver":            a.date,
			}
			if a.quantity != "" {
				md["quantity"] = map[string]any{"value": a.quantity, "unit": "pack", "system": vocab.SystemUCUM, "code": "{pack}"}
			}
			if a.daysSupply > 0 {
				md["daysSupply"] = map[string]any{"value": json.Number(strconv.Itoa(a.daysSupply)), "unit": "d", "system": vocab.SystemUCUM, "code": "d"}
			}
			b.Fact(md, key, st)
		case "lab-result":
			codes := []vocab.Coding{a.code}
			if a.code.System == vocab.SystemNABM && a.loinc.Code != "" {
				codes = []vocab.Coding{a.loinc, a.code}
			}
			obs := map[string]any{
				"resourceType":      "Observation",
				"status":            "final",
				"category":          []any{cc(vocab.Coding{System: vocab.SystemObservationCat, Code: "laboratory", Display: "Laboratory"})},
				"code":              cc(codes...),
				"subject":           mappings.Ref(pat),
				"effectiveDateTime": a.date,
				"performer":         []any{mappings.Ref(role)},
			}
			if a.value != "" {
				q := map[string]any{"value": a.value}
				a.unit.Put(q)
				obs["valueQuantity"] = q
			}
			if a.interp != "" {
				obs["interpretation"] = []any{cc(vocab.Coding{System: vocab.SystemV3Interpretation, Code: a.interp, Display: interpretations[a.interp]})}
			}
			b.Fact(obs, key, st)
		case "vaccination":
			b.Fact(map[string]any{
				"resourceType":       "Immunization",
				"status":             "completed",
				"vaccineCode":        cc(a.code),
				"patient":            mappings.Ref(pat),
				"occurrenceDateTime": a.date,
				"primarySource":      true,
				"performer":          []any{map[string]any{"actor": mappings.Ref(role)}},
			}, key, st)
		case "procedure":
			b.Fact(map[string]any{
				"resourceType":      "Procedure",
				"status":            "completed",
				"code":              cc(a.code),
				"subject":           mappings.Ref(pat),
				"performedDateTime": a.date,
				"performer":         []any{map[string]any{"actor": mappings.Ref(role)}},
			}, key, st)
		}
	}
}

// history is what the good rows of a file tell about their linked
// patients, gathered before any row is built (the file may be built a chunk
// at a time): per patient, the two earliest dispensations of each ATC code
// and every abnormal LOINC result. Memory: about 20 bytes per distinct
// drug of a patient and 12 per abnormal result.
type history struct {
	codes    map[vocab.Coding]uint32 // ATC or LOINC coding → index in names
	names    []vocab.Coding
	patients map[mappings.Key]*patientHistory
}

type patientHistory struct {
	drugs   []drug
	results []result
}

// drug is an ATC code with its two earliest dispensations (day as
// mappings.DayNumber, and line; line 0 when there is no second).
type drug struct {
	code         uint32
	day1, day2   uint32
	line1, line2 int32
}

type result struct {
	code uint32
	day  uint32
	line int32
}

func (h *history) intern(c vocab.Coding) uint32 {
	i, ok := h.codes[c]
	if !ok {
		i = uint32(len(h.names))
		h.codes[c] = i
		h.names = append(h.names, c)
	}
	return i
}

func (h *history) note(a *activity) {
	if a.ins == "" {
		return // an unlinked patient has this row only
	}
	isResult := a.kind == "lab-result" && vocab.AbnormalInterpretation(a.interp) && a.loinc.Code != ""
	isDrug := a.kind == "dispensation" && a.code.System == vocab.SystemATC
	if !isResult && !isDrug {
		return
	}
	k := mappings.KeyOf(a.patientKey())
	p := h.patients[k]
	if p == nil {
		p = &patientHistory{}
		h.patients[k] = p
	}
	day, line := mappings.DayNumber(a.date), int32(a.line)
	if isResult {
		p.results = append(p.results, result{h.intern(a.loinc), day, line})
	}
	if isDrug {
		code := h.intern(a.code)
		for i := range p.drugs {
			d := &p.drugs[i]
			if d.code != code {
				continue
			}
			switch {
			case day < d.day1:
				d.day2, d.line2, d.day1, d.line1 = d.day1, d.line1, day, line
			case d.line2 == 0 || day < d.day2:
				d.day2, d.line2 = day, line
			}
			return
		}
		p.drugs = append(p.drugs, drug{code: code, day1: day, line1: line})
	}
}

// context is the stage context of a row: the patient's abnormal results
// of the look-back window before it and the drugs dispensed up to it (the
// other rows of the file, wherever they are in it).
func (h *history) context(a *activity) vocab.Context {
	ctx := vocab.Context{Setting: vocab.SettingCity, Kind: a.kind}
	p := h.patients[mappings.KeyOf(a.patientKey())]
	if a.ins == "" || p == nil {
		return ctx
	}
	day, _ := time.Parse(mappings.DateLayout, a.date)
	from := mappings.DayNumber(day.Add(-vocab.RecentResultWindow).Format(mappings.DateLayout))
	to, line := mappings.DayNumber(a.date), int32(a.line)
	for _, r := range p.results {
		if r.line != line && r.day <= to && r.day >= from && !slices.Contains(ctx.RecentResults, h.names[r.code]) {
			ctx.RecentResults = append(ctx.RecentResults, h.names[r.code])
		}
	}
	for _, d := range p.drugs {
		first := d.day1
		if d.line1 == line {
			if d.line2 == 0 {
				continue
			}
			first = d.day2
		}
		if first <= to {
			ctx.Medications = append(ctx.Medications, h.names[d.code])
		}
	}
	return ctx
}
