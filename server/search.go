package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/store"
)

// opTransformed marks, inside search, a version whose content obligations
// changed (its id may be a pseudonym).
const opTransformed store.Op = 'T'

// searchParams are the criteria the foundation supports; the search engine
// (SearchParameter-driven) replaces this.
var searchParams = map[string]bool{"_id": true, "identifier": true}

// search answers GET /fhir/{type} and POST /fhir/{type}/_search.
func (s *Server) search(c echo.Context) error {
	typ := c.Param("type")
	if err := checkType(typ); err != nil {
		return err
	}
	params := c.QueryParams()
	if c.Request().Method == http.MethodPost {
		form, err := c.FormParams()
		if err != nil {
			return outcome.Invalid("", "malformed form body: send application/x-www-form-urlencoded")
		}
		params = merge(params, form)
	}
	strict := strings.Contains(c.Request().Header.Get("Prefer"), "handling=strict")
	criteria, applied := url.Values{}, url.Values{}
	for name, vals := range params {
		switch {
		case searchParams[name]:
			criteria[name] = vals
			applied[name] = vals
		case name == "_count" || name == "_offset" || name == "_summary" || name == "_elements":
			applied[name] = vals
		case name == "_format" || name == "_pretty":
		case strict:
			return outcome.Invalid(name, "unknown or unsupported search parameter %q", name)
		}
	}
	count, err := parseCount(params)
	if err != nil {
		return err
	}
	if _, ok := applied["_count"]; ok {
		applied.Set("_count", strconv.Itoa(count)) // as capped
	}
	offset := 0
	if v := params.Get("_offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return outcome.Invalid("_offset", "_offset must be a non-negative integer")
		}
	}
	summaryCount := params.Get("_summary") == "count"
	cl := callerOf(c)
	ctx := c.Request().Context()
	var ids []string
	var page []store.Resource
	defer cl.snapshotMemo()()
	err = s.db.View(func(tx *store.Tx) error {
		// The request-level decision: may this caller search this type
		// for this purpose at all?
		if _, err := s.decide(ctx, cl, tx, question{interaction: "search-type", typ: typ}); err != nil {
			return err
		}
		if len(criteria) > 0 {
			if ids, err = s.match(tx, typ, criteria); err != nil {
				return err
			}
			sort.Strings(ids)
		} else {
			ids = tx.IDs(typ)
		}
		// Every match is decided before counting and paging, so that
		// totals and links never reveal what the caller may not see.
		kept := ids[:0]
		for _, id := range ids {
			r, err := tx.Get(typ, id)
			if err != nil {
				return err
			}
			d, err := s.decideCurrent(ctx, cl, tx, "search-type", r)
			if err != nil {
				if outcome.StatusOf(err) == http.StatusForbidden {
					continue
				}
				return err
			}
			if d.Has("pseudonymise") && byDirectIdentifier(criteria) {
				// A pseudonymised recipient may not find a person by who
				// they are (re-identification).
				continue
			}
			kept = append(kept, id)
			if !summaryCount && len(kept) > offset && len(kept) <= offset+count {
				out, err := s.applyObligations(tx, d, r.JSON)
				if err != nil {
					return err
				}
				if len(out) != len(r.JSON) || string(out) != string(r.JSON) {
					r.Op = opTransformed
				}
				r.JSON = out
				page = append(page, r)
			}
		}
		ids = kept
		return nil
	})
	if err != nil {
		return err
	}
	base := s.base(c)
	self := base + "/" + typ
	links := []any{link("self", self, applied)}
	if !summaryCount && offset+count < len(ids) && count > 0 {
		links = append(links, link("next", self, withOffset(applied, offset+count, count)))
	}
	if !summaryCount && offset > 0 {
		prev := offset - count
		if prev < 0 {
			prev = 0
		}
		links = append(links, link("previous", self, withOffset(applied, prev, count)))
	}
	entries := make([]any, 0, len(page))
	for _, r := range page {
		b, err := shape(params, r.JSON)
		if err != nil {
			return err
		}
		id := r.ID
		if r.Op == opTransformed { // pseudonymised resources carry their pseudonym
			id, _ = decodeStored(b)["id"].(string)
		}
		entries = append(entries, map[string]any{
			"fullUrl":  base + "/" + r.Type + "/" + id,
			"resource": json.RawMessage(b),
			"search":   map[string]any{"mode": "match"},
		})
	}
	bundle := map[string]any{
		"resourceType": "Bundle",
		"id":           store.NewID(),
		"meta":         map[string]any{"lastUpdated": store.FormatInstant(time.Now())},
		"type":         "searchset",
		"total":        len(ids),
		"link":         links,
	}
	if len(entries) > 0 {
		bundle["entry"] = entries
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(bundle))
}

// byDirectIdentifier reports whether search criteria name resources by
// identity (logical id or business identifier).
func byDirectIdentifier(criteria url.Values) bool {
	_, id := criteria["_id"]
	_, ident := criteria["identifier"]
	return id || ident
}

func merge(a, b url.Values) url.Values {
	out := url.Values{}
	for k, v := range a {
		out[k] = append(out[k], v...)
	}
	for k, v := range b {
		out[k] = append(out[k], v...)
	}
	return out
}

func withOffset(q url.Values, offset, count int) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	out.Set("_offset", strconv.Itoa(offset))
	out.Set("_count", strconv.Itoa(count))
	return out
}
