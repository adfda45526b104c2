package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/search"
)

// capabilityStatement describes exactly what this server implements. It is
// built once at start-up.
func capabilityStatement(version string, secured bool) ([]byte, error) {
	if version == "" {
		version = "dev"
	}
	t, f := true, false
	versioned := fhir.ResourceVersionPolicyVersionedUpdate
	condDelete := fhir.ConditionalDeleteStatusSingle
	condRead := fhir.ConditionalReadStatusFullSupport
	interactions := []fhir.TypeRestfulInteraction{
		fhir.TypeRestfulInteractionRead, fhir.TypeRestfulInteractionVread,
		fhir.TypeRestfulInteractionUpdate, fhir.TypeRestfulInteractionDelete,
		fhir.TypeRestfulInteractionHistoryInstance, fhir.TypeRestfulInteractionHistoryType,
		fhir.TypeRestfulInteractionCreate, fhir.TypeRestfulInteractionSearchType,
	}
	var resources []fhir.CapabilityStatementRestResource
	for _, name := range conformance.ResourceTypes() {
		var rt fhir.ResourceType
		if err := rt.UnmarshalJSON([]byte(`"` + name + `"`)); err != nil {
			return nil, fmt.Errorf("resource type %s unknown to the FHIR models: %w", name, err)
		}
		r := fhir.CapabilityStatementRestResource{
			Type:              rt,
			Versioning:        &versioned,
			ReadHistory:       &t,
			UpdateCreate:      &t,
			ConditionalCreate: &t,
			ConditionalUpdate: &t,
			ConditionalDelete: &condDelete,
			ConditionalRead:   &condRead,
			ReferencePolicy:   []fhir.ReferenceHandlingPolicy{fhir.ReferenceHandlingPolicyLiteral},
		}
		if err := declareSearch(&r, name); err != nil {
			return nil, err
		}
		if r.Interaction == nil {
			for _, code := range interactions {
				r.Interaction = append(r.Interaction, fhir.CapabilityStatementRestResourceInteraction{Code: code})
			}
		}
		resources = append(resources, r)
	}
	cs := fhir.CapabilityStatement{
		Id:             ptr("parcours"),
		Url:            ptr("https://example.org/fhir/CapabilityStatement/parcours"),
		Name:           ptr("Parcours"),
		Title:          ptr("Parcours FHIR R4 hub"),
		Status:         fhir.PublicationStatusActive,
		Experimental:   &f,
		Date:           time.Now().UTC().Format("2006-01-02"),
		Publisher:      ptr("Parcours"),
		Kind:           fhir.CapabilityStatementKindInstance,
		Software:       &fhir.CapabilityStatementSoftware{Name: "Parcours", Version: &version},
		Implementation: &fhir.CapabilityStatementImplementation{Description: "Parcours interoperability hub for care pathways"},
		FhirVersion:    fhir.FHIRVersion4_0_1,
		Format:         []string{"application/fhir+json", "json"},
		Rest: []fhir.CapabilityStatementRest{{
			Mode:     fhir.RestfulCapabilityModeServer,
			Security: security(secured),
			Documentation: ptr("FHIR R4 REST over JSON. Writes are validated against the official R4 JSON schema. " +
				"Search implements every R4 SearchParameter declared below (modifiers, prefixes, chaining and _has one level deep, _sort, _count with cursor paging, _total, _summary, _elements, _include and _revinclude with :iterate), " +
				"system-level and compartment search, and Patient/[id]/$everything; results, totals and links only ever show what the policy lets the caller see. " +
				"Unknown parameters are ignored, or refused with Prefer: handling=strict. XML answers 406."),
			Resource: resources,
			Interaction: []fhir.CapabilityStatementRestInteraction{
				{Code: fhir.SystemRestfulInteractionTransaction},
				{Code: fhir.SystemRestfulInteractionBatch},
				{Code: fhir.SystemRestfulInteractionHistorySystem},
				{Code: fhir.SystemRestfulInteractionSearchSystem},
			},
			SearchParam: systemSearchParams(),
			Compartment: search.Compartments(), // searched as [owner]/[id]/[type]
			Operation: []fhir.CapabilityStatementRestResourceOperation{
				{Name: "ingest", Definition: "https://example.org/fhir/OperationDefinition/ingest",
					Documentation: ptr("POST /fhir/$ingest?source=hospital-stays|city-activity|prevention-programme|liability-claims[&mode=partial]: a native file (text/csv or application/x-ndjson) mapped to FHIR and stored as one transaction; answers an OperationOutcome with the counts and every issue (line, column).")},
				{Name: "detect-ruptures", Definition: "https://example.org/fhir/OperationDefinition/detect-ruptures",
					Documentation: ptr("POST /fhir/$detect-ruptures[?patient=Patient/<id>][&asOf=YYYY-MM-DD]: runs the rupture rules stored as Library/rupture-<id> (editable data) and stores one DetectedIssue per rupture, idempotently, each version with a Provenance naming the rule and ConceptMap versions. For one patient (care team, purpose rupture-detection) it answers the patient's DetectedIssues; for every patient (hub operations) the counts only.")},
				{Name: "audit-verify", Definition: "https://example.org/fhir/OperationDefinition/audit-verify",
					Documentation: ptr("GET /fhir/$audit-verify (auditors): checks the hash chain of the decision log; a Parameters with ok, records and, when broken, firstBad and problem.")},
			},
		}},
	}
	return json.Marshal(cs)
}

func ptr[T any](v T) *T { return &v }

// declareSearch declares the search parameters of typ from the search
// registry (every supported R4 SearchParameter, with its type and
// definition), its _include and _revinclude values and its operations.
func declareSearch(r *fhir.CapabilityStatementRestResource, typ string) error {
	reg := search.Default()
	for _, p := range reg.List(typ) {
		var t fhir.SearchParamType
		if err := t.UnmarshalJSON([]byte(`"` + p.Type + `"`)); err != nil {
			return fmt.Errorf("search parameter %s.%s: type %s unknown to the FHIR models: %w", typ, p.Code, p.Type, err)
		}
		sp := fhir.CapabilityStatementRestResourceSearchParam{Name: p.Code, Type: t}
		if p.URL != "" {
			sp.Definition = ptr(p.URL)
		} else {
			sp.Documentation = ptr("Parcours: " + p.Expression + " (no R4 SearchParameter for this type; used by conditional operations and references)")
		}
		r.SearchParam = append(r.SearchParam, sp)
		if p.Type == search.TypeReference {
			r.SearchInclude = append(r.SearchInclude, typ+":"+p.Code)
		}
	}
	if len(r.SearchInclude) > 0 {
		r.SearchInclude = append(r.SearchInclude, "*")
	}
	r.SearchRevInclude = revIncludes()[typ]
	if typ == "ConceptMap" {
		r.Operation = append(r.Operation, fhir.CapabilityStatementRestResourceOperation{
			Name: "translate", Definition: "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
			Documentation: ptr("GET/POST over the hub's ConceptMaps (pathway stages), dependsOn context rules evaluated."),
		})
	}
	if typ == "AuditEvent" {
		declareAuditEvent(r)
	}
	if typ == "Patient" {
		r.Operation = append(r.Operation, fhir.CapabilityStatementRestResourceOperation{
			Name: "everything", Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
			Documentation: ptr("The patient and its compartment (R4 patient CompartmentDefinition), each resource decided by the policy; _count, _type; paged."),
		}, fhir.CapabilityStatementRestResourceOperation{
			Name: "pathway", Definition: "https://example.org/fhir/OperationDefinition/Patient-pathway",
			Documentation: ptr("GET /fhir/Patient/<id>/$pathway[?stage=][&since=][&until=][&pathway-type=]: the patient's facts ordered by date, each entry with its pathway stage, source actor and date extensions, then the EpisodeOfCares and DetectedIssues; every resource decided by the policy."),
		})
	}
	if typ == "Measure" {
		r.Operation = append(r.Operation, fhir.CapabilityStatementRestResourceOperation{
			Name: "evaluate-measure", Definition: "http://hl7.org/fhir/OperationDefinition/Measure-evaluate-measure",
			Documentation: ptr("GET/POST /fhir/Measure/<id>/$evaluate-measure?periodStart=&periodEnd=[&subject=Organization/<id>]: a summary MeasureReport only (rupture-<rule> Measures, liability-claims), stratified by age band, sex, département and establishment; every cell under 10 patients suppressed, with complementary suppression. The policy decides on the Measure's topic."),
		})
	}
	return nil
}

// declareAuditEvent narrows the AuditEvent resource to what the decision
// log's handlers implement (auditEvents, auditEvent): read and search by
// the parameters of auditEventParams, no history, no writes, no
// conditional interaction, no _include or _revinclude.
func declareAuditEvent(r *fhir.CapabilityStatementRestResource) {
	f := false
	noVersion := fhir.ResourceVersionPolicyNoVersion
	condDelete := fhir.ConditionalDeleteStatusNotSupported
	condRead := fhir.ConditionalReadStatusNotSupported
	r.Interaction = []fhir.CapabilityStatementRestResourceInteraction{{Code: fhir.TypeRestfulInteractionRead}, {Code: fhir.TypeRestfulInteractionSearchType}}
	r.Versioning, r.ReadHistory, r.UpdateCreate = &noVersion, &f, &f
	r.ConditionalCreate, r.ConditionalUpdate, r.ConditionalDelete, r.ConditionalRead = &f, &f, &condDelete, &condRead
	r.SearchInclude, r.SearchRevInclude = nil, nil
	var params []fhir.CapabilityStatementRestResourceSearchParam
	for _, sp := range r.SearchParam {
		if slices.Contains(auditEventParams, sp.Name) && sp.Name != "entity-type" && sp.Name != "agent" {
			params = append(params, sp)
		}
	}
	r.SearchParam = append(params, fhir.CapabilityStatementRestResourceSearchParam{
		// Not AuditEvent-agent (a reference): a token.
		Name: "agent", Type: fhir.SearchParamTypeToken,
		Documentation: ptr("Parcours: the requesting user's subject (token sub) or actor type (actor-type code), a list of them any of which matches"),
	}, fhir.CapabilityStatementRestResourceSearchParam{
		// Not AuditEvent-entity-type (entity.type, audit-entity-type codes).
		Name: "entity-type", Type: fhir.SearchParamTypeToken,
		Documentation: ptr("Parcours: the type of the resource the decision is about (Patient, Observation…), not the audit-entity-type code of AuditEvent.entity.type"),
	}, fhir.CapabilityStatementRestResourceSearchParam{
		Name: "purpose", Type: fhir.SearchParamTypeToken,
		Documentation: ptr("Parcours: the purpose of use decided (X-Purpose-Of-Use code, purposeOfEvent)"),
	}, fhir.CapabilityStatementRestResourceSearchParam{
		Name: "review", Type: fhir.SearchParamTypeToken,
		Documentation: ptr("Parcours: requested or completed, the status of a break-the-glass access's review (break-the-glass AuditEvents only)"),
	})
	r.Operation = append(r.Operation, fhir.CapabilityStatementRestResourceOperation{
		Name: "review", Definition: "https://example.org/fhir/OperationDefinition/AuditEvent-review",
		Documentation: ptr("POST /fhir/AuditEvent/<decision id>/$review (auditors, HCOMPL): completes the review Task of that break-the-glass access (reviewer and time in a note); a Parameters with decision, status and reviewed."),
	})
	r.Documentation = ptr("The decision log as IHE BALP AuditEvents (purpose HCOMPL, the AUDIT column of the purpose matrix: auditors, hospital IT providing logs to auditors, public-health inspection): read, and search by patient (the auditors' pseudonym), agent (subject or actor type), purpose, outcome (allow/deny or 0/4), date (ge/gt/le/lt/eq), entity-type (the resource type decided), subtype (a restful interaction, 110127 break-the-glass, or care-relation-declared: a write by which the writer joined a patient's care team), review (a break-the-glass access's review: requested or completed), with _count (0: the total only) and _summary=count, newest first; patient, agent, purpose, outcome and subtype take lists (any of the values), tokens system|code too; POST AuditEvent/<decision id>/$review completes a break-the-glass review. Other parameters are ignored (they do not appear in the self link), or refused with Prefer: handling=strict. The hub writes them, clients cannot.")
}

// revIncludes maps each type to the "Source:param" reference parameters
// that can point to it.
var revIncludes = sync.OnceValue(func() map[string][]string {
	reg := search.Default()
	out := map[string][]string{}
	for _, src := range conformance.ResourceTypes() {
		for _, p := range reg.List(src) {
			if p.Type != search.TypeReference {
				continue
			}
			targets := p.Targets
			if len(targets) == 0 {
				continue
			}
			for _, t := range targets {
				out[t] = append(out[t], src+":"+p.Code)
			}
		}
	}
	return out
})

// systemSearchParams are the parameters of every type (system search).
func systemSearchParams() []fhir.CapabilityStatementRestResourceSearchParam {
	var out []fhir.CapabilityStatementRestResourceSearchParam
	for _, p := range search.Default().List("Resource") {
		var t fhir.SearchParamType
		if t.UnmarshalJSON([]byte(`"`+p.Type+`"`)) != nil {
			continue
		}
		out = append(out, fhir.CapabilityStatementRestResourceSearchParam{Name: p.Code, Type: t, Definition: ptr(p.URL)})
	}
	return out
}

// security describes the bearer-token and purpose-of-use requirements.
func security(secured bool) *fhir.CapabilityStatementRestSecurity {
	if !secured {
		return &fhir.CapabilityStatementRestSecurity{Description: ptr("No authentication: this instance runs without security (tests and measurements only).")}
	}
	return &fhir.CapabilityStatementRestSecurity{
		Cors: ptr(false),
		Description: ptr("Every request except metadata needs Authorization: Bearer <JWT> (RS256/ES256 keys from the configured JWKS; claims actor_type, org, rpps, patient, care_teams, purposes) " +
			"and X-Purpose-Of-Use: <HL7 v3 ActReason or hub-purpose code> among the token's purposes; X-Break-Glass-Reason for emergency access. " +
			"Open Policy Agent decides every request and every returned resource; denials answer 403 with an OperationOutcome."),
	}
}
