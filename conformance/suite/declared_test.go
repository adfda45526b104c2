package suite_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/conformance/suite"
)

// declaring is a test peer in front of the hub. Its CapabilityStatement
// also declares what the hub implements without declaring it
// (versioned-update, conditionalRead not-match) and a few search
// parameters. With search set it answers those searches itself, filtering
// what the hub returns for the type; without, it passes them to the hub
// stripped of those parameters: a server that ignores what it declares.
type declaring struct {
	t      *testing.T
	hub    http.Handler
	search bool
}

// extra are the search parameters the peer adds to the CapabilityStatement.
var extra = map[string][]string{
	"Patient":     {"name", "birthdate", "gender"},
	"Observation": {"subject", "code", "date"},
}

func (d *declaring) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch typ := strings.TrimPrefix(r.URL.Path, "/fhir/"); {
	case r.Method == http.MethodGet && typ == "metadata" && r.Header.Get("Accept") == "application/fhir+json":
		d.metadata(w, r)
	case r.Method == http.MethodGet && d.search && extra[typ] != nil && d.handles(typ, r.URL.Query()):
		d.searchset(w, typ, r.URL.Query())
	case r.Method == http.MethodGet && !d.search && extra[typ] != nil:
		// A server that declares the parameters and ignores them (the
		// hub implements them: drop them on the way).
		q := r.URL.Query()
		for _, p := range append(extra[typ], "_include") {
			q.Del(p)
		}
		r.URL.RawQuery = q.Encode()
		d.hub.ServeHTTP(w, r)
	default:
		d.hub.ServeHTTP(w, r)
	}
}

// get asks the hub and decodes its JSON answer.
func (d *declaring) get(target string) map[string]any {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", "application/fhir+json")
	d.hub.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		d.t.Errorf("GET %s: %v", target, err)
	}
	return m
}

func (d *declaring) metadata(w http.ResponseWriter, r *http.Request) {
	cs := d.get(r.URL.String())
	for _, rest := range cs["rest"].([]any) {
		for _, x := range rest.(map[string]any)["resource"].([]any) {
			res := x.(map[string]any)
			res["versioning"] = "versioned-update"
			res["conditionalRead"] = "not-match"
			typ := res["type"].(string)
			for _, p := range extra[typ] {
				res["searchParam"] = append(res["searchParam"].([]any), map[string]any{"name": p, "type": "string"})
			}
			if typ == "Observation" {
				res["searchInclude"] = []any{"Observation:subject"}
			}
		}
	}
	write(w, cs)
}

func write(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/fhir+json")
	json.NewEncoder(w).Encode(v)
}

// handles reports whether a search uses a parameter the hub lacks.
func (d *declaring) handles(typ string, q url.Values) bool {
	for name := range q {
		if slices.Contains(extra[typ], name) || name == "_include" {
			return true
		}
	}
	return false
}

// searchset filters every resource of typ the hub holds (one page, no
// paging: the suite's samples are small).
func (d *declaring) searchset(w http.ResponseWriter, typ string, q url.Values) {
	all := d.get("/fhir/" + typ + "?_count=1000")
	var entries []any
	for _, e := range all["entry"].([]any) {
		res := e.(map[string]any)["resource"].(map[string]any)
		if matches(res, q) {
			entries = append(entries, map[string]any{"resource": res, "search": map[string]any{"mode": "match"}})
			if q.Get("_include") == "Observation:subject" {
				ref := res["subject"].(map[string]any)["reference"].(string)
				entries = append(entries, map[string]any{"resource": d.get("/fhir/" + ref), "search": map[string]any{"mode": "include"}})
			}
		}
	}
	write(w, map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries})
}

// matches applies the few search semantics the suite's sample needs.
func matches(res map[string]any, q url.Values) bool {
	for name, vals := range q {
		v := vals[0]
		var ok bool
		switch name {
		case "_id":
			ok = res["id"] == v
		case "identifier":
			system, value, _ := strings.Cut(v, "|")
			for _, x := range res["identifier"].([]any) {
				id := x.(map[string]any)
				ok = ok || (id["system"] == system && (value == "" || id["value"] == value))
			}
		case "name":
			family := res["name"].([]any)[0].(map[string]any)["family"].(string)
			ok = strings.HasPrefix(strings.ToLower(family), strings.ToLower(v))
		case "birthdate":
			ok = res["birthDate"].(string) >= strings.TrimPrefix(v, "ge")
		case "gender":
			ok = res["gender"] == v
		case "subject":
			ok = res["subject"].(map[string]any)["reference"] == v
		case "code":
			system, code, _ := strings.Cut(v, "|")
			for _, x := range res["code"].(map[string]any)["coding"].([]any) {
				c := x.(map[string]any)
				ok = ok || (c["system"] == system && c["code"] == code)
			}
		case "date":
			ok = res["effectiveDateTime"].(string)[:10] >= strings.TrimPrefix(v, "ge")
		default:
			ok = true
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestDeclaredChecks runs the checks Parcours does not declare yet against
// the hub behind a peer that declares them: the etag checks meet the hub's
// real behaviour; the search checks pass when the peer implements the
// parameters and fail when the server ignores a parameter it declares.
func TestDeclaredChecks(t *testing.T) {
	proxy := func(search bool) string {
		return serve(t, &declaring{t: t, search: search, hub: hub(t)}).URL
	}

	rep, err := suite.Run(context.Background(), suite.Config{URL: proxy(true), Validate: validator(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Table())
	if rep.Failed != 0 || rep.Skipped != 0 {
		t.Errorf("%d failed, %d skipped; want every check to run and pass", rep.Failed, rep.Skipped)
	}

	rep, err = suite.Run(context.Background(), suite.Config{URL: proxy(false)})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Patient name", "Patient birthdate=ge", "Patient gender", "Observation subject=Patient/id",
		"Observation code=system|code", "Observation date=ge", "_include=Observation:subject"} {
		if res := result(t, rep, "search", name); res.Status() != "FAIL" {
			t.Errorf("%s against a server ignoring the parameter: %s %q, want FAIL", name, res.Status(), res.Detail)
		}
	}
	for _, res := range rep.Results {
		if res.Group != "search" && res.Group != "validity" && !res.Pass {
			t.Errorf("%s/%s: %s %q", res.Group, res.Name, res.Status(), res.Detail)
		}
	}
}
