package server

import (
	"context"
	"errors"
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
// ConceptMaps, and GET/POST /fhir/ConceptMap/{id}/$translate with that map
// only (the stored version, so that an edit through the REST API counts),
// with the dependsOn context rules evaluated in Go. Input it cannot run
// with is a 400 OperationOutcome naming the parameter (vocab.ParamError).
func (s *Server) translate(c echo.Context) error {
	cl := callerOf(c)
	ctx := c.Request().Context()
	if err := s.view(ctx, func(tx *store.Tx) error {
		_, err := s.decide(ctx, cl, tx, question{interaction: "operation", operation: "$translate", typ: "ConceptMap"})
		return err
	}); err != nil {
		return err
	}
	var p vocab.TranslateParams
	var err error
	if c.Request().Method == http.MethodPost {
		// The parameters are in the body: one in the query would be
		// ignored, so it is refused.
		for name := range c.QueryParams() {
			if name != "_format" && name != "_pretty" {
				return outcome.New(http.StatusBadRequest, outcome.CodeNotSupported, name, "POST $translate reads its parameters from the Parameters body, not from the query (%s)", name)
			}
		}
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
		return translateInputError(err)
	}
	if err := s.view(ctx, func(tx *store.Tx) error { return translateMap(tx, c.Param("id"), &p) }); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(vocab.Translate(p)))
}

// translateInputError is the OperationOutcome of a refused $translate
// input.
func translateInputError(err error) error {
	var pe *vocab.ParamError
	if !errors.As(err, &pe) {
		return outcome.Invalid("", "%s", err.Error())
	}
	e := outcome.New(http.StatusBadRequest, pe.Code, "", "%s", pe.Message)
	e.Issues[0].Expression = pe.Expression
	return e
}

// translateMap sets p.ConceptMap to the stored map $translate runs with:
// the instance of id (instance level), or the map of p.URL.
//
// A map that is not there is 404 not-found, for an unknown url as for an
// unknown id, and so is a conceptMapVersion (or url|version) the map does
// not have: url names the resource the operation runs on (it is the
// type-level form of ConceptMap/{id}/$translate), and FHIR answers a
// resource that does not exist with 404 and a failed operation with an
// OperationOutcome. The request itself is well formed, so 400 (kept for
// input that cannot be read) would be wrong, and result=false would read
// like "the map has no mapping for this code".
func translateMap(tx *store.Tx, id string, p *vocab.TranslateParams) error {
	if id != "" {
		r, err := tx.Get("ConceptMap", id)
		if err != nil || r.Deleted() {
			return outcome.NotFound("ConceptMap/%s not found", id)
		}
		cm := decodeStored(r.JSON)
		url, _ := cm["url"].(string)
		version, _ := cm["version"].(string)
		switch {
		case p.ConceptMap != nil:
			return outcome.Invalid(p.Expression("conceptMap"), "conceptMap cannot be given to ConceptMap/%s/$translate: it translates with that map", id)
		case p.URL != "" && p.URL != url:
			return outcome.Invalid(p.Expression("url"), "url %s is not the url of ConceptMap/%s (%s)", p.URL, id, url)
		case p.ConceptMapVersion != "" && p.ConceptMapVersion != version:
			return outcome.New(http.StatusNotFound, outcome.CodeNotFound, p.Expression("conceptMapVersion"), "ConceptMap/%s has no version %s (it is version %s)", id, p.ConceptMapVersion, version)
		}
		return usableMap(cm, p)
	}
	if p.URL == "" {
		return nil
	}
	var found map[string]any
	var foundAt int64
	var versions []string
	for _, mid := range tx.Lookup("ConceptMap", "url", p.URL) {
		r, err := tx.Get("ConceptMap", mid)
		if err != nil || r.Deleted() {
			continue
		}
		cm := decodeStored(r.JSON)
		if cm["url"] != p.URL {
			continue
		}
		v, _ := cm["version"].(string)
		versions = append(versions, v)
		// Several stored maps may share the url (and version): the one
		// updated last wins, as "the latest" R4 asks for when no version
		// is given.
		if (p.ConceptMapVersion == "" || v == p.ConceptMapVersion) && (found == nil || r.LastUpdated.UnixNano() > foundAt) {
			found, foundAt = cm, r.LastUpdated.UnixNano()
		}
	}
	switch {
	case len(versions) == 0:
		return outcome.New(http.StatusNotFound, outcome.CodeNotFound, p.Expression("url"), "no ConceptMap with url %s", p.URL)
	case found == nil:
		slices.Sort(versions)
		return outcome.New(http.StatusNotFound, outcome.CodeNotFound, p.Expression("conceptMapVersion"), "no version %s of the ConceptMap %s (versions: %s)", p.ConceptMapVersion, p.URL, strings.Join(slices.Compact(versions), ", "))
	}
	return usableMap(found, p)
}

// usableMap sets the stored map cm as the one p translates with, or
// answers 422 when it cannot be evaluated (a map created through the REST
// API without equivalences, say).
func usableMap(cm map[string]any, p *vocab.TranslateParams) error {
	if err := vocab.CheckConceptMap(cm); err != nil {
		id, _ := cm["id"].(string)
		return outcome.New(http.StatusUnprocessableEntity, outcome.CodeProcessing, "", "ConceptMap/%s cannot be used to translate: %v", id, err)
	}
	p.ConceptMap, p.URL = cm, ""
	return nil
}

// stageTypes are the resource types that get a pathway stage when sent as
// FHIR without one, with the element holding their code.
var stageTypes = map[string]string{
	"Condition": "code", "Procedure": "code", "Observation": "code", "Encounter": "type",
	"MedicationDispense": "medicationCodeableConcept", "MedicationRequest": "medicationCodeableConcept",
	"Immunization": "vaccineCode", "AdverseEvent": "event", "DiagnosticReport": "code",
}

// addStage gives a FHIR-sent fact the pathway-stage extension resolved
// through the same ConceptMaps as the native formats, when it has none:
// in the setting of the writer's actor type and, when a code's stage
// depends on it (vocab.UsesHistory), with what tx stores about the fact's
// patient before the fact's date (factHistory) as context. tx may be nil
// (no stored context).
func addStage(tx *store.Tx, typ string, res map[string]any, actor string) {
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
	ctx := vocab.Context{Setting: setting}
	if tx != nil && vocab.UsesHistory(codings...) {
		if h, day := factHistory(tx, typ, res); h != nil {
			ctx = h.Merge(ctx, day)
		}
	}
	if st, ok := vocab.Resolve(ctx, codings...); ok {
		res["extension"] = append(exts, st.Extension())
	}
}
