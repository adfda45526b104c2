package server

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/store"
)

// fullInput is a policy input with every field set: pointers non-nil and
// lists non-empty, down to the consent provisions' period.
func fullInput() *policyInput {
	return &policyInput{
		Now:     "2026-11-22T10:00:00Z",
		Subject: subjectIn{Sub: "dr", ActorType: "gp", Org: "org", RPPS: "rpps", Patient: "Patient/1", CareTeams: []string{"CareTeam/1"}, Purposes: []string{"TREAT"}},
		Purpose: "TREAT", BreakGlass: &btgIn{Reason: "r", Started: "s", Expires: "e"},
		Interaction: "read", Operation: "op", ResourceType: "Observation", IngestSource: "city", Aggregate: true, MeasureTopics: []string{"t"},
		Resource: &resourceIn{Type: "Observation", ID: "o1", SourceActor: "hospital-it", SourceOrg: "org", SecurityLabels: []string{"R"}},
		Patient: &patientIn{CareTeams: []string{"CareTeam/2"}, Pseudonym: "p-1", IsSelf: true, CareTeam: careTeamIn{Member: true, Via: []string{"encounter"}},
			Consents: []consentIn{{ID: "Consent/1", Status: "active", Scope: "treatment", Policy: "OPTOUT", Provisions: []provisionIn{{
				Type: "deny", Actors: []string{"a"}, Purposes: []string{"p"}, Classes: []string{"c"}, SecurityLabels: []string{"s"}, Period: &periodIn{Start: "s", End: "e"}}}}}},
	}
}

// policyView is what the policy may read of an input: its JSON without
// the audit-only fields (policy.AuditOnly).
func policyView(t *testing.T, in *policyInput) string {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{"subject", "sub"}, {"resource", "id"}, {"patient", "pseudonym"}} {
		if o, ok := m[f[0]].(map[string]any); ok {
			delete(o, f[1])
		}
	}
	b, _ = json.Marshal(m)
	return string(b)
}

// step is one move down a value: a struct field, a list item or a pointer.
type step struct {
	field, item int // -1 when not this kind of step
}

// leafPaths lists the paths to every field, list and pointer under v.
func leafPaths(v reflect.Value, path []step, out *[][]step) {
	switch v.Kind() {
	case reflect.Pointer:
		*out = append(*out, path)
		if !v.IsNil() {
			leafPaths(v.Elem(), append(path[:len(path):len(path)], step{-1, -1}), out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			leafPaths(v.Field(i), append(path[:len(path):len(path)], step{i, -1}), out)
		}
	case reflect.Slice:
		*out = append(*out, path)
		for i := range v.Len() {
			leafPaths(v.Index(i), append(path[:len(path):len(path)], step{-1, i}), out)
		}
	default:
		*out = append(*out, path)
	}
}

func walk(v reflect.Value, path []step) (reflect.Value, string) {
	name := ""
	for _, s := range path {
		switch {
		case s.field >= 0:
			name += "." + v.Type().Field(s.field).Name
			v = v.Field(s.field)
		case s.item >= 0:
			name += fmt.Sprintf("[%d]", s.item)
			v = v.Index(s.item)
		default:
			v = v.Elem()
		}
	}
	return v, name
}

// mutations are the changes tried on a value of each kind.
func mutations(v reflect.Value) map[string]func(reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		return map[string]func(reflect.Value){"append x": func(v reflect.Value) { v.SetString(v.String() + "x") }}
	case reflect.Bool:
		return map[string]func(reflect.Value){"flip": func(v reflect.Value) { v.SetBool(!v.Bool()) }}
	case reflect.Pointer:
		return map[string]func(reflect.Value){"nil": func(v reflect.Value) { v.SetZero() }}
	case reflect.Slice:
		return map[string]func(reflect.Value){
			"nil":    func(v reflect.Value) { v.SetZero() },
			"empty":  func(v reflect.Value) { v.Set(reflect.MakeSlice(v.Type(), 0, 0)) },
			"longer": func(v reflect.Value) { v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem()))) },
		}
	}
	return nil
}

// TestMemoKeyFields: two inputs get the same memo key exactly when the
// policy sees the same input, field by field: changing any field the
// policy reads changes the key, changing an audit-only or hidden field
// does not. A field added to the input without its place in
// AppendMemoKey fails here.
func TestMemoKeyFields(t *testing.T) {
	base := fullInput()
	baseKey, baseView := string(base.AppendMemoKey(nil)), policyView(t, base)
	var paths [][]step
	leafPaths(reflect.ValueOf(base).Elem(), nil, &paths)
	if len(paths) < 40 {
		t.Fatalf("%d field paths: the walk missed fields", len(paths))
	}
	tried := 0
	for _, path := range paths {
		v, name := walk(reflect.ValueOf(base).Elem(), path)
		for what, mutate := range mutations(v) {
			t.Run(name+"/"+what, func(t *testing.T) {
				in := fullInput()
				target, _ := walk(reflect.ValueOf(in).Elem(), path)
				mutate(target)
				viewChanged := policyView(t, in) != baseView
				keyChanged := string(in.AppendMemoKey(nil)) != baseKey
				if viewChanged != keyChanged {
					t.Errorf("policy view changed %v, memo key changed %v: want the same", viewChanged, keyChanged)
				}
				tried++
			})
		}
	}
	// The audit-only fields and patient.CareTeams (not in the input) are
	// among those tried, and leave the key alone.
	for _, f := range []func(*policyInput){
		func(in *policyInput) { in.Subject.Sub = "other" },
		func(in *policyInput) { in.Resource.ID = "other" },
		func(in *policyInput) { in.Patient.Pseudonym = "p-other" },
		func(in *policyInput) { in.Patient.CareTeams = nil },
	} {
		in := fullInput()
		f(in)
		if got := string(in.AppendMemoKey(nil)); got != baseKey {
			t.Errorf("an audit-only or hidden field changed the memo key: %+v", in)
		}
	}
	if tried < 60 {
		t.Errorf("%d mutations tried: the walk missed fields", tried)
	}
}

// TestMemoKeyNoAmbiguity: values that run into each other's fields give
// different keys (lengths prefix every string and list).
func TestMemoKeyNoAmbiguity(t *testing.T) {
	pairs := []struct {
		name string
		a, b func(*policyInput)
	}{
		{"string boundary", func(in *policyInput) { in.Subject.Org, in.Subject.RPPS = "ab", "c" }, func(in *policyInput) { in.Subject.Org, in.Subject.RPPS = "a", "bc" }},
		{"list boundary", func(in *policyInput) { in.Subject.CareTeams, in.Subject.Purposes = []string{"a", "b"}, []string{"c"} }, func(in *policyInput) { in.Subject.CareTeams, in.Subject.Purposes = []string{"a"}, []string{"b", "c"} }},
		{"nil and empty list", func(in *policyInput) { in.MeasureTopics = nil }, func(in *policyInput) { in.MeasureTopics = []string{} }},
		{"empty list and one empty string", func(in *policyInput) { in.MeasureTopics = []string{} }, func(in *policyInput) { in.MeasureTopics = []string{""} }},
		{"absent and empty break glass", func(in *policyInput) { in.BreakGlass = nil }, func(in *policyInput) { in.BreakGlass = &btgIn{} }},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			a, b := fullInput(), fullInput()
			p.a(a)
			p.b(b)
			if string(a.AppendMemoKey(nil)) == string(b.AppendMemoKey(nil)) {
				t.Errorf("same key for %s and %s", policyView(t, a), policyView(t, b))
			}
		})
	}
}

// patientContextBefore is patientContext as it was before it read fewer
// indexes (a Has per caller key and a Lookup per CareTeam of the patient,
// the patient's registration from the index): the reference of
// TestPatientContextSame.
func patientContextBefore(s *Server, tx *store.Tx, cl *caller, patient string) *patientIn {
	p := &patientIn{Pseudonym: s.patientPseudonym(tx, "audit", patient), IsSelf: cl.claims.Patient != "" && cl.claims.Patient == patient, Consents: []consentIn{}}
	var keys []string
	if cl.claims.Org != "" {
		keys = append(keys, cl.claims.Org)
	}
	if cl.claims.RPPS != "" {
		keys = append(keys, rppsSystem+"|"+cl.claims.RPPS)
	}
	// The caller's organisation registered the patient or recorded a stay
	// or an episode of care for them.
	for typ, via := range map[string]string{"Patient": "registration", "Encounter": "encounter", "EpisodeOfCare": "episodeofcare"} {
		if cl.claims.Org != "" && tx.Has(typ, paramRecorded, patient+"|"+cl.claims.Org) {
			p.CareTeam.Via = append(p.CareTeam.Via, via)
		}
	}
	slices.Sort(p.CareTeam.Via)
	member := false
	for _, k := range append(keys, cl.claims.CareTeams...) {
		if tx.Has("CareTeam", paramMember, patient+"|"+k) {
			member = true
		}
	}
	if member {
		p.CareTeam.Via = append(p.CareTeam.Via, "careteam")
	}
	// The CareTeams of this patient that list the caller, so that a
	// consent naming one of them binds its members.
	for _, id := range tx.Lookup("CareTeam", paramPatient, patient) {
		for _, k := range keys {
			if tx.Has("CareTeam", paramMember, patient+"|"+k) && slices.Contains(tx.Lookup("CareTeam", paramMember, patient+"|"+k), id) {
				p.CareTeams = append(p.CareTeams, "CareTeam/"+id)
				break
			}
		}
	}
	p.CareTeam.Member = len(p.CareTeam.Via) > 0
	p.CareTeam.Via = nonNil(p.CareTeam.Via)
	for _, id := range tx.Lookup("Consent", paramConsent, patient) {
		if r, err := tx.Get("Consent", id); err == nil && !r.Deleted() {
			p.Consents = append(p.Consents, s.consentSummary(tx, r))
		}
	}
	return p
}

// TestPatientContextSame: the patient context read with fewer index reads,
// with and without the target being the patient itself, is the one read
// before, for every dev caller (and two carrying CareTeams, one a patient
// claim) and patients related to them by registration, stays, episodes,
// CareTeams (by identifier, reference and CareTeam claim) and consents.
func TestPatientContextSame(t *testing.T) {
	h := newSecureHub(t)
	ctx := context.Background()
	src := func(actor, org string) map[string]any {
		return map[string]any{"source": sourcePrefix + actor + ":" + org}
	}
	ident := func(system, value string) map[string]any {
		return map[string]any{"identifier": map[string]any{"system": system, "value": value}}
	}
	ref := func(r string) map[string]any { return map[string]any{"reference": r} }
	var patients []string
	var careTeam string
	put := func(typ string, res map[string]any) string {
		t.Helper()
		id := store.NewID()
		res["resourceType"] = typ
		if err := h.s.db.Update(ctx, func(tx *store.Tx) error { _, err := tx.Put(typ, id, res); return err }); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, org := range []string{auth.DevHospital, auth.DevPractice, "https://finess.esante.gouv.fr|000000000", ""} {
		meta := map[string]any{}
		if org != "" {
			meta = src("hospital-it", org)
		}
		patients = append(patients, "Patient/"+put("Patient", map[string]any{"meta": meta, "name": []any{map[string]any{"family": "X"}}}))
	}
	put("Encounter", map[string]any{"meta": src("hospital-it", auth.DevHospital), "status": "finished", "class": map[string]any{"code": "IMP"}, "subject": ref(patients[1])})
	put("EpisodeOfCare", map[string]any{"meta": src("hospital-it", auth.DevHospital), "status": "active", "patient": ref(patients[2])})
	// CareTeams: two of patient 0 naming the GP (RPPS) and the hospital,
	// one of patient 2 naming the practice, one listing patients 1 and 3
	// and a Practitioner by reference.
	careTeam = put("CareTeam", map[string]any{"status": "active", "subject": ref(patients[0]), "participant": []any{map[string]any{"member": ident(rppsSystem, "10000000029")}}})
	put("CareTeam", map[string]any{"status": "active", "subject": ref(patients[0]), "managingOrganization": []any{ident("https://finess.esante.gouv.fr", "750712184")},
		"participant": []any{map[string]any{"member": ident(rppsSystem, "10000000029")}}})
	put("CareTeam", map[string]any{"status": "active", "subject": ref(patients[2]), "participant": []any{map[string]any{"member": ident("https://finess.esante.gouv.fr", "750000001")}}})
	shared := put("CareTeam", map[string]any{"status": "active", "subject": ref(patients[1]), "participant": []any{map[string]any{"member": ref(patients[3])}, map[string]any{"member": ref("Practitioner/x")}}})
	put("Consent", map[string]any{"status": "active", "scope": map[string]any{"coding": []any{map[string]any{"code": "patient-privacy"}}}, "patient": ref(patients[0]),
		"provision": map[string]any{"type": "deny", "actor": []any{map[string]any{"reference": ref("CareTeam/" + careTeam)}}}})
	deleted := put("Consent", map[string]any{"status": "active", "patient": ref(patients[1])})
	if err := h.s.db.Update(ctx, func(tx *store.Tx) error { _, err := tx.Delete("Consent", deleted); return err }); err != nil {
		t.Fatal(err)
	}

	claims := auth.DevUsers()
	extra := devClaims(t, "gp").Claims
	extra.CareTeams, extra.Patient = []string{"CareTeam/" + careTeam}, patients[0]
	claims = append(claims, extra)
	// A caller tied to patients 1 and 3 by a CareTeam claim only.
	byClaim := devClaims(t, "programme-operator").Claims
	byClaim.CareTeams = []string{"CareTeam/" + shared}
	claims = append(claims, byClaim)
	var compared, members, registered, teamsAndConsents int
	err := h.s.db.View(func(tx *store.Tx) error {
		for _, c := range claims {
			cl := &caller{claims: &c}
			for _, p := range patients {
				id := p[len("Patient/"):]
				cur, err := tx.Get("Patient", id)
				if err != nil {
					return err
				}
				want := patientContextBefore(h.s, tx, cl, p)
				self := &target{typ: "Patient", id: id, access: storedAccess(tx, "Patient", id), version: cur.Version}
				other := &target{typ: "Observation", id: "o", access: storedAccess(tx, "Patient", id)}
				for name, tg := range map[string]*target{"no target": nil, "the patient": self, "another resource": other} {
					if diff := cmp.Diff(want, h.s.patientContext(tx, cl, p, tg)); diff != "" {
						t.Errorf("%s reading %s, %s: patient context (-before +now):\n%s", c.ActorType, p, name, diff)
					}
					compared++
				}
				if want.CareTeam.Member {
					members++
				}
				if slices.Contains(want.CareTeam.Via, "registration") {
					registered++
				}
				if slices.Contains(want.CareTeam.Via, "careteam") && len(want.CareTeams) > 0 && len(want.Consents) > 0 {
					teamsAndConsents++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The data relates some callers to some patients, by registration and
	// through CareTeams with consents too: not only empty contexts are
	// compared.
	if members == 0 || members == compared/3 || registered == 0 || teamsAndConsents == 0 {
		t.Errorf("%d contexts compared, %d with care-team membership, %d by registration, %d with CareTeams and consents: want some of each, and some without membership",
			compared, members*3, registered*3, teamsAndConsents*3)
	}
}

// TestPseudonymMemo: one entry per domain and patient, replaced by a new
// version's, and the memo bounded.
func TestPseudonymMemo(t *testing.T) {
	var m pseudonymMemo
	k := pseudonymKey{domain: "audit", id: "1"}
	m.put(k, 1, "p-a")
	if p, ok := m.get(k, 1); !ok || p != "p-a" {
		t.Errorf("get version 1: %q %v, want p-a true", p, ok)
	}
	if _, ok := m.get(k, 2); ok {
		t.Error("a pseudonym of version 1 answered for version 2")
	}
	m.put(k, 2, "p-b")
	if p, ok := m.get(k, 2); !ok || p != "p-b" || len(m.m) != 1 {
		t.Errorf("after version 2: %q %v with %d entries, want p-b true with 1", p, ok, len(m.m))
	}
	if _, ok := m.get(pseudonymKey{domain: "research", id: "1"}, 2); ok {
		t.Error("a pseudonym of the audit domain answered for research")
	}
	for i := range maxPseudonyms + 1 {
		m.put(pseudonymKey{domain: "audit", id: fmt.Sprint(i)}, 1, "p")
	}
	if n := len(m.m); n > maxPseudonyms || n == 0 {
		t.Errorf("%d entries after %d patients, want at most %d", n, maxPseudonyms+1, maxPseudonyms)
	}
}
