package server

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// translateMatches reads a $translate answer: result and the (equivalence,
// code, source) of each match.
func translateMatches(t *testing.T, r reply) (bool, [][3]string) {
	t.Helper()
	if r.status != http.StatusOK || str(r.body, "resourceType") != "Parameters" {
		t.Fatalf("$translate: %d %.500s", r.status, r.raw)
	}
	result := false
	var out [][3]string
	for _, x := range dig(r.body, "parameter").([]any) {
		switch str(x, "name") {
		case "result":
			result, _ = dig(x, "valueBoolean").(bool)
		case "match":
			var m [3]string
			for _, part := range dig(x, "part").([]any) {
				switch str(part, "name") {
				case "equivalence":
					m[0] = str(part, "valueCode")
				case "concept":
					m[1] = str(part, "valueCoding", "code")
				case "source":
					m[2] = str(part, "valueUri")
				}
			}
			out = append(out, m)
		}
	}
	return result, out
}

func param(name, key string, value any) map[string]any {
	return map[string]any{"name": name, key: value}
}

func parameters(ps ...map[string]any) map[string]any {
	list := make([]any, len(ps))
	for i, p := range ps {
		list[i] = p
	}
	return map[string]any{"resourceType": "Parameters", "parameter": list}
}

// TestTranslateRejectsBadInput: $translate refuses what it cannot run
// with, with a 400 (404 for a map that is not there) OperationOutcome whose
// issue names the parameter, instead of result=false or a silent guess.
func TestTranslateRejectsBadInput(t *testing.T) {
	h := newHub(t)
	cim := vocab.SystemCIM10
	cimMap := vocab.ConceptMapBase + "cim10-to-parcours-stage"
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return "/ConceptMap/$translate?" + v.Encode()
	}
	code := param("code", "valueCode", "I50.9")
	system := param("system", "valueUri", cim)
	missing := func(name string) string { return "Parameters.parameter.where(name='" + name + "')" }
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
		expr   []string
	}{
		{"nothing to translate", "GET", q("url", cimMap), nil, 400, "required", []string{"code", "codeableConcept", "coding"}},
		{"code without system", "GET", q("code", "I50.9"), nil, 400, "required", []string{"system"}},
		{"code twice", "GET", q("code", "I50.9", "code", "Z12", "system", cim), nil, 400, "invalid", []string{"code"}},
		{"system twice", "GET", q("code", "I50.9", "system", cim, "system", cim), nil, 400, "invalid", []string{"system"}},
		{"url twice", "GET", q("code", "I50.9", "system", cim, "url", cimMap, "url", cimMap), nil, 400, "invalid", []string{"url"}},
		{"empty code", "GET", q("code", "", "system", cim), nil, 400, "invalid", []string{"code"}},
		{"system without code", "GET", q("system", cim, "target", vocab.StageValueSet), nil, 400, "required", []string{"code", "codeableConcept", "coding"}},
		{"complex parameter in a query", "GET", q("coding", cim+"|I50.9"), nil, 400, "not-supported", []string{"coding"}},
		{"unknown parameter", "GET", q("code", "I50.9", "system", cim, "colour", "blue"), nil, 400, "not-supported", []string{"colour"}},
		{"bad reverse", "GET", q("code", "I50.9", "system", cim, "reverse", "maybe"), nil, 400, "invalid", []string{"reverse"}},
		{"unknown url", "GET", q("code", "I50.9", "system", cim, "url", vocab.ConceptMapBase+"nope"), nil, 404, "not-found", []string{"url"}},
		{"unknown conceptMapVersion", "GET", q("code", "I50.9", "system", cim, "url", cimMap, "conceptMapVersion", "9.9.9"), nil, 404, "not-found", []string{"conceptMapVersion"}},
		{"unknown url|version", "GET", q("code", "I50.9", "system", cim, "url", cimMap+"|9.9.9"), nil, 404, "not-found", []string{"url"}},
		{"url|version against conceptMapVersion", "GET", q("code", "I50.9", "system", cim, "url", cimMap+"|"+vocab.Version, "conceptMapVersion", "9.9.9"), nil, 400, "invalid", []string{"conceptMapVersion", "url"}},

		{"POST: nothing to translate", "POST", "/ConceptMap/$translate", parameters(param("url", "valueUri", cimMap)), 400, "required",
			[]string{missing("code"), missing("codeableConcept"), missing("coding")}},
		{"POST: code as valueString", "POST", "/ConceptMap/$translate", parameters(param("code", "valueString", "I50.9"), system), 400, "invalid", []string{"Parameters.parameter[0]"}},
		{"POST: system as valueString", "POST", "/ConceptMap/$translate", parameters(code, param("system", "valueString", cim)), 400, "invalid", []string{"Parameters.parameter[1]"}},
		{"POST: code without system", "POST", "/ConceptMap/$translate", parameters(code), 400, "required", []string{missing("system")}},
		{"POST: code and coding", "POST", "/ConceptMap/$translate", parameters(code, system, param("coding", "valueCoding", map[string]any{"system": cim, "code": "Z12"})), 400, "invalid",
			[]string{"Parameters.parameter[0]", "Parameters.parameter[2]"}},
		{"POST: coding twice", "POST", "/ConceptMap/$translate", parameters(
			param("coding", "valueCoding", map[string]any{"system": cim, "code": "Z12"}),
			param("coding", "valueCoding", map[string]any{"system": cim, "code": "I50.9"})), 400, "invalid", []string{"Parameters.parameter[1]"}},
		{"POST: code twice", "POST", "/ConceptMap/$translate", parameters(code, system, code), 400, "invalid", []string{"Parameters.parameter[2]"}},
		{"POST: coding without system", "POST", "/ConceptMap/$translate", parameters(param("coding", "valueCoding", map[string]any{"code": "Z12"})), 400, "required", []string{"Parameters.parameter[0]"}},
		{"POST: no value", "POST", "/ConceptMap/$translate", parameters(map[string]any{"name": "code"}, system), 400, "required", []string{"Parameters.parameter[0]"}},
		{"POST: unknown parameter", "POST", "/ConceptMap/$translate", parameters(code, system, param("colour", "valueString", "blue")), 400, "not-supported", []string{"Parameters.parameter[2]"}},
		{"POST: unknown url", "POST", "/ConceptMap/$translate", parameters(param("url", "valueUri", "urn:no-such-map"), code, system), 404, "not-found", []string{"Parameters.parameter[0]"}},
		{"POST: unknown conceptMapVersion", "POST", "/ConceptMap/$translate", parameters(param("url", "valueUri", cimMap), param("conceptMapVersion", "valueString", "9.9.9"), code, system), 404, "not-found", []string{"Parameters.parameter[1]"}},
		{"POST: parameters in the query", "POST", "/ConceptMap/$translate?url=" + url.QueryEscape(cimMap), parameters(code, system), 400, "not-supported", []string{"url"}},
		{"POST: inline map that is not a ConceptMap", "POST", "/ConceptMap/$translate", parameters(map[string]any{"name": "conceptMap", "resource": map[string]any{"resourceType": "Patient"}}, code, system), 400, "invalid",
			[]string{"Parameters.parameter[0].resource"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issues := wantOutcome(t, h.do(tt.method, tt.path, tt.body), tt.status)
			if issues[0].Code != tt.code || !slices.Equal(expressions(issues), tt.expr) {
				t.Errorf("issue %s at %v (%s); want %s at %v", issues[0].Code, expressions(issues), issues[0].Diagnostics, tt.code, tt.expr)
			}
		})
	}
	// The same request well typed is translated.
	ok, got := translateMatches(t, h.do(http.MethodPost, "/ConceptMap/$translate", parameters(param("url", "valueUri", cimMap), code, system)))
	if !ok || len(got) != 1 || got[0][2] != cimMap {
		t.Errorf("POST $translate I50.9: %v %v", ok, got)
	}
	ok, got = translateMatches(t, h.do(http.MethodGet, q("url", cimMap+"|"+vocab.Version, "code", "I50.9", "system", cim), nil))
	if !ok || len(got) != 1 {
		t.Errorf("GET $translate url|version: %v %v", ok, got)
	}
}

// TestTranslateInstance: ConceptMap/{id}/$translate translates with that
// map only (the stored version: an edit counts), 404 for an unknown id.
func TestTranslateInstance(t *testing.T) {
	h := newHub(t)
	cimMap := vocab.ConceptMapBase + "cim10-to-parcours-stage"
	i509 := "system=" + url.QueryEscape(vocab.SystemCIM10) + "&code=I50.9"
	ok, got := translateMatches(t, h.do(http.MethodGet, "/ConceptMap/cim10-to-parcours-stage/$translate?"+i509, nil))
	if !ok || len(got) == 0 {
		t.Fatalf("instance $translate I50.9: %v %v", ok, got)
	}
	for _, m := range got {
		if m[2] != cimMap {
			t.Errorf("match from %s, want only %s", m[2], cimMap)
		}
	}
	// Another map does not know the code, even though the hub does.
	if ok, got := translateMatches(t, h.do(http.MethodGet, "/ConceptMap/ccam-to-parcours-stage/$translate?"+i509, nil)); ok || len(got) != 0 {
		t.Errorf("ccam map translated I50.9: %v %v", ok, got)
	}
	ok, got = translateMatches(t, h.do(http.MethodPost, "/ConceptMap/cim10-to-parcours-stage/$translate", parameters(
		param("coding", "valueCoding", map[string]any{"system": vocab.SystemCIM10, "code": "I50.9"}))))
	if !ok || len(got) == 0 || got[0][2] != cimMap {
		t.Errorf("POST instance $translate: %v %v", ok, got)
	}
	for _, tc := range []struct {
		path   string
		status int
		expr   []string
	}{
		{"/ConceptMap/no-such-map/$translate?" + i509, 404, nil},
		{"/ConceptMap/cim10-to-parcours-stage/$translate?conceptMapVersion=9.9.9&" + i509, 404, []string{"conceptMapVersion"}},
		{"/ConceptMap/cim10-to-parcours-stage/$translate?url=urn:other&" + i509, 400, []string{"url"}},
		{"/ConceptMap/cim10-to-parcours-stage/$translate?system=" + url.QueryEscape(vocab.SystemCIM10), 400, []string{"code", "codeableConcept", "coding"}},
	} {
		issues := wantOutcome(t, h.do(http.MethodGet, tc.path, nil), tc.status)
		if !slices.Equal(expressions(issues), tc.expr) {
			t.Errorf("%s: expressions %v, want %v (%s)", tc.path, expressions(issues), tc.expr, issues[0].Diagnostics)
		}
	}
	// A map created through the REST API: by id and by url.
	id := h.create("ConceptMap", map[string]any{
		"resourceType": "ConceptMap", "url": "urn:test:map", "version": "1", "status": "draft",
		"group": []any{map[string]any{"source": "urn:a", "target": "urn:b", "element": []any{
			map[string]any{"code": "1", "target": []any{map[string]any{"code": "one", "equivalence": "equivalent"}}},
		}}},
	})
	for _, path := range []string{"/ConceptMap/" + id + "/$translate?system=urn:a&code=1", "/ConceptMap/$translate?url=urn:test:map&system=urn:a&code=1"} {
		ok, got := translateMatches(t, h.do(http.MethodGet, path, nil))
		if !ok || !slices.Equal(got, [][3]string{{"equivalent", "one", "urn:test:map"}}) {
			t.Errorf("%s: %v %v", path, ok, got)
		}
	}
	issues := wantOutcome(t, h.do(http.MethodGet, "/ConceptMap/$translate?url=urn:test:map&conceptMapVersion=2&system=urn:a&code=1", nil), 404)
	if !strings.Contains(issues[0].Diagnostics, "versions: 1") {
		t.Errorf("unknown version: %s", issues[0].Diagnostics)
	}
}

// TestVocabRuptureMeasures: the measure property of every rupture-parcours
// concept is the canonical URL of a Measure the hub stores (GET
// Measure?url= finds it), and every rule Measure the hub stores is named by
// the concept its group counts.
func TestVocabRuptureMeasures(t *testing.T) {
	h := newHub(t)
	cs := h.do(http.MethodGet, "/CodeSystem/rupture-parcours", nil)
	if cs.status != http.StatusOK {
		t.Fatalf("CodeSystem/rupture-parcours: %d %.300s", cs.status, cs.raw)
	}
	named := map[string]string{} // measure url → rupture code
	for _, c := range dig(cs.body, "concept").([]any) {
		for _, p := range asList(dig(c, "property")) {
			if str(p, "code") != "measure" {
				continue
			}
			u := str(p, "valueString")
			named[u] = str(c, "code")
			r := h.do(http.MethodGet, "/Measure?url="+url.QueryEscape(u), nil)
			if r.status != http.StatusOK || num(r.body, "total") != 1 {
				t.Errorf("%s: measure %s: GET Measure?url= total %v (%d)", str(c, "code"), u, r.body["total"], r.status)
				continue
			}
			m := dig(bundleEntries(r.body)[0], "resource")
			if got := str(m, "group", 0, "code", "coding", 0, "code"); got != str(c, "code") {
				t.Errorf("%s: measure %s counts %q", str(c, "code"), u, got)
			}
		}
	}
	ms := h.do(http.MethodGet, "/Measure?_count=100", nil)
	n := 0
	for _, e := range bundleEntries(ms.body) {
		m := dig(e, "resource")
		if !strings.HasPrefix(str(m, "id"), "rupture-") {
			continue
		}
		n++
		if code := named[str(m, "url")]; code == "" {
			t.Errorf("Measure %s (%s) is named by no rupture-parcours concept", str(m, "id"), str(m, "url"))
		}
	}
	if n == 0 || len(named) == 0 {
		t.Errorf("%d rule Measures, %d named", n, len(named))
	}
}
