// Package liability maps the liability-claims native format (a medical
// liability insurer's claims register, DESIGN §6.4) to FHIR following brief
// §3.3: one AdverseEvent per claim (hub profile, base R4 AdverseEvent),
// the insured establishment's Organization (by FINESS) and the Patient (by
// INS-NIR). It registers itself as "liability-claims" in package mappings.
//
// Columns (';'-separated CSV with header, or flat NDJSON):
//
//	claim_id; declared_at; event_date; finess; service; ins_nir;
//	procedure_ccam; category; never_event; severity; outcome; fault;
//	avoidable; loss_of_chance_pct; indemnity_reserved_eur;
//	indemnity_paid_eur; status
//
// Required: claim_id, declared_at, event_date (not after declared_at),
// finess, category (one of the 8 codes of liability-event-category),
// severity (1 none, 2 minor, 3 moderate, 4 severe, 5 death), status (open,
// closed, reopened). ins_nir empty makes an unlinked patient (one per
// claim). outcome ∈ resolved, recovering, ongoing, resolvedWithSequelae,
// fatal, unknown (R4 adverse-event-outcome; severity 5 requires fatal
// and fatal requires severity 5, reported on outcome);
// fault ∈ fault, no-fault, hai, undetermined; never_event and avoidable
// are true/false (or 1/0); loss_of_chance_pct is 0–100; amounts are euros
// (decimal, '.').
//
// The AdverseEvent (decisions where the contract is silent):
//   - identifier https://example.org/fhir/sid/liability-claim|<claim_id>;
//     actuality actual; date = event_date; recordedDate = declared_at.
//   - category: the hub liability-event-category code, with the R4
//     adverse-event-category code when the CodeSystem gives one.
//   - seriousness (R4): Non-serious (1, 2), Serious (3, 4),
//     SeriousResultsInDeath (5); severity (R4): mild (2), moderate (3),
//     severe (4, 5); the ordinal 1–5 in the extension harm-severity.
//   - The procedure at stake is a contained Procedure (CCAM, performed on
//     event_date) named by suspectEntity.instance; the service is a
//     contained Location (name = service, managingOrganization = the
//     FINESS Organization) named by location. Contained, so that a claim
//     does not add a second Procedure to the patient's hospital record.
//   - Extensions: never-event (valueBoolean: the column is a yes/no, not a
//     never-event code), liability-claim-status (valueCode), indemnity
//     (complex: reserve and paid as valueMoney EUR), and the medico-legal
//     assessment as the complex extension medico-legal-assessment (fault:
//     valueCoding of medico-legal-fault; avoidable: valueBoolean;
//     loss-of-chance: valueDecimal, a percentage) rather than a
//     ClinicalImpression: the policy lets the insurer write AdverseEvent,
//     Organization and Provenance only, and the assessment belongs to the
//     claim file.
//   - The stage comes from liability-event-to-parcours-stage (setting
//     liability), with what the hub already stores about the patient
//     before event_date as context (mappings.Options.Prior).
package liability

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/outcome"
)

// Source is the name of the format.
const Source = "liability-claims"

// Columns of the format, in the documented order.
var Columns = []string{
	"claim_id", "declared_at", "event_date", "finess", "service", "ins_nir", "procedure_ccam",
	"category", "never_event", "severity", "outcome", "fault", "avoidable", "loss_of_chance_pct",
	"indemnity_reserved_eur", "indemnity_paid_eur", "status",
}

// Extensions of the hub liability AdverseEvent.
const (
	NeverEventExtensionURL   = vocab.ExtensionBase + "never-event"
	HarmSeverityExtensionURL = vocab.ExtensionBase + "harm-severity"
	StatusExtensionURL       = vocab.ExtensionBase + "liability-claim-status"
	IndemnityExtensionURL    = vocab.ExtensionBase + "indemnity"
	AssessmentExtensionURL   = vocab.ExtensionBase + "medico-legal-assessment"
)

// Mapper maps liability-claims files.
type Mapper struct{}

var _ mappings.Mapper = (*Mapper)(nil)

func init() { mappings.Register(&Mapper{}) }

// Source names the format.
func (*Mapper) Source() string { return Source }

// Map reads a liability-claims file.
func (*Mapper) Map(r io.Reader, opt mappings.Options) (*mappings.Result, error) {
	return mappings.Run(mappings.Spec[*claim]{Source: Source, Columns: Columns, Parse: parse, Build: build}, r, opt)
}

type claim struct {
	id, declared, event, finess, service, ins, procedure, category string
	never, neverSet                                                bool
	severity                                                       int
	outcome, fault, status                                         string
	avoidable, avoidableSet                                        bool
	lossOfChance, reserved, paid                                   json.Number
}

func parse(r *mappings.Row, c *mappings.Checks) *claim {
	cl := &claim{}
	cl.id, _ = r.Match("claim_id", true, mappings.ReID, "claim identifier (letters, digits, '.', '_', '-'; at most 64)")
	c.Unique(r, "claim_id", cl.id)
	cl.declared, _ = r.Date("declared_at", true)
	cl.event, _ = r.Date("event_date", true)
	if cl.declared != "" && cl.event != "" && cl.event > cl.declared {
		r.Fail("event_date", outcome.CodeValue, "event_date is after declared_at")
	}
	cl.finess, _ = r.Match("finess", true, mappings.ReFINESS, "FINESS number (9 characters)")
	cl.service = r.Text("service")
	if len([]rune(cl.service)) > 100 {
		r.Fail("service", outcome.CodeValue, "service is longer than 100 characters")
	}
	cl.ins, _ = r.INS("ins_nir")
	if v := strings.ToUpper(r.Text("procedure_ccam")); v != "" {
		if mappings.ReCCAM.MatchString(v) {
			cl.procedure = v
		} else {
			r.Fail("procedure_ccam", outcome.CodeValue, "procedure_ccam is not a valid CCAM code (4 letters, 3 digits)")
		}
	}
	if v, ok := r.Required("category"); ok {
		if _, known := vocab.Lookup(vocab.LiabilityEventSystem, v); known {
			cl.category = v
		} else {
			r.Fail("category", outcome.CodeValue, "category must be a code of %s", vocab.LiabilityEventSystem)
		}
	}
	cl.never, _, _ = r.Bool("never_event", false)
	cl.severity, _ = r.Integer("severity", true, 1, 5)
	cl.outcome, _ = r.OneOf("outcome", false, "resolved", "recovering", "ongoing", "resolvedWithSequelae", "fatal", "unknown")
	switch {
	case cl.severity == 5 && cl.outcome != "" && cl.outcome != "fatal":
		r.Fail("outcome", outcome.CodeValue, "outcome must be fatal when severity is 5 (death)")
	case cl.outcome == "fatal" && cl.severity != 0 && cl.severity != 5:
		// The opposite check: a death is severity 5, else the AdverseEvent
		// says fatal with seriousness Non-serious or Serious.
		r.Fail("outcome", outcome.CodeValue, "outcome fatal requires severity 5 (death), not %d", cl.severity)
	}
	cl.fault, _ = r.OneOf("fault", false, "fault", "no-fault", "hai", "undetermined")
	cl.avoidable, cl.avoidableSet, _ = r.Bool("avoidable", false)
	cl.lossOfChance, _ = r.Decimal("loss_of_chance_pct", false, 0, 100)
	cl.reserved, _ = r.Decimal("indemnity_reserved_eur", false, 0, 1e9)
	cl.paid, _ = r.Decimal("indemnity_paid_eur", false, 0, 1e9)
	cl.status, _ = r.OneOf("status", true, "open", "closed", "reopened")
	return cl
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

func money(v json.Number) map[string]any { return map[string]any{"value": v, "currency": "EUR"} }

var (
	seriousness = map[int]vocab.Coding{
		1: {System: vocab.SystemAESeriousness, Code: "Non-serious", Display: "Non-serious"},
		2: {System: vocab.SystemAESeriousness, Code: "Non-serious", Display: "Non-serious"},
		3: {System: vocab.SystemAESeriousness, Code: "Serious", Display: "Serious"},
		4: {System: vocab.SystemAESeriousness, Code: "Serious", Display: "Serious"},
		5: {System: vocab.SystemAESeriousness, Code: "SeriousResultsInDeath", Display: "Results in death"},
	}
	severity = map[int]vocab.Coding{
		2: {System: vocab.SystemAESeverity, Code: "mild", Display: "Mild"},
		3: {System: vocab.SystemAESeverity, Code: "moderate", Display: "Moderate"},
		4: {System: vocab.SystemAESeverity, Code: "severe", Display: "Severe"},
		5: {System: vocab.SystemAESeverity, Code: "severe", Display: "Severe"},
	}
	outcomes = map[string]string{
		"resolved": "Resolved", "recovering": "Recovering", "ongoing": "Ongoing",
		"resolvedWithSequelae": "Resolved with Sequelae", "fatal": "Fatal", "unknown": "Unknown",
	}
)

func build(b *mappings.Batch, claims []*claim) {
	for _, cl := range claims {
		org := b.Organization(mappings.Identifier{System: vocab.SidFINESS, Value: cl.finess})
		pat := b.Patient(mappings.Person{INS: cl.ins, Key: "claim|" + cl.id})
		cat, _ := vocab.Lookup(vocab.LiabilityEventSystem, cl.category)
		categories := []vocab.Coding{cat.Coding()}
		if r4, _ := cat.Properties["adverse-event-category"].(vocab.Coding); r4.Code != "" {
			categories = append([]vocab.Coding{r4}, categories...)
		}
		loc := map[string]any{"resourceType": "Location", "id": "service", "managingOrganization": mappings.Ref(org)}
		if cl.service != "" {
			loc["name"] = cl.service
		}
		contained := []any{loc}
		ae := map[string]any{
			"resourceType": "AdverseEvent",
			"identifier":   map[string]any{"system": vocab.SidLiabilityClaim, "value": cl.id},
			"actuality":    "actual",
			"category":     []any{cc(categories...)},
			"subject":      mappings.Ref(pat),
			"date":         cl.event,
			"recordedDate": cl.declared,
			"location":     map[string]any{"reference": "#service"},
			"seriousness":  cc(seriousness[cl.severity]),
		}
		if s, ok := severity[cl.severity]; ok {
			ae["severity"] = cc(s)
		}
		if cl.outcome != "" {
			ae["outcome"] = cc(vocab.Coding{System: vocab.SystemAEOutcome, Code: cl.outcome, Display: outcomes[cl.outcome]})
		}
		if cl.procedure != "" {
			contained = append(contained, map[string]any{
				"resourceType":      "Procedure",
				"id":                "procedure",
				"status":            "completed",
				"code":              cc(vocab.Coding{System: vocab.SystemCCAM, Code: cl.procedure}),
				"subject":           mappings.Ref(pat),
				"performedDateTime": cl.event,
			})
			ae["suspectEntity"] = []any{map[string]any{"instance": map[string]any{"reference": "#procedure"}}}
		}
		ae["contained"] = contained
		ext := []any{
			map[string]any{"url": NeverEventExtensionURL, "valueBoolean": cl.never},
			map[string]any{"url": HarmSeverityExtensionURL, "valueInteger": json.Number(strconv.Itoa(cl.severity))},
			map[string]any{"url": StatusExtensionURL, "valueCode": cl.status},
		}
		var indemnity []any
		if cl.reserved != "" {
			indemnity = append(indemnity, map[string]any{"url": "reserve", "valueMoney": money(cl.reserved)})
		}
		if cl.paid != "" {
			indemnity = append(indemnity, map[string]any{"url": "paid", "valueMoney": money(cl.paid)})
		}
		if indemnity != nil {
			ext = append(ext, map[string]any{"url": IndemnityExtensionURL, "extension": indemnity})
		}
		var assessment []any
		if cl.fault != "" {
			f, _ := vocab.Lookup(vocab.MedicoLegalSystem, cl.fault)
			assessment = append(assessment, map[string]any{"url": "fault", "valueCoding": f.Coding().Map()})
		}
		if cl.avoidableSet {
			assessment = append(assessment, map[string]any{"url": "avoidable", "valueBoolean": cl.avoidable})
		}
		if cl.lossOfChance != "" {
			assessment = append(assessment, map[string]any{"url": "loss-of-chance", "valueDecimal": cl.lossOfChance})
		}
		if assessment != nil {
			ext = append(ext, map[string]any{"url": AssessmentExtensionURL, "extension": assessment})
		}
		ae["extension"] = ext
		event := vocab.Coding{System: vocab.LiabilityEventSystem, Code: cl.category}
		st, _ := vocab.Resolve(b.Prior(vocab.Context{Setting: vocab.SettingLiability, Kind: cl.category}, cl.ins, cl.event, event), event)
		b.Fact(ae, cl.id, st)
	}
}
