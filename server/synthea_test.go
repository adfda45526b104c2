package server

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Real data through POST /fhir: every entry is stored, and reading it back
// gives what was sent, modulo id, meta.versionId, meta.lastUpdated and the
// references the server had to rewrite.

// loadedEntry is one bundle entry and where the server stored it.
type loadedEntry struct {
	file     string
	index    int
	method   string
	status   string
	sent     map[string]any    // entry.resource, numbers as json.Number
	location string            // response.location: Type/id/_history/v
	fullURLs map[string]string // fullUrl → Type/id for the entry's bundle
	// matched: an ifNoneExist that found a resource, so nothing of this
	// entry was stored.
	matched bool
	// want is sent with the references the server must have written, and
	// refProblems what prevented computing some of them.
	want        any
	refProblems []string
}

// corpusLoader posts bundles and remembers what it needs to check them.
type corpusLoader struct {
	h       *hub
	entries []*loadedEntry
	// byIdentifier maps "Type|system|value" to the Type/id of the resources
	// stored with that identifier.
	byIdentifier map[string][]string
	// urnRefs and conditionalRefs count the references whose rewriting
	// was computed (so that a check over no reference cannot pass).
	urnRefs, conditionalRefs int
}

func newCorpusLoader(h *hub) *corpusLoader {
	return &corpusLoader{h: h, byIdentifier: map[string][]string{}}
}

// post sends one bundle file and checks that every entry succeeded.
func (l *corpusLoader) post(t *testing.T, file string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sent := decodeNumbers(t, raw)
	name := filepath.Base(file)
	r := l.h.do(http.MethodPost, "", raw)
	if r.status != http.StatusOK {
		t.Fatalf("%s: status %d: %.1000s", name, r.status, r.raw)
	}
	kind := str(sent, "type")
	if got := str(r.body, "type"); got != kind+"-response" {
		t.Errorf("%s: Bundle.type %q, want %s-response", name, got, kind)
	}
	sentEntries, gotEntries := bundleEntries(sent), bundleEntries(r.body)
	if len(gotEntries) != len(sentEntries) {
		t.Fatalf("%s: %d response entries for %d sent", name, len(gotEntries), len(sentEntries))
	}
	fullURLs := map[string]string{}
	var loaded []*loadedEntry
	failed := 0
	for i, e := range sentEntries {
		resp := gotEntries[i]
		le := &loadedEntry{
			file: name, index: i,
			method:   str(e, "request", "method"),
			status:   str(resp, "response", "status"),
			location: str(resp, "response", "location"),
			fullURLs: fullURLs,
		}
		le.sent, _ = dig(e, "resource").(map[string]any)
		le.matched = str(e, "request", "ifNoneExist") != "" && strings.HasPrefix(le.status, "200")
		if !strings.HasPrefix(le.status, "2") {
			failed++
			if failed <= 5 {
				t.Errorf("%s entry %d (%s): status %q: %v", name, i, str(le.sent, "resourceType"), le.status, dig(resp, "response", "outcome"))
			}
			continue
		}
		target, ok := locationTarget(le.location)
		if !ok {
			t.Errorf("%s entry %d: response.location %q, want Type/id/_history/version", name, i, le.location)
			continue
		}
		if full := str(e, "fullUrl"); full != "" {
			fullURLs[full] = target
		}
		typ := strings.SplitN(target, "/", 2)[0]
		for _, ident := range identifiersOf(le.sent) {
			key := typ + "|" + ident
			if !slices.Contains(l.byIdentifier[key], target) {
				l.byIdentifier[key] = append(l.byIdentifier[key], target)
			}
		}
		loaded = append(loaded, le)
	}
	if failed > 0 {
		t.Errorf("%s: %d of %d entries failed", name, failed, len(sentEntries))
	}
	// Conditional references resolve against what is stored when the
	// bundle is processed: compute the expected resources now, before later
	// bundles add resources with the same identifiers.
	for _, le := range loaded {
		le.want = l.expected(le.sent, le.fullURLs, &le.refProblems, "")
	}
	l.entries = append(l.entries, loaded...)
}

// locationTarget turns Type/id/_history/v into Type/id.
func locationTarget(loc string) (string, bool) {
	parts := strings.Split(loc, "/")
	if len(parts) != 4 || parts[2] != "_history" || parts[0] == "" || parts[1] == "" {
		return "", false
	}
	return parts[0] + "/" + parts[1], true
}

// identifiersOf lists "system|value" of Resource.identifier (0..* or 0..1).
func identifiersOf(res map[string]any) []string {
	list, _ := res["identifier"].([]any)
	if one, ok := res["identifier"].(map[string]any); ok {
		list = []any{one}
	}
	var out []string
	for _, x := range list {
		if v := str(x, "value"); v != "" {
			out = append(out, str(x, "system")+"|"+v)
		}
	}
	return out
}

// check reads every stored resource back and compares it with what was
// sent. Entries whose ifNoneExist matched stored nothing of theirs: only
// their location is checked.
func (l *corpusLoader) check(t *testing.T) {
	t.Helper()
	mismatches := 0
	for _, le := range l.entries {
		r := l.h.do(http.MethodGet, "/"+le.location, nil)
		if r.status != http.StatusOK {
			t.Errorf("%s entry %d: GET %s: status %d", le.file, le.index, le.location, r.status)
			continue
		}
		if le.matched || le.sent == nil {
			continue
		}
		got := decodeNumbers(t, r.raw)
		if err := l.compare(le, got); err != "" {
			mismatches++
			if mismatches <= 5 {
				t.Errorf("%s entry %d, %s:\n%s", le.file, le.index, le.location, err)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of %d resources differ from what was sent", mismatches, len(l.entries))
	}
}

// compare returns a readable difference between the sent resource and the
// stored one ("" if they agree).
func (l *corpusLoader) compare(le *loadedEntry, got map[string]any) string {
	target, _ := locationTarget(le.location)
	version := le.location[strings.LastIndex(le.location, "/")+1:]
	var problems []string
	if id := str(got, "id"); str(got, "resourceType")+"/"+id != target {
		problems = append(problems, fmt.Sprintf("resourceType/id %s/%s, want %s", str(got, "resourceType"), id, target))
	}
	if v := str(got, "meta", "versionId"); v != version {
		problems = append(problems, fmt.Sprintf("meta.versionId %q, want %q", v, version))
	}
	if str(got, "meta", "lastUpdated") == "" {
		problems = append(problems, "no meta.lastUpdated")
	}
	problems = append(problems, le.refProblems...)
	if diff := cmp.Diff(stripServerFields(le.want), stripServerFields(got)); diff != "" {
		problems = append(problems, "content (-sent +stored):\n"+diff)
	}
	return strings.Join(problems, "\n")
}

// expected is a copy of a sent value with its references replaced by what
// the server must have written: urn:uuid:X → the Type/id of the entry with
// fullUrl X, Type?identifier=… → Type/id of the resource with that
// identifier. Other references stay as sent.
func (l *corpusLoader) expected(v any, fullURLs map[string]string, problems *[]string, path string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, c := range x {
			if ref, ok := c.(string); ok && k == "reference" {
				out[k] = l.expectedRef(ref, fullURLs, problems, path+"."+k)
				continue
			}
			out[k] = l.expected(c, fullURLs, problems, path+"."+k)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, c := range x {
			out[i] = l.expected(c, fullURLs, problems, path+"["+strconv.Itoa(i)+"]")
		}
		return out
	}
	return v
}

func (l *corpusLoader) expectedRef(ref string, fullURLs map[string]string, problems *[]string, path string) string {
	if strings.HasPrefix(ref, "urn:uuid:") {
		to, ok := fullURLs[ref]
		if !ok {
			*problems = append(*problems, fmt.Sprintf("%s: %s is no entry of the bundle", path, ref))
			return ref
		}
		l.urnRefs++
		return to
	}
	typ, query, ok := strings.Cut(ref, "?")
	if !ok || strings.Contains(typ, "/") {
		return ref
	}
	q, err := url.ParseQuery(query)
	if err != nil || len(q) != 1 || len(q["identifier"]) != 1 {
		*problems = append(*problems, fmt.Sprintf("%s: conditional reference %q: the test resolves identifier=system|value only", path, ref))
		return ref
	}
	targets := l.byIdentifier[typ+"|"+q.Get("identifier")]
	if len(targets) != 1 {
		*problems = append(*problems, fmt.Sprintf("%s: %q matches %d loaded resources, want 1", path, ref, len(targets)))
		return ref
	}
	l.conditionalRefs++
	return targets[0]
}

// stripServerFields drops what the server sets: id, meta.versionId and
// meta.lastUpdated (and meta itself when nothing else is left).
func stripServerFields(v any) map[string]any {
	m, _ := v.(map[string]any)
	out := make(map[string]any, len(m))
	for k, x := range m {
		if k != "id" {
			out[k] = x
		}
	}
	if meta, ok := m["meta"].(map[string]any); ok {
		rest := map[string]any{}
		for k, x := range meta {
			if k != "versionId" && k != "lastUpdated" {
				rest[k] = x
			}
		}
		delete(out, "meta")
		if len(rest) > 0 {
			out["meta"] = rest
		}
	}
	return out
}

// TestSyntheaCorpus loads the Synthea corpus: the google-fhir-data-pipes
// hospital and practitioner batches first (the patient bundles point at
// them with conditional references), then every patient transaction.
func TestSyntheaCorpus(t *testing.T) {
	var first, patients []string
	for _, dir := range corpusFiles(t, "synthea") {
		err := filepath.WalkDir(dir, func(f string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(f, ".json") {
				return err
			}
			base := filepath.Base(f)
			switch {
			case strings.HasPrefix(base, "README"), strings.HasPrefix(base, "LICENSE"), strings.HasPrefix(base, "SOURCE"):
			case strings.HasPrefix(base, "hospitalInformation"), strings.HasPrefix(base, "practitionerInformation"):
				first = append(first, f)
			default:
				patients = append(patients, f)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// hospitalInformation sorts before practitionerInformation: the
	// PractitionerRoles name organizations by identifier.
	slices.Sort(first)
	// The smart-on-fhir bundles POST their Organizations again (same
	// identifiers, no ifNoneExist); the data-pipes patient bundles, which
	// sort first, still find exactly one Organization per identifier.
	slices.Sort(patients)
	if len(patients) == 0 {
		t.Fatal("no patient bundles in the corpus")
	}
	h := newHub(t)
	l := newCorpusLoader(h)
	start := time.Now()
	for _, f := range append(first, patients...) {
		l.post(t, f)
	}
	if t.Failed() {
		t.FailNow()
	}
	loaded := time.Since(start)
	l.check(t)
	t.Logf("load %v, read back %v", loaded, time.Since(start)-loaded)
	if l.urnRefs == 0 || l.conditionalRefs == 0 {
		t.Errorf("%d urn:uuid and %d conditional references checked: the corpus has both", l.urnRefs, l.conditionalRefs)
	}
	t.Logf("%d bundles, %d entries loaded and read back, %d urn:uuid and %d conditional references checked", len(first)+len(patients), len(l.entries), l.urnRefs, l.conditionalRefs)
}

// TestTransactionTestdata posts testdata/fhir/Bundle-parcours-transaction.json
// (present on a bare clone) twice: on an empty hub everything is created;
// the second time the Patient's and the Practitioner's ifNoneExist match
// the first ones (one Patient per INS) and the Organization's PUT makes
// version 2.
func TestTransactionTestdata(t *testing.T) {
	const file = "../testdata/fhir/Bundle-parcours-transaction.json"
	h := newHub(t)
	l := newCorpusLoader(h)
	l.post(t, file)
	l.post(t, file)
	if t.Failed() {
		t.FailNow()
	}
	l.check(t)
	if want := [2]int{2 * 11, 2 * 1}; [2]int{l.urnRefs, l.conditionalRefs} != want {
		t.Errorf("%d urn:uuid and %d conditional references checked, want %d and %d", l.urnRefs, l.conditionalRefs, want[0], want[1])
	}
	var got []string
	for _, le := range l.entries {
		target, _ := locationTarget(le.location)
		got = append(got, le.status+" "+strings.SplitN(target, "/", 2)[0])
	}
	want := []string{
		"201 Created Patient", "201 Created Practitioner", "201 Created Encounter", "201 Created Observation", "201 Created Condition", "201 Created Organization",
		"200 OK Patient", "200 OK Practitioner", "201 Created Encounter", "201 Created Observation", "201 Created Condition", "200 OK Organization",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entry statuses over the two loads (-want +got):\n%s", diff)
	}
	if len(l.entries) == len(want) {
		if a, b := l.entries[0].location, l.entries[6].location; a != b {
			t.Errorf("second load: the Patient entry answered %s, want the existing %s", b, a)
		}
		if a, b := l.entries[1].location, l.entries[7].location; a != b {
			t.Errorf("second load: the Practitioner entry answered %s, want the existing %s", b, a)
		}
		if loc := l.entries[11].location; loc != "Organization/finess-350005179/_history/2" {
			t.Errorf("second load: Organization location %q, want version 2", loc)
		}
	}
}
