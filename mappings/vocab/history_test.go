package vocab_test

import (
	"testing"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// TestUsesHistory: the codes whose stage a has-condition, has-result or
// has-medication rule can change, and only those, ask for the patient's
// history (a prefix element counts for its codes; NABM through LOINC).
func TestUsesHistory(t *testing.T) {
	for _, tc := range []struct {
		c    vocab.Coding
		want bool
	}{
		{vocab.Coding{System: vocab.SystemCCAM, Code: "HHQE002"}, true},  // colonoscopy (HHQE)
		{vocab.Coding{System: vocab.SystemLOINC, Code: "4548-4"}, true},  // HbA1c
		{vocab.Coding{System: vocab.SystemNABM, Code: "1577"}, true},     // HbA1c, NABM
		{vocab.Coding{System: vocab.SystemGHM, Code: "23M20Z"}, true},    // CMD 23
		{vocab.Coding{System: vocab.SystemLOINC, Code: "2093-3"}, false}, // setting only
		{vocab.Coding{System: vocab.SystemCIM10, Code: "E11.9"}, false},
		{vocab.Coding{System: vocab.SystemNGAP, Code: "G"}, false},
		{vocab.Coding{System: vocab.SystemCCAM, Code: "DEQP003"}, false},
		{vocab.Coding{System: vocab.ActivityKindSystem, Code: "procedure"}, false},
		{vocab.Coding{System: vocab.SystemCCAM}, false},
	} {
		if got := vocab.UsesHistory(tc.c); got != tc.want {
			t.Errorf("UsesHistory(%v) = %v, want %v", tc.c, got, tc.want)
		}
	}
	if !vocab.UsesHistory(vocab.Coding{System: vocab.SystemNGAP, Code: "G"}, vocab.Coding{System: vocab.SystemCCAM, Code: "QEQK001"}) {
		t.Error("UsesHistory is true when one candidate uses the history")
	}
}
