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
// index absolute references to this server as relative ones. It leaves
// out the Patients' pseudonyms, which need the data directory's keys:
// the hub and parcours reindex use IndexerFor.
func Indexer(base string) store.Indexer { return indexer(base, nil) }

// IndexerFor is the Indexer of the hub whose data directory is dataDir: it
// also indexes every Patient under its pseudonym in each domain
// (paramPseudonym), by which pseudonymised callers read it.
func IndexerFor(dataDir, base string) (store.Indexer, error) {
	k, err := loadKeyring(dataDir)
	if err != nil {
		return nil, err
	}
	return indexer(base, k), nil
}

func indexer(base string, k *keyring) store.Indexer {
	reg := search.Default()
	base = strings.TrimSuffix(base, "/")
	return func(typ string, res map[string]any) []store.IndexEntry {
		entries := reg.Extract(typ, res, base)
		patients := reg.CompartmentOwnersIn(typ, entries, "Patient")
		if patients == nil {
			patients = []string{}
		}
		out := append(entries, accessIndex(typ, res, base, patients)...)
		if typ == "Patient" && k != nil {
			id, _ := res["id"].(string)
			for _, d := range pseudonymDomains {
				out = append(out, store.IndexEntry{Param: paramPseudonym, Value: d + "|" + k.patientPseudonym(d, id, entries)})
			}
		}
		return out
	}
}
