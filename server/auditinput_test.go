package server

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/internal/jsontest"
)

// fillInput sets v, a policy input or a part of one, to random content
// (jsontest.Fill), so that a field added to the input types is filled too.
func fillInput(rnd *rand.Rand, v reflect.Value, full bool) { jsontest.Fill(rnd, v, full, nil) }

// TestInputJSON: appendJSON writes what json.Marshal writes, byte for
// byte, over random inputs (every optional part absent or present, nil
// and empty lists, strings to escape).
func TestInputJSON(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var in policyInput
		fillInput(rnd, reflect.ValueOf(&in).Elem(), false)
		want, err := json.Marshal(&in)
		if err != nil {
			t.Fatal(err)
		}
		if got := in.appendJSON([]byte("x")); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("input %d: appendJSON differs from encoding/json\n got %s\nwant %s", i, got[1:], want)
		}
	}
	for _, in := range []*policyInput{{}, fullInput()} {
		want, _ := json.Marshal(in)
		if got := in.appendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("appendJSON differs from encoding/json\n got %s\nwant %s", got, want)
		}
	}
}

// TestInputJSONFields fails when the input types gain a field appendJSON
// does not write: an input with every field set writes, at every level,
// every json name of the type there.
func TestInputJSONFields(t *testing.T) {
	var in policyInput
	fillInput(rand.New(rand.NewPCG(3, 4)), reflect.ValueOf(&in).Elem(), true)
	var v any
	if err := json.Unmarshal(in.appendJSON(nil), &v); err != nil {
		t.Fatal(err)
	}
	checkNames(t, "input", reflect.TypeFor[policyInput](), v)
}

// checkNames compares the keys of the decoded JSON v with the json names
// of type typ, down every struct, pointer and list.
func checkNames(t *testing.T, path string, typ reflect.Type, v any) {
	t.Helper()
	switch typ.Kind() {
	case reflect.Pointer:
		checkNames(t, path, typ.Elem(), v)
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			t.Errorf("%s: %v, want a non-empty list", path, v)
			return
		}
		checkNames(t, path+"[0]", typ.Elem(), list[0])
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %v, want an object", path, v)
			return
		}
		var want []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			want = append(want, name)
			checkNames(t, path+"."+name, f.Type, obj[name])
		}
		slices.Sort(want)
		var got []string
		for k := range obj {
			got = append(got, k)
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: fields (-%s +appendJSON):\n%s", path, typ, diff)
		}
	}
}

// TestAuditorsView: the recorded input carries the auditors' pseudonym in
// place of a Patient's own id and of a patient actor's claim, and leaves
// the input decided unchanged.
func TestAuditorsView(t *testing.T) {
	for _, tc := range []struct {
		name                string
		change              func(in *policyInput)
		resourceID, subject string
	}{
		{"a patient reads their Patient", func(in *policyInput) {}, "p-1", "Patient/p-1"},
		{"an Observation", func(in *policyInput) { in.Resource.Type = "Observation" }, "o1", "Patient/p-1"},
		{"another patient's claim", func(in *policyInput) { in.Patient.IsSelf = false }, "p-1", "Patient/pseudonymised"},
		{"no patient in the decision", func(in *policyInput) { in.Patient = nil }, "o1", "Patient/pseudonymised"},
		{"no resource", func(in *policyInput) { in.Resource = nil }, "", "Patient/p-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fullInput()
			in.Resource.Type, in.Resource.ID = "Patient", "o1"
			tc.change(in)
			before, _ := json.Marshal(in)
			var res resourceIn
			view := auditorsView(in, &res)
			after, _ := json.Marshal(in)
			if !bytes.Equal(before, after) {
				t.Errorf("auditorsView changed the input:\n%s\n%s", before, after)
			}
			got := view.appendJSON(nil)
			want, _ := json.Marshal(&view)
			if !bytes.Equal(got, want) {
				t.Errorf("appendJSON of the view differs from encoding/json\n got %s\nwant %s", got, want)
			}
			var dec policyInput
			if err := json.Unmarshal(got, &dec); err != nil {
				t.Fatal(err)
			}
			if dec.Resource != nil && dec.Resource.ID != tc.resourceID || dec.Resource == nil && tc.resourceID != "" {
				t.Errorf("resource %+v, want id %q", dec.Resource, tc.resourceID)
			}
			if dec.Subject.Patient != tc.subject {
				t.Errorf("subject.patient %q, want %q", dec.Subject.Patient, tc.subject)
			}
		})
	}
}

// BenchmarkInputJSON encodes a full input with encoding/json (as record
// did) and with appendJSON (as it does now, on a stack buffer copied once).
//
//	go test ./server/ -run '^$' -bench InputJSON -benchmem
func BenchmarkInputJSON(b *testing.B) {
	in := fullInput()
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var res resourceIn
			view := auditorsView(in, &res)
			if _, err := json.Marshal(&view); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var res resourceIn
			view := auditorsView(in, &res)
			var scratch [2048]byte
			_ = bytes.Clone(view.appendJSON(scratch[:0]))
		}
	})
}
