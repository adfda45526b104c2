package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

// openDB opens a real store in a temporary directory, closed at the end
// of the test.
func openDB(t testing.TB) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "parcours.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// input is a policy input as the server builds it (server/authz.go
// policyInput): types, ids, pseudonyms, labels, consent summaries.
func input(i int, actor, purpose, interaction, typ string) map[string]any {
	return map[string]any{
		"now": "2026-11-22T10:00:00Z",
		"subject": map[string]any{"sub": fmt.Sprintf("user-%d", i%7), "actor_type": actor, "org": "https://finess.esante.gouv.fr|750000001",
			"rpps": "10000000029", "care_teams": []any{}, "purposes": []any{purpose}},
		"purpose": purpose, "break_glass": nil, "interaction": interaction, "resource_type": typ, "aggregate": false,
		"resource": map[string]any{"type": typ, "id": fmt.Sprintf("o-%d", i), "source_actor": "hospital-it",
			"source_org": "https://finess.esante.gouv.fr|750000001", "security_labels": []any{"N"}},
		"patient": map[string]any{"pseudonym": fmt.Sprintf("p-%06x", i%5), "is_self": false,
			"care_team": map[string]any{"member": true, "via": []any{"encounter"}},
			"consents": []any{map[string]any{"id": "Consent/c1", "status": "active", "scope": "patient-privacy", "policy": "OPTOUT",
				"provisions": []any{map[string]any{"type": "deny", "actors": []any{"https://finess.esante.gouv.fr|750000002"},
					"purposes": []any{"TREAT"}, "classes": []any{"Observation"}, "security_labels": []any{"PSY"}}}}}},
	}
}

// sample is the i-th test record: a gp reading an Observation for TREAT,
// allowed, or (every third) a mutual denied.
func sample(i int) Record {
	actor, purpose, allow := "gp", "TREAT", true
	reasons := []string{"care-team-opt-out-no-objection", "cell:gp:TREAT/COC"}
	legal := []string{"GDPR-9-2-h", "CSP-L1110-4"}
	if i%3 == 2 {
		actor, purpose, allow = "mutual-claims", "underwriting-pricing", false
		reasons, legal = []string{"matrix-never"}, []string{"CSP-L1461-1-V"}
	}
	in, _ := json.Marshal(input(i, actor, purpose, "read", "Observation"))
	r := Record{
		DecisionID: store.NewID(),
		Timestamp:  time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano),
		Input:      in,
		TraceID:    fmt.Sprintf("%032x", i+1),
		SpanID:     fmt.Sprintf("%016x", i+1),
		RequestID:  fmt.Sprintf("req-%d", i),
		Labels: map[string]string{
			LabelPurpose: purpose, LabelActorType: actor, LabelSub: fmt.Sprintf("user-%d", i%7), LabelInteraction: "read",
			LabelResourceType: "Observation", LabelResourceID: fmt.Sprintf("o-%d", i), LabelHTTPStatus: "200",
			LabelPatient: fmt.Sprintf("p-%06x", i%5), LabelMethod: "GET", LabelURL: fmt.Sprintf("/fhir/Observation/o-%d", i),
		},
	}
	if !allow {
		r.Labels[LabelHTTPStatus] = "403"
	}
	r.SetDecision(policy.Decision{Allow: allow, Reasons: reasons, LegalBasis: legal, Revision: fmt.Sprintf("%064x", 42), Elapsed: 85 * time.Microsecond})
	return r
}

// fill appends n sample records, one Append each, and returns them as
// stored.
func fill(t testing.TB, l *Log, n int) []Record {
	t.Helper()
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = sample(i)
		if err := l.Append(context.Background(), recs[i:i+1]...); err != nil {
			t.Fatal(err)
		}
	}
	return recs
}

func view[T any](t testing.TB, db *store.DB, fn func(tx *store.Tx) T) T {
	t.Helper()
	var v T
	if err := db.View(func(tx *store.Tx) error { v = fn(tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return v
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
