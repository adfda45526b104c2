package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/outcome"
)

// corpusDir holds the official R4 examples and synthea the Synthea bundles
// (shared/ beside the repository, not in it).
const (
	corpusDir = "../../shared/corpus/fhir-r4-examples/instances"
	synthea   = "../../shared/corpus/synthea/google-fhir-data-pipes-synthea-hiv"
)

// exampleSkips lists official examples that genuinely fail the official
// schema, file -> reason. The test fails if a listed file passes or is gone,
// so the list cannot rot. At the time of writing all 685 instances of the
// corpus pass. (The corpus README records one failure among the r4 examples
// of FHIR/fhir-test-cases, a StructureDefinition: definitional resources are
// not in this corpus.)
var exampleSkips = map[string]string{}

// testValidator is shared by the tests: NewValidator decodes 3.3 MB of schema.
var testValidator = sync.OnceValues(NewValidator)

func sharedValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := testValidator()
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}

// decodeNumbers decodes one resource the way the server does (Decoder.UseNumber).
func decodeNumbers(t testing.TB, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func readResource(t testing.TB, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeNumbers(t, b)
}

// issuesOf returns the issues of a validation error, failing on any error
// that is not a 400 *outcome.Error.
func issuesOf(t *testing.T, err error) []outcome.Issue {
	t.Helper()
	if err == nil {
		return nil
	}
	e, ok := outcome.As(err)
	if !ok {
		t.Fatalf("Validate error %T is not an *outcome.Error: %v", err, err)
	}
	if e.Status != http.StatusBadRequest {
		t.Errorf("Status = %d, want %d", e.Status, http.StatusBadRequest)
	}
	return e.Issues
}

func TestValidateOfficialExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpusDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("corpus ../shared/corpus absent: the official examples live in shared/ beside the repository (" + corpusDir + "); testdata/fhir covers the happy path on a bare clone")
	}
	v := sharedValidator(t)
	seen := map[string]bool{}
	passed := 0
	for _, f := range files {
		name := filepath.Base(f)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			err := v.Validate(readResource(t, f))
			reason, skip := exampleSkips[name]
			switch {
			case skip && err == nil:
				t.Errorf("listed in exampleSkips (%s) but now passes: remove it from the list", reason)
			case skip:
				issuesOf(t, err)
				t.Skipf("fails the official schema: %s", reason)
			case err != nil:
				t.Errorf("Validate: %v", err)
			default:
				passed++
			}
		})
	}
	for name := range exampleSkips {
		if !seen[name] {
			t.Errorf("exampleSkips lists %s, which is not in the corpus: remove it", name)
		}
	}
	t.Logf("%d of %d official examples pass, %d skipped", passed, len(files), len(exampleSkips))
}

// testdataExamples are official examples copied to testdata/fhir so the happy
// path is tested on a bare clone. Other packages add their own fixtures
// there; this list names ours.
var testdataExamples = []string{
	"AllergyIntolerance-example.json",
	"Bundle-bundle-transaction.json", // transaction: Patient and Parameters entries
	"Condition-example.json",
	"Encounter-example.json",
	"MedicationRequest-medrx0302.json", // contained Medication
	"Observation-example.json",
	"Patient-example.json",
}

func testdataPath(name string) string { return filepath.Join("../testdata/fhir", name) }

func TestValidateTestdata(t *testing.T) {
	v := sharedValidator(t)
	for _, name := range testdataExamples {
		t.Run(name, func(t *testing.T) {
			if err := v.Validate(readResource(t, testdataPath(name))); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestValidateFloat64 checks resources decoded without UseNumber.
func TestValidateFloat64(t *testing.T) {
	b, err := os.ReadFile(testdataPath("Observation-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if _, ok := r["valueQuantity"].(map[string]any)["value"].(float64); !ok {
		t.Fatal("valueQuantity.value is not a float64")
	}
	if err := sharedValidator(t).Validate(r); err != nil {
		t.Errorf("Validate: %v", err)
	}
	r["status"] = 1.5
	got := issuesOf(t, sharedValidator(t).Validate(r))
	want := []outcome.Issue{wantIssue(outcome.CodeValue, "Observation.status", wantCodes("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
}

func wantIssue(code, expression, diagnostics string) outcome.Issue {
	return outcome.Issue{Severity: outcome.SeverityError, Code: code, Diagnostics: diagnostics, Expression: []string{expression}}
}

func wantCodes(c ...string) string {
	return "value is not one of the allowed codes " + quoteJoin(c)
}

func quoteJoin(c []string) string {
	q := make([]string, len(c))
	for i, s := range c {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

var wantGenders = wantCodes("male", "female", "other", "unknown")

func TestValidateIssues(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		want     []outcome.Issue
	}{
		{
			name:     "unknown element",
			resource: `{"resourceType":"Patient","favouriteColour":"blue"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeStructure, "Patient.favouriteColour", `unknown element "favouriteColour"`)},
		},
		{
			name:     "string for boolean",
			resource: `{"resourceType":"Patient","active":"true"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeStructure, "Patient.active", "wrong JSON type: expected boolean, found string")},
		},
		{
			name:     "number for boolean",
			resource: `{"resourceType":"Patient","active":1}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeStructure, "Patient.active", "wrong JSON type: expected boolean, found number")},
		},
		{
			name:     "bad id",
			resource: `{"resourceType":"Patient","id":"not an id!"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeValue, "Patient.id", "value does not match the pattern of id")},
		},
		{
			name:     "bad dateTime in a choice element",
			resource: `{"resourceType":"Observation","status":"final","code":{"text":"weight"},"effectiveDateTime":"2020-02-30T10:00:00"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeValue, "Observation.effectiveDateTime", "value does not match the pattern of dateTime")},
		},
		{
			name:     "bad date",
			resource: `{"resourceType":"Patient","birthDate":"25/12/1974"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeValue, "Patient.birthDate", "value does not match the pattern of date")},
		},
		{
			name:     "bad code",
			resource: `{"resourceType":"Patient","gender":"robot"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeValue, "Patient.gender", wantGenders)},
		},
		{
			// The R4 schema requires Observation.code but not Observation.status
			// (status is 1..1 in the specification, not in the schema).
			name:     "missing required",
			resource: `{"resourceType":"Observation"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeRequired, "Observation.code", `missing required element "code"`)},
		},
		{
			name: "several problems at once",
			resource: `{"resourceType":"Observation","id":"_x_","status":"done","colour":"red",
				"subject":{"reference":"Patient/1","extra":true},"valueQuantity":{"value":"12"}}`,
			want: []outcome.Issue{
				wantIssue(outcome.CodeRequired, "Observation.code", `missing required element "code"`),
				wantIssue(outcome.CodeStructure, "Observation.colour", `unknown element "colour"`),
				wantIssue(outcome.CodeValue, "Observation.id", "value does not match the pattern of id"),
				wantIssue(outcome.CodeValue, "Observation.status", wantCodes("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown")),
				wantIssue(outcome.CodeStructure, "Observation.subject.extra", `unknown element "extra"`),
				wantIssue(outcome.CodeStructure, "Observation.valueQuantity.value", "wrong JSON type: expected number, found string"),
			},
		},
		{
			name: "nested array paths",
			resource: `{"resourceType":"Patient","name":[{"given":["Ann"]},{"family":"B","given":["C",7]}],
				"telecom":[{"system":"phone"},{"system":"pigeon"}],"address":[{"line":["1 Main St"],"period":{"start":"May"}}]}`,
			want: []outcome.Issue{
				wantIssue(outcome.CodeValue, "Patient.address[0].period.start", "value does not match the pattern of dateTime"),
				wantIssue(outcome.CodeStructure, "Patient.name[1].given[1]", "wrong JSON type: expected string, found number"),
				wantIssue(outcome.CodeValue, "Patient.telecom[1].system", wantCodes("phone", "fax", "email", "pager", "url", "sms", "other")),
			},
		},
		{
			name:     "array expected",
			resource: `{"resourceType":"Patient","name":{"family":"Doe"}}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeStructure, "Patient.name", "wrong JSON type: expected array, found object")},
		},
		{
			name: "bad element inside a contained resource",
			resource: `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1"},
				{"resourceType":"Practitioner","id":"p1","gender":"robot","shoeSize":44}]}`,
			want: []outcome.Issue{
				wantIssue(outcome.CodeValue, "Patient.contained[1].gender", wantGenders),
				wantIssue(outcome.CodeStructure, "Patient.contained[1].shoeSize", `unknown element "shoeSize"`),
			},
		},
		{
			name:     "unknown contained resourceType",
			resource: `{"resourceType":"Patient","contained":[{"resourceType":"Spaceship","id":"s1"}]}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeInvalid, "Patient.contained[0].resourceType", "resourceType is not one of the 146 FHIR R4 resource types")},
		},
		{
			name:     "missing contained resourceType",
			resource: `{"resourceType":"Patient","contained":[{"id":"s1"}]}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeInvalid, "Patient.contained[0].resourceType", "resourceType is missing")},
		},
		{
			name:     "contained is not an object",
			resource: `{"resourceType":"Patient","contained":["Patient/1"]}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeStructure, "Patient.contained[0]", "wrong JSON type: expected object, found string")},
		},
		{
			name: "bad element inside Bundle.entry.resource",
			resource: `{"resourceType":"Bundle","type":"collection","entry":[
				{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","gender":"robot","name":[{"given":[true]}]}},
				{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"}}},
				{"resource":{"resourceType":"Observation","status":"final"}}]}`,
			want: []outcome.Issue{
				wantIssue(outcome.CodeValue, "Bundle.entry[0].resource.gender", wantGenders),
				wantIssue(outcome.CodeStructure, "Bundle.entry[0].resource.name[0].given[0]", "wrong JSON type: expected string, found boolean"),
				wantIssue(outcome.CodeRequired, "Bundle.entry[2].resource.code", `missing required element "code"`),
			},
		},
		{
			name: "resource contained in a Bundle entry",
			resource: `{"resourceType":"Bundle","type":"collection","entry":[
				{"resource":{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"},
				 "medicationReference":{"reference":"#m"},"contained":[{"resourceType":"Medication","id":"m","form":"tablet"}]}}]}`,
			want: []outcome.Issue{
				wantIssue(outcome.CodeStructure, "Bundle.entry[0].resource.contained[0].form", "wrong JSON type: expected object, found string"),
			},
		},
		{
			// As published the schema has no "type": "object" on complex types;
			// NewValidator adds it.
			name:     "string for a CodeableConcept",
			resource: `{"resourceType":"Observation","status":"final","code":"8302-2","subject":7}`,
			want: []outcome.Issue{
				wantIssue(outcome.CodeStructure, "Observation.code", "wrong JSON type: expected object, found string"),
				wantIssue(outcome.CodeStructure, "Observation.subject", "wrong JSON type: expected object, found number"),
			},
		},
		{
			name:     "unknown resourceType",
			resource: `{"resourceType":"Spaceship","id":"x"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeInvalid, "resourceType", "resourceType is not one of the 146 FHIR R4 resource types")},
		},
		{
			name:     "resourceType not a string",
			resource: `{"resourceType":7}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeInvalid, "resourceType", "resourceType is not one of the 146 FHIR R4 resource types")},
		},
		{
			name:     "missing resourceType",
			resource: `{"id":"x","gender":"male"}`,
			want:     []outcome.Issue{wantIssue(outcome.CodeInvalid, "resourceType", "resourceType is missing")},
		},
		{
			name:     "valid minimal resource",
			resource: `{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1974-12-25"}`,
			want:     nil,
		},
	}
	v := sharedValidator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := issuesOf(t, v.Validate(decodeNumbers(t, []byte(tt.resource))))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDiagnosticsNeverEchoValues puts recognisable values where they fail and
// checks that no diagnostics text repeats them.
func TestDiagnosticsNeverEchoValues(t *testing.T) {
	const secret = "Zorglub1974"
	resource := `{"resourceType":"Patient","id":"` + secret + ` !","gender":"` + secret + `","active":"` + secret + `",
		"birthDate":"` + secret + `","deceasedDateTime":"` + secret + `","multipleBirthInteger":"` + secret + `",
		"name":[{"use":"` + secret + `","given":[{"v":"` + secret + `"}]}],
		"contained":[{"resourceType":"` + secret + `"},{"resourceType":"Observation","status":"` + secret + `","code":{"text":7}}],
		"telecom":[{"system":"email","value":["` + secret + `"]}]}`
	got := issuesOf(t, sharedValidator(t).Validate(decodeNumbers(t, []byte(resource))))
	if len(got) < 10 {
		t.Fatalf("want at least 10 issues, got %d: %v", len(got), got)
	}
	for _, is := range got {
		if strings.Contains(is.Diagnostics, secret) || strings.Contains(strings.Join(is.Expression, ","), secret) {
			t.Errorf("issue repeats the value: %+v", is)
		}
	}
	if msg := (&outcome.Error{Issues: got}).Error(); strings.Contains(msg, secret) {
		t.Errorf("Error() repeats the value: %s", msg)
	}
}

// TestEmbeddedSchema checks that the embedded file is the published one
// (SCHEMA-SOURCE.md) and that the in-memory changes of prepare touch what
// schema.go says they touch.
func TestEmbeddedSchema(t *testing.T) {
	sum := sha256.Sum256(schemaJSON)
	if got, want := hex.EncodeToString(sum[:]), "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d"; got != want {
		t.Errorf("sha256(fhir.schema.json) = %s, want %s: the embedded schema must stay verbatim", got, want)
	}
	v := sharedValidator(t)
	if got, want := len(v.primitives), 18; got != want {
		t.Errorf("%d primitive types with a pattern, want %d", got, want)
	}
	if got, want := len(v.inlined), 2573; got != want {
		t.Errorf("%d properties with an inlined primitive, want %d", got, want)
	}
}

func TestResourceTypes(t *testing.T) {
	got := ResourceTypes()
	if len(got) != 146 {
		t.Errorf("len(ResourceTypes()) = %d, want 146", len(got))
	}
	if !slices.IsSorted(got) {
		t.Error("ResourceTypes() is not sorted")
	}
	got[0] = "Mutated"
	if ResourceTypes()[0] == "Mutated" {
		t.Error("ResourceTypes() returns the package's own slice")
	}
	tests := []struct {
		name string
		want bool
	}{
		{"Patient", true},
		{"Bundle", true},
		{"EffectEvidenceSynthesis", true}, // R4 only
		{"MedicinalProduct", true},        // R4 only
		{"Resource", false},               // abstract
		{"DomainResource", false},         // abstract
		{"HumanName", false},              // data type
		{"patient", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsResourceType(tt.name); got != tt.want {
				t.Errorf("IsResourceType(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// TestValidateConcurrent compiles types from many goroutines at once on a
// fresh Validator (run with -race).
func TestValidateConcurrent(t *testing.T) {
	v, err := NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	var resources []map[string]any
	for _, name := range testdataExamples {
		resources = append(resources, readResource(t, testdataPath(name)))
	}
	bad := decodeNumbers(t, []byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Specimen","status":"lost"}}]}`))
	var wg sync.WaitGroup
	errs := make(chan error, 8*(len(resources)+1))
	for range 8 {
		wg.Go(func() {
			for _, r := range resources {
				errs <- v.Validate(r)
			}
			if err := v.Validate(bad); err == nil {
				errs <- errors.New("invalid Specimen.status accepted")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestReportDeduplicates(t *testing.T) {
	r := issueReport{seen: map[issueKey]bool{}}
	r.add(outcome.CodeValue, "Patient.gender", "value is not one of %s", "x")
	r.add(outcome.CodeValue, "Patient.gender", "value is not one of %s", "x")
	r.add(outcome.CodeValue, "Patient.name", "value is not one of %s", "x")
	want := []outcome.Issue{
		wantIssue(outcome.CodeValue, "Patient.gender", "value is not one of x"),
		wantIssue(outcome.CodeValue, "Patient.name", "value is not one of x"),
	}
	if diff := cmp.Diff(want, r.issues); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
}

func TestFHIRPath(t *testing.T) {
	resource := map[string]any{
		"name":      []any{map[string]any{"given": []any{"a", "b"}}},
		"contained": []any{map[string]any{"resourceType": "Practitioner", "1": "odd"}},
	}
	tests := []struct {
		loc  []string
		want string
	}{
		{nil, "Patient"},
		{[]string{"name", "0", "given", "1"}, "Patient.name[0].given[1]"},
		{[]string{"contained", "0", "1"}, "Patient.contained[0].1"},
		{[]string{"name", "3", "given"}, "Patient.name[3].given"}, // out of range: still rendered
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := fhirPath("Patient", resource, tt.loc); got != tt.want {
				t.Errorf("fhirPath(%q) = %q, want %q", tt.loc, got, tt.want)
			}
		})
	}
}

// BenchmarkValidate measures one validation of typical resources, schemas
// already compiled. The hub must ingest >= 10,000 resources/s on 2 cores.
func BenchmarkValidate(b *testing.B) {
	v := sharedValidator(b)
	for _, name := range []string{"Observation-example.json", "Patient-example.json", "Condition-example.json", "Bundle-bundle-transaction.json"} {
		r := readResource(b, testdataPath(name))
		if err := v.Validate(r); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		b.Run(strings.TrimSuffix(name, ".json"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Validate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	bad := decodeNumbers(b, []byte(`{"resourceType":"Patient","id":"a b","gender":"robot","birthDate":"May","name":[{"given":[1]}],"colour":"red"}`))
	b.Run("Patient-5-issues", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := v.Validate(bad); err == nil {
				b.Fatal("no issues")
			}
		}
	})
}

// BenchmarkValidateSynthea validates, in turn, every resource of the Synthea
// patient bundles of the corpus (Observation, Claim, ExplanationOfBenefit,
// Encounter…, 1,539 resources): ns/op is the mean cost of one resource.
func BenchmarkValidateSynthea(b *testing.B) {
	files, err := filepath.Glob(filepath.Join(synthea, "*_*.json"))
	if err != nil {
		b.Fatal(err)
	}
	if len(files) == 0 {
		b.Skip("corpus ../shared/corpus absent: the Synthea bundles live in shared/ beside the repository (" + synthea + ")")
	}
	v := sharedValidator(b)
	var resources []map[string]any
	for _, f := range files {
		entries, _ := readResource(b, f)["entry"].([]any)
		for _, e := range entries {
			r := e.(map[string]any)["resource"].(map[string]any)
			if err := v.Validate(r); err != nil {
				b.Fatalf("%s: %v", filepath.Base(f), err)
			}
			resources = append(resources, r)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if err := v.Validate(resources[i%len(resources)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkCompile measures, per op, NewValidator and then compiling every
// resource type in turn on the shared compiler: new-ms is NewValidator (decode
// the schema, check it against the metaschema), first-ms the first type
// (Patient, which also compiles the shared data types), type-ms the mean of
// the other 145 types.
func BenchmarkCompile(b *testing.B) {
	var newValidator, first, rest time.Duration
	for b.Loop() {
		start := time.Now()
		v, err := NewValidator()
		if err != nil {
			b.Fatal(err)
		}
		newValidator += time.Since(start)
		start = time.Now()
		if _, err := v.schema("Patient"); err != nil {
			b.Fatal(err)
		}
		first += time.Since(start)
		start = time.Now()
		for _, name := range ResourceTypes() {
			if _, err := v.schema(name); err != nil {
				b.Fatal(err)
			}
		}
		rest += time.Since(start)
	}
	ms := func(d time.Duration, n int) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	b.ReportMetric(ms(newValidator, b.N), "new-ms")
	b.ReportMetric(ms(first, b.N), "first-ms")
	b.ReportMetric(ms(rest, b.N*(len(ResourceTypes())-1)), "type-ms")
}
