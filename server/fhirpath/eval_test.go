package fhirpath

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func decode(t testing.TB, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

const (
	namesExt = `{"resourceType": "Patient", "id": "p",
		"name": [{"given": [null, "James"], "_given": [{"extension": [{"url": "u", "valueString": "five"}]}]}],
		"birthDate": "1974-12-25", "_birthDate": {"extension": [{"url": "t", "valueDateTime": "1974-12-25T14:35:45-05:00"}]}}`
	obsString = `{"resourceType": "Observation", "status": "final", "code": {"text": "x"},
		"valueString": "high", "_valueString": {"id": "v1"},
		"subject": {"reference": "Patient/123"}, "performer": [{"reference": "#pr"}, {"reference": "urn:uuid:1"}],
		"contained": [{"resourceType": "Practitioner", "id": "pr", "name": [{"family": "Dr"}]}]}`
)

func TestEvaluateTyped(t *testing.T) {
	patient := decode(t, namesExt)
	obs := decode(t, obsString)
	tests := []struct {
		expr  string
		input any
		want  []TypedValue
	}{
		{"Patient.birthDate", patient, []TypedValue{{"1974-12-25", "FHIR.date"}}},
		{"birthDate.extension('t').value", patient, []TypedValue{{"1974-12-25T14:35:45-05:00", "FHIR.dateTime"}}},
		{"name.given", patient, []TypedValue{{nil, "FHIR.string"}, {"James", "FHIR.string"}}},
		{"name.given.select($this.hasValue())", patient, []TypedValue{{false, "System.Boolean"}, {true, "System.Boolean"}}},
		{"name.given.first().extension.value", patient, []TypedValue{{"five", "FHIR.string"}}},
		{"name.count()", patient, []TypedValue{{int64(1), "System.Integer"}}},
		{"Observation.value", obs, []TypedValue{{"high", "FHIR.string"}}},
		{"Observation.value.id", obs, []TypedValue{{"v1", "FHIR.string"}}},
		{"Observation.value.ofType(string) = 'high'", obs, []TypedValue{{true, "System.Boolean"}}},
		{"Observation.code.type().name", obs, []TypedValue{{"CodeableConcept", "FHIR.string"}}},
		{"Observation.subject.resolve()", obs, []TypedValue{{map[string]any{"resourceType": "Patient", "id": "123"}, "FHIR.Patient"}}},
		{"Observation.performer.resolve().name.family", obs, []TypedValue{{"Dr", "FHIR.string"}}},
		{"1.5 + 1", nil, []TypedValue{{json.Number("2.5"), "System.Decimal"}}},
		{"1.8 - 1.2", nil, []TypedValue{{json.Number("0.6"), "System.Decimal"}}},
		{"7 div 2", nil, []TypedValue{{int64(3), "System.Integer"}}},
		{"@2014-01-31 + 1 month", nil, []TypedValue{{Date{temporal{kind: kindDate, prec: Day, year: 2014, month: 2, day: 28}}, "System.Date"}}},
		{"4 'mg' * 2", nil, []TypedValue{{Quantity{"8", "mg"}, "System.Quantity"}}},
		{"(1 week).toString()", nil, []TypedValue{{"1 week", "System.String"}}},
		{"'a' | 'b' | 'a'", nil, []TypedValue{{"a", "System.String"}, {"b", "System.String"}}},
		{"{}", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := MustCompile(tt.expr).EvaluateTyped(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(Date{}, temporal{})); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	obs := decode(t, obsString)
	bundle := decode(t, `{"resourceType": "Bundle", "type": "transaction", "entry": [
		{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Practitioner", "id": "a"}},
		{"fullUrl": "urn:uuid:2", "resource": {"resourceType": "Observation", "performer": [{"reference": "urn:uuid:1"}]}}]}`)
	now := time.Date(2020, 2, 3, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		name, expr string
		input      any
		opts       []Option
		want       []any
	}{
		{"env", "%code & '-' & %codes.count().toString()", nil,
			[]Option{WithEnv("code", "x"), WithEnv("codes", []any{"a", "b"})}, []any{"x-2"}},
		{"now", "today() = @2020-02-03 and now() = @2020-02-03T10:30:00.000Z", nil, []Option{WithNow(now)}, []any{true}},
		{"resolver", "Observation.subject.resolve().active", obs,
			[]Option{WithResolver(func(ref string) any {
				if ref == "Patient/123" {
					return map[string]any{"resourceType": "Patient", "active": true}
				}
				return nil
			})}, []any{true}},
		{"bundle", "entry[1].resource.performer.resolve().id", bundle, nil, []any{"a"}},
		{"resource", "%resource.status & ':' & code.text", decode(t, `{"text": "x"}`),
			[]Option{WithResource(obs)}, []any{"final:"}},
		{"resource-root", "%resource.status", decode(t, `{"text": "x"}`), []Option{WithResource(obs)}, []any{"final"}},
		{"memberOf", "Observation.status.memberOf('http://hl7.org/fhir/ValueSet/observation-status')", obs,
			[]Option{WithMemberOf(func(coded any, vs string) (bool, bool) { return coded == "final", true })}, []any{true}},
		{"memberOf-unknown", "Observation.status.memberOf('vs')", obs, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MustCompile(tt.expr).Evaluate(tt.input, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestEvaluateBool(t *testing.T) {
	obs := decode(t, obsString)
	tests := []struct {
		expr    string
		want    bool
		wantErr bool
	}{
		{"status = 'final'", true, false},
		{"status = 'amended'", false, false},
		{"issued.exists()", false, false},
		{"issued > @2020", false, false}, // empty
		{"status", true, false},          // a single non-boolean item
		{"performer", false, true},       // several items
		{"value is string", true, false},
		{"(value as string).startsWith('hi')", true, false},
		{"contained.all(name.exists())", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := MustCompile(tt.expr).EvaluateBool(obs)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUntypedInput(t *testing.T) {
	// Without UseNumber numbers are float64; without resourceType the
	// types are read from the JSON.
	var obs any
	if err := json.Unmarshal([]byte(`{"resourceType": "Observation", "valueQuantity": {"value": 185.5, "code": "[lb_av]"}}`), &obs); err != nil {
		t.Fatal(err)
	}
	ok, err := MustCompile("Observation.value > 80 'kg' and Observation.value.value = 185.5").EvaluateBool(obs)
	if err != nil || !ok {
		t.Errorf("float64 input: %v, %v", ok, err)
	}
	name := decode(t, `{"family": "Doe", "given": ["J"], "period": {"start": "2001"}, "valueInteger": 3}`)
	got, err := MustCompile("family | given | (period.start < @2002).toString() | value.toString()").Evaluate(name)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{"Doe", "J", "true", "3"}, got); diff != "" {
		t.Errorf("untyped object (-want +got)\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	compile := []struct {
		src        string
		line, col  int
		msgContain string
	}{
		{"Patient.name.", 1, 14, "expected a name"},
		{"Patient.name\n  .where(x = )", 2, 14, "unexpected ')'"},
		{"name.foo()", 1, 6, "unknown function foo()"},
		{"name.where()", 1, 6, "where() takes 1 arguments"},
		{"value.ofType(Quantum)", 1, 7, "unknown type Quantum"},
		{"'abc", 1, 1, "unterminated"},
		{"@2015-13-01", 1, 1, "malformed date"},
	}
	for _, tt := range compile {
		_, err := Compile(tt.src)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("Compile(%q) = %v, want a *CompileError", tt.src, err)
			continue
		}
		if ce.Line != tt.line || ce.Column != tt.col || !strings.Contains(ce.Msg, tt.msgContain) {
			t.Errorf("Compile(%q) = %d:%d %q, want %d:%d %q", tt.src, ce.Line, ce.Column, ce.Msg, tt.line, tt.col, tt.msgContain)
		}
	}
	eval := []string{"(1 | 2) + 1", "'a' - 'b'", "1 < 'a'", "name.single()", "%undefined", "(1|2).not()"}
	patient := decode(t, `{"resourceType": "Patient", "name": [{"family": "a"}, {"family": "b"}]}`)
	for _, src := range eval {
		_, err := MustCompile(src).Evaluate(patient)
		var ee *EvalError
		if !errors.As(err, &ee) {
			t.Errorf("Evaluate(%q) = %v, want an *EvalError", src, err)
		}
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	e := MustCompile("Observation.performer.resolve().name.family | Observation.value | (1.5 * 2).toString()")
	obs := decode(t, obsString)
	want, err := e.Evaluate(obs)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				got, err := e.Evaluate(obs)
				if err != nil || !cmp.Equal(want, got) {
					t.Errorf("concurrent evaluation: %v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLocate(t *testing.T) {
	patient := decode(t, namesExt)
	obs := decode(t, obsString)
	pm := patient.(map[string]any)
	name0 := pm["name"].([]any)[0].(map[string]any)
	om := obs.(map[string]any)
	tests := []struct {
		expr  string
		input any
		want  []Location
	}{
		{"Patient.birthDate", patient, []Location{{"1974-12-25", "FHIR.date", pm, "birthDate", -1}}},
		{"Patient.name.given", patient, []Location{{nil, "FHIR.string", name0, "given", 0}, {"James", "FHIR.string", name0, "given", 1}}},
		{"Patient.name.where(given contains 'James')", patient, []Location{{name0, "FHIR.HumanName", pm, "name", 0}}},
		{"Observation.value", obs, []Location{{"high", "FHIR.string", om, "valueString", -1}}},
		{"Observation.performer[1]", obs, []Location{{om["performer"].([]any)[1], "FHIR.Reference", om, "performer", 1}}},
		{"Observation", obs, []Location{{obs, "FHIR.Observation", nil, "", -1}}},
		{"Observation.subject.resolve()", obs, []Location{{map[string]any{"resourceType": "Patient", "id": "123"}, "FHIR.Patient", nil, "", -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := MustCompile(tt.expr).Locate(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
