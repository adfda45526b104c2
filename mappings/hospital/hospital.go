// Package hospital maps the hospital-stays native format (PMSI-like stay
// summaries, DESIGN §6.1) to FHIR: one Encounter per stay, a Condition per
// diagnosis (DP, DR, each DAS), a Procedure per CCAM act, the Patient (by
// INS-NIR) and the establishment's Organization (by FINESS). It registers
// itself as "hospital-stays" in package mappings.
//
// Columns (';'-separated CSV with header, or flat NDJSON):
//
//	finess; stay_id; ins_nir; birth_date; sex; postcode; admission_date;
//	discharge_date; admission_mode; admission_source; discharge_mode; ghm;
//	main_diagnosis; related_diagnosis; other_diagnoses; acts; unit_type
//
// Required: finess, stay_id, birth_date, sex, admission_date,
// discharge_date, admission_mode, discharge_mode, main_diagnosis. ins_nir
// empty makes an unlinked patient. admission_mode ∈ 6, 7, 8;
// admission_source ∈ 1–7 (5 = through the emergency department);
// discharge_mode ∈ 6, 7, 8, 9 (9 = death). other_diagnoses is a list of
// CIM-10 codes; acts a list of CCAM@YYYY-MM-DD within the stay. unit_type
// is the PMSI field: MCO (default when empty), SMR, HAD or PSY.
//
// Decisions where the contract is silent:
//   - The GHM is Encounter.type (system vocab.SystemGHM), not a PMSI Claim:
//     the hub receives no GHS tariff or billing data, so a Claim would carry
//     nothing Encounter.type does not. The GHM decides the stay's stage.
//   - The diagnosis role is both Encounter.diagnosis.use (and rank: DP 1,
//     DR 2, DAS 3…) and, on the Condition, the extension
//     https://example.org/fhir/StructureDefinition/pmsi-diagnosis-type
//     (valueCoding from pmsi-diagnosis-type), so that rules find "DP I50"
//     without reading the Encounter. Conditions have category
//     encounter-diagnosis, verificationStatus confirmed and no
//     clinicalStatus (the summary does not say whether they resolved).
//   - Encounter.class is IMP, or HH for HAD. unit_type is also
//     Encounter.serviceType (pmsi-field).
//   - admitSource holds the PMSI mode and provenance codes, plus HL7 emd
//     (provenance 5) or hosp-trans (mode 7); dischargeDisposition the PMSI
//     mode plus HL7 home (8), other-hcf (7), exp (9, death) or oth (6).
//   - CIM-10 codes are written in dotted form (I509 → I50.9).
//   - The stay identifier system is
//     https://example.org/fhir/sid/pmsi-stay/<finess> (brief §1.3 leaves
//     the FINESS-derived form open).
//   - Stage context: the diagnoses of the stay and of the patient's earlier
//     stays in the same file are PriorConditions (a colonoscopy during a
//     stay coded Z85.0 is follow-up), with what the hub already stores
//     about the patient before the admission (mappings.Options.Prior:
//     diagnoses, abnormal results, dispensed drugs).
package hospital

import (
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/outcome"
)

// Source is the name of the format.
const Source = "hospital-stays"

// Columns of the format, in the documented order.
var Columns = []string{
	"finess", "stay_id", "ins_nir", "birth_date", "sex", "postcode", "admission_date",
	"discharge_date", "admission_mode", "admission_source", "discharge_mode", "ghm",
	"main_diagnosis", "related_diagnosis", "other_diagnoses", "acts", "unit_type",
}

// DiagnosisTypeExtensionURL is the extension giving a Condition its PMSI role.
const DiagnosisTypeExtensionURL = vocab.ExtensionBase + "pmsi-diagnosis-type"

// Mapper maps hospital-stays files.
type Mapper struct{}

var _ mappings.Mapper = (*Mapper)(nil)

func init() { mappings.Register(&Mapper{}) }

// Source names the format.
func (*Mapper) Source() string { return Source }

// Map reads a hospital-stays file.
func (*Mapper) Map(r io.Reader, opt mappings.Options) (*mappings.Result, error) {
	h := &history{codes: map[string]uint32{}, patients: map[mappings.Key][]dated{}}
	return mappings.Run(mappings.Spec[*stay]{Source: Source, Columns: Columns, Parse: parse, Note: h.note, Build: h.build}, r, opt)
}

// history is what the good stays of a file tell about their linked
// patients, gathered before any stay is built (the file may be built a
// chunk at a time): per patient, each diagnosis code with the earliest
// discharge of a stay coding it. Memory: about 8 bytes per distinct code
// of a patient.
type history struct {
	codes    map[string]uint32 // CIM-10 code → index in names
	names    []string
	patients map[mappings.Key][]dated
}

type dated struct {
	code uint32
	day  uint32 // discharge, as mappings.DayNumber
}

func (h *history) note(s *stay) {
	if s.ins == "" {
		return // an unlinked patient has this stay only
	}
	k := mappings.KeyOf(s.patientKey())
	list := h.patients[k]
	day := mappings.DayNumber(s.discharge)
	for _, c := range s.diagnoses() {
		i, ok := h.codes[c.Code]
		if !ok {
			i = uint32(len(h.names))
			h.codes[c.Code] = i
			h.names = append(h.names, c.Code)
		}
		found := false
		for j := range list {
			if list[j].code == i {
				list[j].day = min(list[j].day, day)
				found = true
			}
		}
		if !found {
			list = append(list, dated{i, day})
		}
	}
	h.patients[k] = list
}

// priorConditions are the diagnoses of the stay and of the patient's
// stays discharged by its admission (wherever they are in the file).
func (h *history) priorConditions(s *stay) []vocab.Coding {
	out := s.diagnoses()
	if s.ins == "" {
		return out
	}
	admission := mappings.DayNumber(s.admission)
	for _, d := range h.patients[mappings.KeyOf(s.patientKey())] {
		if d.day <= admission {
			out = append(out, vocab.Coding{System: vocab.SystemCIM10, Code: h.names[d.code]})
		}
	}
	return out
}

type act struct{ code, date string }

type stay struct {
	finess, id                   string
	ins, birth, gender, postcode string
	admission, discharge         string
	admMode, admSource, disMode  string
	ghm, field                   string
	dp, dr                       string
	das                          []string
	acts                         []act
}

func (s *stay) key() string { return s.finess + "|" + s.id }

func (s *stay) patientKey() string {
	if s.ins != "" {
		return "ins|" + s.ins
	}
	return "stay|" + s.key()
}

func parse(r *mappings.Row, c *mappings.Checks) *stay {
	s := &stay{}
	s.finess, _ = r.Match("finess", true, mappings.ReFINESS, "FINESS number (9 characters)")
	s.id, _ = r.Match("stay_id", true, mappings.ReID, "stay identifier (letters, digits, '.', '_', '-'; at most 64)")
	if s.finess != "" && s.id != "" {
		c.Unique(r, "stay_id", s.key())
	}
	s.ins, _ = r.INS("ins_nir")
	s.birth, _ = r.Date("birth_date", true)
	s.gender, _ = r.Sex("sex")
	c.SamePerson(r, "ins_nir", s.ins, "birth_date", s.birth, "sex", s.gender)
	s.postcode, _ = r.Postcode("postcode")
	s.admission, _ = r.Date("admission_date", true)
	s.discharge, _ = r.Date("discharge_date", true)
	if s.admission != "" && s.discharge != "" && s.discharge < s.admission {
		r.Fail("discharge_date", outcome.CodeValue, "discharge_date is before admission_date")
	}
	if s.birth != "" && s.admission != "" && s.admission < s.birth {
		r.Fail("admission_date", outcome.CodeValue, "admission_date is before birth_date")
	}
	s.admMode, _ = r.OneOf("admission_mode", true, "6", "7", "8")
	s.admSource, _ = r.OneOf("admission_source", false, "1", "2", "3", "4", "5", "6", "7")
	s.disMode, _ = r.OneOf("discharge_mode", true, "6", "7", "8", "9")
	s.ghm = code(r, "ghm", false, mappings.ReGHM, "GHM code (CMD, type C/K/M/Z, number, level)")
	s.dp = mappings.NormalizeCIM10(code(r, "main_diagnosis", true, mappings.ReCIM10, "CIM-10 code"))
	s.dr = mappings.NormalizeCIM10(code(r, "related_diagnosis", false, mappings.ReCIM10, "CIM-10 code"))
	if items, ok := r.List("other_diagnoses"); ok {
		for i, it := range items {
			it = strings.ToUpper(it)
			if !mappings.ReCIM10.MatchString(it) {
				r.Fail("other_diagnoses", outcome.CodeValue, "other_diagnoses item %d is not a valid CIM-10 code", i+1)
				continue
			}
			if d := mappings.NormalizeCIM10(it); !slices.Contains(s.das, d) { // listed twice: one diagnosis
				s.das = append(s.das, d)
			}
		}
	}
	if items, ok := r.List("acts"); ok {
		for i, it := range items {
			code, date, found := strings.Cut(it, "@")
			code = strings.ToUpper(strings.TrimSpace(code))
			date = strings.TrimSpace(date)
			switch {
			case !found:
				r.Fail("acts", outcome.CodeValue, "acts item %d must be CCAMCODE@YYYY-MM-DD", i+1)
			case !mappings.ReCCAM.MatchString(code):
				r.Fail("acts", outcome.CodeValue, "acts item %d is not a valid CCAM code (4 letters, 3 digits)", i+1)
			case !mappings.IsDate(date):
				r.Fail("acts", outcome.CodeValue, "acts item %d has no valid date (YYYY-MM-DD)", i+1)
			case s.admission != "" && s.discharge != "" && (date < s.admission || date > s.discharge):
				r.Fail("acts", outcome.CodeValue, "acts item %d is dated outside the stay", i+1)
			case slices.Contains(s.acts, act{code, date}): // listed twice: one act
			default:
				s.acts = append(s.acts, act{code, date})
			}
		}
	}
	s.field, _ = r.OneOf("unit_type", false, "MCO", "SMR", "HAD", "PSY")
	if s.field == "" {
		s.field = "MCO"
	}
	return s
}

// code reads a code column, upper-cased.
func code(r *mappings.Row, name string, required bool, re *regexp.Regexp, what string) string {
	v := strings.ToUpper(r.Text(name))
	if v == "" {
		if required {
			r.Fail(name, outcome.CodeRequired, "%s is required", name)
		}
		return ""
	}
	if !re.MatchString(v) {
		r.Fail(name, outcome.CodeValue, "%s is not a valid %s", name, what)
		return ""
	}
	return v
}

func role(code string) vocab.Coding {
	c, _ := vocab.Lookup(vocab.PMSIDiagnosisSystem, code)
	return c.Coding()
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

func hub(system, code string) vocab.Coding {
	c, _ := vocab.Lookup(system, code)
	return c.Coding()
}

func num(i int) json.Number { return json.Number(strconv.Itoa(i)) }

func (h *history) build(b *mappings.Batch, stays []*stay) {
	for _, s := range stays {
		org := b.Organization(mappings.Identifier{System: vocab.SidFINESS, Value: s.finess})
		pat := b.Patient(mappings.Person{INS: s.ins, BirthDate: s.birth, Gender: s.gender, PostalCode: s.postcode, Key: "stay|" + s.key()})
		// Earlier stays of the same patient give context.
		ctx := vocab.Context{Setting: vocab.SettingHospital, Kind: s.field, PriorConditions: h.priorConditions(s)}
		// And what the hub already stores about the patient before the
		// admission (mappings.Options.Prior), when a code of the stay
		// depends on it.
		ctx = b.Prior(ctx, s.ins, s.admission, s.codes()...)
		encURL := b.FullURL("Encounter", s.key())
		type diag struct {
			role, code, key string
		}
		var diags []diag
		diags = append(diags, diag{"DP", s.dp, s.key() + "|DP"})
		if s.dr != "" {
			diags = append(diags, diag{"DR", s.dr, s.key() + "|DR"})
		}
		for i, d := range s.das {
			diags = append(diags, diag{"DAS", d, s.key() + "|DAS|" + strconv.Itoa(i+1)})
		}
		var encDiag []any
		for i, d := range diags {
			encDiag = append(encDiag, map[string]any{
				"condition": mappings.Ref(b.FullURL("Condition", d.key)),
				"use":       cc(role(d.role)),
				"rank":      num(i + 1),
			})
		}
		enc := encounter(s, pat, org, encDiag)
		var candidates []vocab.Coding
		if s.field == "MCO" && s.ghm != "" {
			candidates = append(candidates, vocab.Coding{System: vocab.SystemGHM, Code: s.ghm})
		}
		candidates = append(candidates, vocab.Coding{System: vocab.ActivityKindSystem, Code: "stay-" + strings.ToLower(s.field)})
		st, _ := vocab.Resolve(ctx, candidates...)
		b.Fact(enc, s.key(), st) // its fullUrl is encURL: FullURL and Fact derive it the same way
		for _, d := range diags {
			code := vocab.Coding{System: vocab.SystemCIM10, Code: d.code}
			st, _ := vocab.Resolve(ctx, code, vocab.Coding{System: vocab.ActivityKindSystem, Code: "diagnosis"})
			b.Fact(map[string]any{
				"resourceType":       "Condition",
				"extension":          []any{map[string]any{"url": DiagnosisTypeExtensionURL, "valueCoding": role(d.role).Map()}},
				"verificationStatus": cc(vocab.Coding{System: vocab.SystemConditionVerStatus, Code: "confirmed", Display: "Confirmed"}),
				"category":           []any{cc(vocab.Coding{System: vocab.SystemConditionCategory, Code: "encounter-diagnosis", Display: "Encounter Diagnosis"})},
				"code":               cc(code),
				"subject":            mappings.Ref(pat),
				"encounter":          mappings.Ref(encURL),
				"recordedDate":       s.discharge,
			}, d.key, st)
		}
		for i, a := range s.acts {
			code := vocab.Coding{System: vocab.SystemCCAM, Code: a.code}
			st, _ := vocab.Resolve(ctx, code, vocab.Coding{System: vocab.ActivityKindSystem, Code: "act"})
			b.Fact(map[string]any{
				"resourceType":      "Procedure",
				"status":            "completed",
				"code":              cc(code),
				"subject":           mappings.Ref(pat),
				"encounter":         mappings.Ref(encURL),
				"performedDateTime": a.date,
			}, s.key()+"|act|"+strconv.Itoa(i+1), st)
		}
	}
}

// codes are the codes whose stage the stay resolves (besides the
// activity kinds): its GHM, diagnoses and acts.
func (s *stay) codes() []vocab.Coding {
	out := s.diagnoses()
	if s.ghm != "" {
		out = append(out, vocab.Coding{System: vocab.SystemGHM, Code: s.ghm})
	}
	for _, a := range s.acts {
		out = append(out, vocab.Coding{System: vocab.SystemCCAM, Code: a.code})
	}
	return out
}

func (s *stay) diagnoses() []vocab.Coding {
	codes := append([]string{s.dp, s.dr}, s.das...)
	var out []vocab.Coding
	for _, c := range codes {
		if c != "" {
			out = append(out, vocab.Coding{System: vocab.SystemCIM10, Code: c})
		}
	}
	return out
}

func encounter(s *stay, pat, org string, diagnosis []any) map[string]any {
	class := vocab.Coding{System: vocab.SystemV3ActCode, Code: "IMP", Display: "inpatient encounter"}
	if s.field == "HAD" {
		class = vocab.Coding{System: vocab.SystemV3ActCode, Code: "HH", Display: "home health"}
	}
	var hl7In vocab.Coding
	switch {
	case s.admSource == "5":
		hl7In = vocab.Coding{System: vocab.SystemAdmitSource, Code: "emd", Display: "From accident/emergency department"}
	case s.admMode == "7":
		hl7In = vocab.Coding{System: vocab.SystemAdmitSource, Code: "hosp-trans", Display: "Transferred from other hospital"}
	}
	admit := []vocab.Coding{hub(vocab.PMSIModeSystem, s.admMode)}
	if s.admSource != "" {
		admit = append(admit, hub(vocab.PMSIProvenanceSystem, s.admSource))
	}
	admit = append(admit, hl7In)
	out := map[string]vocab.Coding{
		"6": {System: vocab.SystemDischargeDisp, Code: "oth", Display: "Other"},
		"7": {System: vocab.SystemDischargeDisp, Code: "other-hcf", Display: "Other healthcare facility"},
		"8": {System: vocab.SystemDischargeDisp, Code: "home", Display: "Home"},
		"9": {System: vocab.SystemDischargeDisp, Code: "exp", Display: "Expired"},
	}[s.disMode]
	enc := map[string]any{
		"resourceType": "Encounter",
		"identifier":   []any{map[string]any{"system": vocab.SidPMSIStay + s.finess, "value": s.id}},
		"status":       "finished",
		"class":        class.Map(),
		"serviceType":  cc(hub(vocab.PMSIFieldSystem, s.field)),
		"subject":      mappings.Ref(pat),
		"period":       map[string]any{"start": s.admission, "end": s.discharge},
		"diagnosis":    diagnosis,
		"hospitalization": map[string]any{
			"admitSource":          cc(admit...),
			"dischargeDisposition": cc(hub(vocab.PMSIModeSystem, s.disMode), out),
		},
		"serviceProvider": mappings.Ref(org),
	}
	if s.ghm != "" {
		enc["type"] = []any{cc(vocab.Coding{System: vocab.SystemGHM, Code: s.ghm})}
	}
	return enc
}
