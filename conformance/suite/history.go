package suite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

type historyChecks struct {
	*runner
	setup    once
	p        written  // the Patient, at its last version
	versions []string // oldest first
	families []string // name[0].family of each version
	since    string   // meta.lastUpdated of the first version
}

func (r *runner) historyChecks() []check {
	s := &historyChecks{runner: r}
	return []check{
		{"vread first version", func(ctx context.Context) (string, error) { return s.vread(ctx, 0) }},
		{"vread second version", func(ctx context.Context) (string, error) { return s.vread(ctx, 1) }},
		{"vread unknown version: 404", s.vreadUnknown},
		{"instance history, newest first", s.instance},
		{"history _count=1 follows next", s.paging},
		{"type history", s.typeHistory},
	}
}

// prepare writes one Patient in three versions.
func (s *historyChecks) prepare(ctx context.Context) error {
	return s.setup.do(func() error {
		if err := s.caps.need("Patient", "create", "update"); err != nil {
			return err
		}
		w, _, err := s.create(ctx, s.patient("history", "History0"))
		if err != nil {
			return err
		}
		s.since = w.lastUpdated
		s.versions, s.families = []string{w.version}, []string{"History0"}
		for i := 1; i <= 2; i++ {
			f := fmt.Sprintf("History%d", i)
			w, _, err = s.update(ctx, "Patient/"+w.id, with(s.patient("history", f), "id", w.id), []int{http.StatusOK})
			if err != nil {
				return err
			}
			if w.version == "" || slices.Contains(s.versions, w.version) {
				return fmt.Errorf("update %d answered version %q after %v", i, w.version, s.versions)
			}
			s.versions, s.families = append(s.versions, w.version), append(s.families, f)
		}
		s.p = w
		return nil
	})
}

func (s *historyChecks) vread(ctx context.Context, n int) (string, error) {
	if err := s.caps.need("Patient", "vread"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	v := s.versions[n]
	x, err := s.do(ctx, http.MethodGet, "Patient/"+s.p.id+"/_history/"+v, nil)
	if err != nil {
		return "", err
	}
	if err := x.want("GET Patient/{id}/_history/{vid}", http.StatusOK); err != nil {
		return "", err
	}
	var p problems
	if got := str(x.res, "meta", "versionId"); got != v {
		p.add("meta.versionId %q, want %q", got, v)
	}
	if got := family(x.res); got != s.families[n] {
		p.add("name[0].family %q, want %q of that version", got, s.families[n])
	}
	if etag := x.header.Get("ETag"); etag != "" && etagVersion(etag) != v {
		p.add("ETag %s for version %s", etag, v)
	}
	return "version " + v, p.err()
}

// vreadUnknown reads a version beyond the current one of an existing
// Patient: 404 with an OperationOutcome, never the current version or a
// made-up one. Versions are opaque in R4: after a numeric current version n
// the suite asks for n+1, otherwise for a random version id.
func (s *historyChecks) vreadUnknown(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "vread"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	cur := s.versions[len(s.versions)-1]
	v := "cnf" + strings.ReplaceAll(uuid4(), "-", "")
	if n, err := strconv.ParseUint(cur, 10, 63); err == nil {
		v = strconv.FormatUint(n+1, 10)
	}
	x, err := s.do(ctx, http.MethodGet, "Patient/"+s.p.id+"/_history/"+v, nil)
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("GET Patient/{id}/_history/%s (current version %s)", v, cur)
	return x.brief(), x.wantOutcome(what, http.StatusNotFound)
}

// entryVersions returns, for the entries about Patient/id, their version
// (meta.versionId, else the _history part of fullUrl, request.url or
// response.location).
func entryVersions(pages []bundlePage, id string) []string {
	var out []string
	for _, pg := range pages {
		for i, e := range pg.entries {
			res := pg.resource[i]
			refs := []string{str(e, "fullUrl"), str(e, "request", "url"), str(e, "response", "location")}
			if label(res) == "Patient/"+id {
				out = append(out, str(res, "meta", "versionId"))
				continue
			}
			for _, ref := range refs {
				if typ, rid, vid := parseRef(ref); typ == "Patient" && rid == id {
					out = append(out, vid)
					break
				}
			}
		}
	}
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func (s *historyChecks) instance(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "history-instance"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	pages, err := s.readBundle(ctx, "Patient/"+s.p.id+"/_history", "history", maxPages)
	if err != nil {
		return "", err
	}
	got, want := entryVersions(pages, s.p.id), reversed(s.versions)
	if !slices.Equal(got, want) {
		return "", fmt.Errorf("versions %v, want %v (newest first)", got, want)
	}
	return fmt.Sprintf("%d entries, versions %s", len(got), strings.Join(got, ", ")), nil
}

func (s *historyChecks) paging(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "history-instance"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	pages, err := s.readBundle(ctx, query("Patient/"+s.p.id+"/_history", "_count", "1"), "history", maxPages)
	if err != nil {
		return "", err
	}
	var p problems
	for i, pg := range pages {
		if len(pg.entries) > 1 {
			p.add("page %d has %d entries with _count=1", i+1, len(pg.entries))
		}
	}
	got, want := entryVersions(pages, s.p.id), reversed(s.versions)
	if !slices.Equal(got, want) {
		p.add("versions %v over %d pages, want %v", got, len(pages), want)
	}
	return fmt.Sprintf("%d pages", len(pages)), p.err()
}

// typeHistoryPages bounds the pages of type history read looking for the
// run's Patient.
const typeHistoryPages = 5

func (s *historyChecks) typeHistory(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "history-type"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	q := query("Patient/_history", "_count", "50")
	if s.since != "" {
		q = query("Patient/_history", "_since", s.since, "_count", "50")
	}
	pages, err := s.readBundle(ctx, q, "history", typeHistoryPages)
	if err != nil && !errors.Is(err, errMorePages) {
		return "", err
	}
	var p problems
	n := 0
	for _, pg := range pages {
		for _, res := range pg.resource {
			n++
			if t := str(res, "resourceType"); res != nil && t != "Patient" {
				p.add("entry of type %s in Patient history", t)
				break
			}
		}
	}
	got, want := entryVersions(pages, s.p.id), reversed(s.versions)
	if !slices.Equal(got, want) {
		p.add("versions of the run's Patient %v in %d pages, want %v (newest first)", got, len(pages), want)
	}
	return fmt.Sprintf("%d entries in %d pages", n, len(pages)), p.err()
}
