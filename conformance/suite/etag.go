package suite

import (
	"context"
	"fmt"
	"net/http"
)

type etagChecks struct {
	*runner
	setup  once
	p      written
	stale  string // the first version
	latest string // the current version
}

func (r *runner) etagChecks() []check {
	s := &etagChecks{runner: r}
	return []check{
		{"If-Match current version: 200", s.matchCurrent},
		{"If-Match stale version: 412", s.matchStale},
		{"If-None-Match current version: 304", s.noneMatch},
	}
}

// prepare writes one Patient in two versions.
func (s *etagChecks) prepare(ctx context.Context) error {
	return s.setup.do(func() error {
		if err := s.caps.need("Patient", "create", "update", "read"); err != nil {
			return err
		}
		w, _, err := s.create(ctx, s.patient("etag", "Etag0"))
		if err != nil {
			return err
		}
		s.stale = w.version
		w, _, err = s.update(ctx, "Patient/"+w.id, with(s.patient("etag", "Etag1"), "id", w.id), []int{http.StatusOK})
		if err != nil {
			return err
		}
		if w.version == "" || w.version == s.stale {
			return fmt.Errorf("update answered version %q after %q", w.version, s.stale)
		}
		s.p, s.latest = w, w.version
		return nil
	})
}

func (s *etagChecks) matchCurrent(ctx context.Context) (string, error) {
	if err := s.caps.needVersionedUpdate("Patient"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	etag := `W/"` + s.latest + `"`
	w, _, err := s.update(ctx, "Patient/"+s.p.id, with(s.patient("etag", "Etag2"), "id", s.p.id),
		[]int{http.StatusOK}, "If-Match", etag)
	if err != nil {
		return "", err
	}
	if w.version != "" {
		s.latest = w.version
	}
	return "If-Match " + etag + ": 200, version " + w.version, nil
}

func (s *etagChecks) matchStale(ctx context.Context) (string, error) {
	if err := s.caps.needVersionedUpdate("Patient"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	etag := `W/"` + s.stale + `"`
	_, x, err := s.update(ctx, "Patient/"+s.p.id, with(s.patient("etag", "EtagStale"), "id", s.p.id),
		[]int{http.StatusPreconditionFailed}, "If-Match", etag)
	if err != nil {
		return "", err
	}
	var p problems
	if err := x.outcome("PUT Patient/{id} If-Match " + etag); err != nil {
		p.add("%v", err)
	}
	cur, err := s.do(ctx, http.MethodGet, "Patient/"+s.p.id, nil)
	if err != nil {
		return "", err
	}
	if family(cur.res) == "EtagStale" {
		p.add("If-Match %s answered 412 but the update was stored", etag)
	}
	return "If-Match " + etag + ": " + x.brief(), p.err()
}

func (s *etagChecks) noneMatch(ctx context.Context) (string, error) {
	if err := s.caps.needConditionalRead("Patient"); err != nil {
		return "", err
	}
	if err := s.prepare(ctx); err != nil {
		return "", err
	}
	cur, err := s.do(ctx, http.MethodGet, "Patient/"+s.p.id, nil)
	if err != nil {
		return "", err
	}
	if err := cur.want("GET Patient/{id}", http.StatusOK); err != nil {
		return "", err
	}
	etag := cur.header.Get("ETag")
	if etag == "" {
		return "", fmt.Errorf("GET Patient/{id} answered no ETag")
	}
	x, err := s.do(ctx, http.MethodGet, "Patient/"+s.p.id, nil, "If-None-Match", etag)
	if err != nil {
		return "", err
	}
	if err := x.want("If-None-Match "+etag, http.StatusNotModified); err != nil {
		return "", err
	}
	stale := `W/"` + s.stale + `"`
	x, err = s.do(ctx, http.MethodGet, "Patient/"+s.p.id, nil, "If-None-Match", stale)
	if err != nil {
		return "", err
	}
	if err := x.want("If-None-Match "+stale+" (stale)", http.StatusOK); err != nil {
		return "", err
	}
	return "If-None-Match " + etag + ": 304; stale: 200", nil
}
