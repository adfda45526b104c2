package mappings

import (
	"strings"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/outcome"
)

// nativeSystem is one value of a code_system column.
type nativeSystem struct {
	uri   string
	what  string
	valid func(string) bool
}

// NativeSystems are the values of the code_system columns (DESIGN §6.2) and
// the FHIR systems they name.
var nativeSystems = map[string]nativeSystem{
	"ngap":  {vocab.SystemNGAP, "NGAP code", ReNGAP.MatchString},
	"ccam":  {vocab.SystemCCAM, "CCAM code (4 letters, 3 digits)", ReCCAM.MatchString},
	"cip13": {vocab.SystemCIP13, "CIP13 code (13 digits with a valid check digit)", ValidCIP13},
	"atc":   {vocab.SystemATC, "ATC code", ReATC.MatchString},
	"nabm":  {vocab.SystemNABM, "NABM code (4 digits)", ReNABM.MatchString},
	"loinc": {vocab.SystemLOINC, "LOINC code (with a valid check digit)", ValidLOINC},
}

// Code reads a code_system column and its code column. allowed lists the
// code_system values acceptable here (for this kind of row). The Coding has
// the display of hub code systems.
func (r *Row) Code(systemCol, codeCol string, required bool, allowed ...string) (vocab.Coding, bool) {
	sys, ok := r.value(systemCol, required)
	if !ok {
		// the code is checked anyway when present, for a complete report
		if r.Text(codeCol) == "" && required {
			r.Fail(codeCol, outcome.CodeRequired, "%s is required", codeCol)
		}
		return vocab.Coding{}, false
	}
	if sys == "" {
		if r.Text(codeCol) != "" {
			r.Fail(systemCol, outcome.CodeRequired, "%s is required when %s is given", systemCol, codeCol)
			return vocab.Coding{}, false
		}
		return vocab.Coding{}, true
	}
	ns, known := nativeSystems[sys]
	permitted := false
	for _, a := range allowed {
		permitted = permitted || a == sys
	}
	if !known || !permitted {
		r.Fail(systemCol, outcome.CodeValue, "%s must be one of %s here", systemCol, strings.Join(allowed, ", "))
		return vocab.Coding{}, false
	}
	code, ok := r.value(codeCol, true)
	if !ok {
		return vocab.Coding{}, false
	}
	if !ns.valid(code) {
		r.Fail(codeCol, outcome.CodeValue, "%s is not a valid %s", codeCol, ns.what)
		return vocab.Coding{}, false
	}
	c := vocab.Coding{System: ns.uri, Code: code}
	if con, ok := vocab.Lookup(ns.uri, code); ok {
		c.Display = con.Display
	}
	return c, true
}
