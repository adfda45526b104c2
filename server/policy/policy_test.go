package policy

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"testing/fstest"

	"github.com/parcours-sante/parcours/policies"
)

// TestFailClosed: a policy that cannot decide denies.
func TestFailClosed(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		module string
		reason string
	}{
		{"undefined decision", "package parcours.authz\nother := true", "policy-undefined"},
		{"not an object", "package parcours.authz\ndecision := \"yes\"", "policy-result-malformed"},
		{"allow not boolean", "package parcours.authz\ndecision := {\"allow\": \"true\"}", "policy-result-malformed"},
		{"evaluation error", "package parcours.authz\ndecision := {\"allow\": true, \"x\": 1 / 0}", "policy-evaluation-error"},
		{"conflicting rules", "package parcours.authz\ndecision := {\"allow\": true} if input.a\ndecision := {\"allow\": false} if input.a", "policy-evaluation-error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(ctx, fstest.MapFS{"p.rego": {Data: []byte(tt.module)}})
			if err != nil {
				// A policy rejected at preparation never serves: also closed.
				return
			}
			d, err := e.Decide(ctx, map[string]any{"a": true})
			if d.Allow {
				t.Fatalf("decision allowed: %+v", d)
			}
			if err == nil {
				t.Error("no error reported for a policy that could not decide")
			}
			if len(d.Reasons) != 1 || d.Reasons[0] != tt.reason {
				t.Errorf("reasons %v, want [%s]", d.Reasons, tt.reason)
			}
		})
	}
	if _, err := New(ctx, fstest.MapFS{"data.json": {Data: []byte(`{}`)}}); err == nil {
		t.Error("New without any policy module succeeded")
	}
	if _, err := New(ctx, fstest.MapFS{"p.rego": {Data: []byte("package parcours.authz\ndecision := {")}}); err == nil {
		t.Error("New with a syntax error succeeded")
	}
}

// TestRevision: the revision is a hash of the policy files (tests excluded).
func TestRevision(t *testing.T) {
	ctx := context.Background()
	mod := []byte("package parcours.authz\ndecision := {\"allow\": false}")
	a, err := New(ctx, fstest.MapFS{"p.rego": {Data: mod}, "p_test.rego": {Data: []byte("package x")}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(ctx, fstest.MapFS{"p.rego": {Data: mod}})
	c, _ := New(ctx, fstest.MapFS{"p.rego": {Data: append(mod, '\n')}})
	if a.Revision() != b.Revision() || a.Revision() == c.Revision() || len(a.Revision()) != 64 {
		t.Errorf("revisions a=%s b=%s c=%s: want a==b, a!=c, 64 hex digits", a.Revision(), b.Revision(), c.Revision())
	}
	d, err := a.Decide(ctx, map[string]any{})
	if err != nil || d.Revision != a.Revision() {
		t.Errorf("decision revision %q (err %v), want %q", d.Revision, err, a.Revision())
	}
}

// embedded returns the engine over the real policies.
func embedded(t testing.TB) *Engine {
	t.Helper()
	e, err := New(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func gpRead(now string) map[string]any {
	return map[string]any{
		"now": now,
		"subject": map[string]any{"sub": "dr", "actor_type": "gp", "org": "https://finess.esante.gouv.fr|750000001", "rpps": "10000000029",
			"care_teams": []any{}, "purposes": []any{"TREAT"}},
		"purpose": "TREAT", "break_glass": nil, "interaction": "read", "resource_type": "Observation", "aggregate": false,
		"resource": map[string]any{"type": "Observation", "id": "o1", "source_actor": "hospital-it", "source_org": "https://finess.esante.gouv.fr|750712184", "security_labels": []any{}},
		"patient":  map[string]any{"pseudonym": "p-1", "is_self": false, "care_team": map[string]any{"member": true, "via": []any{"encounter"}}, "consents": []any{}},
	}
}

func TestEmbeddedDecision(t *testing.T) {
	e := embedded(t)
	d, err := e.Decide(context.Background(), gpRead("2026-11-22T10:00:00Z"))
	if err != nil || !d.Allow || len(d.LegalBasis) == 0 {
		t.Fatalf("gp in the care team reading for TREAT: %+v, %v", d, err)
	}
	in := gpRead("2026-11-22T10:00:00Z")
	in["purpose"] = "underwriting-pricing"
	if d, _ := e.Decide(context.Background(), in); d.Allow || !d.Has("alert") {
		t.Errorf("pricing: %+v, want a deny with an alert obligation", d)
	}
	// The second identical question is answered from the memo.
	if d, _ := e.Decide(context.Background(), gpRead("2026-11-22T10:00:00Z")); !d.Cached {
		t.Error("identical input not memoised")
	}
}

// BenchmarkDecide measures one policy evaluation (memo bypassed: each
// input differs by its time) and one memoised decision.
func BenchmarkDecide(b *testing.B) {
	e := embedded(b)
	ctx := context.Background()
	b.Run("evaluate", func(b *testing.B) {
		ins := make([]map[string]any, 0, 4096)
		for i := 0; i < 4096; i++ {
			ins = append(ins, gpRead("2026-11-22T10:"+two(i/60%60)+":"+two(i%60)+"Z"))
			ins[i]["subject"].(map[string]any)["sub"] = "dr" + two(i)
		}
		i := 0
		for b.Loop() {
			e.mu.Lock()
			e.cache = map[string]Decision{}
			e.mu.Unlock()
			if d, err := e.Decide(ctx, ins[i%len(ins)]); err != nil || !d.Allow {
				b.Fatal(d, err)
			}
			i++
		}
	})
	b.Run("memoised", func(b *testing.B) {
		in := gpRead("2026-11-22T10:00:00Z")
		for b.Loop() {
			if d, err := e.Decide(ctx, in); err != nil || !d.Allow {
				b.Fatal(d, err)
			}
		}
	})
}

func two(n int) string { return string([]byte{byte('0' + n/10%10), byte('0' + n%10)}) }

// keyed is an input whose memo key leaves input.resource.id out, as a
// Keyer leaves the audit-only fields out.
type keyed map[string]any

func (k keyed) AppendMemoKey(b []byte) []byte {
	c := maps.Clone(map[string]any(k))
	if r, ok := c["resource"].(map[string]any); ok {
		r = maps.Clone(r)
		delete(r, "id")
		c["resource"] = r
	}
	j, err := json.Marshal(c)
	if err != nil {
		panic(err)
	}
	return append(b, j...)
}

// TestMemoKeyAuditOnly: the memo leaves audit-only fields out only when no
// rule reads them.
func TestMemoKeyAuditOnly(t *testing.T) {
	ctx := context.Background()
	if !embedded(t).auditOnlyUnused {
		t.Error("the embedded policies reference an audit-only field (policy.AuditOnly)")
	}
	reads := "package parcours.authz\ndecision := {\"allow\": input.resource.id == \"a\"}"
	e, err := New(ctx, fstest.MapFS{"p.rego": {Data: []byte(reads)}})
	if err != nil {
		t.Fatal(err)
	}
	if e.auditOnlyUnused {
		t.Fatal("a policy reading input.resource.id was not detected")
	}
	a, _ := e.Decide(ctx, keyed{"resource": map[string]any{"id": "a"}})
	b, _ := e.Decide(ctx, keyed{"resource": map[string]any{"id": "b"}})
	if !a.Allow || b.Allow {
		t.Errorf("decisions %v %v: the memo must not merge inputs that differ in a field the policy reads", a.Allow, b.Allow)
	}
	// With rules that do not read it, the memo key leaves the id out: the
	// second resource is answered from the memo.
	ignores := "package parcours.authz\ndecision := {\"allow\": input.resource.type == \"Observation\"}"
	if e, err = New(ctx, fstest.MapFS{"p.rego": {Data: []byte(ignores)}}); err != nil {
		t.Fatal(err)
	}
	a, _ = e.Decide(ctx, keyed{"resource": map[string]any{"type": "Observation", "id": "a"}})
	b, _ = e.Decide(ctx, keyed{"resource": map[string]any{"type": "Observation", "id": "b"}})
	c, _ := e.Decide(ctx, keyed{"resource": map[string]any{"type": "Patient", "id": "a"}})
	if !a.Allow || a.Cached || !b.Allow || !b.Cached || c.Allow || c.Cached {
		t.Errorf("decisions (allow, cached) a=(%v %v) b=(%v %v) c=(%v %v), want (true false) (true true) (false false)", a.Allow, a.Cached, b.Allow, b.Cached, c.Allow, c.Cached)
	}
}
