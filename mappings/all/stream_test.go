package all_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	_ "github.com/parcours-sante/parcours/mappings/all"
	"github.com/parcours-sante/parcours/mappings/gen"
)

// generated is a file of rows of a source from mappings/gen.
func generated(t *testing.T, source string, rows int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gen.Writers{HospitalStays: &buf, CityActivity: &buf, PreventionProgramme: &buf, LiabilityClaims: &buf}
	if _, err := gen.Generate(gen.Config{Source: source, Rows: rows, Seed: 3}, w); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// spoil gives every tenth data line a birth date that is not a date
// (every format has a birth date column or field).
func spoil(data []byte) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	for i := 2; i < len(lines); i += 10 {
		if strings.HasPrefix(lines[i], "{") {
			lines[i] = strings.Replace(lines[i], `"birth_date": "`, `"birth_date": "x`, 1)
			continue
		}
		f := strings.Split(lines[i], ";")
		for j, v := range f {
			if mappings.IsDate(v) {
				f[j] = "2020-13-01"
				break
			}
		}
		lines[i] = strings.Join(f, ";")
	}
	return []byte(strings.Join(lines, ""))
}

// TestChunks: a file mapped in chunks gives the Bundle of the whole file cut
// in parts: the same entries (a patient or a reference resource once, in
// the first chunk that needs it; each fact once), every reference resolved
// within its chunk or to a shared entry of an earlier one, a Provenance per
// chunk over that chunk's facts, the same rows, issues and counts.
func TestChunks(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, source := range gen.Sources {
		for _, partial := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/partial=%v", source, partial), func(t *testing.T) {
				data := generated(t, source, 1000)
				if partial {
					data = spoil(data)
				}
				m, _ := mappings.Lookup(source)
				opt := mappings.Options{Partial: partial, Actor: "hospital-it", Org: "https://finess.esante.gouv.fr|750712184", Now: now}
				whole, err := m.Map(bytes.NewReader(data), opt)
				if err != nil || whole.Bundle == nil {
					t.Fatalf("whole file: %v, %d issues", err, len(whole.Issues))
				}
				var chunks []mappings.Chunk
				opt.ChunkEntries = 97
				opt.Chunks = func(c mappings.Chunk) error { chunks = append(chunks, c); return nil }
				parts, err := m.Map(bytes.NewReader(data), opt)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(whole.Issues, parts.Issues); diff != "" {
					t.Errorf("issues (-whole +chunks):\n%s", diff)
				}
				if whole.Rows != parts.Rows || whole.Good != parts.Good || parts.Chunks != len(chunks) || parts.Bundle != nil {
					t.Errorf("rows %d/%d good %d/%d chunks %d/%d bundle %v", whole.Rows, parts.Rows, whole.Good, parts.Good, parts.Chunks, len(chunks), parts.Bundle != nil)
				}
				if partial && len(whole.Issues) == 0 {
					t.Error("the spoiled file has no issue")
				}

				want := map[string]any{} // fullUrl → entry, Provenance aside
				var wantTargets []any
				for _, e := range whole.Bundle["entry"].([]any) {
					em := e.(map[string]any)
					if typeOf(em) == "Provenance" {
						wantTargets = em["resource"].(map[string]any)["target"].([]any)
						continue
					}
					want[em["fullUrl"].(string)] = em
				}
				got := map[string]any{}
				shared := map[string]bool{}
				var gotTargets []any
				rows := 0
				for i, c := range chunks {
					if c.Index != i || c.Last != (i == len(chunks)-1) || c.Rows == 0 || c.FirstLine > c.LastLine {
						t.Errorf("chunk %d: index %d last %v rows %d lines %d–%d", i, c.Index, c.Last, c.Rows, c.FirstLine, c.LastLine)
					}
					rows += c.Rows
					entries := c.Bundle["entry"].([]any)
					here := map[string]bool{}
					for _, e := range entries {
						here[e.(map[string]any)["fullUrl"].(string)] = true
					}
					for j, e := range entries {
						em := e.(map[string]any)
						u := em["fullUrl"].(string)
						if j < c.Shared != isShared(typeOf(em)) {
							t.Errorf("chunk %d entry %d (%s): shared %v", i, j, typeOf(em), j < c.Shared)
						}
						for _, ref := range refsOf(em["resource"]) {
							if strings.HasPrefix(ref, "urn:") && !here[ref] && !shared[ref] {
								t.Errorf("chunk %d entry %d refers to %s, in no earlier shared entry", i, j, ref)
							}
						}
						if typeOf(em) == "Provenance" {
							targets := em["resource"].(map[string]any)["target"].([]any)
							if want := len(entries) - c.Shared - 1; len(targets) != want {
								t.Errorf("chunk %d: Provenance of %d targets, want its %d facts", i, len(targets), want)
							}
							gotTargets = append(gotTargets, targets...)
							continue
						}
						if _, dup := got[u]; dup {
							t.Errorf("chunk %d: entry %s already in an earlier chunk", i, u)
						}
						got[u] = em
					}
					for j := range c.Shared {
						shared[entries[j].(map[string]any)["fullUrl"].(string)] = true
					}
				}
				if rows != whole.Good {
					t.Errorf("chunks hold %d rows, want %d", rows, whole.Good)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("entries (-whole +chunks):\n%.3000s", diff)
				}
				if diff := cmp.Diff(wantTargets, gotTargets); diff != "" {
					t.Errorf("Provenance targets (-whole +chunks):\n%.2000s", diff)
				}
			})
		}
	}
}

func typeOf(entry map[string]any) string {
	return entry["resource"].(map[string]any)["resourceType"].(string)
}

func isShared(typ string) bool {
	switch typ {
	case "Patient", "Organization", "Practitioner", "PractitionerRole":
		return true
	}
	return false
}

func refsOf(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "reference" {
				out = append(out, s)
			} else {
				out = append(out, refsOf(c)...)
			}
		}
	case []any:
		for _, c := range x {
			out = append(out, refsOf(c)...)
		}
	}
	return out
}
