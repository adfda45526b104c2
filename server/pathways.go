package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/mappings/vocab"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/pathway"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// pathwayRoutes adds the pathway operations: $pathway, $detect-ruptures
// and $evaluate-measure.
func (s *Server) pathwayRoutes(fhir func(method, path string, h echo.HandlerFunc)) {
	fhir(http.MethodGet, "/:type/:id/$pathway", s.pathwayOp)
	fhir(http.MethodPost, "/$detect-ruptures", s.detectRuptures)
	fhir(http.MethodGet, "/Measure/:id/$evaluate-measure", s.evaluateMeasure)
	fhir(http.MethodPost, "/Measure/:id/$evaluate-measure", s.evaluateMeasure)
}

// pathwayFilter is what GET Patient/{id}/$pathway keeps.
type pathwayFilter struct {
	stages       []string
	since, until time.Time // zero: open
	pathwayType  string
}

func parsePathwayFilter(c echo.Context) (pathwayFilter, error) {
	var f pathwayFilter
	for k, vs := range c.QueryParams() {
		switch k {
		case "stage":
			for _, v := range vs {
				for _, code := range strings.Split(v, ",") {
					code = strings.TrimPrefix(strings.TrimSpace(code), vocab.StageSystem+"|")
					if _, ok := vocab.StageOf(code); !ok {
						return f, outcome.Invalid("stage", "unknown stage %q: use a code of %s", code, vocab.StageSystem)
					}
					f.stages = append(f.stages, code)
				}
			}
		case "since", "until":
			t, err := parseDay(vs[len(vs)-1])
			if err != nil {
				return f, outcome.Invalid(k, "%s must be a date (YYYY-MM-DD) or a dateTime", k)
			}
			if k == "since" {
				f.since = t
			} else {
				f.until = t
			}
		case "pathway-type":
			code := strings.TrimPrefix(vs[len(vs)-1], vocab.PathwayTypeSystem+"|")
			if _, ok := vocab.Lookup(vocab.PathwayTypeSystem, code); !ok {
				return f, outcome.Invalid("pathway-type", "unknown pathway type %q: use a code of %s", code, vocab.PathwayTypeSystem)
			}
			f.pathwayType = code
		case "_format", "_pretty":
		default:
			if preferStrict(c) {
				return f, outcome.Invalid(k, "parameter %q is not supported by $pathway", k)
			}
		}
	}
	return f, nil
}

// parseDay reads a FHIR date or dateTime; a date is its first instant.
func parseDay(v string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, v)
}

// stageMatches: the fact's stage is one of the wanted ones or their child.
func (f pathwayFilter) stageMatches(stage string) bool {
	if len(f.stages) == 0 {
		return true
	}
	sc, _ := vocab.StageOf(stage)
	return slices.Contains(f.stages, stage) || (sc.Top != "" && slices.Contains(f.stages, sc.Top))
}

// pathwayOp answers GET /fhir/Patient/{id}/$pathway: the patient's facts
// the caller may see, ordered by date, each with its stage and source
// actor, then the patient's EpisodeOfCares and DetectedIssues. Every
// resource is decided like an $everything result; denied ones are left out
// without a trace (no count, no link).
func (s *Server) pathwayOp(c echo.Context) error {
	if c.Param("type") != "Patient" {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "$pathway is supported on Patient")
	}
	id := c.Param("id")
	if err := checkID(id); err != nil {
		return err
	}
	f, err := parsePathwayFilter(c)
	if err != nil {
		return err
	}
	cl := callerOf(c)
	ctx := c.Request().Context()
	base := s.base(c)
	sp := searchSpec{interaction: "operation", operation: "$pathway"}
	type out struct {
		r     store.Resource
		fact  *pathway.Fact
		group int // 0 facts, 1 episodes, 2 detected issues
	}
	var entries []out
	pseudonymised := false // the owner decision: fact dates to the month
	defer cl.snapshotMemo()()
	err = s.view(ctx, func(tx *store.Tx) error {
		// The patient as the caller names it: by the hub's id, or by its
		// pseudonym when the caller is shown pseudonyms (resolvePseudonym).
		id, shownIn := s.resolvePseudonym(tx, "Patient", id)
		p, err := tx.Get("Patient", id)
		if err != nil || p.Deleted() {
			if _, err := s.decide(ctx, cl, tx, question{interaction: sp.interaction, operation: sp.operation, typ: "Patient"}); err != nil {
				return err
			}
			return outcome.NotFound("Patient/%s not found", id)
		}
		d, err := s.decideOwner(ctx, cl, tx, sp, p)
		if err := asNamed(d, err, shownIn); err != nil {
			return err
		}
		pseudonymised = d.Has("pseudonymise")
		if pseudonymised {
			// Dates are shown to the month: since and until filter by
			// whole months too (black-box review: a day's bisection found
			// the day the answer hides).
			if !f.since.IsZero() {
				f.since = monthStart(f.since)
			}
			if !f.until.IsZero() {
				f.until = monthStart(f.until).AddDate(0, 1, -1) // its month's last day (until is inclusive)
			}
		}
		decisions := map[string]policy.Decision{}
		rec, _ := loadRecord(tx, id, viewRecord, func(r store.Resource) bool {
			d, err := s.decideAs(ctx, cl, tx, sp, r)
			if err != nil {
				return false
			}
			decisions[r.Type+"/"+r.ID] = d
			return true
		})
		pat := pathway.Facts(rec.decoded)
		byRef := map[string]store.Resource{}
		for _, r := range rec.resources {
			byRef[r.Type+"/"+r.ID] = r
		}
		// Episodes of the wanted pathway type (computed from the facts the
		// caller sees), and their members.
		members := map[string]bool{}
		episodes := map[string]bool{}
		for _, ep := range pathway.Episodes(pat) {
			if f.pathwayType != "" && ep.Type != f.pathwayType {
				continue
			}
			episodes["EpisodeOfCare/"+episodeID("Patient/"+id, ep.Type)] = true
			for _, ref := range ep.Members {
				members[ref] = true
			}
		}
		for i := range pat.Facts {
			fa := &pat.Facts[i]
			r, ok := byRef[fa.Ref]
			if !ok || fa.Type == "EpisodeOfCare" || fa.Type == "DetectedIssue" {
				continue
			}
			if !f.stageMatches(fa.Stage) || (!f.since.IsZero() && fa.Start.Before(f.since)) || (!f.until.IsZero() && !fa.Start.Before(f.until.AddDate(0, 0, 1))) {
				continue
			}
			if f.pathwayType != "" && !members[fa.Ref] {
				continue
			}
			entries = append(entries, out{r: r, fact: fa})
		}
		for _, r := range rec.resources {
			switch r.Type {
			case "EpisodeOfCare":
				if f.pathwayType == "" || episodes[r.Type+"/"+r.ID] {
					entries = append(entries, out{r: r, group: 1})
				}
			case "DetectedIssue":
				if f.pathwayType == "" || detectedIn(decodeStored(r.JSON), episodes) {
					entries = append(entries, out{r: r, group: 2})
				}
			}
		}
		for i := range entries {
			r, err := s.tracedOutgoing(ctx, tx, hit{d: decisions[entries[i].r.Type+"/"+entries[i].r.ID], Hit: searchHit(entries[i].r)})
			s.disclose(tx, cl, entries[i].r.Type, entries[i].r.ID)
			if err != nil {
				return err
			}
			entries[i].r = r
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(entries, func(a, b out) int {
		if a.group != b.group {
			return a.group - b.group
		}
		if a.fact != nil && b.fact != nil {
			return a.fact.Start.Compare(b.fact.Start)
		}
		return 0
	})
	list := make([]any, 0, len(entries))
	for _, e := range entries {
		b := e.r.JSON
		rid := e.r.ID
		if e.r.Op == opTransformed {
			rid, _ = decodeStored(b)["id"].(string)
		}
		entry := map[string]any{
			"fullUrl":  base + "/" + e.r.Type + "/" + rid,
			"resource": json.RawMessage(b),
			"search":   map[string]any{"mode": "match"},
		}
		if e.fact != nil {
			var ext []any
			if sc, ok := vocab.StageOf(e.fact.Stage); ok {
				ext = append(ext, sc.Extension())
			}
			if e.fact.SourceActor != "" {
				ext = append(ext, map[string]any{"url": sourceActorExtensionURL, "valueCode": e.fact.SourceActor})
			}
			if start := e.fact.Start; !start.IsZero() {
				if pseudonymised {
					start = monthStart(start) // as the resource's own dates
				}
				ext = append(ext, map[string]any{"url": factDateExtensionURL, "valueDateTime": start.UTC().Format(time.RFC3339)})
			}
			if len(ext) > 0 {
				entry["extension"] = ext
			}
		}
		list = append(list, entry)
	}
	bundle := map[string]any{
		"resourceType": "Bundle",
		"id":           store.NewID(),
		"meta":         map[string]any{"lastUpdated": store.FormatInstant(time.Now())},
		"type":         "searchset",
		"total":        len(list),
		"link":         []any{map[string]any{"relation": "self", "url": base + c.Request().URL.RequestURI()[len("/fhir"):]}},
	}
	if len(list) > 0 {
		bundle["entry"] = list
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(bundle))
}

// Extensions on $pathway entries: the actor type that supplied the fact and
// the date the pathway orders it by.
var (
	sourceActorExtensionURL = vocab.ExtensionBase + "pathway-source-actor"
	factDateExtensionURL    = vocab.ExtensionBase + "pathway-fact-date"
)

func searchHit(r store.Resource) search.Hit { return search.Hit{Type: r.Type, ID: r.ID} }

// detectedIn: the DetectedIssue belongs to one of the episodes.
func detectedIn(m map[string]any, episodes map[string]bool) bool {
	exts, _ := m["extension"].([]any)
	for _, e := range exts {
		x, _ := e.(map[string]any)
		if x["url"] != vocab.EpisodeExtensionURL {
			continue
		}
		if ref, _ := x["valueReference"].(map[string]any); ref != nil {
			if s, _ := ref["reference"].(string); episodes[s] {
				return true
			}
		}
	}
	return false
}
