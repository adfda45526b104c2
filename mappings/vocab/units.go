package vocab

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ucumUnitsText is the hub's list of UCUM units (ucum-units.txt): the
// codes French labs and prevention programmes report with, and the usual
// spellings of some (UI/L for [IU]/L). It is data: edit the file, not Go.
//
//go:embed ucum-units.txt
var ucumUnitsText string

// ucumUnits maps every accepted spelling (the code itself and its other
// spellings) to its UCUM code.
var ucumUnits = sync.OnceValue(func() map[string]string {
	m, err := parseUCUMUnits(ucumUnitsText)
	if err != nil {
		// The list is a file of this package: an error is a broken build.
		panic("vocab: ucum-units.txt: " + err.Error())
	}
	return m
})

func parseUCUMUnits(text string) (map[string]string, error) {
	m := map[string]string{}
	add := func(line int, spelling, code string) error {
		if spelling == "" || strings.TrimSpace(spelling) != spelling {
			return fmt.Errorf("line %d: empty or padded spelling %q", line, spelling)
		}
		if prev, dup := m[spelling]; dup {
			return fmt.Errorf("line %d: %q is already listed (for %s)", line, spelling, prev)
		}
		m[spelling] = code
		return nil
	}
	type alias struct {
		line           int
		spelling, code string
	}
	var codes []string
	var aliases []alias
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, ";")
		if len(cols) != 3 || cols[0] == "" {
			return nil, fmt.Errorf("line %d: want code;spellings;description", i+1)
		}
		if err := add(i+1, cols[0], cols[0]); err != nil {
			return nil, err
		}
		codes = append(codes, cols[0])
		if cols[1] != "" {
			for _, a := range strings.Split(cols[1], "|") {
				aliases = append(aliases, alias{i + 1, a, cols[0]})
			}
		}
	}
	// Spellings after codes, so that a spelling that is also a code is
	// reported whatever the order of the lines.
	for _, a := range aliases {
		if err := add(a.line, a.spelling, a.code); err != nil {
			return nil, err
		}
	}
	if len(codes) == 0 {
		return nil, fmt.Errorf("no unit")
	}
	return m, nil
}

// UCUMUnit is the UCUM code of a unit as a native file writes it: the
// code itself when it is on the hub's list, the code a listed French or
// English spelling stands for (UI/L → [IU]/L, µmol/L → umol/L), and false
// for any other text (a unit the hub keeps as text only, without claiming
// it is UCUM). Matching is exact: UCUM is case-sensitive.
func UCUMUnit(text string) (code string, ok bool) {
	code, ok = ucumUnits()[text]
	return code, ok
}

// UCUMUnits lists the UCUM codes of the hub's list, sorted.
func UCUMUnits() []string {
	seen := map[string]bool{}
	var out []string
	for _, code := range ucumUnits() {
		if !seen[code] {
			seen[code] = true
			out = append(out, code)
		}
	}
	sort.Strings(out)
	return out
}
