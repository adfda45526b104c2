package server

import (
	"strings"

	"github.com/parcours-sante/parcours/server/store"
)

// identifierIndex indexes Resource.identifier for conditional operations
// and conditional references: "system|value" and, for value-only criteria,
// "|value" under param identifier:value.
func identifierIndex(typ string, res map[string]any) []store.IndexEntry {
	list, _ := res["identifier"].([]any)
	if one, ok := res["identifier"].(map[string]any); ok { // 0..1 identifier (e.g. Bundle, QuestionnaireResponse)
		list = []any{one}
	}
	var out []store.IndexEntry
	for _, x := range list {
		ident, _ := x.(map[string]any)
		value, _ := ident["value"].(string)
		if value == "" {
			continue
		}
		system, _ := ident["system"].(string)
		out = append(out,
			store.IndexEntry{Param: "identifier", Value: system + "|" + value},
			store.IndexEntry{Param: "identifier:value", Value: value})
	}
	return out
}

// lookupIdentifier resolves one identifier token: system|value, |value (no
// system) or value (any system).
func lookupIdentifier(tx *store.Tx, typ, token string) []string {
	if system, value, ok := strings.Cut(token, "|"); ok {
		if system == "" {
			ids := tx.Lookup(typ, "identifier", "|"+value)
			return ids
		}
		return tx.Lookup(typ, "identifier", system+"|"+value)
	}
	return tx.Lookup(typ, "identifier:value", token)
}
