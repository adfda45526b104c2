package mappings_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/vocab"
)

var (
	cim  = func(c string) vocab.Coding { return vocab.Coding{System: vocab.SystemCIM10, Code: c} }
	lnc  = func(c string) vocab.Coding { return vocab.Coding{System: vocab.SystemLOINC, Code: c} }
	atc  = func(c string) vocab.Coding { return vocab.Coding{System: vocab.SystemATC, Code: c} }
	ccam = func(c string) vocab.Coding { return vocab.Coding{System: vocab.SystemCCAM, Code: c} }
)

// TestHistoryMerge: what the hub stores about a patient joins the context
// a mapper built from its file when it is dated strictly before the fact
// (results: within the RecentResultWindow before it); undated entries
// never count, codes are not repeated and the mapper's slices are not
// written to.
func TestHistoryMerge(t *testing.T) {
	day := mappings.DayNumber
	h := &mappings.History{}
	h.AddCondition(cim("C18.7"), day("2026-03-10"))
	h.AddCondition(cim("C18.7"), day("2026-01-05")) // earlier: kept
	h.AddCondition(cim("C18.7"), day("2026-06-01"))
	h.AddCondition(cim("I50.9"), day("2026-09-01")) // the fact's day
	h.AddCondition(cim("E11.9"), day("2026-10-01")) // after the fact
	h.AddCondition(cim("Z85.0"), 0)                 // undated
	h.AddResult(lnc("29771-3"), day("2026-08-31"))
	h.AddResult(lnc("29771-3"), day("2026-08-31")) // once
	h.AddResult(lnc("33762-6"), day("2025-12-01")) // 274 days before: out of the window
	h.AddResult(lnc("2160-0"), day("2026-09-01"))  // the fact's day: maybe the fact itself
	h.AddMedication(atc("A10BA02"), day("2026-08-01"))
	h.AddMedication(atc("A10BA02"), day("2026-02-01"))
	h.AddMedication(atc("C03CA01"), day("2026-09-02"))
	want := &mappings.History{
		Conditions:  []mappings.Dated{{cim("C18.7"), day("2026-01-05")}, {cim("I50.9"), day("2026-09-01")}, {cim("E11.9"), day("2026-10-01")}},
		Results:     []mappings.Dated{{lnc("29771-3"), day("2026-08-31")}, {lnc("33762-6"), day("2025-12-01")}, {lnc("2160-0"), day("2026-09-01")}},
		Medications: []mappings.Dated{{atc("A10BA02"), day("2026-02-01")}, {atc("C03CA01"), day("2026-09-02")}},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Fatalf("History (-want +got):\n%s", diff)
	}

	fromFile := []vocab.Coding{cim("K63.5"), cim("C18.7")}
	ctx := vocab.Context{Setting: vocab.SettingCity, Kind: "procedure", PriorConditions: fromFile[:1:2], RecentResults: []vocab.Coding{lnc("29771-3")}}
	got := h.Merge(ctx, "2026-09-01T10:30:00+02:00")
	wantCtx := vocab.Context{
		Setting: vocab.SettingCity, Kind: "procedure",
		PriorConditions: []vocab.Coding{cim("K63.5"), cim("C18.7")},
		RecentResults:   []vocab.Coding{lnc("29771-3")},
		Medications:     []vocab.Coding{atc("A10BA02")},
	}
	if diff := cmp.Diff(wantCtx, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	if fromFile[1] != cim("C18.7") || len(ctx.PriorConditions) != 1 {
		t.Error("Merge wrote to the mapper's slice")
	}
	// The window's first day counts.
	h2 := &mappings.History{}
	h2.AddResult(lnc("29771-3"), day("2026-03-02"))
	if got := h2.Merge(vocab.Context{}, "2026-09-01").RecentResults; len(got) != 1 {
		t.Errorf("a result 183 days before: %v, want it", got)
	}
	if got := h2.Merge(vocab.Context{}, "2026-09-02").RecentResults; len(got) != 0 {
		t.Errorf("a result 184 days before: %v, want none", got)
	}
	// Nothing known, or no date to compare with: the context as it was.
	var none *mappings.History
	if diff := cmp.Diff(ctx, none.Merge(ctx, "2026-09-01")); diff != "" {
		t.Errorf("nil History changed the context:\n%s", diff)
	}
	if diff := cmp.Diff(ctx, h.Merge(ctx, "")); diff != "" {
		t.Errorf("an undated fact got a stored context:\n%s", diff)
	}
}

// TestBatchPrior: Batch.Prior asks Options.Prior only for a linked
// patient and a fact whose stage can depend on the history, and the stage
// follows the stored context (the colonoscopy of a patient with a stored
// colorectal cancer is follow-up).
func TestBatchPrior(t *testing.T) {
	calls := 0
	stored := &mappings.History{}
	stored.AddCondition(cim("C18.7"), mappings.DayNumber("2026-03-10"))
	opt := mappings.Options{Prior: func(ins string) *mappings.History {
		calls++
		if ins == "264013335536605" {
			return stored
		}
		return nil
	}}
	b := mappings.NewBatch("test", "digest", opt)
	base := vocab.Context{Setting: vocab.SettingCity, Kind: "procedure"}
	kind := vocab.Coding{System: vocab.ActivityKindSystem, Code: "procedure"}
	stage := func(ctx vocab.Context) string {
		st, _ := vocab.Resolve(ctx, ccam("HHQE002"), kind)
		return st.Code
	}
	if got := stage(base); got != "diagnostic" {
		t.Fatalf("colonoscopy without context: %s, want diagnostic", got)
	}
	if got := stage(b.Prior(base, "264013335536605", "2026-09-01", ccam("HHQE002"), kind)); got != "suivi" {
		t.Errorf("colonoscopy after a stored C18.7: %s, want suivi", got)
	}
	if got := stage(b.Prior(base, "264013335536605", "2026-03-10", ccam("HHQE002"), kind)); got != "diagnostic" {
		t.Errorf("colonoscopy on the day of the stored C18.7: %s, want diagnostic", got)
	}
	if calls != 2 {
		t.Errorf("%d calls of Options.Prior, want 2", calls)
	}
	calls = 0
	b.Prior(base, "", "2026-09-01", ccam("HHQE002"), kind)                                                                                                                  // unlinked
	b.Prior(base, "264013335536605", "2026-09-01", vocab.Coding{System: vocab.SystemNGAP, Code: "G"}, vocab.Coding{System: vocab.ActivityKindSystem, Code: "consultation"}) // no history rule
	if calls != 0 {
		t.Errorf("%d calls of Options.Prior for facts that cannot use it, want 0", calls)
	}
	if got := mappings.NewBatch("test", "digest", mappings.Options{}).Prior(base, "264013335536605", "2026-09-01", ccam("HHQE002")); stage(got) != "diagnostic" {
		t.Errorf("without Options.Prior: %s, want diagnostic", stage(got))
	}
}
