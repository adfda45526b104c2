package vocab_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings/internal/golden"
	"github.com/parcours-sante/parcours/mappings/vocab"
)

func byURL(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range vocab.Resources() {
		u, _ := r["url"].(string)
		if _, dup := out[u]; dup {
			t.Fatalf("two resources with url %s", u)
		}
		out[u] = r
	}
	return out
}

func codesOf(cs any) []string {
	var out []string
	for _, c := range cs.([]any) {
		m := c.(map[string]any)
		out = append(out, m["code"].(string))
		if sub, ok := m["concept"]; ok {
			out = append(out, codesOf(sub)...)
		}
	}
	return out
}

// TestResourcesSchemaValid checks every artefact against the official R4 JSON schema.
func TestResourcesSchemaValid(t *testing.T) {
	rs := vocab.Resources()
	if len(rs) == 0 {
		t.Fatal("no resources")
	}
	for _, r := range rs {
		t.Run(r["resourceType"].(string)+"/"+r["id"].(string), func(t *testing.T) { golden.Validate(t, r) })
	}
}

func TestResourcesShape(t *testing.T) {
	all := byURL(t)
	ids := map[string]bool{}
	for u, r := range all {
		typ := r["resourceType"].(string)
		id := r["id"].(string)
		if ids[typ+"/"+id] {
			t.Errorf("duplicate %s/%s", typ, id)
		}
		ids[typ+"/"+id] = true
		if !strings.HasPrefix(u, vocab.Base+"/"+typ+"/") || !strings.HasSuffix(u, "/"+id) {
			t.Errorf("%s/%s has url %s", typ, id, u)
		}
		if r["version"] != vocab.Version || r["status"] != "draft" {
			t.Errorf("%s: version %v status %v", u, r["version"], r["status"])
		}
		if typ == "CodeSystem" {
			vs := strings.Replace(u, "/CodeSystem/", "/ValueSet/", 1)
			if _, ok := all[vs]; !ok {
				t.Errorf("CodeSystem %s has no ValueSet", u)
			}
		}
	}
	want := map[string][]string{
		"parcours-stage": {"prevention", "depistage", "vaccination", "education-sante", "bilan-prevention",
			"diagnostic", "consultation-initiale", "bilan-biologique", "imagerie", "anapath", "annonce",
			"traitement", "medicamenteux", "chirurgical-interventionnel", "hospitalisation", "chimio-radiotherapie", "readaptation",
			"suivi", "surveillance-clinique", "surveillance-biologique", "observance", "coordination-sortie", "soins-support"},
		"actor-type": {"hospital-clinician", "hospital-it", "gp", "pharmacist", "programme-operator", "mutual-prevention",
			"mutual-claims", "liability-risk-manager", "auditor", "researcher", "public-health", "patient"},
		"liability-event-category": {"defaut-depistage", "erreur-diagnostic", "retard-diagnostic", "complication-operatoire",
			"erreur-medicamenteuse", "infection-associee-aux-soins", "defaut-surveillance", "defaut-information"},
		"hub-purpose": {"prevention-programme-delivery", "prevention-programme-reporting", "liability-claim-handling",
			"liability-risk-analysis", "rupture-detection", "rupture-reporting", "underwriting-pricing"},
		"prevention-event-type": {"questionnaire", "measurement", "coaching", "screening-reminder", "screening-done"},
	}
	for id, codes := range want {
		cs, ok := all[vocab.CodeSystemBase+id]
		if !ok {
			t.Errorf("no CodeSystem %s", id)
			continue
		}
		if diff := cmp.Diff(codes, codesOf(cs["concept"])); diff != "" {
			t.Errorf("%s codes (-want +got):\n%s", id, diff)
		}
	}
	for _, id := range []string{"rupture-parcours", "pathway-type"} {
		if _, ok := all[vocab.CodeSystemBase+id]; !ok {
			t.Errorf("no CodeSystem %s", id)
		}
	}
	for _, id := range []string{"cim10-to-parcours-stage", "ccam-to-parcours-stage", "ngap-to-parcours-stage", "nabm-to-loinc",
		"loinc-to-parcours-stage", "atc-to-parcours-stage", "ghm-to-parcours-stage", "liability-event-to-parcours-stage",
		"prevention-event-to-parcours-stage", "activity-kind-to-parcours-stage", "hub-purpose-to-v3-purposeofuse"} {
		if _, ok := all[vocab.ConceptMapBase+id]; !ok {
			t.Errorf("no ConceptMap %s", id)
		}
	}
}

// TestStageOrder checks the order property: 1–4 on the four stages, shared by their children.
func TestStageOrder(t *testing.T) {
	for code, order := range map[string]int{"prevention": 1, "depistage": 1, "diagnostic": 2, "imagerie": 2, "traitement": 3, "readaptation": 3, "suivi": 4, "observance": 4} {
		st, ok := vocab.StageOf(code)
		if !ok || st.Order != order {
			t.Errorf("StageOf(%s) = %+v, %v; want order %d", code, st, ok, order)
		}
	}
	if _, ok := vocab.StageOf("nowhere"); ok {
		t.Error("StageOf(nowhere) found a stage")
	}
}

// TestConceptMapRules checks the authoring rules the evaluator relies on:
// targets are parcours-stage codes; in an element the unconditional
// targets come last (document order is the evaluation order); inexact and
// narrower targets have a comment (R4 invariant cmd-1).
func TestConceptMapRules(t *testing.T) {
	for u, r := range byURL(t) {
		if r["resourceType"] != "ConceptMap" {
			continue
		}
		for _, g := range r["group"].([]any) {
			gm := g.(map[string]any)
			for _, e := range gm["element"].([]any) {
				em := e.(map[string]any)
				seenPlain := false
				for _, tg := range em["target"].([]any) {
					tm := tg.(map[string]any)
					where := u + " " + em["code"].(string)
					_, conditional := tm["dependsOn"]
					if conditional && seenPlain {
						t.Errorf("%s: a conditional target follows an unconditional one", where)
					}
					seenPlain = seenPlain || !conditional
					if eq := tm["equivalence"]; (eq == "inexact" || eq == "narrower" || eq == "unmatched") && tm["comment"] == nil {
						t.Errorf("%s: %s target without comment", where, eq)
					}
					if gm["target"] == vocab.StageSystem {
						if _, ok := vocab.StageOf(tm["code"].(string)); !ok {
							t.Errorf("%s: target %v is not a stage", where, tm["code"])
						}
					}
				}
			}
		}
	}
}

func TestResourcesAreCopies(t *testing.T) {
	a := vocab.Resources()
	a[0]["id"] = "changed"
	if b := vocab.Resources(); b[0]["id"] == "changed" {
		t.Fatal("Resources returns shared maps")
	}
}

func cim(code string) vocab.Coding   { return vocab.Coding{System: vocab.SystemCIM10, Code: code} }
func loinc(code string) vocab.Coding { return vocab.Coding{System: vocab.SystemLOINC, Code: code} }

// TestStageColonoscopy is the brief's example (§3.4): the same colonoscopy
// is screening, diagnosis or follow-up depending on the context.
func TestStageColonoscopy(t *testing.T) {
	tests := []struct {
		name string
		ctx  vocab.Context
		want string
	}{
		{"screening programme", vocab.Context{Setting: vocab.SettingPrevention}, "depistage"},
		{"stay coded screening", vocab.Context{Setting: vocab.SettingHospital, PriorConditions: []vocab.Coding{cim("Z12.1")}}, "depistage"},
		{"after a positive FIT", vocab.Context{Setting: vocab.SettingCity, RecentResults: []vocab.Coding{loinc("29771-3")}}, "diagnostic"},
		{"positive FIT in a programme", vocab.Context{Setting: vocab.SettingPrevention, RecentResults: []vocab.Coding{loinc("29771-3")}}, "diagnostic"},
		{"history of colorectal cancer", vocab.Context{Setting: vocab.SettingHospital, PriorConditions: []vocab.Coding{cim("Z85.0")}}, "suivi"},
		{"known colon cancer (prefix C18)", vocab.Context{PriorConditions: []vocab.Coding{cim("C18.7")}}, "suivi"},
		{"history wins over a positive FIT", vocab.Context{PriorConditions: []vocab.Coding{cim("Z08")}, RecentResults: []vocab.Coding{loinc("29771-3")}}, "suivi"},
		{"no context", vocab.Context{Setting: vocab.SettingHospital}, "diagnostic"},
		{"unrelated history", vocab.Context{PriorConditions: []vocab.Coding{cim("I50.9")}}, "diagnostic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, code := range []string{"HHQE002", "HHQE005"} {
				st, ok := vocab.Stage(vocab.SystemCCAM, code, tt.ctx)
				if !ok || st.Code != tt.want {
					t.Errorf("Stage(%s) = %+v, %v; want %s", code, st, ok, tt.want)
				}
				if st.ConceptMap != vocab.ConceptMapBase+"ccam-to-parcours-stage|"+vocab.Version {
					t.Errorf("decided by %s", st.ConceptMap)
				}
			}
		})
	}
}

func TestStage(t *testing.T) {
	tests := []struct {
		name, system, code string
		ctx                vocab.Context
		want               string // "" = no stage
		top                string
	}{
		{"CIM-10 by prefix, dots ignored", vocab.SystemCIM10, "Z1211", vocab.Context{}, "depistage", "prevention"},
		{"CIM-10 follow-up", vocab.SystemCIM10, "Z08", vocab.Context{}, "surveillance-clinique", "suivi"},
		{"diabetes in city medicine", vocab.SystemCIM10, "E11.9", vocab.Context{Setting: vocab.SettingCity}, "surveillance-clinique", "suivi"},
		{"diabetes in a stay", vocab.SystemCIM10, "E11.9", vocab.Context{Setting: vocab.SettingHospital}, "diagnostic", "diagnostic"},
		{"unknown CIM-10", vocab.SystemCIM10, "J18.9", vocab.Context{}, "", ""},
		{"HbA1c of a diabetic", vocab.SystemLOINC, "4548-4", vocab.Context{PriorConditions: []vocab.Coding{cim("E11.9")}}, "surveillance-biologique", "suivi"},
		{"HbA1c on antidiabetics", vocab.SystemLOINC, "4548-4", vocab.Context{Medications: []vocab.Coding{{System: vocab.SystemATC, Code: "A10BA02"}}}, "surveillance-biologique", "suivi"},
		{"HbA1c alone", vocab.SystemLOINC, "4548-4", vocab.Context{}, "bilan-biologique", "diagnostic"},
		{"NABM through LOINC", vocab.SystemNABM, "1577", vocab.Context{PriorConditions: []vocab.Coding{cim("E11")}}, "surveillance-biologique", "suivi"},
		{"unknown NABM", vocab.SystemNABM, "9999", vocab.Context{}, "", ""},
		{"ATC vaccine", vocab.SystemATC, "J07BB02", vocab.Context{}, "vaccination", "prevention"},
		{"GHM sessions", vocab.SystemGHM, "28Z07Z", vocab.Context{}, "chimio-radiotherapie", "traitement"},
		{"GHM surgical", vocab.SystemGHM, "06C041", vocab.Context{}, "chirurgical-interventionnel", "traitement"},
		{"GHM medical has no rule", vocab.SystemGHM, "05M09T", vocab.Context{}, "", ""},
		{"GHM CMD 23 follow-up", vocab.SystemGHM, "23M20T", vocab.Context{PriorConditions: []vocab.Coding{cim("Z09.8")}}, "suivi", "suivi"},
		{"liability category", vocab.LiabilityEventSystem, "defaut-surveillance", vocab.Context{}, "surveillance-clinique", "suivi"},
		{"SMR stay", vocab.ActivityKindSystem, "stay-smr", vocab.Context{}, "readaptation", "traitement"},
		{"city procedure", vocab.ActivityKindSystem, "procedure", vocab.Context{Setting: vocab.SettingCity}, "diagnostic", "diagnostic"},
		{"programme plan", vocab.ActivityKindSystem, "care-plan", vocab.Context{Setting: vocab.SettingPrevention}, "prevention", "prevention"},
		{"coaching", vocab.PreventionEventSystem, "coaching", vocab.Context{}, "education-sante", "prevention"},
		{"unknown system", "urn:nowhere", "X", vocab.Context{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := vocab.Stage(tt.system, tt.code, tt.ctx)
			if ok != (tt.want != "") || st.Code != tt.want || st.Top != tt.top {
				t.Errorf("Stage = %+v, %v; want %q (%s)", st, ok, tt.want, tt.top)
			}
		})
	}
}

func TestResolveFallsBack(t *testing.T) {
	ctx := vocab.Context{Setting: vocab.SettingCity, Kind: "dispensation"}
	st, ok := vocab.Resolve(ctx,
		vocab.Coding{System: vocab.SystemCIP13, Code: "3400935123459"},
		vocab.Coding{System: vocab.ActivityKindSystem, Code: "dispensation"})
	if !ok || st.Code != "medicamenteux" || !strings.Contains(st.ConceptMap, "activity-kind") {
		t.Fatalf("Resolve = %+v, %v", st, ok)
	}
	ext := st.Extension()
	want := map[string]any{"url": vocab.StageExtensionURL, "valueCoding": map[string]any{"system": vocab.StageSystem, "code": "medicamenteux", "display": "Traitement médicamenteux"}}
	if diff := cmp.Diff(want, ext); diff != "" {
		t.Errorf("Extension (-want +got):\n%s", diff)
	}
	if _, ok := vocab.Resolve(ctx); ok {
		t.Error("Resolve without candidates found a stage")
	}
}

func TestLookups(t *testing.T) {
	if c, ok := vocab.NABMToLOINC("1577"); !ok || c != (vocab.Coding{System: vocab.SystemLOINC, Code: "4548-4"}) {
		t.Errorf("NABMToLOINC(1577) = %+v, %v", c, ok)
	}
	p, ok := vocab.ProgrammeOf("depistage-cancers")
	if !ok || p.SponsorSystem != vocab.SidSIREN || p.SponsorValue == "" || p.OperatorValue == "" || p.PathwayType.Code != "colorectal-cancer-screening" {
		t.Errorf("ProgrammeOf = %+v, %v", p, ok)
	}
	if c, ok := vocab.Lookup(vocab.SpecialtySystem, "medecine-generale"); !ok || c.Properties["profession"] != "10" {
		t.Errorf("Lookup(specialty) = %+v, %v", c, ok)
	}
	if _, ok := vocab.Lookup(vocab.ActorTypeSystem, "burglar"); ok {
		t.Error("Lookup found an unknown actor type")
	}
}

// params turns a Parameters resource into name → values for assertions.
func matches(t *testing.T, p map[string]any) (result bool, message string, got [][3]string) {
	t.Helper()
	if p["resourceType"] != "Parameters" {
		t.Fatalf("resourceType %v", p["resourceType"])
	}
	for _, x := range p["parameter"].([]any) {
		pm := x.(map[string]any)
		switch pm["name"] {
		case "result":
			result = pm["valueBoolean"].(bool)
		case "message":
			message = pm["valueString"].(string)
		case "match":
			var m [3]string
			for _, part := range pm["part"].([]any) {
				pp := part.(map[string]any)
				switch pp["name"] {
				case "equivalence":
					m[0] = pp["valueCode"].(string)
				case "concept":
					m[1] = pp["valueCoding"].(map[string]any)["code"].(string)
				case "source":
					m[2] = pp["valueUri"].(string)
				}
			}
			got = append(got, m)
		default:
			t.Errorf("unexpected parameter %v", pm["name"])
		}
	}
	return result, message, got
}

func TestTranslate(t *testing.T) {
	ccam := vocab.ConceptMapBase + "ccam-to-parcours-stage"
	purpose := vocab.ConceptMapBase + "hub-purpose-to-v3-purposeofuse"
	tests := []struct {
		name   string
		p      vocab.TranslateParams
		result bool
		want   [][3]string
		msg    string
	}{
		{"no context: the default target", vocab.TranslateParams{System: vocab.SystemCCAM, Code: "HHQE002"}, true,
			[][3]string{{"inexact", "diagnostic", ccam}}, "matched through the ancestor code HHQE"},
		{"dependency: history of CRC", vocab.TranslateParams{URL: ccam, Coding: &vocab.Coding{System: vocab.SystemCCAM, Code: "HHQE002"},
			Dependency: []vocab.Dependency{{Element: vocab.PropHasCondition, Concept: []vocab.Coding{cim("Z85.0")}}}}, true,
			[][3]string{{"inexact", "suivi", ccam}}, "matched through the ancestor code HHQE"},
		{"dependency: setting prevention", vocab.TranslateParams{System: vocab.SystemCCAM, Code: "HHQE002",
			Dependency: []vocab.Dependency{{Element: vocab.PropSetting, Concept: []vocab.Coding{{Code: "prevention"}}}}}, true,
			[][3]string{{"inexact", "depistage", ccam}}, "matched through the ancestor code HHQE"},
		{"two targets", vocab.TranslateParams{URL: purpose, System: vocab.HubPurposeSystem, Code: "prevention-programme-reporting"}, true,
			[][3]string{{"inexact", "POPHLTH", purpose}, {"inexact", "HOPERAT", purpose}}, "2 matches"},
		{"unmatched is not a result", vocab.TranslateParams{System: vocab.HubPurposeSystem, Code: "underwriting-pricing"}, false,
			[][3]string{{"unmatched", "", purpose}}, ""},
		{"versioned url", vocab.TranslateParams{URL: purpose + "|" + vocab.Version, Code: "rupture-detection", System: vocab.HubPurposeSystem}, true,
			[][3]string{{"wider", "COC", purpose}}, ""},
		{"codeableConcept", vocab.TranslateParams{CodeableConcept: []vocab.Coding{{System: "urn:x", Code: "1"}, cim("Z12.3")}}, true,
			[][3]string{{"wider", "depistage", vocab.ConceptMapBase + "cim10-to-parcours-stage"}}, "matched through the ancestor code Z12"},
		{"reverse", vocab.TranslateParams{URL: purpose, System: vocab.SystemV3ActReason, Code: "COC", Reverse: true}, true,
			[][3]string{{"wider", "rupture-detection", purpose}}, ""},
		{"target system filter", vocab.TranslateParams{System: vocab.SystemNABM, Code: "1577", TargetSystem: vocab.SystemLOINC}, true,
			[][3]string{{"equivalent", "4548-4", vocab.ConceptMapBase + "nabm-to-loinc"}}, ""},
		{"wrong version", vocab.TranslateParams{URL: purpose + "|9.9.9", System: vocab.HubPurposeSystem, Code: "rupture-detection"}, false, nil, "no ConceptMap with this url"},
		{"no mapping", vocab.TranslateParams{System: vocab.SystemCIM10, Code: "J18.9"}, false, nil, "no mapping found"},
		{"nothing to translate", vocab.TranslateParams{URL: ccam}, false, nil, "nothing to translate: give code and system, coding or codeableConcept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := vocab.Translate(tt.p)
			golden.Validate(t, res)
			result, msg, got := matches(t, res)
			if result != tt.result || msg != tt.msg {
				t.Errorf("result %v message %q; want %v %q", result, msg, tt.result, tt.msg)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("matches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTranslateInlineConceptMap(t *testing.T) {
	cm := map[string]any{
		"resourceType": "ConceptMap", "url": "urn:test:map", "status": "draft",
		"group": []any{map[string]any{"source": "urn:a", "target": "urn:b", "element": []any{
			map[string]any{"code": "1", "target": []any{map[string]any{"code": "one", "equivalence": "equivalent"}}},
		}}},
	}
	result, _, got := matches(t, vocab.Translate(vocab.TranslateParams{ConceptMap: cm, System: "urn:a", Code: "1"}))
	if !result || !slices.Equal(got, [][3]string{{"equivalent", "one", "urn:test:map"}}) {
		t.Errorf("inline map: %v %v", result, got)
	}
	result, msg, _ := matches(t, vocab.Translate(vocab.TranslateParams{ConceptMap: map[string]any{"resourceType": "Patient"}, Code: "1"}))
	if result || !strings.Contains(msg, "not a usable ConceptMap") {
		t.Errorf("bad inline map: %v %q", result, msg)
	}
}

func TestParseTranslate(t *testing.T) {
	q := map[string][]string{"url": {"u"}, "system": {"s"}, "code": {"c"}, "reverse": {"true"}, "targetsystem": {"t"}}
	p, err := vocab.ParseTranslateQuery(q)
	if err != nil || p.URL != "u" || p.System != "s" || p.Code != "c" || !p.Reverse || p.TargetSystem != "t" {
		t.Errorf("ParseTranslateQuery = %+v, %v", p, err)
	}
	for _, bad := range []map[string][]string{{"reverse": {"yes"}}, {"colour": {"x"}}} {
		if _, err := vocab.ParseTranslateQuery(bad); err == nil {
			t.Errorf("ParseTranslateQuery(%v) accepted", bad)
		}
	}
	body := map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "coding", "valueCoding": map[string]any{"system": vocab.SystemCCAM, "code": "HHQE002"}},
		map[string]any{"name": "dependency", "part": []any{
			map[string]any{"name": "element", "valueUri": vocab.PropHasResult},
			map[string]any{"name": "concept", "valueCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": vocab.SystemLOINC, "code": "29771-3"}}}},
		}},
		map[string]any{"name": "reverse", "valueBoolean": false},
	}}
	p, err = vocab.ParseTranslateParameters(body)
	if err != nil {
		t.Fatal(err)
	}
	_, _, got := matches(t, vocab.Translate(p))
	if !slices.Equal(got, [][3]string{{"inexact", "diagnostic", vocab.ConceptMapBase + "ccam-to-parcours-stage"}}) {
		t.Errorf("POSTed $translate: %v", got)
	}
	if _, err := vocab.ParseTranslateParameters(map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "mystery"}}}); err == nil {
		t.Error("unknown parameter accepted")
	}
}

// TestPropertyTypes: every concept property is declared by its CodeSystem
// and its value[x] is the declared type; a property of type code holds a
// code of the same CodeSystem (R4), so a code of another system is a Coding
// (liability-event-category's adverse-event-category).
func TestPropertyTypes(t *testing.T) {
	valueKey := map[string]string{"code": "valueCode", "Coding": "valueCoding", "string": "valueString",
		"integer": "valueInteger", "boolean": "valueBoolean", "dateTime": "valueDateTime", "decimal": "valueDecimal"}
	for u, r := range byURL(t) {
		if r["resourceType"] != "CodeSystem" {
			continue
		}
		types := map[string]string{}
		for _, x := range asList(r["property"]) {
			p := x.(map[string]any)
			types[p["code"].(string)] = p["type"].(string)
		}
		var codes []string
		if r["concept"] != nil {
			codes = codesOf(r["concept"])
		}
		var walk func(cs any)
		walk = func(cs any) {
			for _, x := range asList(cs) {
				c := x.(map[string]any)
				for _, y := range asList(c["property"]) {
					p := y.(map[string]any)
					code := p["code"].(string)
					typ, declared := types[code]
					if !declared {
						t.Errorf("%s#%s: property %s is not declared", u, c["code"], code)
						continue
					}
					var keys []string
					for k := range p {
						if strings.HasPrefix(k, "value") {
							keys = append(keys, k)
						}
					}
					if len(keys) != 1 || keys[0] != valueKey[typ] {
						t.Errorf("%s#%s: property %s of type %s has %v, want %s", u, c["code"], code, typ, keys, valueKey[typ])
						continue
					}
					switch typ {
					case "code":
						if v := p["valueCode"].(string); !slices.Contains(codes, v) {
							t.Errorf("%s#%s: property %s (type code) is %q, not a code of this CodeSystem", u, c["code"], code, v)
						}
					case "Coding":
						if v := p["valueCoding"].(map[string]any); v["system"] == nil || v["code"] == nil {
							t.Errorf("%s#%s: property %s: Coding without system or code: %v", u, c["code"], code, v)
						}
					}
				}
				walk(c["concept"])
			}
		}
		walk(r["concept"])
	}
	c, ok := vocab.Lookup(vocab.LiabilityEventSystem, "erreur-medicamenteuse")
	want := vocab.Coding{System: vocab.SystemAECategory, Code: "product-use-error"}
	if !ok || c.Properties["adverse-event-category"] != want {
		t.Errorf("erreur-medicamenteuse adverse-event-category = %#v, want %#v", c.Properties["adverse-event-category"], want)
	}
}

// TestRuptureMeasures: the measure of a rupture is the canonical of a hub
// rule Measure (…/Measure/rupture-<rule>), never one named after the code;
// server tests check that each resolves to a stored Measure.
func TestRuptureMeasures(t *testing.T) {
	cs := byURL(t)[vocab.RupturePathwaySystem]
	n := 0
	for _, x := range asList(cs["concept"]) {
		c := x.(map[string]any)
		for _, y := range asList(c["property"]) {
			p := y.(map[string]any)
			if p["code"] != "measure" {
				continue
			}
			n++
			v, _ := p["valueString"].(string)
			if !strings.HasPrefix(v, vocab.Base+"/Measure/rupture-") {
				t.Errorf("%s: measure %q is not a hub rule Measure", c["code"], v)
			}
		}
	}
	if n == 0 {
		t.Error("no rupture names its Measure")
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestUCUMUnits: the hub's unit list (ucum-units.txt) holds UCUM codes
// (case-sensitive: no French "UI"), maps the unambiguous French spellings
// and leaves the others out, so that they are kept as text only.
func TestUCUMUnits(t *testing.T) {
	codes := vocab.UCUMUnits()
	if len(codes) < 20 {
		t.Fatalf("UCUMUnits() = %v", codes)
	}
	// A conservative UCUM syntax: atoms, prefixes, [..] and {..}, '.', '/', '*', digits.
	reUCUM := regexp.MustCompile(`^(?:[A-Za-z0-9%/.*()]|\[[A-Za-z0-9_.]+\]|\{[A-Za-z0-9_.]+\})+$`)
	for _, c := range codes {
		if !reUCUM.MatchString(c) || strings.Contains(c, "UI") || strings.Contains(c, "µ") || strings.Contains(c, "^") {
			t.Errorf("%q is not a UCUM code", c)
		}
		if got, ok := vocab.UCUMUnit(c); !ok || got != c {
			t.Errorf("UCUMUnit(%q) = %q, %v; want itself", c, got, ok)
		}
	}
	for text, want := range map[string]string{
		"g/L": "g/L", "mmol/L": "mmol/L", "%": "%", "10*9/L": "10*9/L", "fL": "fL", "mL/min/{1.73_m2}": "mL/min/{1.73_m2}",
		"UI/L": "[IU]/L", "mUI/L": "m[IU]/L", "µmol/L": "umol/L", "μmol/L": "umol/L", "10^9/L": "10*9/L", "mmHg": "mm[Hg]",
	} {
		if got, ok := vocab.UCUMUnit(text); !ok || got != want {
			t.Errorf("UCUMUnit(%q) = %q, %v; want %q", text, got, ok, want)
		}
	}
	for _, text := range []string{"x", "G/L", "T/L", "U/I", "Ui/L", "UI", "ui/l", "MMOL/L", "", " g/L"} {
		if got, ok := vocab.UCUMUnit(text); ok {
			t.Errorf("UCUMUnit(%q) = %q: an unknown or ambiguous unit must stay text", text, got)
		}
	}
}

// TestParseTranslateRejects: the parsers refuse input $translate cannot
// run with, as a *ParamError naming the parameter (the server answers it
// with a 400 OperationOutcome).
func TestParseTranslateRejects(t *testing.T) {
	cim := vocab.SystemCIM10
	get := []struct {
		q    map[string][]string
		code string
		expr []string
	}{
		{map[string][]string{"url": {"u"}}, vocab.IssueRequired, []string{"code", "coding", "codeableConcept"}},
		{map[string][]string{"code": {"I50.9"}}, vocab.IssueRequired, []string{"system"}},
		{map[string][]string{"code": {"I50.9", "Z12"}, "system": {cim}}, vocab.IssueInvalid, []string{"code"}},
		{map[string][]string{"code": {"I50.9"}, "system": {cim}, "url": {"u|1"}, "conceptMapVersion": {"2"}}, vocab.IssueInvalid, []string{"url", "conceptMapVersion"}},
		{map[string][]string{"codeableConcept": {"x"}}, vocab.IssueNotSupported, []string{"codeableConcept"}},
	}
	for _, tt := range get {
		_, err := vocab.ParseTranslateQuery(tt.q)
		pe, ok := err.(*vocab.ParamError)
		if !ok || pe.Code != tt.code || !slices.Equal(pe.Expression, tt.expr) {
			t.Errorf("ParseTranslateQuery(%v) = %#v, want %s at %v", tt.q, err, tt.code, tt.expr)
		}
	}
	p, err := vocab.ParseTranslateQuery(map[string][]string{"url": {"u|1.0"}, "code": {"I50.9"}, "system": {cim}})
	if err != nil || p.URL != "u" || p.ConceptMapVersion != "1.0" || p.Expression("conceptMapVersion") != "url" {
		t.Errorf("url|version: %+v %v", p, err)
	}
	post := func(ps ...map[string]any) map[string]any {
		var l []any
		for _, x := range ps {
			l = append(l, x)
		}
		return map[string]any{"resourceType": "Parameters", "parameter": l}
	}
	code := map[string]any{"name": "code", "valueCode": "I50.9"}
	for _, tt := range []struct {
		body map[string]any
		code string
		expr []string
	}{
		{post(map[string]any{"name": "code", "valueString": "I50.9"}, map[string]any{"name": "system", "valueUri": cim}), vocab.IssueInvalid, []string{"Parameters.parameter[0]"}},
		{post(code, map[string]any{"name": "system", "valueString": cim}), vocab.IssueInvalid, []string{"Parameters.parameter[1]"}},
		{post(code), vocab.IssueRequired, []string{"Parameters.parameter.where(name='system')"}},
		{post(map[string]any{"name": "reverse", "valueBoolean": true}, map[string]any{"name": "reverse", "valueBoolean": false}), vocab.IssueInvalid, []string{"Parameters.parameter[1]"}},
		{post(code, map[string]any{"name": "system", "valueUri": cim}, map[string]any{"name": "dependency", "part": []any{map[string]any{"name": "concept", "valueCodeableConcept": map[string]any{}}}}),
			vocab.IssueRequired, []string{"Parameters.parameter[2].part"}},
		{post(map[string]any{"name": "codeableConcept", "valueCodeableConcept": map[string]any{"text": "heart failure"}}), vocab.IssueRequired, []string{"Parameters.parameter[0]"}},
	} {
		_, err := vocab.ParseTranslateParameters(tt.body)
		pe, ok := err.(*vocab.ParamError)
		if !ok || pe.Code != tt.code || !slices.Equal(pe.Expression, tt.expr) {
			t.Errorf("ParseTranslateParameters(%v) = %#v, want %s at %v", tt.body["parameter"], err, tt.code, tt.expr)
		}
	}
	// The value[x] of a specialisation of the type is the type: a canonical is a uri.
	if _, err := vocab.ParseTranslateParameters(post(map[string]any{"name": "url", "valueCanonical": "u"}, code, map[string]any{"name": "system", "valueUri": cim})); err != nil {
		t.Errorf("url as valueCanonical: %v", err)
	}
}
