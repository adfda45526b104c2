package mappings_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/mappings/internal/golden"
	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/outcome"
)

func TestINS(t *testing.T) {
	tests := []struct {
		in, problem string
	}{
		{"162126587913677", ""},      // FR Core example "Patient avec INSNIR logique" (INS-NIR-TEST system, same rule)
		{"179125612113516", "key"},   // FR Core example "Patient-Martine-Selfiesante": hand-made, its key should be 15
		{"138042A01203359", ""},      // Corsica 2A counts as 19
		{"147082B12001774", ""},      // Corsica 2B counts as 18
		{"138042A01203358", "key"},   // wrong key
		{"179125612113517", "key"},   // wrong key
		{"17912561211351", "format"}, // 14 characters
		{"379125612113516", "format"},
		{"1791256121135AB", "format"},
		{"138042C01203359", "format"},
		{"138042a01203359", "format"}, // Row.INS upper-cases before checking
		{"", "format"},
	}
	for _, tt := range tests {
		if got := mappings.INSProblem(tt.in); got != tt.problem {
			t.Errorf("INSProblem(%q) = %q, want %q", tt.in, got, tt.problem)
		}
	}
	for _, nir := range []string{"1791256121135", "138042A012033", "147082B120017", "2620169123456"} {
		if !mappings.ValidINS(nir + mappings.INSKey(nir)) {
			t.Errorf("INSKey(%s) does not make a valid INS", nir)
		}
	}
}

func TestCheckDigits(t *testing.T) {
	for _, c := range []string{"4548-4", "2160-0", "29771-3", "8480-6", "33762-6", "718-7"} {
		if !mappings.ValidLOINC(c) {
			t.Errorf("ValidLOINC(%s) = false", c)
		}
	}
	for _, c := range []string{"4548-5", "4548", "45484", "-4"} {
		if mappings.ValidLOINC(c) {
			t.Errorf("ValidLOINC(%s) = true", c)
		}
	}
	if !mappings.ValidCIP13("3400935123459") || mappings.ValidCIP13("3400935123458") || mappings.ValidCIP13("340093512345") {
		t.Error("ValidCIP13")
	}
}

func TestUUID5(t *testing.T) {
	dns := [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if got, want := mappings.UUID5(dns, "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d"; got != want {
		t.Errorf("uuid5 = %s, want %s (RFC 9562 test vector)", got, want)
	}
}

type fake struct{ name string }

func (f fake) Source() string { return f.name }
func (fake) Map(io.Reader, mappings.Options) (*mappings.Result, error) {
	return &mappings.Result{}, nil
}

func TestRegistry(t *testing.T) {
	mappings.Register(fake{"test-zz"})
	mappings.Register(fake{"test-aa"})
	if m, ok := mappings.Lookup("test-zz"); !ok || m.Source() != "test-zz" {
		t.Errorf("Lookup = %v, %v", m, ok)
	}
	if _, ok := mappings.Lookup("nothing"); ok {
		t.Error("Lookup found an unregistered source")
	}
	if diff := cmp.Diff([]string{"test-aa", "test-zz"}, mappings.Sources()); diff != "" {
		t.Errorf("Sources (-want +got):\n%s", diff)
	}
	for _, name := range []string{"test-zz", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", name)
				}
			}()
			mappings.Register(fake{name})
		}()
	}
}

// toy is a two-column format for the reader tests: name (required) and
// when (a date). Each good row is one Observation.
var toy = mappings.Spec[[2]string]{
	Source:  "toy",
	Columns: []string{"name", "when"},
	Parse: func(r *mappings.Row, c *mappings.Checks) [2]string {
		n, _ := r.Required("name")
		w, _ := r.Date("when", false)
		return [2]string{n, w}
	},
	Build: func(b *mappings.Batch, rows [][2]string) {
		st, _ := vocab.StageOf("diagnostic")
		for _, r := range rows {
			b.Fact(map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": r[0]}}, r[0], st)
		}
	},
}

var now = time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)

func issue(line, col int, code, expr, diag string) outcome.Issue {
	is := outcome.Issue{Severity: outcome.SeverityError, Code: code, Diagnostics: diag, Line: line, Column: col}
	if expr != "" {
		is.Expression = []string{expr}
	}
	return is
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		partial    bool
		rows, good int
		bundle     bool
		issues     []outcome.Issue
	}{
		{"BOM, CRLF, quotes, blank lines, any column order", "\uFEFFwhen ; name\r\n2025-01-01;\"a;b\"\r\n\r\n;c\r\n", false, 2, 2, true, nil},
		{"empty file", "", false, 0, 0, false, []outcome.Issue{issue(1, 0, "required", "", "the file is empty: a header row is expected")}},
		{"header only", "name;when\n", false, 0, 0, false, nil},
		{"missing, unknown and duplicate columns", "name;name;colour\n", true, 0, 0, false, []outcome.Issue{
			issue(1, 0, "required", "when", "the header has no column when"),
			issue(1, 2, "structure", "name", "column name appears twice in the header"),
			issue(1, 3, "structure", "", "unknown column 3 in the header (expected: name;when)"),
		}},
		{"field count, bad quote, bad date, future date", "name;when\na;2025-01-01\nb\n\"c\"d;2025-01-01\ne;2025-02-30\nf;2031-01-01\n", false, 5, 1, false, []outcome.Issue{
			issue(3, 2, "structure", "when", "the row has 1 fields, the header 2"),
			issue(4, 0, "structure", "", `malformed CSV: extraneous or missing " in quoted-field`),
			issue(5, 2, "value", "when", "when is not a date (YYYY-MM-DD)"),
			issue(6, 2, "value", "when", "when is after the date of the upload"),
		}},
		{"a row with a field too many", "name;when\na;2025-01-01;x\n", false, 1, 0, false, []outcome.Issue{
			issue(2, 3, "structure", "", "the row has 3 fields, the header 2"),
		}},
		{"an unclosed quote is reported at its row's line", "name;when\na;2025-01-01\n\"b;2025-01-01\nc;2025-01-01\nd;2025-01-01\n", false, 2, 1, false, []outcome.Issue{
			issue(3, 0, "structure", "", `malformed CSV: extraneous or missing " in quoted-field (the row starting here runs to line 5)`),
		}},
		{"dates before 1900 are said so", "name;when\na;1800-01-01\nb;1899-12-31\nc;1900-01-01\n", false, 3, 1, false, []outcome.Issue{
			issue(2, 2, "value", "when", "when is before 1900-01-01"),
			issue(3, 2, "value", "when", "when is before 1900-01-01"),
		}},
		{"partial keeps the good rows", "name;when\na;2025-01-01\n;2025-01-01\n", true, 2, 1, true, []outcome.Issue{
			issue(3, 1, "required", "name", "name is required"),
		}},
		{"invalid UTF-8 and control characters are reported once", "name;when\n\xff;\nb\x01;\n", false, 2, 0, false, []outcome.Issue{
			issue(2, 1, "structure", "name", "name is not valid UTF-8"),
			issue(3, 1, "structure", "name", "name contains a control character"),
		}},
		{"flat NDJSON: columns are character positions", "{\"name\": \"é\", \"when\": \"2025-13-01\"}\n{\"name\": \"x\", \"when\": null, \"more\": [1]}\n{\"name\": 12}\n{\"name\": \"x\"} 2\n", true, 4, 1, true, []outcome.Issue{
			issue(1, 23, "value", "when", "when is not a date (YYYY-MM-DD)"),
			issue(2, 37, "structure", "", "field more must be a string, number, boolean or null"),
			issue(4, 16, "structure", "", "malformed JSON: more than one value on the line"),
		}},
		{"NDJSON syntax error", "{\"name\": \"a\",, }\n", false, 1, 0, false, []outcome.Issue{
			issue(1, 14, "structure", "", "malformed JSON"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := mappings.Options{Partial: tt.partial, Actor: "hospital-it", Org: "https://finess.esante.gouv.fr|750712184", Now: now}
			res, err := mappings.Run(toy, strings.NewReader(tt.in), opt)
			if err != nil {
				t.Fatal(err)
			}
			if res.Rows != tt.rows || res.Good != tt.good || (res.Bundle != nil) != tt.bundle {
				t.Errorf("rows %d good %d bundle %v; want %d %d %v", res.Rows, res.Good, res.Bundle != nil, tt.rows, tt.good, tt.bundle)
			}
			if diff := cmp.Diff(tt.issues, res.Issues); diff != "" {
				t.Errorf("issues (-want +got):\n%s", diff)
			}
			golden.CheckResult(t, res, opt)
			if res.Bundle != nil {
				golden.Validate(t, res.Bundle)
			}
		})
	}
}

func TestBundleShape(t *testing.T) {
	res, err := mappings.Run(toy, strings.NewReader("name;when\na;\nb;\n"), mappings.Options{Org: "https://finess.esante.gouv.fr|750712184", Actor: "hospital-it", Now: now})
	if err != nil || res.Bundle == nil {
		t.Fatal(res, err)
	}
	again, _ := mappings.Run(toy, strings.NewReader("name;when\na;\nb;\n"), mappings.Options{Org: "https://finess.esante.gouv.fr|750712184", Actor: "hospital-it", Now: now})
	if diff := cmp.Diff(res.Bundle, again.Bundle); diff != "" {
		t.Errorf("the same file gave another Bundle (-first +second):\n%s", diff)
	}
	entries := res.Bundle["entry"].([]any)
	if len(entries) != 3 {
		t.Fatalf("%d entries", len(entries))
	}
	prov := entries[2].(map[string]any)["resource"].(map[string]any)
	if prov["resourceType"] != "Provenance" || prov["recorded"] != "2025-06-30T12:00:00Z" || len(prov["target"].([]any)) != 2 {
		t.Errorf("Provenance %v", prov)
	}
	for _, e := range entries[:2] {
		res := e.(map[string]any)["resource"].(map[string]any)
		ext := res["extension"].([]any)[0].(map[string]any)
		if ext["url"] != vocab.StageExtensionURL {
			t.Errorf("fact without stage: %v", res)
		}
	}
}

func TestResultErr(t *testing.T) {
	if err := (&mappings.Result{Bundle: map[string]any{}}).Err(); err != nil {
		t.Errorf("stored file: %v", err)
	}
	err := (&mappings.Result{Issues: []outcome.Issue{issue(2, 1, "value", "x", "x is bad")}}).Err()
	var oe *outcome.Error
	if !errors.As(err, &oe) || oe.Status != http.StatusUnprocessableEntity || len(oe.Issues) != 1 {
		t.Errorf("rejected file: %v", err)
	}
	// No data row: 422 like an empty file (once 400 for one, 422 for the
	// other).
	if outcome.StatusOf((&mappings.Result{}).Err()) != http.StatusUnprocessableEntity {
		t.Error("a file without data row is not a 422")
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestRunIOError(t *testing.T) {
	if _, err := mappings.Run(toy, failing{}, mappings.Options{}); err == nil {
		t.Error("a read error was not returned")
	}
	if _, err := mappings.Run(toy, bytes.NewReader(nil), mappings.Options{}); err != nil {
		t.Errorf("empty input: %v", err)
	}
}

// TestRunIssueCap: a file with more bad rows than MaxIssues lists the
// issues of the first rows and one last issue counting the others (an
// answer of bounded size for a file of any size); partial mode still
// stores exactly the good rows, the bad ones beyond the list included in
// what it skips.
func TestRunIssueCap(t *testing.T) {
	defer mappings.SetMaxIssues(3)()
	var in strings.Builder
	in.WriteString("name;when\n")
	for i := range 10 {
		if i%2 == 0 {
			in.WriteString(";2025-01-01\n") // no name: an issue (lines 2, 4, …, 10)
		} else {
			fmt.Fprintf(&in, "a%d;2025-01-01\n", i)
		}
	}
	for _, partial := range []bool{false, true} {
		res, err := mappings.Run(toy, strings.NewReader(in.String()), mappings.Options{Partial: partial, Actor: "hospital-it", Org: "https://finess.esante.gouv.fr|750712184", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		want := []outcome.Issue{
			issue(2, 1, "required", "name", "name is required"),
			issue(4, 1, "required", "name", "name is required"),
			issue(6, 1, "required", "name", "name is required"),
			{Severity: outcome.SeverityError, Code: outcome.CodeTooCostly, Line: 8,
				Diagnostics: "2 more rows with issues, from line 8 on, are not listed: an answer lists the issues of the first rows, up to 3"},
		}
		if diff := cmp.Diff(want, res.Issues); diff != "" {
			t.Errorf("partial %v: issues (-want +got):\n%s", partial, diff)
		}
		if res.Rows != 10 || res.Good != 5 || (res.Bundle != nil) != partial {
			t.Errorf("partial %v: rows %d good %d bundle %v; want 10 5 %v", partial, res.Rows, res.Good, res.Bundle != nil, partial)
		}
		if partial {
			golden.CheckResult(t, res, mappings.Options{Partial: true})
			n := 0
			for _, e := range res.Bundle["entry"].([]any) {
				if e.(map[string]any)["resource"].(map[string]any)["resourceType"] == "Observation" {
					n++
				}
			}
			if n != 5 {
				t.Errorf("partial: %d Observations stored, want the 5 good rows'", n)
			}
		}
	}
}

// TestRecordKey: with Options.RecordKey the source-record identifiers are
// keyed: the same under one key (re-ingesting is idempotent), different
// under another key and from the name-based UUIDv5 anyone can compute
// from a row (whose key may hold an INS).
func TestRecordKey(t *testing.T) {
	ids := func(key []byte) []string {
		t.Helper()
		res, err := mappings.Run(toy, strings.NewReader("name;when\na;2025-01-01\nb;2025-01-02\n"), mappings.Options{RecordKey: key, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range res.Bundle["entry"].([]any) {
			r := e.(map[string]any)["resource"].(map[string]any)
			if r["resourceType"] != "Observation" {
				continue
			}
			for _, id := range r["identifier"].([]any) {
				if m := id.(map[string]any); m["system"] == mappings.SourceRecordSystem {
					out = append(out, m["value"].(string))
				}
			}
		}
		if len(out) != 2 {
			t.Fatalf("%d source-record identifiers, want 2", len(out))
		}
		return out
	}
	plain, k1, k1again, k2 := ids(nil), ids([]byte("key one")), ids([]byte("key one")), ids([]byte("key two"))
	if !slices.Equal(k1, k1again) {
		t.Errorf("one key, two runs: %v and %v", k1, k1again)
	}
	for i := range plain {
		if k1[i] == plain[i] || k1[i] == k2[i] {
			t.Errorf("identifier %d: keyed %s, other key %s, unkeyed %s: want all different", i, k1[i], k2[i], plain[i])
		}
		if k1[i][14] != '8' {
			t.Errorf("keyed identifier %s: want a version 8 UUID", k1[i])
		}
	}
}

// TestRunRowTooLong: a CSV row is held in memory by the csv reader, so a
// line of gigabytes without a separator cost five times its size
// (black-box review). A row over 4 MiB ends the file's reading with a
// too-long issue at its line, and what its two readings allocate stays
// below the line's size (the file streamed from disk, as the hub does;
// holding the line would allocate twice its size at least).
func TestRunRowTooLong(t *testing.T) {
	long := bytes.Repeat([]byte("A"), 128<<20)
	in := bytes.NewReader(append([]byte("name;when\na;2025-01-01\n"), long...))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	res, err := mappings.Run(toy, in, mappings.Options{Partial: true, Actor: "hospital-it", Org: "https://finess.esante.gouv.fr|750712184", Now: now,
		Chunks: func(mappings.Chunk) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	want := []outcome.Issue{issue(3, 1, "too-long", "", "the row running to line 3 is longer than 4194304 bytes: the file is not read further")}
	if diff := cmp.Diff(want, res.Issues); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
	if res.Rows != 2 || res.Good != 1 {
		t.Errorf("rows %d, good %d: want 2 and 1", res.Rows, res.Good)
	}
	if alloc := ms.TotalAlloc - before; alloc > 100<<20 {
		t.Errorf("reading a 128 MiB line allocated %d MiB: the row bound is 4 MiB", alloc>>20)
	}
}

// TestATCCodes: an ATC code starts with one of the 14 anatomical main
// groups (black-box review: X, E01AA, Y01AA01 were taken for ATC codes).
func TestATCCodes(t *testing.T) {
	for code, want := range map[string]bool{
		"A": true, "A10": true, "A10B": true, "A10BA": true, "A10BA02": true, "J07BB02": true, "V03AB": true,
		"X": false, "Y": false, "E": false, "Z": false, "X99": false, "E01AA": false, "Y01AA01": false,
		"a10ba02": false, "A1": false, "A10BA2": false, "ZZZZ999": false, "": false,
	} {
		if got := mappings.ReATC.MatchString(code); got != want {
			t.Errorf("ATC %q: %v, want %v", code, got, want)
		}
	}
}
