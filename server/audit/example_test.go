package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/parcours-sante/parcours/policies"
	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

// The server records each decision, durably, before it answers; auditors
// verify the chain and replay decisions.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "parcours.db"), store.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	engine, err := policy.New(ctx, policies.FS)
	if err != nil {
		log.Fatal(err)
	}
	l := audit.New(db)
	// Once per policy revision loaded.
	if err := l.SaveRevision(ctx, engine.Revision(), engine.Sources()); err != nil {
		log.Fatal(err)
	}

	// A mutual asks for a patient's Observation to price a contract.
	input := map[string]any{
		"now":     "2026-11-22T10:00:00Z",
		"subject": map[string]any{"sub": "agent-7", "actor_type": "mutual-claims", "care_teams": []any{}, "purposes": []any{"underwriting-pricing"}},
		"purpose": "underwriting-pricing", "break_glass": nil, "interaction": "read", "resource_type": "Observation", "aggregate": false,
		"resource": map[string]any{"type": "Observation", "id": "o-1", "source_actor": "hospital-it", "source_org": "", "security_labels": []any{}},
		"patient":  map[string]any{"pseudonym": "p-3fa2", "is_self": false, "care_team": map[string]any{"member": false, "via": []any{}}, "consents": []any{}},
	}
	d, _ := engine.Decide(ctx, input)
	raw, _ := json.Marshal(input)
	rec := audit.Record{
		DecisionID: store.NewID(),
		Input:      raw,
		Labels: map[string]string{
			audit.LabelActorType: "mutual-claims", audit.LabelSub: "agent-7", audit.LabelPurpose: "underwriting-pricing",
			audit.LabelInteraction: "read", audit.LabelResourceType: "Observation", audit.LabelPatient: "p-3fa2", audit.LabelHTTPStatus: "403",
		},
	}
	rec.SetDecision(d)
	if err := l.Append(ctx, rec); err != nil { // durable when it returns
		log.Fatal(err)
	}

	_ = db.View(func(tx *store.Tx) error {
		v := audit.Verify(tx)
		fmt.Println("records:", v.Records, "chain ok:", v.OK)
		recs, _, total := audit.Search(tx, audit.Filter{Outcome: audit.OutcomeDeny, Patient: "p-3fa2"})
		fmt.Println("denials for p-3fa2:", total)
		ev := recs[0].AuditEvent()
		fmt.Println("AuditEvent outcome:", ev["outcome"], ev["outcomeDesc"])
		r, err := audit.Replay(ctx, tx, rec.DecisionID)
		fmt.Println("reproduced:", r.Reproduced, err)
		return nil
	})
	// Output:
	// records: 1 chain ok: true
	// denials for p-3fa2: 1
	// AuditEvent outcome: 4 matrix-never, cell:mutual-claims:PRICE
	// reproduced: true <nil>
}
