// Package prevention maps the prevention-programme native format (the
// mutual insurer's programme operator, DESIGN §6.3) to FHIR: the Patient
// (by INS-NIR, and by member number), the member's consents (brief §4.2
// pattern 3), one CarePlan per member (the programme, with its reminders
// and coaching sessions as activities) and an Observation per measurement,
// questionnaire and screening done. It registers itself as
// "prevention-programme" in package mappings.
//
// NDJSON, one member per line:
//
//	{"member_id": "M-001", "ins_nir": "…", "birth_date": "1962-01-08", "sex": "2",
//	 "programme": "depistage-cancers", "enrolled_at": "2024-10-01",
//	 "consents": {"programme": true, "share_with_gp": true, "research": false},
//	 "risk_segment": "moderate",
//	 "events": [{"date": "2025-01-20", "type": "screening-done", "code_system": "loinc",
//	             "code": "29771-3", "value": 12, "unit": "ng/mL"}]}
//
// Required: member_id, birth_date, sex, programme (a code of vocab's
// prevention-programme CodeSystem, which names the sponsor and the
// operator), enrolled_at, consents.programme. ins_nir empty makes a Patient
// matched on the member number only (unlinked). risk_segment ∈ low,
// moderate, high. Event types and the code systems they take:
//
//	measurement, questionnaire          loinc (required)
//	screening-done, screening-reminder  ccam, loinc, nabm (required)
//	coaching                            any (optional)
//
// value is a number (measurement, questionnaire, screening-done) with an
// optional unit (UCUM-coded when on the hub's list, mappings.Row.Unit). Events may not predate enrolled_at, nor exist
// without consents.programme = true. Issues name JSON paths
// (events[2].date) and the character column of the value in the line.
//
// Decisions where the contract is silent:
//   - Programme consent (consents.programme): Consent scope
//     patient-privacy, policyRule OPTIN, performer the patient,
//     organization the operator; provision permit for the operator
//     (role PRCP, by identifier) for prevention-programme-delivery on
//     Observation, CarePlan and QuestionnaireResponse; nested deny for the
//     sponsoring mutual (all purposes); nested in that deny, a permit for
//     the mutual for prevention-programme-reporting with the extension
//     aggregation-min-k = 10 (an exception to the exception, as FHIR
//     nesting means). consents.programme = false gives the same Consent
//     with status rejected, and no facts.
//   - share_with_gp = true: a Consent (patient-privacy, OPTIN) permitting
//     TREAT and COC on the programme's Observations and CarePlan. The
//     format names no GP, so the provision names no actor, and the policy
//     gives such a permit no effect outside the care team (sharing outside
//     it is consented to a named professional, brief §4.2 pattern 1): the
//     patient's GP sees the data as a member of the care team.
//   - research = true: a Consent scope research (OPTIN) permitting HRESCH
//     on the data from enrolled_at.
//   - The operator is Options.Org when it is an identifier, else the
//     programme's registered operator; the sponsor comes from the
//     programme.
//   - Coaching is a CarePlan activity (completed), like screening
//     reminders (scheduled, kind ServiceRequest): the policy lets the
//     operator write Consent, Observation, CarePlan and
//     QuestionnaireResponse only, so screening-done is an Observation of
//     category procedure (its code may be a CCAM act) rather than a
//     Procedure, and risk_segment an extension of the CarePlan
//     (https://example.org/fhir/StructureDefinition/prevention-risk-segment,
//     valueCoding from HL7 risk-probability) rather than a RiskAssessment.
//   - Stage context: setting prevention and the event type, plus what the
//     hub already stores about the member (by INS-NIR) before the event's
//     date (mappings.Options.Prior: an HbA1c of a known diabetic is
//     biological follow-up, even in a programme).
package prevention

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
const Source = "prevention-programme"

// RiskSegmentExtensionURL is the extension of the programme CarePlan.
const RiskSegmentExtensionURL = vocab.ExtensionBase + "prevention-risk-segment"

// Mapper maps prevention-programme files.
type Mapper struct{}

var _ mappings.Mapper = (*Mapper)(nil)

func init() { mappings.Register(&Mapper{}) }

// Source names the format.
func (*Mapper) Source() string { return Source }

// Map reads a prevention-programme file.
func (*Mapper) Map(r io.Reader, opt mappings.Options) (*mappings.Result, error) {
	operator, _ := mappings.ParseIdentifier(opt.Org)
	// The member numbers of each linked person in the file, in file order:
	// their Patient entry carries them all, whichever chunk it is in.
	// Memory: one entry per distinct linked member.
	numbers := map[mappings.Key][]mappings.Identifier{}
	note := func(m *member) {
		if m.ins == "" {
			return
		}
		k := mappings.KeyOf(m.ins)
		if id := m.local(); !slices.Contains(numbers[k], id) {
			numbers[k] = append(numbers[k], id)
		}
	}
	build := func(b *mappings.Batch, ms []*member) { buildAll(b, ms, operator, numbers) }
	return mappings.Run(mappings.Spec[*member]{Source: Source, Parse: parse, Note: note, Build: build}, r, opt)
}

// local is the member's number in its programme.
func (m *member) local() mappings.Identifier {
	return mappings.Identifier{System: vocab.SidPreventionMember + m.programme.Code, Value: m.id}
}

var (
	topKeys     = set("member_id", "ins_nir", "birth_date", "sex", "programme", "enrolled_at", "consents", "risk_segment", "events")
	consentKeys = set("programme", "share_with_gp", "research")
	eventKeys   = set("date", "type", "code_system", "code", "value", "unit")
	reIndex     = regexp.MustCompile(`\[[0-9]+\]`)
	eventTypes  = []string{"questionnaire", "measurement", "coaching", "screening-reminder", "screening-done"}
	eventCodes  = map[string][]string{
		"measurement":        {"loinc"},
		"questionnaire":      {"loinc"},
		"screening-done":     {"ccam", "loinc", "nabm"},
		"screening-reminder": {"ccam", "loinc", "nabm"},
		"coaching":           {"ngap", "ccam", "cip13", "atc", "nabm", "loinc"},
	}
	riskSegments = map[string]string{"low": "Low likelihood", "moderate": "Moderate likelihood", "high": "High likelihood"}
)

func set(xs ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

type event struct {
	index     int
	date, typ string
	code      vocab.Coding
	loinc     vocab.Coding
	value     json.Number
	unit      mappings.Unit
}

type member struct {
	id, ins, birth, gender string
	programme              vocab.Programme
	enrolled               string
	consent, gp, research  bool
	risk                   string
	events                 []event
}

func parse(r *mappings.Row, c *mappings.Checks) *member {
	m := &member{}
	refused := false
	for _, name := range r.Names() {
		generic := reIndex.ReplaceAllString(name, "[]")
		if top := topOf(name); name != top && (top == "events" && r.Kind(top) != mappings.KindArray ||
			top == "consents" && r.Kind(top) != mappings.KindObject) {
			continue // the parent has the wrong shape: reported once, below
		}
		switch {
		case topKeys[generic]:
		case len(generic) > 9 && generic[:9] == "consents." && consentKeys[generic[9:]]:
		case generic == "events[]":
		case len(generic) > 9 && generic[:9] == "events[]." && eventKeys[generic[9:]]:
		default:
			r.Fail(name, outcome.CodeStructure, "unknown field %s", name)
		}
	}
	m.id, _ = r.Match("member_id", true, mappings.ReID, "member number (letters, digits, '.', '_', '-'; at most 64)")
	m.ins, _ = r.INS("ins_nir")
	m.birth, _ = r.Date("birth_date", true)
	m.gender, _ = r.Sex("sex")
	c.SamePerson(r, "ins_nir", m.ins, "birth_date", m.birth, "sex", m.gender)
	if code, ok := r.Required("programme"); ok {
		if p, known := vocab.ProgrammeOf(code); known {
			m.programme = p
			if m.id != "" {
				c.Unique(r, "member_id", code+"|"+m.id)
			}
		} else {
			r.Fail("programme", outcome.CodeValue, "programme must be a code of %s", vocab.ProgrammeSystem)
		}
	}
	m.enrolled, _ = r.Date("enrolled_at", true)
	switch r.Kind("consents") {
	case mappings.KindObject:
		var set bool
		m.consent, set, _ = r.Bool("consents.programme", true)
		refused = set && !m.consent
		m.gp, _, _ = r.Bool("consents.share_with_gp", false)
		m.research, _, _ = r.Bool("consents.research", false)
	case mappings.KindNull:
		r.Fail("consents", outcome.CodeRequired, "consents is required")
	default:
		r.Fail("consents", outcome.CodeStructure, "consents must be an object")
	}
	if v, ok := r.OneOf("risk_segment", false, "low", "moderate", "high"); ok {
		m.risk = v
	}
	switch r.Kind("events") {
	case mappings.KindNull:
	case mappings.KindArray:
		for i := 0; r.Has("events[" + strconv.Itoa(i) + "]"); i++ {
			if e, ok := parseEvent(r, i, m.enrolled); ok {
				m.events = append(m.events, e)
			}
		}
		if refused && r.Has("events[0]") {
			r.Fail("events", outcome.CodeValue, "events require consents.programme = true")
		}
	default:
		r.Fail("events", outcome.CodeStructure, "events must be an array")
	}
	return m
}

// topOf is the top-level key of a field path.
func topOf(name string) string {
	if i := strings.IndexAny(name, ".["); i >= 0 {
		return name[:i]
	}
	return name
}

func parseEvent(r *mappings.Row, i int, enrolled string) (event, bool) {
	p := "events[" + strconv.Itoa(i) + "]"
	if r.Kind(p) != mappings.KindObject {
		r.Fail(p, outcome.CodeStructure, "%s must be an object", p)
		return event{}, false
	}
	n := len(r.Issues)
	e := event{index: i}
	e.typ, _ = r.OneOf(p+".type", true, eventTypes...)
	if e.typ == "screening-reminder" {
		e.date, _ = r.AnyDate(p+".date", true)
	} else {
		e.date, _ = r.Date(p+".date", true)
	}
	if e.date != "" && enrolled != "" && e.date < enrolled {
		r.Fail(p+".date", outcome.CodeValue, "%s.date is before enrolled_at", p)
	}
	allowed := eventCodes[e.typ]
	if allowed == nil {
		allowed = eventCodes["coaching"]
	}
	e.code, _ = r.Code(p+".code_system", p+".code", e.typ != "coaching", allowed...)
	switch e.code.System {
	case vocab.SystemLOINC:
		e.loinc = e.code
	case vocab.SystemNABM:
		e.loinc, _ = vocab.NABMToLOINC(e.code.Code)
	}
	switch k := r.Kind(p + ".value"); {
	case k == mappings.KindNull:
	case e.typ == "coaching" || e.typ == "screening-reminder":
		r.Fail(p+".value", outcome.CodeValue, "%s.value is not for a %s event", p, e.typ)
	case k != mappings.KindNumber && k != mappings.KindString:
		r.Fail(p+".value", outcome.CodeStructure, "%s.value must be a number", p)
	default:
		e.value, _ = r.Decimal(p+".value", false, -1e9, 1e9)
	}
	e.unit, _ = r.Unit(p+".unit", false)
	if e.unit.Text != "" && r.Kind(p+".value") == mappings.KindNull {
		r.Fail(p+".unit", outcome.CodeValue, "%s.unit is given without value", p)
	}
	return e, len(r.Issues) == n
}

// codes are the codings of an event's code: an NABM act comes with its LOINC.
func codes(e event) []vocab.Coding {
	if e.code.System == vocab.SystemNABM && e.loinc.Code != "" {
		return []vocab.Coding{e.loinc, e.code}
	}
	return []vocab.Coding{e.code}
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

func actor(role string, who mappings.Identifier) map[string]any {
	return map[string]any{
		"role":      cc(vocab.Coding{System: vocab.SystemV3ParticipantType, Code: role}),
		"reference": who.Ref(),
	}
}

func classes(types ...string) []any {
	var out []any
	for _, t := range types {
		out = append(out, vocab.Coding{System: vocab.SystemResourceTypes, Code: t}.Map())
	}
	return out
}

func buildAll(b *mappings.Batch, ms []*member, uploader mappings.Identifier, numbers map[mappings.Key][]mappings.Identifier) {
	for _, m := range ms {
		operator := uploader
		if operator.System == "" {
			operator = mappings.Identifier{System: m.programme.OperatorSystem, Value: m.programme.OperatorValue}
		}
		sponsor := mappings.Identifier{System: m.programme.SponsorSystem, Value: m.programme.SponsorValue}
		local := m.local()
		var others []mappings.Identifier
		if m.ins != "" {
			others = numbers[mappings.KeyOf(m.ins)]
		}
		pat := b.Patient(mappings.Person{INS: m.ins, BirthDate: m.birth, Gender: m.gender, Local: &local, Others: others})
		key := m.programme.Code + "|" + m.id
		patientConsent := func(scope vocab.Coding, extraCategory *vocab.Coding) map[string]any {
			cat := []vocab.Coding{{System: vocab.SystemLOINC, Code: "59284-0", Display: "Patient Consent"}}
			if extraCategory != nil {
				cat = append(cat, *extraCategory)
			}
			return map[string]any{
				"resourceType": "Consent",
				"status":       "active",
				"scope":        cc(scope),
				"category":     []any{cc(cat...)},
				"patient":      mappings.Ref(pat),
				"dateTime":     m.enrolled,
				"performer":    []any{mappings.Ref(pat)},
				"organization": []any{operator.Ref()},
				"policyRule":   cc(vocab.Coding{System: vocab.SystemV3ActCode, Code: "OPTIN", Display: "opt-in"}),
			}
		}
		privacy := vocab.Coding{System: vocab.SystemConsentScope, Code: "patient-privacy", Display: "Privacy Consent"}
		prog := patientConsent(privacy, nil)
		if !m.consent {
			prog["status"] = "rejected"
		}
		prog["provision"] = map[string]any{
			"type":    "permit",
			"period":  map[string]any{"start": m.enrolled},
			"actor":   []any{actor("PRCP", operator)},
			"purpose": []any{hub(vocab.HubPurposeSystem, "prevention-programme-delivery").Map()},
			"class":   classes("Observation", "CarePlan", "QuestionnaireResponse"),
			"provision": []any{map[string]any{
				"type":  "deny",
				"actor": []any{actor("IRCP", sponsor)},
				"provision": []any{map[string]any{
					"extension": []any{map[string]any{"url": vocab.AggregationMinKExtensionURL, "valueInteger": json.Number(strconv.Itoa(vocab.MinAggregationK))}},
					"type":      "permit",
					"actor":     []any{actor("IRCP", sponsor)},
					"purpose":   []any{hub(vocab.HubPurposeSystem, "prevention-programme-reporting").Map()},
				}},
			}},
		}
		b.Record(prog, key+"|consent|programme")
		if !m.consent {
			continue
		}
		if m.gp {
			gp := patientConsent(privacy, nil)
			gp["provision"] = map[string]any{
				"type":   "permit",
				"period": map[string]any{"start": m.enrolled},
				"purpose": []any{
					vocab.Coding{System: vocab.SystemV3ActReason, Code: "TREAT", Display: "treatment"}.Map(),
					vocab.Coding{System: vocab.SystemV3ActReason, Code: "COC", Display: "coordination of care"}.Map(),
				},
				"class": classes("Observation", "CarePlan"),
			}
			b.Record(gp, key+"|consent|share-with-gp")
		}
		if m.research {
			research := vocab.Coding{System: vocab.SystemConsentCategory, Code: "research", Display: "Research Information Access"}
			rc := patientConsent(vocab.Coding{System: vocab.SystemConsentScope, Code: "research", Display: "Research"}, &research)
			rc["provision"] = map[string]any{
				"type":       "permit",
				"period":     map[string]any{"start": m.enrolled},
				"purpose":    []any{vocab.Coding{System: vocab.SystemV3ActReason, Code: "HRESCH", Display: "healthcare research"}.Map()},
				"dataPeriod": map[string]any{"start": m.enrolled},
			}
			b.Record(rc, key+"|consent|research")
		}

		ctxBase := vocab.Context{Setting: vocab.SettingPrevention}
		var activities []any
		for _, e := range m.events {
			ctx := ctxBase
			ctx.Kind = e.typ
			typ := vocab.Coding{System: vocab.PreventionEventSystem, Code: e.typ}
			code := e.code
			if e.loinc.Code != "" {
				code = e.loinc
			}
			ctx = b.Prior(ctx, m.ins, e.date, code, typ)
			st, _ := vocab.Resolve(ctx, code, typ)
			typ = hub(vocab.PreventionEventSystem, e.typ)
			ekey := key + "|event|" + strconv.Itoa(e.index+1)
			switch e.typ {
			case "coaching":
				activities = append(activities, map[string]any{"detail": map[string]any{
					"extension":       []any{st.Extension()},
					"code":            cc(typ, e.code),
					"status":          "completed",
					"scheduledPeriod": map[string]any{"start": e.date, "end": e.date},
					"performer":       []any{operator.Ref()},
				}})
			case "screening-reminder":
				activities = append(activities, map[string]any{"detail": map[string]any{
					"extension":       []any{st.Extension()},
					"kind":            "ServiceRequest",
					"code":            cc(codes(e)...),
					"status":          "scheduled",
					"scheduledPeriod": map[string]any{"start": e.date},
					"description":     "screening reminder sent",
				}})
			default:
				cat := map[string]vocab.Coding{
					"measurement":    {System: vocab.SystemObservationCat, Code: "exam", Display: "Exam"},
					"questionnaire":  {System: vocab.SystemObservationCat, Code: "survey", Display: "Survey"},
					"screening-done": {System: vocab.SystemObservationCat, Code: "procedure", Display: "Procedure"},
				}[e.typ]
				obs := map[string]any{
					"resourceType":      "Observation",
					"status":            "final",
					"category":          []any{cc(cat)},
					"code":              cc(codes(e)...),
					"subject":           mappings.Ref(pat),
					"effectiveDateTime": e.date,
					"performer":         []any{operator.Ref()},
				}
				if e.value != "" {
					q := map[string]any{"value": e.value}
					e.unit.Put(q) // UCUM-coded when on the hub's list, else text only
					obs["valueQuantity"] = q
				}
				b.Fact(obs, ekey, st)
			}
		}
		carePlan := vocab.Coding{System: vocab.ActivityKindSystem, Code: "care-plan"}
		st, _ := vocab.Resolve(b.Prior(ctxBase, m.ins, m.enrolled, carePlan), carePlan)
		plan := map[string]any{
			"resourceType": "CarePlan",
			"status":       "active",
			"intent":       "plan",
			"category":     []any{cc(vocab.Coding{System: vocab.ProgrammeSystem, Code: m.programme.Code, Display: m.programme.Display})},
			"title":        m.programme.Display,
			"subject":      mappings.Ref(pat),
			"period":       map[string]any{"start": m.enrolled},
			"author":       operator.Ref(),
		}
		if m.risk != "" {
			plan["extension"] = []any{map[string]any{"url": RiskSegmentExtensionURL, "valueCoding": vocab.Coding{System: vocab.SystemRiskProbability, Code: m.risk, Display: riskSegments[m.risk]}.Map()}}
		}
		if activities != nil {
			plan["activity"] = activities
		}
		b.Fact(plan, key+"|plan", st)
	}
}
