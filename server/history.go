package server

import (
	"encoding/binary"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

const maxCount = 1000

// history answers instance, type and system history, newest first, paged
// with a cursor so that a page stays the same while writes happen.
func (s *Server) history(c echo.Context) error {
	q := store.HistoryQuery{Type: c.Param("type"), ID: c.Param("id")}
	if q.Type != "" {
		if err := checkType(q.Type); err != nil {
			return err
		}
	}
	params := c.QueryParams()
	if preferStrict(c) {
		for k := range params {
			switch k {
			case "_since", "_at", "_count", "_cursor", "_format", "_pretty":
			default:
				return outcome.Invalid(k, "parameter %q is not supported by history (supported: _since, _at, _count)", k)
			}
		}
	}
	var err error
	if v := params.Get("_since"); v != "" {
		if q.Since, err = parseInstant(v); err != nil {
			return outcome.Invalid("_since", "_since must be a FHIR instant (e.g. 2026-01-31T12:00:00Z)")
		}
	}
	// _at: the versions current at some point of the period the date
	// covers (a version is current from its time to the next one's).
	var atLo, atHi time.Time
	if v := params.Get("_at"); v != "" {
		var ok bool
		if atLo, atHi, ok = search.DateRange(v); !ok {
			return outcome.Invalid("_at", "_at must be a FHIR date or dateTime (e.g. 2026-01-31 or 2026-01-31T12:00:00Z)")
		}
	}
	if q.Count, err = parseCount(params); err != nil {
		return err
	}
	// Cursors are tied to the caller and to this history (its resource
	// and _since).
	bind := "history|" + q.Type + "|" + q.ID + "|" + params.Get("_since") + "|" + params.Get("_at")
	if cl := callerOf(c); cl != nil && cl.claims != nil {
		bind += "|" + cl.claims.Subject + "|" + cl.purpose
	}
	if v := params.Get("_cursor"); v != "" {
		b, err := openCursor(bind, v)
		if err == nil && len(b) == 8 {
			q.Before = binary.BigEndian.Uint64(b)
		} else {
			return outcome.Invalid("_cursor", "invalid _cursor: use the links of a recent answer (cursors do not outlive a restart of the hub)")
		}
	}
	cl := callerOf(c)
	ctx := c.Request().Context()
	interaction := "history-system"
	switch {
	case q.ID != "":
		interaction = "history-instance"
	case q.Type != "":
		interaction = "history-type"
	}
	if cl == nil && q.ID != "" {
		if err := s.view(ctx, func(tx *store.Tx) error { _, err := tx.Get(q.Type, q.ID); return err }); errors.Is(err, store.ErrNotFound) {
			return err // a resource that never existed has no history
		}
	}
	decisions := map[string]policy.Decision{}
	var shownIn string // the domain of the pseudonym naming the resource
	fineTime := len(params.Get("_since")) > len("2006-01") || len(params.Get("_at")) > len("2006-01")
	if cl != nil {
		// The request's own decision is recorded (not a per-version check).
		err := s.view(ctx, func(tx *store.Tx) error {
			// Instance history is decided on the resource (its last
			// content, if deleted), like a read, and named as a read
			// names it (by the caller's pseudonym when it pseudonymises).
			if q.ID != "" {
				q.ID, shownIn = s.resolvePseudonym(tx, q.Type, q.ID)
				if r, err := tx.Get(q.Type, q.ID); err == nil {
					if r.Deleted() {
						if r, err = tx.Version(q.Type, q.ID, r.Version-1); err != nil {
							return err
						}
					}
					d, err := s.decideOn(ctx, cl, tx, interaction, r)
					return asNamed(d, err, shownIn)
				}
			}
			if _, err := s.decide(ctx, cl, tx, question{interaction: interaction, typ: q.Type}); err != nil {
				return err
			}
			if q.ID != "" {
				return store.ErrNotFound // a resource that never existed has no history
			}
			return nil
		})
		if err != nil {
			return err
		}
		defer cl.snapshotMemo()()
		// Each version is decided on its own content (a deletion on the
		// version it deleted) before it is counted or paged.
		q.Keep = func(tx *store.Tx, r store.Resource) bool {
			decided := r
			if r.Deleted() {
				prev, err := tx.Version(r.Type, r.ID, r.Version-1)
				if err != nil {
					return false
				}
				decided = prev
			}
			d, err := s.decideVersion(ctx, cl, tx, interaction, decided)
			if err != nil || q.ID != "" && !shownAs(d, shownIn) {
				return false
			}
			if d.Has("pseudonymise") && fineTime {
				// A time finer than the month, which the output hides,
				// would bisect the write times.
				return false
			}
			decisions[versionKey(r)] = d
			return true
		}
	}
	if !atLo.IsZero() {
		decided := q.Keep
		q.Keep = func(tx *store.Tx, r store.Resource) bool {
			if r.LastUpdated.After(atHi) {
				return false // not yet written
			}
			if next, err := tx.Version(r.Type, r.ID, r.Version+1); err == nil && !next.LastUpdated.After(atLo) {
				return false // replaced before the period
			}
			return decided == nil || decided(tx, r)
		}
	}
	_, span := s.storeSpan(ctx, "read")
	page, err := s.db.History(q)
	end(span, err)
	if err != nil {
		return err
	}
	base := s.base(c)
	self := base + c.Request().URL.Path[len("/fhir"):]
	keep := url.Values{}
	for _, k := range []string{"_since", "_at", "_cursor"} {
		if v := params.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	if params.Get("_count") != "" {
		keep.Set("_count", strconv.Itoa(q.Count)) // as capped
	}
	links := []any{link("self", self, keep)}
	if page.Next != 0 {
		next := url.Values{}
		for k, v := range keep {
			next[k] = v
		}
		next.Set("_cursor", sealCursor(bind, binary.BigEndian.AppendUint64(nil, page.Next)))
		next.Set("_count", strconv.Itoa(q.Count))
		links = append(links, link("next", self, next))
	}
	ids := make([]string, len(page.Versions)) // the id each entry shows
	err = s.view(ctx, func(tx *store.Tx) error {
		for i, r := range page.Versions {
			d := decisions[versionKey(r)]
			ids[i] = r.ID
			s.disclose(tx, cl, r.Type, r.ID)
			if r.JSON != nil {
				if page.Versions[i].JSON, err = s.obligations(ctx, tx, d, r.JSON); err != nil {
					return err
				}
			} else if p, ok := d.Obligation("pseudonymise"); ok {
				// A deletion has no content to transform: it shows the
				// pseudonym its resource's versions show.
				if r.Type == "Patient" {
					ids[i] = s.patientPseudonym(tx, pseudoDomain(p.Domain), "Patient/"+r.ID)
				} else {
					ids[i] = s.resourcePseudonym(pseudoDomain(p.Domain), r.Type+"/"+r.ID)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	entries := make([]any, 0, len(page.Versions))
	for i, r := range page.Versions {
		if decisions[versionKey(r)].Has("pseudonymise") {
			r.LastUpdated = monthStart(r.LastUpdated)
		}
		entries = append(entries, historyEntry(base, r, ids[i]))
	}
	bundle := map[string]any{
		"resourceType": "Bundle",
		"id":           store.NewID(),
		"meta":         map[string]any{"lastUpdated": store.FormatInstant(time.Now())},
		"type":         "history",
		"total":        page.Total,
		"link":         links,
	}
	if len(entries) > 0 { // FHIR JSON has no empty arrays
		bundle["entry"] = entries
	}
	b := fhirjson.Marshal(bundle)
	return writeJSON(c, http.StatusOK, b)
}

func versionKey(r store.Resource) string {
	return r.Type + "/" + r.ID + "/" + strconv.FormatUint(r.Version, 10)
}

func historyEntry(base string, r store.Resource, id string) map[string]any {
	var res map[string]any
	if r.JSON != nil {
		res = decodeStored(r.JSON)
		id, _ = res["id"].(string) // pseudonymised resources carry their pseudonym
	}
	e := map[string]any{"fullUrl": base + "/" + r.Type + "/" + id}
	req := map[string]any{"method": "PUT", "url": r.Type + "/" + id}
	resp := map[string]any{"status": "200 OK", "etag": etag(r.Version), "lastModified": store.FormatInstant(r.LastUpdated)}
	switch r.Op {
	case store.OpCreate:
		req["method"], req["url"] = "POST", r.Type
		resp["status"] = "201 Created"
	case store.OpUpsert:
		resp["status"] = "201 Created"
	case store.OpDelete:
		req["method"] = "DELETE"
		resp["status"] = "204 No Content"
	}
	if res != nil {
		e["resource"] = res
	}
	e["request"], e["response"] = req, resp
	return e
}

func link(rel, base string, q url.Values) map[string]any {
	u := base
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return map[string]any{"relation": rel, "url": u}
}

func parseCount(params url.Values) (int, error) {
	v := params.Get("_count")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, outcome.Invalid("_count", "_count must be a non-negative integer")
	}
	if n > maxCount {
		n = maxCount
	}
	return n, nil
}

// parseInstant accepts a FHIR instant, dateTime or date (the start of it).
func parseInstant(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, outcome.Invalid("", "not a FHIR instant")
}
