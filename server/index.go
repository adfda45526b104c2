package server

import (
	"strings"
	"sync"
	"time"

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

// Stamp is the store's Options.Stamp for Indexer: the entries of
// _lastUpdated for a version committed at now, as Indexer extracts them
// from meta.lastUpdated, for a resource prepared before its commit
// (store.PrepareCreate). Those of the last commit time are kept, per type.
func Stamp() func(typ string, now time.Time) []store.IndexEntry {
	reg := search.Default()
	var mu sync.Mutex
	var at time.Time
	byType := map[string][]store.IndexEntry{}
	return func(typ string, now time.Time) []store.IndexEntry {
		mu.Lock()
		defer mu.Unlock()
		if !now.Equal(at) {
			at = now
			clear(byType)
		}
		if entries, ok := byType[typ]; ok {
			return entries
		}
		res := map[string]any{"resourceType": typ, "meta": map[string]any{"lastUpdated": store.FormatInstant(now)}}
		var entries []store.IndexEntry
		for _, e := range reg.Extract(typ, res, "") {
			if e.Param == "_lastUpdated" || strings.HasPrefix(e.Param, "_lastUpdated:") {
				entries = append(entries, e)
			}
		}
		byType[typ] = entries
		return entries
	}
}
