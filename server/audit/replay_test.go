package audit

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/parcours-sante/parcours/policies"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

// decided takes a real decision with the embedded policies and records
// it as the server would.
func decided(t testing.TB, e *policy.Engine, i int, actor, purpose string) Record {
	t.Helper()
	in := input(i, actor, purpose, "read", "Observation")
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(in)
	r := Record{DecisionID: store.NewID(), Input: raw, Labels: map[string]string{
		LabelPurpose: purpose, LabelActorType: actor, LabelInteraction: "read", LabelResourceType: "Observation",
	}}
	r.SetDecision(d)
	return r
}

func TestReplay(t *testing.T) {
	ctx := context.Background()
	e, err := policy.New(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	db, path := openDB(t)
	l := New(db)
	if err := l.SaveRevision(ctx, e.Revision(), e.Sources()); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveRevision(ctx, e.Revision(), e.Sources()); err != nil { // again: nothing to write
		t.Fatal(err)
	}
	allow := decided(t, e, 1, "gp", "TREAT")
	deny := decided(t, e, 2, "mutual-claims", "underwriting-pricing")
	if !allow.Allowed() || deny.Allowed() {
		t.Fatalf("fixtures: gp TREAT allowed %v, mutual pricing allowed %v", allow.Allowed(), deny.Allowed())
	}
	// A record whose revision was never saved.
	orphan := decided(t, e, 3, "gp", "TREAT")
	orphan.Revision = strings.Repeat("0", 64)
	// A record of a 401: no policy input.
	unauth := Record{DecisionID: store.NewID(), Labels: map[string]string{LabelOutcome: OutcomeDeny, LabelHTTPStatus: "401"}}
	recs := []Record{allow, deny, orphan, unauth}
	if err := l.Append(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	allow, deny = recs[0], recs[1]
	if got := view(t, db, Revisions); len(got) != 1 || got[0] != e.Revision() {
		t.Errorf("Revisions = %v, want [%s]", got, e.Revision())
	}

	for _, r := range []Record{allow, deny} {
		res, err := replay(t, db, r.DecisionID)
		if err != nil || !res.Reproduced || res.Revision != e.Revision() || len(res.Differences) != 0 {
			t.Errorf("replay of %s: %+v, %v; want reproduced", r.Labels[LabelOutcome], res, err)
		}
		if string(res.Recorded) != string(r.Result) {
			t.Errorf("recorded %s, want %s", res.Recorded, r.Result)
		}
	}
	if _, err := replay(t, db, orphan.DecisionID); !errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), orphan.Revision) {
		t.Errorf("replay with an unsaved revision: %v, want ErrUnknownRevision naming it", err)
	}
	if _, err := replay(t, db, unauth.DecisionID); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("replay of a 401: %v, want ErrNotReplayable", err)
	}
	if _, err := replay(t, db, "no-such-decision"); !errors.Is(err, ErrNotFound) || outcome.StatusOf(err) != 404 {
		t.Errorf("replay of an unknown decision: %v, want ErrNotFound (404)", err)
	}

	// Tamper with the recorded result of the allow (a copy of the file):
	// the replay no longer reproduces it.
	db.Close()
	tampered := filepath.Join(t.TempDir(), "t.db")
	copyFile(t, path, tampered)
	b, err := bbolt.Open(tampered, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bbolt.Tx) error {
		log := tx.Bucket([]byte("log:" + logName))
		r, _ := decode(log.Get(u64(allow.Seq)))
		var res Result
		_ = json.Unmarshal(r.Result, &res)
		res.Reasons = append(res.Reasons, "consent:Consent/forged")
		r.Result, _ = json.Marshal(res)
		v, err := encode(&r)
		if err != nil {
			return err
		}
		return log.Put(u64(allow.Seq), v)
	}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	ro, err := store.OpenReadOnly(tampered)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	res, err := replay(t, ro, allow.DecisionID)
	if err != nil || res.Reproduced || len(res.Differences) != 1 || res.Differences[0] != "reasons" {
		t.Errorf("replay of a tampered result: %+v, %v; want not reproduced, reasons differ", res, err)
	}

	// Saved sources that do not hash to their revision are refused.
	engines.Lock()
	engines.m = nil
	engines.Unlock()
	db2, _ := openDB(t)
	src := e.Sources()
	altered := map[string]string{}
	for k, v := range src {
		altered[k] = v
	}
	altered["extra.rego"] = "package parcours.extra\nx := 1\n"
	if err := New(db2).SaveRevision(ctx, e.Revision(), altered); err != nil {
		t.Fatal(err)
	}
	r := decided(t, e, 4, "gp", "TREAT")
	if err := New(db2).Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := replay(t, db2, r.DecisionID); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("replay with altered sources: %v, want an error", err)
	}
}

func replay(t *testing.T, db *store.DB, id string) (res ReplayResult, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if verr := db.View(func(tx *store.Tx) error { res, err = Replay(ctx, tx, id); return nil }); verr != nil {
		t.Fatal(verr)
	}
	return res, err
}

// TestReplayAcrossRevisions: decisions recorded under two policy revisions
// (the second amends a legal basis in matrix.json) are each replayed with
// the files of their own revision and reproduced, although the two
// revisions decide the same input differently.
func TestReplayAcrossRevisions(t *testing.T) {
	ctx := context.Background()
	a, err := policy.New(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	first := decided(t, a, 1, "gp", "TREAT")
	res, _ := first.Decision()
	if len(res.LegalBasis) == 0 {
		t.Fatal("fixture: the gp's read has no legal basis to amend")
	}
	basis := res.LegalBasis[0]
	sources := map[string]string{}
	for k, v := range a.Sources() {
		sources[k] = v
	}
	amended := strings.ReplaceAll(sources["matrix.json"], `"`+basis+`"`, `"`+basis+`-amended"`)
	if amended == sources["matrix.json"] {
		t.Fatalf("fixture: legal basis %q not found in matrix.json", basis)
	}
	sources["matrix.json"] = amended
	b, err := policy.FromSources(ctx, sources)
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision() == b.Revision() {
		t.Fatal("the amended policy has the same revision")
	}
	second := decided(t, b, 1, "gp", "TREAT") // the same input
	if string(first.Result) == string(second.Result) {
		t.Fatalf("both revisions decide %s: the amendment changed nothing", first.Result)
	}
	db, _ := openDB(t)
	l := New(db)
	for _, e := range []*policy.Engine{a, b} {
		if err := l.SaveRevision(ctx, e.Revision(), e.Sources()); err != nil {
			t.Fatal(err)
		}
	}
	recs := []Record{first, second}
	if err := l.Append(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	if got := view(t, db, Revisions); len(got) != 2 {
		t.Errorf("Revisions = %v, want both", got)
	}
	for i, want := range []string{a.Revision(), b.Revision()} {
		res, err := replay(t, db, recs[i].DecisionID)
		if err != nil || !res.Reproduced || res.Revision != want {
			t.Errorf("replay of the decision under revision %d: %+v, %v; want reproduced with %s", i+1, res, err, want)
		}
	}
}
