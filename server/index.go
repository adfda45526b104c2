package server

import (
	"strings"

	"github.com/parcours-sante/parcours/server/store"
)

// identifierIndex indexes Resource.identifier for conditional operations
// and conditional references: "system|value" under identifier, the value
// alone under identifier:value and the system alone under identifier:system.
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
		if system != "" {
			out = append(out, store.IndexEntry{Param: "identifier:system", Value: system})
		}
	}
	return out
}

// lookupIdentifier resolves one identifier token: system|value, |value (no
// system), system| (any value in the system) or value (any system). A
// resource with two identifiers in one system is returned once.
func lookupIdentifier(tx *store.Tx, typ, token string) []string {
	system, value, ok := strings.Cut(token, "|")
	switch {
	case !ok:
		return tx.Lookup(typ, "identifier:value", token)
	case value == "" && system != "":
		return dedupe(tx.Lookup(typ, "identifier:system", system))
	default:
		return tx.Lookup(typ, "identifier", system+"|"+value)
	}
}

func dedupe(ids []string) []string {
	out := ids[:0]
	for i, id := range ids {
		if i == 0 || id != ids[i-1] {
			out = append(out, id)
		}
	}
	return out
}
