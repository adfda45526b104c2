package server

import (
	"strings"

	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// Indexer is the store Indexer of the hub: the search entries of every
// R4 SearchParameter of the resource's type (server/search), plus the
// access metadata the policy decides from (accessIndex). base is the
// configured public FHIR base URL ("" when derived per request), used to
// index absolute references to this server as relative ones.
func Indexer(base string) store.Indexer {
	reg := search.Default()
	base = strings.TrimSuffix(base, "/")
	return func(typ string, res map[string]any) []store.IndexEntry {
		entries := reg.Extract(typ, res, base)
		patients := reg.CompartmentOwnersIn(typ, entries, "Patient")
		if patients == nil {
			patients = []string{}
		}
		return append(entries, accessIndex(typ, res, base, patients)...)
	}
}
