package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

// Errors of Replay; they are *outcome.Error so that they answer with the
// right status wherever they surface.
var (
	ErrNotFound        = outcome.New(http.StatusNotFound, outcome.CodeNotFound, "", "no such decision in the audit log")
	ErrUnknownRevision = outcome.New(http.StatusNotFound, outcome.CodeNotFound, "", "the policy revision of this decision was never saved: it cannot be replayed")
	ErrNotReplayable   = outcome.New(http.StatusUnprocessableEntity, outcome.CodeProcessing, "", "this decision has no recorded policy input or revision: it was not taken by the policy")
)

// ReplayResult compares a recorded decision with the same input evaluated
// again by the recorded policy revision.
type ReplayResult struct {
	DecisionID string `json:"decision_id"`
	Seq        uint64 `json:"seq"`
	Revision   string `json:"revision"`
	// Reproduced: allow, reasons, obligations and legal_basis are equal.
	Reproduced bool            `json:"reproduced"`
	Recorded   json.RawMessage `json:"recorded"`
	Replayed   json.RawMessage `json:"replayed"`
	// Differences names the fields that differ.
	Differences []string `json:"differences,omitempty"`
	// Error is the replayed evaluation's error (the replayed result is then
	// the policy's fail-closed deny).
	Error string `json:"error,omitempty"`
}

// Replay re-evaluates the recorded input of decisionID with the policy
// files of the recorded revision (saved by SaveRevision) and compares the
// answer with the recorded result.
func Replay(ctx context.Context, tx *store.Tx, decisionID string) (ReplayResult, error) {
	rec, ok := Find(tx, decisionID)
	if !ok {
		return ReplayResult{}, fmt.Errorf("decision %s: %w", decisionID, ErrNotFound)
	}
	res := ReplayResult{DecisionID: rec.DecisionID, Seq: rec.Seq, Revision: rec.Revision, Recorded: rec.Result}
	if len(rec.Input) == 0 || rec.Revision == "" || len(rec.Result) == 0 {
		return res, fmt.Errorf("decision %s: %w", decisionID, ErrNotReplayable)
	}
	recorded, err := rec.Decision()
	if err != nil {
		return res, fmt.Errorf("decision %s: recorded result: %w", decisionID, err)
	}
	eng, err := engineOf(ctx, tx, rec.Revision)
	if err != nil {
		return res, fmt.Errorf("decision %s: %w", decisionID, err)
	}
	d, derr := eng.Decide(ctx, rec.Input)
	if derr != nil {
		res.Error = derr.Error()
	}
	replayed := ResultOf(d)
	res.Replayed, _ = json.Marshal(replayed)
	res.Differences = differences(recorded, replayed)
	res.Reproduced = len(res.Differences) == 0
	return res, nil
}

func differences(a, b Result) []string {
	var diff []string
	if a.Allow != b.Allow {
		diff = append(diff, "allow")
	}
	if !slices.Equal(a.Reasons, b.Reasons) {
		diff = append(diff, "reasons")
	}
	ao, _ := json.Marshal(nonNil(a.Obligations))
	bo, _ := json.Marshal(nonNil(b.Obligations))
	if string(ao) != string(bo) {
		diff = append(diff, "obligations")
	}
	if !slices.Equal(a.LegalBasis, b.LegalBasis) {
		diff = append(diff, "legal_basis")
	}
	return diff
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// engines caches the engines of replayed revisions (preparing one takes a
// while; auditors replay many decisions of the same revision).
var engines struct {
	sync.Mutex
	m map[string]*policy.Engine
}

const maxEngines = 8

func engineOf(ctx context.Context, tx *store.Tx, rev string) (*policy.Engine, error) {
	engines.Lock()
	e := engines.m[rev]
	engines.Unlock()
	if e != nil {
		return e, nil
	}
	src, ok := Sources(tx, rev)
	if !ok {
		return nil, fmt.Errorf("revision %s: %w", rev, ErrUnknownRevision)
	}
	e, err := policy.FromSources(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("policy revision %s: %w", rev, err)
	}
	if e.Revision() != rev {
		return nil, fmt.Errorf("the saved files of policy revision %s hash to %s: the revision store was altered", rev, e.Revision())
	}
	engines.Lock()
	if engines.m == nil || len(engines.m) >= maxEngines {
		engines.m = map[string]*policy.Engine{}
	}
	engines.m[rev] = e
	engines.Unlock()
	return e, nil
}
