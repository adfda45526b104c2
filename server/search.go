package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// opTransformed marks, inside search, a version whose content obligations
// changed (its id may be a pseudonym).
const opTransformed store.Op = 'T'

// Limits of _include/_revinclude: rounds of :iterate, resources included
// per page.
const (
	maxIncludeRounds = 8
	maxIncluded      = 1000
)

// searchRoutes adds the search endpoints beyond GET/POST /{type}:
// system-level search, compartment search and Patient/{id}/$everything.
func (s *Server) searchRoutes(fhir func(method, path string, h echo.HandlerFunc)) {
	fhir(http.MethodGet, "", s.systemSearch)
	fhir(http.MethodGet, "/", s.systemSearch)
	fhir(http.MethodPost, "/_search", s.systemSearch)
	fhir(http.MethodGet, "/:type/:id/$everything", s.everything)
	fhir(http.MethodPost, "/:type/:id/$everything", s.everything)
	fhir(http.MethodGet, "/:type/:id/:ctype", s.compartmentSearch)
}

// searchSpec is one search to run: its types, parameters and the decisions
// its results take.
type searchSpec struct {
	types       []string
	params      url.Values
	path        string // the request path under the base, for links
	interaction string // search-type, search-system, operation
	operation   string // $everything
	// owner restricts the matches to a compartment ("Patient/123").
	owner string
	// everything: all resources of the owner's compartment, with the owner.
	everything bool
	// ownerShown: the domain of the pseudonym that named the owner ("":
	// its hub id).
	ownerShown string
}

// search answers GET /fhir/{type} and POST /fhir/{type}/_search.
func (s *Server) search(c echo.Context) error {
	typ := c.Param("type")
	if err := checkType(typ); err != nil {
		return err
	}
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	return s.runSearch(c, searchSpec{types: []string{typ}, params: params, path: "/" + typ, interaction: "search-type"})
}

// systemSearch answers GET /fhir?… and POST /fhir/_search: the resources of
// the _type types (every type without it) matching criteria common to
// those types.
func (s *Server) systemSearch(c echo.Context) error {
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	var types []string
	for _, v := range params["_type"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			if !conformance.IsResourceType(t) {
				return outcome.Invalid("_type", "unknown resource type %q in _type", t)
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	if len(types) == 0 {
		types = conformance.ResourceTypes()
	}
	slices.Sort(types)
	return s.runSearch(c, searchSpec{types: types, params: params, path: "", interaction: "search-system"})
}

// compartmentSearch answers GET /fhir/{Owner}/{id}/{type}: a search of type
// restricted to the compartment of Owner/id (R4 compartment definitions).
func (s *Server) compartmentSearch(c echo.Context) error {
	owner, id, typ := c.Param("type"), c.Param("id"), c.Param("ctype")
	if err := checkType(owner); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	if strings.HasPrefix(typ, "$") {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "unknown operation %s on %s: GET /fhir/metadata lists the operations", typ, owner)
	}
	if err := checkType(typ); err != nil {
		return err
	}
	if !slices.Contains(search.CompartmentTypes(owner), typ) {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "%s is not in the %s compartment", typ, owner)
	}
	params, err := searchParams(c)
	if err != nil {
		return err
	}
	return s.runSearch(c, searchSpec{types: []string{typ}, params: params, path: "/" + owner + "/" + id + "/" + typ, interaction: "search-type", owner: owner + "/" + id})
}

// everything answers GET and POST /fhir/Patient/{id}/$everything: the
// patient and every resource of its compartment the caller may see, paged.
// POST takes its parameters from the URL or from a Parameters body.
func (s *Server) everything(c echo.Context) error {
	typ, id := c.Param("type"), c.Param("id")
	if typ != "Patient" {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "$everything is supported on Patient")
	}
	if err := checkID(id); err != nil {
		return err
	}
	given, err := s.operationInput(c)
	if err != nil {
		return err
	}
	params := url.Values{}
	for k, v := range given {
		switch k {
		case "_count", "_cursor", "_type", "_format", "_pretty", "_elements", "_summary", "_total":
			params[k] = v
		default:
			if preferStrict(c) {
				return outcome.Invalid(k, "parameter %q is not supported by $everything", k)
			}
		}
	}
	types := search.CompartmentTypes("Patient")
	if v := params.Get("_type"); v != "" {
		var keep []string
		for _, t := range strings.Split(v, ",") {
			if slices.Contains(types, t) || t == "Patient" {
				keep = append(keep, t)
			}
		}
		types = keep
	}
	if !slices.Contains(types, "Patient") && params.Get("_type") == "" {
		types = append(types, "Patient")
	}
	slices.Sort(types)
	return s.runSearch(c, searchSpec{types: types, params: params, path: "/Patient/" + id + "/$everything",
		interaction: "operation", operation: "$everything", owner: "Patient/" + id, everything: true})
}

// searchParams reads the URL parameters, and for POST the form body (only:
// the request's Form would repeat the URL's).
func searchParams(c echo.Context) (url.Values, error) {
	params := c.QueryParams()
	if c.Request().Method == http.MethodPost {
		if err := c.Request().ParseForm(); err != nil {
			return nil, outcome.Invalid("", "malformed form body: send application/x-www-form-urlencoded")
		}
		params = merge(params, c.Request().PostForm)
	}
	return params, nil
}

// operationInput reads an operation's parameters: the URL's, and for POST
// those of a form body or of a Parameters resource.
func (s *Server) operationInput(c echo.Context) (url.Values, error) {
	if c.Request().Method != http.MethodPost {
		return c.QueryParams(), nil
	}
	if mt, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		return searchParams(c)
	}
	return s.operationParams(c, c.QueryParams())
}

// operationParams adds to params those of an operation's Parameters body,
// if any: each parameter's name and its primitive value as text.
func (s *Server) operationParams(c echo.Context, params url.Values) (url.Values, error) {
	b, err := s.readRaw(c)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return params, err
	}
	body, err := fhirjson.Decode(b)
	if err != nil {
		return nil, err
	}
	if rt, _ := body["resourceType"].(string); rt != "Parameters" {
		return nil, outcome.Invalid("resourceType", "the body of an operation is a Parameters resource")
	}
	out := url.Values{}
	for k, v := range params {
		out[k] = slices.Clone(v)
	}
	for i, p := range asList(body["parameter"]) {
		pm, _ := p.(map[string]any)
		name, _ := pm["name"].(string)
		value := ""
		for k, v := range pm {
			if strings.HasPrefix(k, "value") {
				switch x := v.(type) {
				case string:
					value = x
				case json.Number:
					value = x.String()
				case float64:
					value = strconv.FormatFloat(x, 'f', -1, 64)
				case bool:
					value = strconv.FormatBool(x)
				}
			}
		}
		if name == "" || value == "" {
			return nil, outcome.Invalid(fmt.Sprintf("Parameters.parameter[%d]", i), "a parameter needs a name and a primitive value")
		}
		out.Add(name, value)
	}
	return out, nil
}

func preferStrict(c echo.Context) bool {
	return strings.Contains(c.Request().Header.Get("Prefer"), "handling=strict")
}

// hit is one match or included resource on its way out.
type hit struct {
	search.Hit
	d policy.Decision
}

// runSearch parses, matches, decides, pages and answers.
func (s *Server) runSearch(c echo.Context, sp searchSpec) error {
	base := s.base(c)
	strict := preferStrict(c)
	reg := search.Default()

	// Parse for every type; a criterion must be understood for all.
	queries := make([]*search.Query, 0, len(sp.types))
	unknown := map[string]string{}
	criteria := url.Values{}
	for k, v := range sp.params {
		if k != "_type" && k != "_cursor" {
			criteria[k] = v
		}
	}
	for _, t := range sp.types {
		q, err := reg.Parse(t, criteria, base)
		if err != nil {
			return err
		}
		for _, u := range q.Unknown {
			if _, ok := unknown[u.Name]; !ok {
				unknown[u.Name] = u.Reason
			}
		}
		queries = append(queries, q)
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(unknown))
		for n := range unknown {
			names = append(names, n)
		}
		slices.Sort(names)
		if strict {
			issues := make([]outcome.Issue, 0, len(names))
			for _, n := range names {
				issues = append(issues, outcome.Issue{Severity: outcome.SeverityError, Code: outcome.CodeNotSupported, Expression: []string{n},
					Diagnostics: "unknown or unsupported search parameter " + strconv.Quote(n) + ": " + unknown[n]})
			}
			return &outcome.Error{Status: http.StatusBadRequest, Issues: issues}
		}
		// Lenient: a parameter not understood for every type is dropped
		// for all (system search), so that the self link is exact.
		if len(queries) > 1 {
			for _, n := range names {
				delete(criteria, n)
			}
			for i, t := range sp.types {
				q, err := reg.Parse(t, criteria, base)
				if err != nil {
					return err
				}
				queries[i] = q
			}
		}
	}
	// The self link: what was applied, as given.
	applied := url.Values{}
	for k, v := range queries[0].Applied {
		applied[k] = v
	}
	if len(sp.params["_type"]) > 0 && (sp.path == "" || sp.everything) {
		applied["_type"] = sp.params["_type"]
	}
	count, err := parseCount(sp.params)
	if err != nil {
		return err
	}
	if _, ok := sp.params["_count"]; ok {
		applied.Set("_count", strconv.Itoa(count)) // as capped
	}
	for _, k := range []string{"_summary", "_elements", "_total"} {
		if v, ok := sp.params[k]; ok {
			applied[k] = v
		}
	}
	total := sp.params.Get("_total")
	switch total {
	case "", "none", "estimate", "accurate":
	default:
		return outcome.Invalid("_total", "_total is none, estimate or accurate")
	}
	summaryCount := sp.params.Get("_summary") == "count"
	bind := cursorBinding(callerOf(c), sp, applied)
	cur, err := parseCursor(bind, sp.params.Get("_cursor"))
	if err != nil {
		return err
	}
	offset := 0
	if v := sp.params.Get("_offset"); v != "" && cur == nil {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return outcome.Invalid("_offset", "_offset must be a non-negative integer")
		}
		applied.Set("_offset", v)
	}
	if cur != nil {
		applied.Set("_cursor", sp.params.Get("_cursor"))
	}

	cl := callerOf(c)
	ctx := c.Request().Context()
	var (
		kept      []hit // matches the caller may see, in order
		page      []hit
		included  []hit
		before    bool // kept matches precede the page
		after     bool // kept matches follow the page
		resources = map[string]store.Resource{}
	)
	defer cl.snapshotMemo()()
	err = s.view(ctx, func(tx *store.Tx) error {
		// The patients the criteria name, recorded whatever the decision.
		s.noteQueried(tx, cl, queries)
		// The compartment's owner as the caller names it: by the hub's
		// id, or by its pseudonym when the caller is shown pseudonyms
		// (black-box review: a compartment search by the pseudonym the
		// caller reads the patient by found nothing).
		if sp.owner != "" {
			typ, id, _ := strings.Cut(sp.owner, "/")
			id, sp.ownerShown = s.resolvePseudonym(tx, typ, id)
			sp.owner = typ + "/" + id
			if sp.ownerShown != "" && !sp.everything {
				// Only for a caller shown that pseudonym (a pseudonym of
				// another domain names nothing: 404).
				r, err := tx.Get(typ, id)
				if err != nil {
					return outcome.NotFound("%s not found", sp.owner)
				}
				d, err := s.decideOwner(ctx, cl, tx, sp, r)
				if err := asNamed(d, err, sp.ownerShown); err != nil {
					return err
				}
			}
		}
		// Request-level decisions: one, with the one patient a search is
		// restricted to (break-the-glass needs it).
		one, isOne := onePatientRef(queries, sp.owner)
		var level policy.Decision
		switch {
		case sp.everything:
			owner, _ := strings.CutPrefix(sp.owner, "Patient/")
			r, err := tx.Get("Patient", owner)
			if err != nil || r.Deleted() {
				if _, err := s.decide(ctx, cl, tx, question{interaction: sp.interaction, operation: sp.operation, typ: "Patient"}); err != nil {
					return err
				}
				return outcome.NotFound("Patient/%s not found", owner)
			}
			d, err := s.decideOwner(ctx, cl, tx, sp, r)
			if err := asNamed(d, err, sp.ownerShown); err != nil {
				return err
			}
			level = d
		case sp.interaction == "search-system":
			d, err := s.decide(ctx, cl, tx, question{interaction: sp.interaction, onePatient: isOne})
			if err != nil {
				return err
			}
			level = d
		default:
			d, err := s.decide(ctx, cl, tx, question{interaction: sp.interaction, typ: sp.types[0], onePatient: isOne})
			if err != nil {
				return err
			}
			level = d
		}
		if cl != nil && cl.btg != "" && cl.btgPatient == "" {
			// The record a break-the-glass search opens is the one it is
			// restricted to, whatever it meets first.
			cl.btgPatient = one
		}
		if level.Has("pseudonymise") && sortReidentifies(queries) {
			// An order by a date or by who people are would rank the
			// pseudonymised results by what the output hides: refused,
			// rather than answered with no match (black-box review).
			return outcome.New(http.StatusBadRequest, outcome.CodeNotSupported, "_sort",
				"_sort by a date or by who people are is not available to a pseudonymised recipient: it would rank the results by what the answer hides")
		}
		// The ids a pseudonymised caller is shown (its pseudonyms) name
		// what they pseudonymise, for that caller's domain only: such a
		// criterion finds by what the caller sees, not by who people are
		// (black-box review: _id and subject by pseudonym matched nothing).
		var named map[*search.Clause]bool
		if p, ok := level.Obligation("pseudonymise"); ok {
			named = s.resolveShownIDs(tx, queries, pseudoDomain(p.Domain))
		}
		// Matches, in order. Chains and _has only go through resources
		// the caller may see.
		visible := func(typ, id string) bool { // ids of current resources (from the index)
			_, err := s.decideCurrent(ctx, cl, tx, "search-type", store.Resource{Type: typ, ID: id})
			return err == nil
		}
		var hits []search.Hit
		for _, q := range queries {
			if cl != nil {
				q.Visible = visible
			}
			if sp.owner != "" {
				ids, ok := reg.InCompartment(tx, sp.owner, q.Type)
				if sp.everything && q.Type+"/"+strings.TrimPrefix(sp.owner, "Patient/") == sp.owner {
					ids = sortedUnion(ids, []string{strings.TrimPrefix(sp.owner, "Patient/")})
					ok = true
				}
				if !ok {
					continue
				}
				q.Restrict(ids)
			}
			ids, err := q.IDs(tx)
			if err != nil {
				return err
			}
			hits = append(hits, q.Order(tx, ids)...)
		}
		if len(queries) > 1 {
			slices.SortStableFunc(hits, queries[0].Compare)
		}
		reident := s.reidentifying(sp, queries, named)
		if p, ok := level.Obligation("pseudonymise"); ok {
			// The hub's ids are in creation order: as the default order,
			// or as the tie-break of a _sort, the same sequence in every
			// domain would link pseudonyms across domains and to hub ids
			// (black-box reviews). A pseudonymised answer is ordered by
			// the ids it shows instead, after its _sort keys (paging
			// cursors compare by them too).
			dom := pseudoDomain(p.Domain)
			n := len(queries[0].Sort) // the queries of a system search share their _sort
			for i := range hits {
				keys := make([]string, n+1)
				copy(keys, hits[i].Keys)
				keys[n] = s.shownID(tx, dom, hits[i].Type, hits[i].ID)
				hits[i].Keys = keys
			}
			for _, q := range queries {
				q.Sort = append(slices.Clip(q.Sort), search.SortKey{Code: "_shown"})
			}
			slices.SortStableFunc(hits, queries[0].Compare)
		}
		// visibleHit decides one match: denied ones, and for a
		// pseudonymised recipient those found by who they are
		// (re-identification), are left out.
		visibleHit := func(h search.Hit) (policy.Decision, bool, error) {
			// Decisions read the access metadata from the index: the
			// content is read for the page only.
			d, err := s.decideAs(ctx, cl, tx, sp, store.Resource{Type: h.Type, ID: h.ID})
			if err != nil {
				if outcome.StatusOf(err) == http.StatusForbidden {
					return d, false, nil
				}
				return d, false, err
			}
			return d, !(d.Has("pseudonymise") && reident), nil
		}
		// Every match is decided before counting and paging, so that
		// totals and links never reveal what the caller may not see.
		// Without a total (_total=none) deciding stops once the page and
		// its next link are known, and a next page starts at its cursor:
		// the matches before it only need one visible for the previous
		// link.
		from, start := 0, -1 // start: index in kept of the first page entry
		lazy := total == "none" && !summaryCount && (cur == nil || cur.after)
		if lazy && cur != nil {
			from = sort.Search(len(hits), func(i int) bool { return queries[0].Compare(hits[i], cur.hit) > 0 })
			for i := from - 1; i >= 0 && !before; i-- {
				_, ok, err := visibleHit(hits[i])
				if err != nil {
					return err
				}
				before = ok
			}
			start = 0
		}
		for _, h := range hits[from:] {
			d, ok, err := visibleHit(h)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			kept = append(kept, hit{Hit: h, d: d})
			if start < 0 && cur != nil && cur.after && queries[0].Compare(h, cur.hit) > 0 {
				start = len(kept) - 1
			}
			if lazy {
				s0 := start
				if cur == nil {
					s0 = offset
				}
				if s0 >= 0 && len(kept) > s0+count {
					break
				}
			}
		}
		// The page.
		switch {
		case summaryCount:
		case cur == nil:
			start = min(offset, len(kept))
		case cur.after:
			if start < 0 {
				start = len(kept)
			}
		default: // before the cursor
			end := len(kept)
			for i, h := range kept {
				if queries[0].Compare(h.Hit, cur.hit) >= 0 {
					end = i
					break
				}
			}
			start = max(0, end-count)
		}
		if !summaryCount {
			end := min(start+count, len(kept))
			page = kept[start:end]
			before, after = before || start > 0, end < len(kept)
		}
		for i := range page {
			r, err := s.tracedOutgoing(ctx, tx, page[i])
			if err != nil {
				return err
			}
			s.disclose(tx, cl, page[i].Type, page[i].ID)
			resources[key(page[i].Hit)] = r
		}
		if len(page) > 0 && !sp.everything {
			included, err = s.includes(ctx, cl, tx, sp, queries, page, resources)
			if err != nil {
				return err
			}
			if p, ok := level.Obligation("pseudonymise"); ok {
				// Included resources too come in the order of the ids
				// shown, not the hub's (black-box review: _revinclude
				// kept creation order, the same in every domain).
				dom := pseudoDomain(p.Domain)
				shown := make(map[string]string, len(included))
				for _, h := range included {
					shown[key(h.Hit)] = s.shownID(tx, dom, h.Type, h.ID)
				}
				slices.SortStableFunc(included, func(a, b hit) int { return strings.Compare(shown[key(a.Hit)], shown[key(b.Hit)]) })
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	self := base + sp.path
	links := []any{link("self", self, applied)}
	if count > 0 && after && len(page) > 0 {
		links = append(links, link("next", self, withCursor(applied, cursor{after: true, hit: page[len(page)-1].Hit}, count, bind)))
	}
	if count > 0 && before && len(page) > 0 {
		links = append(links, link("previous", self, withCursor(applied, cursor{hit: page[0].Hit}, count, bind)))
	} else if count > 0 && before && len(page) == 0 && len(kept) > 0 {
		links = append(links, link("previous", self, withCursor(applied, cursor{hit: kept[len(kept)-1].Hit, inclusive: true}, count, bind)))
	}
	entries := make([]any, 0, len(page)+len(included))
	for _, group := range []struct {
		hits []hit
		mode string
	}{{page, "match"}, {included, "include"}} {
		for _, h := range group.hits {
			r := resources[key(h.Hit)]
			b, err := shape(sp.params, r.JSON)
			if err != nil {
				return err
			}
			id := r.ID
			if r.Op == opTransformed { // pseudonymised resources carry their pseudonym
				id, _ = decodeStored(b)["id"].(string)
			}
			mode := group.mode
			if sp.everything {
				mode = "match"
			}
			entries = append(entries, map[string]any{
				"fullUrl":  base + "/" + r.Type + "/" + id,
				"resource": json.RawMessage(b),
				"search":   map[string]any{"mode": mode},
			})
		}
	}
	bundle := map[string]any{
		"resourceType": "Bundle",
		"id":           store.NewID(),
		"meta":         map[string]any{"lastUpdated": store.FormatInstant(time.Now())},
		"type":         "searchset",
		"link":         links,
	}
	if total != "none" || summaryCount {
		bundle["total"] = len(kept)
	}
	if len(entries) > 0 {
		bundle["entry"] = entries
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(bundle))
}

func key(h search.Hit) string { return h.Type + "/" + h.ID }

func sortedUnion(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// decideAs decides one current resource for the search: as a match of a
// search, or as part of an operation ($everything).
func (s *Server) decideAs(ctx context.Context, cl *caller, tx *store.Tx, sp searchSpec, r store.Resource) (policy.Decision, error) {
	if sp.operation == "" {
		return s.decideCurrent(ctx, cl, tx, sp.interaction, r)
	}
	if cl == nil {
		return policy.Decision{Allow: true}, nil
	}
	a := storedAccess(tx, r.Type, r.ID)
	return s.decide(ctx, cl, tx, question{interaction: sp.interaction, operation: sp.operation, typ: r.Type, target: &target{typ: r.Type, id: r.ID, access: a}})
}

// decideOwner is the request-level decision of a patient-wide operation
// ($everything, $pathway) on the Patient r: recorded as the request's own
// decision, where the decisions on the resources it returns are counted.
func (s *Server) decideOwner(ctx context.Context, cl *caller, tx *store.Tx, sp searchSpec, r store.Resource) (policy.Decision, error) {
	if cl == nil {
		return policy.Decision{Allow: true}, nil
	}
	a := storedAccess(tx, r.Type, r.ID)
	return s.decide(ctx, cl, tx, question{interaction: sp.interaction, operation: sp.operation, typ: r.Type, owner: true,
		target: &target{typ: r.Type, id: r.ID, access: a}})
}

// outgoing reads an allowed resource and applies its obligations.
func (s *Server) outgoing(tx *store.Tx, h hit) (store.Resource, error) {
	return s.tracedOutgoing(context.Background(), tx, h)
}

// tracedOutgoing is outgoing with the obligations span under ctx's span.
func (s *Server) tracedOutgoing(ctx context.Context, tx *store.Tx, h hit) (store.Resource, error) {
	r, err := tx.Get(h.Type, h.ID)
	if err != nil {
		return r, err
	}
	out, err := s.obligations(ctx, tx, h.d, r.JSON)
	if err != nil {
		return r, err
	}
	if len(out) != len(r.JSON) || string(out) != string(r.JSON) {
		r.Op = opTransformed
	}
	r.JSON = out
	return r, nil
}

// includes resolves _include and _revinclude (with :iterate) for the page:
// every included resource is decided like a match, denied ones are left out.
func (s *Server) includes(ctx context.Context, cl *caller, tx *store.Tx, sp searchSpec, queries []*search.Query, page []hit, resources map[string]store.Resource) ([]hit, error) {
	var incs, revs []search.Include
	for _, q := range queries {
		incs = append(incs, q.Include...)
		revs = append(revs, q.RevInclude...)
	}
	if len(incs) == 0 && len(revs) == 0 {
		return nil, nil
	}
	reg := search.Default()
	seen := map[string]bool{}
	for _, h := range page {
		seen[key(h.Hit)] = true
	}
	var out []hit
	sources := page
	for round := 0; round < maxIncludeRounds && len(sources) > 0 && len(out) < maxIncluded; round++ {
		var found []string // Type/id, in order
		add := func(ref string) {
			if !seen[ref] {
				seen[ref] = true
				found = append(found, ref)
			}
		}
		for _, src := range sources {
			for _, inc := range incs {
				if (round > 0 && !inc.Iterate) || inc.Source != src.Type {
					continue
				}
				for _, ref := range reg.References(tx, src.Type, src.ID, inc.Param) {
					if inc.Target == "" || strings.HasPrefix(ref, inc.Target+"/") {
						add(ref)
					}
				}
			}
			for _, rev := range revs {
				if (round > 0 && !rev.Iterate) || (rev.Target != "" && rev.Target != src.Type) {
					continue
				}
				for _, id := range reg.Referring(tx, rev.Source, rev.Param, src.Type+"/"+src.ID) {
					add(rev.Source + "/" + id)
				}
			}
		}
		sources = nil
		for _, ref := range found {
			if len(out) >= maxIncluded {
				break
			}
			typ, id, _ := strings.Cut(ref, "/")
			r, err := tx.Get(typ, id)
			if err != nil || r.Deleted() {
				continue // a dangling reference includes nothing
			}
			d, err := s.decideAs(ctx, cl, tx, sp, r)
			if err != nil {
				if outcome.StatusOf(err) == http.StatusForbidden {
					continue
				}
				return nil, err
			}
			h := hit{Hit: search.Hit{Type: typ, ID: id}, d: d}
			res, err := s.tracedOutgoing(ctx, tx, h)
			if err != nil {
				return nil, err
			}
			s.disclose(tx, cl, typ, id)
			resources[ref] = res
			out = append(out, h)
			sources = append(sources, h)
		}
	}
	return out, nil
}

// resolveShownIDs rewrites the _id and reference criteria whose values are
// all pseudonyms of domain (the ids a pseudonymised caller is shown) to the
// hub ids they stand for, and returns those criteria: they find by what the
// caller sees. A value of another domain, or a hub id, is left as it is
// (and the criterion re-identifies: no match).
func (s *Server) resolveShownIDs(tx *store.Tx, queries []*search.Query, domain string) map[*search.Clause]bool {
	named := map[*search.Clause]bool{}
	for _, q := range queries {
		for _, c := range q.Clauses {
			if c.Param == nil || c.Chain != nil || c.Has != nil || len(c.Values) == 0 {
				continue
			}
			isID := c.Param.Code == "_id" && c.Modifier == ""
			if !isID && (c.Param.Type != search.TypeReference || c.Modifier != "" && !conformance.IsResourceType(c.Modifier)) {
				continue
			}
			type rewrite struct {
				v  *search.Value
				to string
			}
			var rw []rewrite
			for i := range c.Values {
				v := &c.Values[i]
				typ, id, ok := q.Type, v.Raw, true
				if !isID {
					typ, id, ok = strings.Cut(v.Code, "/")
					switch {
					case ok && strings.Contains(id, "/"):
						ok = false
					case !ok && c.Modifier != "":
						typ, id, ok = c.Modifier, v.Code, true
					case !ok && c.Param.Code == "patient":
						typ, id, ok = "Patient", v.Code, true
					}
				}
				hid, shown := "", ""
				if ok {
					hid, shown = s.resolvePseudonym(tx, typ, id)
				}
				if shown != domain || shown == "" {
					rw = nil
					break
				}
				to := hid
				if !isID {
					to = typ + "/" + hid
					if c.Modifier != "" && !strings.Contains(v.Code, "/") {
						to = hid
					}
				}
				rw = append(rw, rewrite{v, to})
			}
			if len(rw) == len(c.Values) {
				for _, r := range rw {
					r.v.Code = r.to
					if isID {
						r.v.Raw = r.to // _id is matched on the value as given
					}
				}
				named[c] = true
			}
		}
	}
	return named
}

// reidentifying reports whether the criteria of a search name a person by
// who they are: a pseudonymised recipient gets no match for them. Patient
// criteria other than coarse attributes, logical ids of Patients, business
// identifiers of any type, references (and chains) to Patients, and the
// compartment of a patient all re-identify.
func (s *Server) reidentifying(sp searchSpec, queries []*search.Query, named map[*search.Clause]bool) bool {
	if strings.HasPrefix(sp.owner, "Patient/") && sp.ownerShown == "" {
		return true // a patient named by the hub's id
	}
	for _, q := range queries {
		for _, c := range q.Clauses {
			if !named[c] && clauseReidentifies(q.Type, c) {
				return true
			}
		}
	}
	return sortReidentifies(queries)
}

// sortReidentifies reports whether a search orders by who people are
// (identifier, name, birth date, telecom… or by the patient referred to)
// or by a date (ranking by the day the output hides): it would rank
// pseudonymised results by those values.
func sortReidentifies(queries []*search.Query) bool {
	for _, q := range queries {
		for _, k := range q.Sort {
			if k.Param == nil {
				return true // _id: the hub's ids, in creation order
			}
			if clauseReidentifies(q.Type, &search.Clause{Param: k.Param}) || k.Param.Type == search.TypeDate {
				return true
			}
		}
	}
	return false
}

// coarsePatientParams do not single a person out.
var coarsePatientParams = map[string]bool{
	"gender": true, "active": true, "deceased": true, "language": true, "organization": true, "general-practitioner": true,
	"_lastUpdated": true, "_tag": true, "_profile": true, "_security": true,
}

func clauseReidentifies(typ string, c *search.Clause) bool {
	if c.Has != nil {
		// Patients having a resource that matches: as re-identifying as
		// the criterion on that resource (black-box review: a _has on a
		// code matched nothing).
		return clauseReidentifies(c.Has.Type, c.Has.Clause)
	}
	p := c.Param
	switch {
	case c.Chain != nil:
		// Through the reference, as re-identifying as the criterion on
		// the referenced resource (subject:Patient.gender is coarse,
		// subject:Patient.name is not).
		for t, inner := range c.Chain {
			if clauseReidentifies(t, inner) {
				return true
			}
		}
		return false
	case p.Code == "_id" || p.Code == "_source" || p.Type == search.TypeReference:
		// (_source: meta.source, the writer and its organisation, which
		// the pseudonymised output drops: black-box review)
		// The hub's ids, which a pseudonymised caller is not shown: a
		// criterion on one would link it to what it names.
		return true
	case p.Type == search.TypeToken && (strings.Contains(p.Code, "identifier") || p.Code == "requisition"):
		return true // business identifiers, which the output drops
	case p.Type == search.TypeDate && finerThanMonth(c.Values):
		// A date finer than the month (a write's time, an event's day or
		// second), which pseudonymised outputs show to the month only,
		// would pin a resource, and its patient, down.
		return true
	case typ == "Patient" && p.Code == "birthdate" && c.Chain == nil:
		// The year of birth is shown: a criterion to the year, not finer,
		// names no one the answer does not (black-box review).
		return !yearsOnly(c.Values)
	case typ == "Patient" && !coarsePatientParams[p.Code]:
		return true
	}
	return false
}

// yearsOnly reports whether every value of a date criterion is a year
// (YYYY) with a prefix other than ap (whose range moves by the day).
func yearsOnly(values []search.Value) bool {
	for _, v := range values {
		if v.Prefix == "ap" || len(strings.TrimPrefix(v.Raw, v.Prefix)) != len("2006") {
			return false
		}
	}
	return len(values) > 0
}

// finerThanMonth reports whether a date criterion is more precise than a
// month (its value, prefix aside, longer than YYYY-MM).
func finerThanMonth(values []search.Value) bool {
	for _, v := range values {
		// ap's range is widened by a tenth of the gap to now: its edge
		// falls within a month, and moves by the day.
		if v.Prefix == "ap" || len(strings.TrimPrefix(v.Raw, v.Prefix)) > len("2006-01") {
			return true
		}
	}
	return false
}

// A cursor is a position in the ordered matches: the next page starts
// after it, the previous page ends before it.
type cursor struct {
	after     bool
	inclusive bool // before, the hit itself included (previous of an empty page)
	hit       search.Hit
}

type cursorJSON struct {
	Dir  string   `json:"d"`
	Type string   `json:"t"`
	ID   string   `json:"i"`
	Keys []string `json:"k,omitempty"`
}

// cursorBinding ties a search's cursors to the caller (subject and
// purpose) and to the search (its types, owner, operation and applied
// criteria, paging aside): a cursor works for the next page of that
// search only.
func cursorBinding(cl *caller, sp searchSpec, applied url.Values) string {
	q := url.Values{}
	for k, v := range applied {
		switch k {
		case "_cursor", "_count", "_offset", "_format", "_pretty":
		default:
			q[k] = v
		}
	}
	who := ""
	if cl != nil && cl.claims != nil {
		who = cl.claims.Subject + "|" + cl.purpose
	}
	return "search|" + who + "|" + strings.Join(sp.types, ",") + "|" + sp.owner + "|" + sp.operation + "|" + q.Encode()
}

// seal is the cursor sealed for the search bound by bind.
func (c cursor) seal(bind string) string {
	dir := "b"
	if c.after {
		dir = "a"
	} else if c.inclusive {
		dir = "B"
	}
	b, _ := json.Marshal(cursorJSON{Dir: dir, Type: c.hit.Type, ID: c.hit.ID, Keys: c.hit.Keys})
	return sealCursor(bind, b)
}

func parseCursor(bind, s string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := openCursor(bind, s)
	var cj cursorJSON
	if err == nil {
		err = json.Unmarshal(b, &cj)
	}
	if err != nil || (cj.Dir != "a" && cj.Dir != "b" && cj.Dir != "B") {
		return nil, outcome.Invalid("_cursor", "invalid _cursor: use the links of a recent answer to the same search by the same caller (cursors do not outlive a restart of the hub)")
	}
	c := &cursor{after: cj.Dir == "a", hit: search.Hit{Type: cj.Type, ID: cj.ID, Keys: cj.Keys}}
	if cj.Dir == "B" {
		// Before, inclusive: just after the hit's predecessor, i.e. a
		// position a hair after the hit itself.
		c.hit.ID += "\x00"
	}
	return c, nil
}

func withCursor(q url.Values, c cursor, count int, bind string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = v
	}
	delete(out, "_offset")
	out.Set("_cursor", c.seal(bind))
	out.Set("_count", strconv.Itoa(count))
	return out
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

// noteQueried records the patients the criteria of a search name (a
// reference to Patient/<id>, as patient=, subject=…), whatever the search
// finds: the patient's lookups are in the log (LabelQueried).
// onePatientRef is the patient ("Patient/<id>") whose record a search
// can only reach, if there is one: a compartment search (owner), or every
// query restricted, by a
// clause without modifier, chain or _has, to one and the same patient
// through patient, subject or (on Patient) _id, one value each; and no
// _include or _revinclude, which reach beyond the matches (black-box
// review: an Encounter's service provider, iterated, reached the
// encounters of dozens of patients).
func onePatientRef(queries []*search.Query, owner string) (string, bool) {
	for _, q := range queries {
		if len(q.Include) > 0 || len(q.RevInclude) > 0 {
			return "", false
		}
	}
	if owner != "" {
		// A patient's compartment; a Practitioner's or an Encounter's
		// holds many patients' resources (black-box review).
		return owner, strings.HasPrefix(owner, "Patient/")
	}
	who := ""
	for _, q := range queries {
		found := ""
		for _, c := range q.Clauses {
			if c.Param == nil || c.Chain != nil || c.Has != nil || len(c.Values) != 1 {
				continue
			}
			v := c.Values[0].Code
			switch {
			case q.Type == "Patient" && c.Param.Code == "_id" && c.Modifier == "" && !c.Values[0].HasSystem:
				v = "Patient/" + v
			case c.Param.Type != search.TypeReference || (c.Param.Code != "patient" && c.Param.Code != "subject"):
				continue
			case c.Modifier == "Patient" || c.Modifier == "" && c.Param.Code == "patient" && !strings.Contains(v, "/"):
				v = "Patient/" + v
			case c.Modifier != "":
				continue
			}
			if i := strings.LastIndex(v, "/Patient/"); i > 0 && strings.Contains(v[:i], "://") {
				v = v[i+1:] // an absolute reference: it matches only if its base is the hub's
			}
			if id, ok := strings.CutPrefix(v, "Patient/"); ok && id != "" && !strings.Contains(id, "/") {
				found = v
				break
			}
		}
		if found == "" || who != "" && found != who {
			return "", false
		}
		who = found
	}
	return who, who != ""
}

func (s *Server) noteQueried(tx *store.Tx, cl *caller, queries []*search.Query) {
	if cl == nil || s.cfg.NoAudit {
		return
	}
	for _, q := range queries {
		for _, c := range q.Clauses {
			if c.Param == nil || c.Param.Type != search.TypeReference || c.Chain != nil || c.Has != nil {
				continue
			}
			for _, v := range c.Values {
				id, ok := strings.CutPrefix(v.Code, "Patient/")
				if !ok && (c.Param.Code == "patient" || c.Modifier == "Patient") && !strings.Contains(v.Code, "/") {
					id, ok = v.Code, true
				}
				if ok && id != "" && !strings.Contains(id, "/") {
					if cl.queried == nil {
						cl.queried = map[string]bool{}
					}
					cl.queried[s.patientPseudonym(tx, "audit", "Patient/"+id)] = true
				}
			}
		}
	}
}
