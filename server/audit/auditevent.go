package audit

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Code systems and identifier systems of the AuditEvent view.
const (
	SystemAuditEventType = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemRestful        = "http://hl7.org/fhir/restful-interaction"
	SystemDICOM          = "http://dicom.nema.org/resources/ontology/DCM"
	SystemActReason      = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemHubPurpose     = "https://example.org/fhir/CodeSystem/hub-purpose"
	SystemActorType      = "https://example.org/fhir/CodeSystem/actor-type"
	SystemSourceType     = "http://terminology.hl7.org/CodeSystem/security-source-type"
	SystemEntityType     = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemObjectRole     = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemHubAuditEntity = "https://example.org/fhir/CodeSystem/hub-audit-entity-type"
	SystemPseudonym      = "https://example.org/fhir/sid/patient-pseudonym"
	SystemDecisionID     = "https://example.org/fhir/sid/decision-id"
	SystemSubject        = "https://example.org/fhir/sid/token-subject"
	SystemRPPS           = "https://rpps.esante.gouv.fr"
	// SystemHubAuditEvent holds the hub's own AuditEvent subtypes
	// (care-relation-declared).
	SystemHubAuditEvent   = "https://example.org/fhir/CodeSystem/hub-audit-event"
	EntityPolicyDecision  = "policy-decision"
	hubDisplay            = "Parcours FHIR hub"
	hubDeviceIdentifierID = "parcours"
)

// hubPurposes maps the hub-purpose codes to their HL7 v3 PurposeOfUse
// (domain brief §4.1; underwriting-pricing has none on purpose).
var hubPurposes = map[string]string{
	"prevention-programme-delivery":  "TREAT",
	"prevention-programme-reporting": "POPHLTH",
	"liability-claim-handling":       "HLEGAL",
	"liability-risk-analysis":        "HQUALIMP",
	"rupture-detection":              "COC",
	"rupture-reporting":              "POPHLTH",
	"underwriting-pricing":           "",
}

// inputView is what the AuditEvent view reads of a recorded policy input.
type inputView struct {
	Interaction  string `json:"interaction"`
	Operation    string `json:"operation"`
	ResourceType string `json:"resource_type"`
	Purpose      string `json:"purpose"`
	Subject      struct {
		Sub       string `json:"sub"`
		ActorType string `json:"actor_type"`
		RPPS      string `json:"rpps"`
	} `json:"subject"`
	BreakGlass *struct{} `json:"break_glass"`
	Resource   *struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"resource"`
	Patient *struct {
		Pseudonym string `json:"pseudonym"`
	} `json:"patient"`
}

var v3Code = regexp.MustCompile(`^[A-Z]{2,16}$`)

var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// AuditEvent renders the record as a FHIR R4 AuditEvent in the IHE BALP
// shape (domain brief §4.5): type rest, subtype the RESTful interaction
// (DICOM 110127 Emergency Override Started for a break-the-glass request),
// action, recorded, outcome 0 (allow) or 4 (deny) with the reasons as
// outcomeDesc, purposeOfEvent, the requesting user and the hub as agents,
// the hub as source observer, and entities for the patient (pseudonym),
// the resource, the query (parameter names only) and the policy decision.
// Its id is the decision id (or "audit-<seq>" when that is not a FHIR id).
func (r Record) AuditEvent() map[string]any {
	var in inputView
	if len(r.Input) > 0 {
		_ = json.Unmarshal(r.Input, &in) // what is missing stays empty
	}
	res, _ := r.Decision()
	lab := func(k, fallback string) string {
		if v := r.Labels[k]; v != "" {
			return v
		}
		return fallback
	}
	interaction := lab(LabelInteraction, in.Interaction)
	purpose := lab(LabelPurpose, in.Purpose)
	sub := lab(LabelSub, in.Subject.Sub)
	actorType := lab(LabelActorType, in.Subject.ActorType)
	resourceType := lab(LabelResourceType, in.ResourceType)
	resourceID := r.Labels[LabelResourceID]
	if in.Resource != nil {
		if resourceType == "" {
			resourceType = in.Resource.Type
		}
		if resourceID == "" {
			resourceID = in.Resource.ID
		}
	}
	patient := r.Labels[LabelPatient]
	if patient == "" && in.Patient != nil {
		patient = in.Patient.Pseudonym
	}

	id := r.DecisionID
	if !fhirID.MatchString(id) {
		id = "audit-" + strconv.FormatUint(r.Seq, 10)
	}
	ev := map[string]any{
		"resourceType": "AuditEvent",
		"id":           id,
		"type":         coding(SystemAuditEventType, "rest", "Restful Operation"),
		"action":       action(interaction),
		"period":       map[string]any{"start": r.Timestamp, "end": r.Timestamp},
		"recorded":     r.Timestamp,
		"source": map[string]any{
			"observer": map[string]any{"display": hubDisplay, "identifier": map[string]any{"value": hubDeviceIdentifierID}},
			"type":     []any{coding(SystemSourceType, "4", "Application Server")},
		},
	}
	if in.BreakGlass != nil {
		ev["subtype"] = []any{coding(SystemDICOM, "110127", "Emergency Override Started")}
	} else if interaction != "" {
		ev["subtype"] = []any{coding(SystemRestful, interaction, "")}
	}
	if r.Labels[LabelCareRelation] == "declared" {
		ev["subtype"] = append(asAnyList(ev["subtype"]), coding(SystemHubAuditEvent, "care-relation-declared", "Care relationship declared by the writer"))
	}
	if r.Allowed() {
		ev["outcome"] = "0"
	} else {
		ev["outcome"] = "4"
	}
	if len(res.Reasons) > 0 {
		ev["outcomeDesc"] = strings.Join(res.Reasons, ", ")
	}
	if purpose != "" {
		ev["purposeOfEvent"] = []any{purposeOf(purpose)}
	}

	user := map[string]any{"requestor": true}
	if sub != "" {
		user["who"] = map[string]any{"identifier": map[string]any{"system": SystemSubject, "value": sub}}
	}
	if in.Subject.RPPS != "" {
		user["altId"] = in.Subject.RPPS
	}
	if actorType != "" {
		user["role"] = []any{map[string]any{"coding": []any{coding(SystemActorType, actorType, "")}}}
	}
	var policies []any
	for _, reason := range res.Reasons {
		if c, ok := strings.CutPrefix(reason, "consent:"); ok && c != "" && !strings.ContainsAny(c, " \t\n") {
			policies = append(policies, c)
		}
	}
	for _, c := range strings.Fields(r.Labels[LabelConsents]) {
		if !slices.Contains(policies, any(c)) {
			policies = append(policies, c)
		}
	}
	if len(policies) > 0 {
		user["policy"] = policies
	}
	hub := map[string]any{
		"type":      map[string]any{"coding": []any{coding(SystemDICOM, "110152", "Destination Role ID")}},
		"who":       map[string]any{"display": hubDisplay, "identifier": map[string]any{"value": hubDeviceIdentifierID}},
		"requestor": false,
	}
	ev["agent"] = []any{user, hub}

	var entities []any
	patients := []string{}
	if patient != "" {
		patients = append(patients, patient)
	}
	for _, p := range strings.Fields(r.Labels[LabelDisclosed] + " " + r.Labels[LabelQueried]) {
		if !slices.Contains(patients, p) {
			patients = append(patients, p)
		}
	}
	for _, p := range patients {
		entities = append(entities, map[string]any{
			"what": map[string]any{"identifier": map[string]any{"system": SystemPseudonym, "value": p}},
			"type": coding(SystemEntityType, "1", "Person"),
			"role": coding(SystemObjectRole, "1", "Patient"),
		})
	}
	if resourceType != "" && resourceID != "" {
		entities = append(entities, map[string]any{
			"what": map[string]any{"reference": resourceType + "/" + resourceID},
			"type": coding(SystemEntityType, "2", "System Object"),
			"role": coding(SystemObjectRole, "4", "Domain Resource"),
		})
	}
	if u := r.Labels[LabelURL]; u != "" && (strings.Contains(u, "?") || isQuery(interaction)) {
		// Parameter names only, whatever the label holds.
		path, query, _ := strings.Cut(u, "?")
		u = path + paramNames(query)
		entities = append(entities, map[string]any{
			"type":  coding(SystemEntityType, "2", "System Object"),
			"role":  coding(SystemObjectRole, "24", "Query"),
			"query": base64.StdEncoding.EncodeToString([]byte(u)),
		})
	}
	detail := []any{
		map[string]any{"type": "decision_id", "valueString": r.DecisionID},
		map[string]any{"type": "seq", "valueString": strconv.FormatUint(r.Seq, 10)},
	}
	add := func(typ, val string) {
		if val != "" {
			detail = append(detail, map[string]any{"type": typ, "valueString": val})
		}
	}
	add("revision", r.Revision)
	add("reasons", strings.Join(res.Reasons, ", "))
	if len(res.Obligations) > 0 {
		b, _ := json.Marshal(res.Obligations)
		add("obligations", string(b))
	}
	add("legal_basis", strings.Join(res.LegalBasis, ", "))
	add("http_status", r.Labels[LabelHTTPStatus])
	add("entry", r.Labels[LabelEntry])
	add("entry_status", r.Labels[LabelEntryStatus]) // what the entry answered, the Bundle's status aside
	add("hash", r.Hash)
	decision := map[string]any{
		"what":   map[string]any{"identifier": map[string]any{"system": SystemDecisionID, "value": r.DecisionID}},
		"type":   coding(SystemHubAuditEntity, EntityPolicyDecision, "Policy decision"),
		"detail": detail,
	}
	ev["entity"] = append(entities, decision)
	return ev
}

func coding(system, code, display string) map[string]any {
	c := map[string]any{"system": system, "code": code}
	if display != "" {
		c["display"] = display
	}
	return c
}

// action is the BALP action of an interaction: C create, R read, U
// update, D delete, E execute (searches, history, operations, bundles).
func action(interaction string) string {
	switch interaction {
	case "create":
		return "C"
	case "read", "vread":
		return "R"
	case "update", "patch":
		return "U"
	case "delete":
		return "D"
	}
	return "E"
}

func isQuery(interaction string) bool {
	return strings.HasPrefix(interaction, "search") || strings.HasPrefix(interaction, "history")
}

// purposeOf codes a purpose: an HL7 v3 PurposeOfUse code, or a hub-purpose
// code with the v3 code it maps to.
func purposeOf(p string) map[string]any {
	v3, hub := hubPurposes[p]
	switch {
	case !hub && v3Code.MatchString(p):
		return map[string]any{"coding": []any{coding(SystemActReason, p, "")}}
	case !hub:
		return map[string]any{"text": p} // not a known code: as asked
	}
	codings := []any{coding(SystemHubPurpose, p, "")}
	if v3 != "" {
		codings = append(codings, coding(SystemActReason, v3, ""))
	}
	return map[string]any{"coding": codings}
}

func asAnyList(v any) []any {
	l, _ := v.([]any)
	return l
}
