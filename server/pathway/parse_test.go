package pathway_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/pathway"
)

// baseRule is a valid minimal rule (R7-like) as generic JSON.
func baseRule() map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(`{
	  "id": "T1", "code": "abnormal-result-not-followed", "version": "1", "title": "t",
	  "kind": "absence", "severity": "high",
	  "index": {"match": {"resourceTypes": ["Observation"],
	    "interpretation": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "codes": ["H"]}]}},
	  "window": {"start": {"days": 0, "inclusive": false}, "end": {"days": 30, "inclusive": true}},
	  "expected": [{"match": {"resourceTypes": ["Encounter"]}}],
	  "censor": [{"reason": "death", "death": true}]
	}`), &m); err != nil {
		panic(err)
	}
	return m
}

func at(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		switch v := m[p].(type) {
		case map[string]any:
			m = v
		case []any:
			m = v[0].(map[string]any)
		}
	}
	return m
}

func TestParseRuleValid(t *testing.T) {
	raw, _ := json.Marshal(baseRule())
	r, err := pathway.ParseRule(raw)
	if err != nil {
		t.Fatalf("ParseRule: %v", err)
	}
	if r.ID != "T1" || r.Window.End.Days != 30 || r.Window.End.Inclusive == nil || !*r.Window.End.Inclusive || len(r.Expected) != 1 {
		t.Errorf("parsed rule %+v", r)
	}
}

func TestParseRuleErrors(t *testing.T) {
	type issue struct{ Path, Contains string }
	cases := []struct {
		name   string
		mutate func(m map[string]any)
		raw    string // used instead of the mutated base when set
		want   []issue
	}{
		{name: "unknown top-level field", mutate: func(m map[string]any) { m["threshold"] = 7 },
			want: []issue{{"$.threshold", "unknown field"}}},
		{name: "unknown field in a bound", mutate: func(m map[string]any) { at(m, "window", "end")["dayz"] = 7 },
			want: []issue{{"$.window.end.dayz", "unknown field"}}},
		{name: "unknown field in a code set", mutate: func(m map[string]any) { at(m, "index", "match", "interpretation")["code"] = "H" },
			want: []issue{{"$.index.match.interpretation[0].code", "unknown field"}}},
		{name: "window ends before it starts", mutate: func(m map[string]any) { at(m, "window", "end")["days"] = -1 },
			want: []issue{{"$.window", "start is after end"}}},
		{name: "empty window", mutate: func(m map[string]any) { at(m, "window", "end")["days"] = 0 },
			want: []issue{{"$.window", "empty"}}},
		{name: "bound without inclusive", mutate: func(m map[string]any) { delete(at(m, "window", "start"), "inclusive") },
			want: []issue{{"$.window.start.inclusive", "required"}}},
		{name: "days as a string", mutate: func(m map[string]any) { at(m, "window", "end")["days"] = "30" },
			want: []issue{{"$.window.end.days", "must be an integer"}}},
		{name: "days not an integer", mutate: func(m map[string]any) { at(m, "window", "end")["days"] = 7.5 },
			want: []issue{{"$.window.end.days", "must be an integer"}}},
		{name: "unknown kind", mutate: func(m map[string]any) { m["kind"] = "sometimes" },
			want: []issue{{"$.kind", `"sometimes" is not one of absence, occurrence`}}},
		{name: "unknown rupture code", mutate: func(m map[string]any) { m["code"] = "late-letter" },
			want: []issue{{"$.code", "not a code of " + vocab.RupturePathwaySystem}}},
		{name: "bad severity and missing title", mutate: func(m map[string]any) { m["severity"] = "fatal"; delete(m, "title") },
			want: []issue{{"$.title", "required"}, {"$.severity", `"fatal" is not one of high, moderate, low`}}},
		{name: "both index and asOf", mutate: func(m map[string]any) { m["asOf"] = map[string]any{} },
			want: []issue{{"$", "index and asOf are exclusive"}}},
		{name: "neither index nor asOf", mutate: func(m map[string]any) { delete(m, "index") },
			want: []issue{{"$", "one of index or asOf is required"}}},
		{name: "unwanted in an absence rule", mutate: func(m map[string]any) { m["unwanted"] = m["expected"] },
			want: []issue{{"$.unwanted", "only for an occurrence rule"}}},
		{name: "occurrence rule without unwanted", mutate: func(m map[string]any) { m["kind"] = "occurrence" },
			want: []issue{{"$.unwanted", "required"}, {"$.expected", "only for an absence rule"}}},
		{name: "unknown resource type", mutate: func(m map[string]any) {
			at(m, "index", "match")["resourceTypes"] = []any{"Observation", "Obsrvation"}
		}, want: []issue{{"$.index.match.resourceTypes[1]", `"Obsrvation" is not a resource type`}}},
		{name: "code set without codes", mutate: func(m map[string]any) {
			at(m, "expected", "match")["codes"] = []any{map[string]any{"system": "http://loinc.org"}}
		}, want: []issue{{"$.expected[0].match.codes[0]", "one of codes or prefixes is required"}}},
		{name: "unknown stage and diagnosis role", mutate: func(m map[string]any) {
			mm := at(m, "expected", "match")
			mm["stage"] = []any{"suivi", "aftercare"}
			mm["diagnosisRole"] = []any{"DX"}
		}, want: []issue{
			{"$.expected[0].match.diagnosisRole[0]", `"DX" is not one of DP, DR, DAS, DAD`},
			{"$.expected[0].match.resourceTypes", "diagnosisRole needs Condition"},
			{"$.expected[0].match.stage[1]", `"aftercare" is not a code of`},
		}},
		{name: "sameCodeAsIndex in an asOf rule", mutate: func(m map[string]any) {
			delete(m, "index")
			m["asOf"] = map[string]any{}
			at(m, "expected", "match")["sameCodeAsIndex"] = map[string]any{}
		}, want: []issue{{"$.expected[0].match.sameCodeAsIndex", "only in the expected"}}},
		{name: "censor with death and match", mutate: func(m map[string]any) {
			at(m, "censor")["match"] = map[string]any{"resourceTypes": []any{"Encounter"}}
		}, want: []issue{{"$.censor[0]", "death and match are exclusive"}}},
		{name: "bad population", mutate: func(m map[string]any) {
			m["population"] = map[string]any{"minAge": 80, "maxAge": 18, "sex": []any{"F"}}
		}, want: []issue{{"$.population", "minAge is above maxAge"}, {"$.population.sex[0]", `"F" is not one of male, female, other, unknown`}}},
		{name: "bad cost", mutate: func(m map[string]any) {
			m["cost"] = map[string]any{"perspective": "AMO", "currency": "euro", "basis": "unwanted", "table": []any{}}
		}, want: []issue{
			{"$.cost.currency", "ISO 4217"},
			{"$.cost.basis", "unwanted is for an occurrence rule"},
			{"$.cost.table", "required"},
		}},
		{name: "type error is reported once", mutate: func(m map[string]any) { m["window"] = "P7D" },
			want: []issue{{"$.window", "must be an object"}}},
		{name: "invalid JSON", raw: `{"id": "T1",`, want: []issue{{"$", "invalid JSON"}}},
		{name: "trailing data", raw: `{} {}`, want: []issue{{"$", "data after the top-level value"}}},
		{name: "not an object", raw: `[1]`, want: []issue{{"$", "must be an object"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if tc.raw == "" {
				m := baseRule()
				tc.mutate(m)
				raw, _ = json.Marshal(m)
			}
			_, err := pathway.ParseRule(raw)
			var de *pathway.DataError
			if !errors.As(err, &de) {
				t.Fatalf("ParseRule error %v, want a *DataError", err)
			}
			var got []issue
			for i, is := range de.Issues {
				g := issue{is.Path, is.Message}
				if i < len(tc.want) && is.Path == tc.want[i].Path && strings.Contains(is.Message, tc.want[i].Contains) {
					g.Contains = tc.want[i].Contains
				}
				got = append(got, g)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("issues (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	one, _ := json.Marshal(baseRule())
	bad := baseRule()
	at(bad, "window", "start")["inclusive"] = "no"
	two, _ := json.Marshal(bad)
	_, err := pathway.ParseRules([]byte("[" + string(one) + "," + string(one) + "," + string(two) + "]"))
	var de *pathway.DataError
	if !errors.As(err, &de) {
		t.Fatalf("ParseRules error %v", err)
	}
	want := []pathway.Issue{
		{Path: "$[1].id", Message: `duplicate id "T1" (also $[0])`},
		{Path: "$[2].window.start.inclusive", Message: "must be true or false"},
		{Path: "$[2].id", Message: `duplicate id "T1" (also $[1])`},
	}
	if diff := cmp.Diff(want, de.Issues); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
	if _, err := pathway.ParseRules(one); err == nil || !strings.Contains(err.Error(), "must be an array of rules") {
		t.Errorf("ParseRules(object) = %v", err)
	}
}

// TestDefaultRules: the embedded file parses and holds the rules of brief
// §6 with their rupture codes.
func TestDefaultRules(t *testing.T) {
	rules, err := pathway.DefaultRules()
	if err != nil {
		t.Fatalf("DefaultRules: %v", err)
	}
	got := map[string]string{}
	for _, r := range rules {
		got[r.ID] = r.Code
		if r.Description == "" {
			t.Errorf("%s has no description", r.ID)
		}
	}
	want := map[string]string{
		"R1": "no-gp-after-discharge", "R2": "missed-monitoring-test", "R3-breast": "missed-screening",
		"R3-colorectal": "missed-screening", "R4": "no-rehab-after-acute-event", "R5": "early-readmission",
		"R6": "treatment-discontinuation", "R7": "abnormal-result-not-followed",
		"R8": "no-secondary-prevention-after-fracture", "R9": "delayed-treatment-start", "R10": "missed-vaccination",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default rules (-want +got):\n%s", diff)
	}
	// A rule round-trips through its own JSON.
	for _, r := range rules {
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		back, err := pathway.ParseRule(raw)
		if err != nil {
			t.Errorf("%s does not parse back: %v", r.ID, err)
			continue
		}
		if diff := cmp.Diff(r, back); diff != "" {
			t.Errorf("%s round trip (-want +got):\n%s", r.ID, diff)
		}
	}
}

func TestParsePathways(t *testing.T) {
	pws, err := pathway.DefaultPathways()
	if err != nil {
		t.Fatalf("DefaultPathways: %v", err)
	}
	for _, pw := range pws {
		if _, ok := vocab.Lookup(vocab.PathwayTypeSystem, pw.Type); !ok {
			t.Errorf("pathway %s is not a pathway-type code", pw.Type)
		}
	}
	if len(pws) != 10 {
		t.Errorf("%d pathways, want one per pathway-type code (10)", len(pws))
	}
	_, err = pathway.ParsePathways([]byte(`[
	  {"type": "heart-failure", "version": "1", "title": "HF",
	   "triggers": [{"match": {"resourceTypes": ["Condition"]}, "window": {"start": {"days": 0, "inclusive": true}, "end": {"days": 1, "inclusive": true}}}]},
	  {"type": "gout", "version": "1", "title": "G", "triggers": [], "members": [{"resourceTypes": ["Condition"], "colour": "red"}]}
	]`))
	var de *pathway.DataError
	if !errors.As(err, &de) {
		t.Fatalf("ParsePathways error %v", err)
	}
	want := []pathway.Issue{
		{Path: "$[0].triggers[0].window", Message: "triggers look at the whole record and take no window"},
		{Path: "$[1].members[0].colour", Message: "unknown field"},
		{Path: "$[1].type", Message: `"gout" is not a code of ` + vocab.PathwayTypeSystem},
		{Path: "$[1].triggers", Message: "required"},
	}
	if diff := cmp.Diff(want, de.Issues); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
}
