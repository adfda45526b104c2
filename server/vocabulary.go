package server

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/store"
)

// storeVocabulary writes the shared pathway vocabulary (CodeSystems,
// ValueSets, ConceptMaps) at start-up, as a new version only when its
// content changed, so that it is readable and searchable like any resource.
func (s *Server) storeVocabulary(ctx context.Context) error {
	return s.db.Update(ctx, func(tx *store.Tx) error {
		for _, res := range vocab.Resources() {
			typ, _ := res["resourceType"].(string)
			id, _ := res["id"].(string)
			if typ == "" || id == "" {
				continue
			}
			meta := map[string]any{"source": sourcePrefix + "hub:"}
			res["meta"] = meta
			if cur, err := tx.Get(typ, id); err == nil && !cur.Deleted() && sameContent(cur.JSON, res) {
				continue
			}
			if _, err := tx.PutBuiltin(typ, id, res); err != nil {
				return err
			}
		}
		return nil
	})
}

// sameContent compares a stored resource and a new one, meta aside.
func sameContent(stored []byte, res map[string]any) bool {
	return sameExcept(stored, res, "meta")
}

// sameContentAs is sameContent with the id left out too: res is a
// resource to create, stored the one its criteria matched.
func sameContentAs(stored []byte, res map[string]any) bool {
	return sameExcept(stored, res, "meta", "id")
}

// sameExcept compares stored (JSON) and res without the top-level
// elements named in skip.
func sameExcept(stored []byte, res map[string]any, skip ...string) bool {
	old := decodeStored(stored)
	if old == nil {
		return false
	}
	clone := make(map[string]any, len(res))
	for k, v := range res {
		if !slices.Contains(skip, k) {
			clone[k] = v
		}
	}
	for _, k := range skip {
		delete(old, k)
	}
	return string(fhirjson.Marshal(old)) == string(fhirjson.Marshal(clone))
}

// translate answers GET/POST /fhir/ConceptMap/$translate over the hub's
// ConceptMaps, with the dependsOn context rules evaluated in Go.
func (s *Server) translate(c echo.Context) error {
	cl := callerOf(c)
	if err := s.db.View(func(tx *store.Tx) error {
		_, err := s.decide(c.Request().Context(), cl, tx, question{interaction: "operation", operation: "$translate", typ: "ConceptMap"})
		return err
	}); err != nil {
		return err
	}
	var p vocab.TranslateParams
	var err error
	if c.Request().Method == http.MethodPost {
		body, rerr := s.readBody(c)
		if rerr != nil {
			return rerr
		}
		if rt, _ := body["resourceType"].(string); rt != "Parameters" {
			return outcome.Invalid("resourceType", "POST $translate takes a Parameters resource")
		}
		p, err = vocab.ParseTranslateParameters(body)
	} else {
		p, err = vocab.ParseTranslateQuery(c.QueryParams())
	}
	if err != nil {
		return outcome.Invalid("", "%s", err.Error())
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(vocab.Translate(p)))
}

// stageTypes are the resource types that get a pathway stage when sent as
// FHIR without one, with the element holding their code.
var stageTypes = map[string]string{
	"Condition": "code", "Procedure": "code", "Observation": "code", "Encounter": "type",
	"MedicationDispense": "medicationCodeableConcept", "MedicationRequest": "medicationCodeableConcept",
	"Immunization": "vaccineCode", "AdverseEvent": "event", "DiagnosticReport": "code",
}

// addStage gives a FHIR-sent fact the pathway-stage extension resolved
// through the same ConceptMaps as the native formats, when it has none.
func addStage(typ string, res map[string]any, actor string) {
	el, ok := stageTypes[typ]
	if !ok {
		return
	}
	exts, _ := res["extension"].([]any)
	for _, e := range exts {
		if m, _ := e.(map[string]any); m != nil && m["url"] == vocab.StageExtensionURL {
			return
		}
	}
	var codings []vocab.Coding
	for _, cc := range asList(res[el]) {
		ccm, _ := cc.(map[string]any)
		for _, c := range asList(ccm["coding"]) {
			cm, _ := c.(map[string]any)
			system, _ := cm["system"].(string)
			code, _ := cm["code"].(string)
			codings = append(codings, vocab.Coding{System: system, Code: code})
		}
	}
	setting := vocab.SettingHospital
	switch {
	case strings.HasPrefix(actor, "gp"), actor == "pharmacist":
		setting = vocab.SettingCity
	case actor == "programme-operator":
		setting = vocab.SettingPrevention
	case actor == "liability-risk-manager":
		setting = vocab.SettingLiability
	}
	if st, ok := vocab.Resolve(vocab.Context{Setting: setting}, codings...); ok {
		res["extension"] = append(exts, st.Extension())
	}
}
