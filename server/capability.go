package server

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/parcours-sante/parcours/conformance"
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
			SearchParam: []fhir.CapabilityStatementRestResourceSearchParam{
				{Name: "_id", Type: fhir.SearchParamTypeToken, Definition: ptr("http://hl7.org/fhir/SearchParameter/Resource-id")},
			},
		}
		if conformance.HasElement(name, "identifier") {
			r.SearchParam = append(r.SearchParam, fhir.CapabilityStatementRestResourceSearchParam{
				Name: "identifier", Type: fhir.SearchParamTypeToken,
				Documentation: ptr("system|value or value; used by conditional create, update, delete and conditional references"),
			})
		}
		for _, code := range interactions {
			r.Interaction = append(r.Interaction, fhir.CapabilityStatementRestResourceInteraction{Code: code})
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
			Mode:          fhir.RestfulCapabilityModeServer,
			Security:      security(secured),
			Documentation: ptr("FHIR R4 REST over JSON. Writes are validated against the official R4 JSON schema. Search supports _id and identifier (plus _count, _summary, _elements); XML answers 406."),
			Resource:      resources,
			Interaction: []fhir.CapabilityStatementRestInteraction{
				{Code: fhir.SystemRestfulInteractionTransaction},
				{Code: fhir.SystemRestfulInteractionBatch},
				{Code: fhir.SystemRestfulInteractionHistorySystem},
			},
		}},
	}
	return json.Marshal(cs)
}

func ptr[T any](v T) *T { return &v }

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
