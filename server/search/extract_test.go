package search

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/store"
)

// corpusDir is the shared corpus beside the repository (CI provides it).
const corpusDir = "../../../shared/corpus"

func decode(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func readResource(t testing.TB, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, raw)
}

// entriesOf is Extract restricted to some index params, as "param=value".
func entriesOf(typ string, res map[string]any, params ...string) []string {
	var out []string
	for _, e := range Default().Extract(typ, res, "https://hub.example/fhir") {
		for _, p := range params {
			if e.Param == p {
				out = append(out, e.Param+"="+e.Value)
			}
		}
	}
	return out
}

func TestExtract(t *testing.T) {
	obs := decode(t, []byte(`{
	  "resourceType": "Observation", "id": "o1", "status": "final",
	  "meta": {"lastUpdated": "2024-05-06T07:08:09.123456Z", "source": "urn:src", "tag": [{"system": "urn:t", "code": "x"}]},
	  "identifier": [{"system": "urn:ids", "value": "A1", "type": {"coding": [{"system": "urn:v2", "code": "MR"}], "text": "Dossier"}}],
	  "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hémoglobine A1c"}], "text": "HbA1c"},
	  "subject": {"reference": "https://hub.example/fhir/Patient/p1/_history/3"},
	  "performer": [{"reference": "Practitioner/pr1"}, {"identifier": {"system": "urn:rpps", "value": "10001"}}, {"reference": "#contained"}],
	  "effectivePeriod": {"start": "2024-01", "end": "2024-02-03"},
	  "valueQuantity": {"value": 7.5, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
	  "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "x1"}]}, "valueQuantity": {"value": -2, "unit": "mg", "code": "mg"}}]
	}`))
	pat := decode(t, []byte(`{
	  "resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1961-04-12", "active": true,
	  "name": [{"family": "Lefèvre", "given": ["Éloïse", "Marie"]}],
	  "telecom": [{"system": "phone", "value": "0601020304"}],
	  "address": [{"city": "Saint-Étienne", "postalCode": "42000"}],
	  "managingOrganization": {"reference": "Organization/org1"}
	}`))
	tests := []struct {
		name   string
		typ    string
		res    map[string]any
		params []string
		want   []string
	}{
		{"token: Coding code first, display and text", "Observation", obs, []string{"code", "code:code", "code:text"}, []string{
			"code=4548-4|http://loinc.org", "code:text=hba1c", "code:text=hemoglobine a1c"}},
		{"token: code without system", "Observation", obs, []string{"status", "status:code"}, []string{"status=final|"}},
		{"token: Identifier with type", "Observation", obs, []string{"identifier", "identifier:code", "identifier:of-type", "identifier:text"}, []string{
			"identifier=urn:ids|A1", "identifier:code=A1", "identifier:of-type=urn:v2|MR|A1", "identifier:text=dossier"}},
		{"token: Resource meta", "Observation", obs, []string{"_tag"}, []string{"_tag=x|urn:t"}},
		{"uri: _source under its own index name", "Observation", obs, []string{"_meta.source", "_source"}, []string{"_meta.source=urn:src"}},
		{"date: _lastUpdated instant", "Observation", obs, []string{"_lastUpdated"}, []string{"_lastUpdated=2024-05-06T07:08:09.123456/2024-05-06T07:08:09.123456"}},
		{"date: Period at precision", "Observation", obs, []string{"date", "date:hi"}, []string{
			"date=2024-01-01T00:00:00.000000/2024-02-03T23:59:59.999999", "date:hi=2024-02-03T23:59:59.999999/2024-01-01T00:00:00.000000"}},
		{"reference: own absolute URL made relative, logical identifier, contained skipped", "Observation", obs, []string{"subject", "performer", "performer:identifier"}, []string{
			"performer=Practitioner/pr1", "performer:identifier=urn:rpps|10001", "subject=Patient/p1"}},
		{"quantity: value then unit", "Observation", obs, []string{"value-quantity", "value-quantity:unit"}, []string{
			"value-quantity=" + EncodeNumber(7.5) + "|%|http://unitsofmeasure.org"}},
		{"composite: code and value from the same item", "Observation", obs, []string{"code-value-quantity", "component-code-value-quantity"}, []string{
			"code-value-quantity=4548-4|http://loinc.org$" + EncodeNumber(7.5) + "|http://unitsofmeasure.org|%",
			"component-code-value-quantity=x1|http://loinc.org$" + EncodeNumber(-2) + "||mg"}},
		{"union parameters are not indexed", "Observation", obs, []string{"combo-code", "combo-code-value-quantity", "combo-value-quantity"}, nil},
		{"date: narrow range, no :hi entry", "Observation", obs, []string{"_lastUpdated", "_lastUpdated:hi"}, []string{
			"_lastUpdated=2024-05-06T07:08:09.123456/2024-05-06T07:08:09.123456"}},
		{"string: HumanName parts normalised", "Patient", pat, []string{"name", "family", "given"}, []string{
			"family=lefevre", "given=eloise", "given=marie", "name=eloise", "name=lefevre", "name=marie"}},
		{"string: Address parts", "Patient", pat, []string{"address-city", "address"}, []string{"address=42000", "address=saint-etienne", "address-city=saint-etienne"}},
		{"token: ContactPoint and boolean", "Patient", pat, []string{"phone", "active"}, []string{"active=true|", "phone=0601020304|phone"}},
		{"date: birthDate day", "Patient", pat, []string{"birthdate"}, []string{"birthdate=1961-04-12T00:00:00.000000/1961-04-12T23:59:59.999999"}},
		{"reference: organization", "Patient", pat, []string{"organization"}, []string{"organization=Organization/org1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, entriesOf(tt.typ, tt.res, tt.params...)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeNumberOrder(t *testing.T) {
	nums := []float64{-1e300, -1000, -2.5, -1, -0.001, 0, 0.001, 1, 2.5, 1000, 1e300}
	for i := 1; i < len(nums); i++ {
		a, b := EncodeNumber(nums[i-1]), EncodeNumber(nums[i])
		if a >= b {
			t.Errorf("EncodeNumber(%v) = %s >= EncodeNumber(%v) = %s", nums[i-1], a, nums[i], b)
		}
		if f, ok := DecodeNumber(b); !ok || f != nums[i] {
			t.Errorf("DecodeNumber(EncodeNumber(%v)) = %v, %v", nums[i], f, ok)
		}
	}
}

func TestDateRange(t *testing.T) {
	tests := []struct{ in, lo, hi string }{
		{"2020", "2020-01-01T00:00:00.000000", "2020-12-31T23:59:59.999999"},
		{"2020-02", "2020-02-01T00:00:00.000000", "2020-02-29T23:59:59.999999"},
		{"2020-02-03", "2020-02-03T00:00:00.000000", "2020-02-03T23:59:59.999999"},
		{"2020-02-03T10:00", "2020-02-03T10:00:00.000000", "2020-02-03T10:00:59.999999"},
		{"2020-02-03T10:00:05+02:00", "2020-02-03T08:00:05.000000", "2020-02-03T08:00:05.999999"},
		{"2020-02-03T10:00:05.25Z", "2020-02-03T10:00:05.250000", "2020-02-03T10:00:05.259999"},
		{"2020-02-03T23:30:00-01:00", "2020-02-04T00:30:00.000000", "2020-02-04T00:30:00.999999"},
	}
	for _, tt := range tests {
		lo, hi, ok := dateRange(tt.in)
		if !ok || encodeInstant(lo) != tt.lo || encodeInstant(hi) != tt.hi {
			t.Errorf("dateRange(%q) = %s, %s, %v; want %s, %s", tt.in, encodeInstant(lo), encodeInstant(hi), ok, tt.lo, tt.hi)
		}
	}
	for _, bad := range []string{"", "20", "2020-13", "2020-02-30", "2020-02-03T25:00", "soon"} {
		if _, _, ok := dateRange(bad); ok {
			t.Errorf("dateRange(%q) accepted", bad)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"Éloïse":            "eloise",
		"  Saint  Étienne ": "saint etienne",
		"STRAßE":            "strasse",
		"Œuvre":             "oeuvre",
		"plain":             "plain",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// syntheaResources reads the resources of the Synthea patient bundles of
// the shared corpus, or of testdata on a bare clone.
func syntheaResources(t testing.TB) []map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(corpusDir, "synthea", "*", "[A-Z]*_*.json"))
	if len(files) == 0 {
		files, _ = filepath.Glob("testdata/*.json")
	}
	var out []map[string]any
	for _, f := range files {
		b := readResource(t, f)
		for _, e := range list(b["entry"]) {
			if r, ok := e.(map[string]any)["resource"].(map[string]any); ok {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Skip("no Synthea bundles: neither the shared corpus nor testdata/")
	}
	return out
}

// BenchmarkExtract is the cost of indexing one Synthea resource (the mix of
// a patient bundle: mostly Observations, Encounters, Claims...).
func BenchmarkExtract(b *testing.B) {
	res := syntheaResources(b)
	r := Default()
	for _, x := range res { // compile the types used outside the timing
		r.Extract(x["resourceType"].(string), x, "")
	}
	entries := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		x := res[i%len(res)]
		entries += len(r.Extract(x["resourceType"].(string), x, ""))
		i++
	}
	b.ReportMetric(float64(entries)/float64(i), "entries/resource")
	// CPU time per resource: steadier than ns/op on a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(i), "cpu-µs/resource")
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestExtractCorpusTypes(t *testing.T) {
	res := syntheaResources(t)
	counts := map[string]int{}
	total := 0
	for _, x := range res {
		typ := x["resourceType"].(string)
		es := Default().Extract(typ, x, "")
		counts[typ] += len(es)
		total += len(es)
		for _, e := range es {
			if strings.HasPrefix(e.Param, "_") && e.Param != "_lastUpdated" && e.Param != "_lastUpdated:hi" &&
				!strings.HasPrefix(e.Param, "_tag") && !strings.HasPrefix(e.Param, "_security") && e.Param != "_profile" && e.Param != "_meta.source" {
				t.Errorf("%s: index param %q collides with the access metadata names", typ, e.Param)
			}
		}
	}
	t.Logf("%d resources, %d entries (%.1f per resource)", len(res), total, float64(total)/float64(len(res)))
	var _ store.IndexEntry
}
