package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/policies"
	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

// auditData builds a hub data directory holding decision records taken by
// the real policies (no server needed) and returns it with the records.
func auditData(t *testing.T) (string, []audit.Record) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "parcours.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := policy.New(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(db)
	if err := l.SaveRevision(ctx, e.Revision(), e.Sources()); err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	for i, c := range []struct{ actor, purpose, patient string }{
		{"gp", "TREAT", "p-cli-patient-1"},
		{"mutual-claims", "underwriting-pricing", "p-cli-patient-2"},
		{"gp", "TREAT", "p-cli-patient-3"},
	} {
		in := map[string]any{
			"now":     "2026-11-22T10:00:00Z",
			"subject": map[string]any{"sub": "user-1", "actor_type": c.actor, "org": "https://finess.esante.gouv.fr|750000001", "care_teams": []any{}, "purposes": []any{c.purpose}},
			"purpose": c.purpose, "break_glass": nil, "interaction": "read", "resource_type": "Observation", "aggregate": false,
			"resource": map[string]any{"type": "Observation", "id": "o-1", "source_actor": "hospital-it", "source_org": "https://finess.esante.gouv.fr|750000001", "security_labels": []any{}},
			"patient":  map[string]any{"pseudonym": c.patient, "is_self": false, "care_team": map[string]any{"member": true, "via": []any{"encounter"}}, "consents": []any{}},
		}
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(in)
		r := audit.Record{
			DecisionID: store.NewID(),
			Timestamp:  time.Date(2026, 11, 22, 10, i, 0, 0, time.UTC).Format(time.RFC3339Nano),
			Input:      raw,
			Labels:     map[string]string{audit.LabelPatient: c.patient, audit.LabelActorType: c.actor, audit.LabelPurpose: c.purpose},
		}
		r.SetDecision(d)
		recs = append(recs, r)
	}
	if err := l.Append(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	return dir, recs
}

// edit copies the data directory and replaces old by new (same length)
// in the copy's file bytes, as someone editing the file would.
func edit(t *testing.T, dir, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "parcours.db"))
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != len(new) || !bytes.Contains(b, []byte(old)) {
		t.Fatalf("cannot edit %q in the file", old)
	}
	cp := t.TempDir()
	if err := os.WriteFile(filepath.Join(cp, "parcours.db"), bytes.ReplaceAll(b, []byte(old), []byte(new)), 0o600); err != nil {
		t.Fatal(err)
	}
	return cp
}

func TestAuditCommands(t *testing.T) {
	dir, recs := auditData(t)
	edited := edit(t, dir, "p-cli-patient-2", "p-cli-patient-9")
	// The allowed decision's recorded reasons, changed in the file.
	res, _ := recs[0].Decision()
	forged := edit(t, dir, `"reasons":["`+res.Reasons[0], `"reasons":["`+strings.Repeat("x", len(res.Reasons[0])))

	tests := []struct {
		name   string
		args   []string
		status int      // the exitError wanted; 0 success; -1 a plain error
		output []string // all in stdout+stderr
	}{
		{"verify", []string{"verify", "--data", dir}, 0, []string{"audit log OK: 3 records", "head 3 " + recs[2].Hash}},
		{"verify an edited file", []string{"verify", "--data", edited}, 1, []string{"NOT OK", "first bad record 2 (edited)"}},
		{"verify with the anchor", []string{"verify", "--data", dir, "--anchor", "2:" + recs[1].Hash}, 0, []string{"anchor 2 matches"}},
		{"verify with a wrong anchor", []string{"verify", "--data", dir, "--anchor", "2:" + recs[0].Hash}, 1, []string{"does not match the anchor"}},
		{"verify with a malformed anchor", []string{"verify", "--data", dir, "--anchor", "two"}, 2, []string{"--anchor is SEQ:HASH"}},
		{"verify without data", []string{"verify", "--data", filepath.Join(dir, "nope")}, -1, nil},
		{"export since", []string{"export", "--data", dir, "--since", "2026-11-22T10:01:00Z"}, 0, []string{recs[1].DecisionID, recs[2].DecisionID}},
		{"export with a malformed since", []string{"export", "--data", dir, "--since", "yesterday"}, 2, []string{"not an RFC 3339 time"}},
		{"replay an allow", []string{"replay", "--data", dir, "--decision", recs[0].DecisionID}, 0, []string{"reproduced", `"allow":true`}},
		{"replay a deny", []string{"replay", "--data", dir, "--decision", recs[1].DecisionID}, 0, []string{"reproduced", `"allow":false`}},
		{"replay a forged result", []string{"replay", "--data", forged, "--decision", recs[0].DecisionID}, 1, []string{"NOT reproduced (reasons differ)"}},
		{"replay an unknown decision", []string{"replay", "--data", dir, "--decision", "nope"}, -1, nil},
		{"replay without --decision", []string{"replay", "--data", dir}, 2, []string{"Usage: parcours audit replay"}},
		{"no command", nil, 2, []string{"Usage: parcours audit"}},
		{"unknown command", []string{"shred"}, 2, []string{`unknown audit command "shred"`}},
		{"help", []string{"help"}, 0, []string{"verify --data DIR", "export --data DIR", "replay --data DIR --decision ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runAudit(context.Background(), tt.args, &out, &out)
			var ee exitError
			switch {
			case tt.status == 0 && err != nil:
				t.Fatalf("error %v; output:\n%s", err, out.String())
			case tt.status == -1 && (err == nil || errors.As(err, &ee)):
				t.Errorf("error %v, want a plain error", err)
			case tt.status > 0 && (!errors.As(err, &ee) || int(ee) != tt.status):
				t.Errorf("error %v, want exit status %d; output:\n%s", err, tt.status, out.String())
			}
			for _, want := range tt.output {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestAuditExport(t *testing.T) {
	dir, recs := auditData(t)
	var out bytes.Buffer
	if err := runAudit(context.Background(), []string{"export", "--data", dir}, &out, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(recs), out.String())
	}
	for i, line := range lines {
		var ev struct {
			DecisionID string          `json:"decision_id"`
			Timestamp  string          `json:"timestamp"`
			Path       string          `json:"path"`
			Input      json.RawMessage `json:"input"`
			Result     struct {
				Allow *bool `json:"allow"`
			} `json:"result"`
			Hash string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if ev.DecisionID != recs[i].DecisionID || ev.Timestamp != recs[i].Timestamp || ev.Path != audit.DecisionPath ||
			len(ev.Input) == 0 || ev.Result.Allow == nil || ev.Hash != recs[i].Hash {
			t.Errorf("line %d: %+v", i+1, ev)
		}
	}
}

func TestAuditHelp(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"verify": {"-data", "-anchor"},
		"export": {"-data", "-since"},
		"replay": {"-data", "-decision"},
	} {
		var out bytes.Buffer
		err := runAudit(context.Background(), []string{cmd, "--help"}, &out, &out)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s --help: %v, want flag.ErrHelp", cmd, err)
		}
		for _, f := range append(flags, "Usage: parcours audit "+cmd) {
			if !strings.Contains(out.String(), f) {
				t.Errorf("%s --help lacks %s:\n%s", cmd, f, out.String())
			}
		}
	}
}

// TestAuditPending: records a hub acknowledged through its journal and
// had not appended to the chain when it died are reported by verify and
// export, and join the chain when the hub opens the log again.
func TestAuditPending(t *testing.T) {
	ctx := context.Background()
	dir, _ := auditData(t)
	db, err := store.Open(filepath.Join(dir, "parcours.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(db, filepath.Join(dir, journalFile), audit.Options{ApplyEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r := audit.Record{DecisionID: store.NewID(), Labels: map[string]string{audit.LabelPurpose: "TREAT"}}
		r.SetDecision(policy.Decision{Allow: i%2 == 0, Revision: "r"})
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// The hub "dies": a copy of its files as they are now (the applier
	// waits an hour, nothing writes the store meanwhile).
	crashed, altered := t.TempDir(), t.TempDir()
	for _, name := range []string{"parcours.db", journalFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if name == journalFile {
			// One record a group, a block each after the header block:
			// alter the second group, two whole ones follow it.
			b[2*4096+40] ^= 0x20
		}
		if err := os.WriteFile(filepath.Join(altered, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	db.Close()

	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runAudit(ctx, args, &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	for _, cmd := range []string{"verify", "export"} {
		if out := run(cmd, "--data", crashed); !strings.Contains(out, "4 acknowledged records wait in audit.wal") {
			t.Errorf("%s after the crash does not report the journal's records:\n%s", cmd, out)
		}
	}
	if out := run("verify", "--data", crashed); !strings.Contains(out, "audit log OK: 3 records") {
		t.Errorf("verify after the crash:\n%s", out)
	}
	// A waiting group altered after it was acknowledged: verify says so
	// (exit 1) instead of counting only the records before it.
	var bad bytes.Buffer
	err = runAudit(ctx, []string{"verify", "--data", altered}, &bad, &bad)
	var exit exitError
	if !errors.As(err, &exit) || exit != 1 || !strings.Contains(bad.String(), "audit log NOT OK: audit.wal: audit journal damaged: the group at offset 8192") {
		t.Errorf("verify of an altered journal: %v\n%s", err, bad.String())
	}
	// The hub starts again (and stops): the records are in the chain.
	db, err = store.Open(filepath.Join(crashed, "parcours.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err = audit.Open(db, filepath.Join(crashed, journalFile), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	db.Close()
	if out := run("verify", "--data", crashed); !strings.Contains(out, "audit log OK: 7 records") || strings.Contains(out, "wait in") {
		t.Errorf("verify after the restart:\n%s", out)
	}
}
