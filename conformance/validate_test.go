package conformance

import (
	"bytes"
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

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/outcome"
)

// corpusDir holds the official R4 examples (shared/ beside the repository, not in it).
const corpusDir = "../../shared/corpus/fhir-r4-examples/instances"

// exampleSkips lists official examples that genuinely fail the official
// schema, file -> reason. The test fails if a listed file passes or is gone,
// so the list cannot rot. At the time of writing all 685 instances of the
// corpus pass: the one known failure of hl7.fhir.r4.examples (a
// StructureDefinition example) is a definitional resource, left out of the
// corpus.
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

func TestValidateTestdata(t *testing.T) {
	files, err := filepath.Glob("../testdata/fhir/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least 5 examples in testdata/fhir, got %d", len(files))
	}
	v := sharedValidator(t)
	types := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := readResource(t, f)
			types[r["resourceType"].(string)] = true
			if err := v.Validate(r); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	if !types["Bundle"] {
		t.Error("testdata/fhir has no Bundle")
	}
}

// TestValidateFloat64 checks resources decoded without UseNumber.
func TestValidateFloat64(t *testing.T) {
	b, err := os.ReadFile("../testdata/fhir/Observation-example.json")
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
	want := []outcome.Issue{wantIssue(outcome.CodeValue, "Observation.status", codes("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
}

func wantIssue(code, expression, diagnostics string) outcome.Issue {
	return outcome.Issue{Severity: outcome.SeverityError, Code: code, Diagnostics: diagnostics, Expression: []string{expression}}
}

func codes(c ...string) string {
	return "value is not one of the allowed codes " + quoteJoin(c)
}

func quoteJoin(c []string) string {
	q := make([]string, len(c))
	for i, s := range c {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

var genders = codes("male", "female", "other", "unknown")

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
			want:     []outcome.Issue{wantIssue(outcome.CodeValue, "Patient.gender", genders)},
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
				wantIssue(outcome.CodeValue, "Observation.status", codes("registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown")),
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
				wantIssue(outcome.CodeValue, "Patient.telecom[1].system", codes("phone", "fax", "email", "pager", "url", "sms", "other")),
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
				wantIssue(outcome.CodeValue, "Patient.contained[1].gender", genders),
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
				wantIssue(outcome.CodeValue, "Bundle.entry[0].resource.gender", genders),
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
	files, err := filepath.Glob("../testdata/fhir/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var resources []map[string]any
	for _, f := range files {
		resources = append(resources, readResource(t, f))
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
		r := readResource(b, filepath.Join("../testdata/fhir", name))
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

// BenchmarkCompile measures compiling one resource type on a Validator that
// has compiled nothing yet (first type) and one that has compiled Patient.
func BenchmarkCompile(b *testing.B) {
	for _, tt := range []struct{ name, warm, compile string }{
		{"Patient-first", "", "Patient"},
		{"Observation-after-Patient", "Patient", "Observation"},
		{"ExplanationOfBenefit-after-Patient", "Patient", "ExplanationOfBenefit"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				v, err := NewValidator()
				if err != nil {
					b.Fatal(err)
				}
				if tt.warm != "" {
					if _, err := v.schema(tt.warm); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if _, err := v.schema(tt.compile); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
