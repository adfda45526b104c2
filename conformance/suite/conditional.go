package suite

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

type conditionalChecks struct {
	*runner
	created written // by If-None-Exist without a match
	updated written // by a conditional update without a match
	multi   once    // two Patients sharing one identifier
	twins   []string
}

func (r *runner) conditionalChecks() []check {
	s := &conditionalChecks{runner: r}
	return []check{
		{"create If-None-Exist, no match: 201", s.createNone},
		{"create If-None-Exist, one match: 200", s.createOne},
		{"create If-None-Exist, two matches: 412", s.createMulti},
		{"update by criteria, no match: 201", s.updateNone},
		{"update by criteria, one match: 200", s.updateOne},
		{"update by criteria, two matches: 412", s.updateMulti},
		{"delete by criteria, one match", s.deleteOne},
		{"delete by criteria, two matches: 412", s.deleteMulti},
	}
}

// criteria is the search that selects the run's resources with identifier
// value v ("identifier=system%7Cv").
func (r *runner) criteria(v string) string {
	return strings.TrimPrefix(query("", "identifier", r.system+"|"+v), "?")
}

func (s *conditionalChecks) needCreate() error {
	if err := s.caps.need("Patient", "create"); err != nil {
		return err
	}
	return s.caps.needBool("Patient", "conditionalCreate", func(t *typeCaps) bool { return t.conditionalCreate })
}

func (s *conditionalChecks) needUpdate() error {
	if err := s.caps.need("Patient", "update"); err != nil {
		return err
	}
	return s.caps.needBool("Patient", "conditionalUpdate", func(t *typeCaps) bool { return t.conditionalUpdate })
}

// prepareTwins creates two Patients with the identifier value cond-multi.
func (s *conditionalChecks) prepareTwins(ctx context.Context) error {
	return s.multi.do(func() error {
		for range 2 {
			w, _, err := s.create(ctx, s.patient("cond-multi", "CondMulti"))
			if err != nil {
				return err
			}
			s.twins = append(s.twins, w.id)
		}
		return nil
	})
}

func (s *conditionalChecks) createNone(ctx context.Context) (string, error) {
	if err := s.needCreate(); err != nil {
		return "", err
	}
	crit := s.criteria("cond-create")
	w, x, err := s.create(ctx, s.patient("cond-create", "CondCreate"), "If-None-Exist", crit)
	if err != nil {
		return "", err
	}
	s.created = w
	return fmt.Sprintf("%d, Patient/%s", x.status, w.id), nil
}

func (s *conditionalChecks) createOne(ctx context.Context) (string, error) {
	if err := s.needCreate(); err != nil {
		return "", err
	}
	if s.created.id == "" {
		return "", skipf("needs the no-match conditional create")
	}
	crit := s.criteria("cond-create")
	x, err := s.do(ctx, http.MethodPost, "Patient", s.patient("cond-create", "CondCreateAgain"), "If-None-Exist", crit)
	if err != nil {
		return "", err
	}
	w := writtenBy("Patient", x)
	if x.status == http.StatusCreated {
		s.track("Patient", w.id)
	}
	if err := x.want("POST Patient with a matching If-None-Exist", http.StatusOK); err != nil {
		return "", err
	}
	var p problems
	if w.id != "" && w.id != s.created.id {
		p.add("answered Patient/%s, want the match Patient/%s", w.id, s.created.id)
	}
	if s.caps.needSearch("Patient", "identifier") == nil {
		sr, err := s.search(ctx, "Patient", "identifier", s.system+"|cond-create")
		switch {
		case err != nil:
			p.add("search: %v", err)
		case len(sr.matches) != 1:
			p.add("%d Patients with the identifier after the second create, want 1", len(sr.matches))
		}
	}
	return "200, nothing created", p.err()
}

func (s *conditionalChecks) createMulti(ctx context.Context) (string, error) {
	if err := s.needCreate(); err != nil {
		return "", err
	}
	if err := s.prepareTwins(ctx); err != nil {
		return "", err
	}
	x, err := s.do(ctx, http.MethodPost, "Patient", s.patient("cond-multi", "CondMulti"), "If-None-Exist", s.criteria("cond-multi"))
	if err != nil {
		return "", err
	}
	if x.status/100 == 2 {
		s.track("Patient", writtenBy("Patient", x).id)
	}
	return x.brief(), x.wantOutcome("POST Patient with If-None-Exist matching two", http.StatusPreconditionFailed)
}

func (s *conditionalChecks) updateNone(ctx context.Context) (string, error) {
	if err := s.needUpdate(); err != nil {
		return "", err
	}
	w, x, err := s.update(ctx, query("Patient", "identifier", s.system+"|cond-update"),
		s.patient("cond-update", "CondUpdate"), []int{http.StatusCreated})
	if err != nil {
		return "", err
	}
	if w.id == "" {
		return "", fmt.Errorf("201 without an id in the Location or the body")
	}
	s.updated = w
	return fmt.Sprintf("%d, Patient/%s", x.status, w.id), nil
}

func (s *conditionalChecks) updateOne(ctx context.Context) (string, error) {
	if err := s.needUpdate(); err != nil {
		return "", err
	}
	if s.updated.id == "" {
		return "", skipf("needs the no-match conditional update")
	}
	w, _, err := s.update(ctx, query("Patient", "identifier", s.system+"|cond-update"),
		s.patient("cond-update", "CondUpdated"), []int{http.StatusOK})
	if err != nil {
		return "", err
	}
	var p problems
	if w.id != "" && w.id != s.updated.id {
		p.add("updated Patient/%s, want the match Patient/%s", w.id, s.updated.id)
	}
	if w.version == s.updated.version {
		p.add("version still %s", w.version)
	}
	return fmt.Sprintf("200, Patient/%s version %s → %s", s.updated.id, s.updated.version, w.version), p.err()
}

func (s *conditionalChecks) updateMulti(ctx context.Context) (string, error) {
	if err := s.needUpdate(); err != nil {
		return "", err
	}
	if err := s.caps.need("Patient", "create"); err != nil {
		return "", err
	}
	if err := s.prepareTwins(ctx); err != nil {
		return "", err
	}
	_, x, err := s.update(ctx, query("Patient", "identifier", s.system+"|cond-multi"),
		s.patient("cond-multi", "CondMultiUpdated"), []int{http.StatusPreconditionFailed})
	if err != nil {
		return "", err
	}
	return x.brief(), x.outcome("PUT Patient?identifier=… matching two")
}

func (s *conditionalChecks) deleteOne(ctx context.Context) (string, error) {
	if err := s.caps.needConditionalDelete("Patient", "single", "multiple"); err != nil {
		return "", err
	}
	if err := s.caps.need("Patient", "create", "read"); err != nil {
		return "", err
	}
	w, _, err := s.create(ctx, s.patient("cond-delete", "CondDelete"))
	if err != nil {
		return "", fmt.Errorf("setup: %w", err)
	}
	x, err := s.do(ctx, http.MethodDelete, query("Patient", "identifier", s.system+"|cond-delete"), nil)
	if err != nil {
		return "", err
	}
	if err := x.want("DELETE Patient?identifier=…", http.StatusOK, http.StatusNoContent, http.StatusAccepted); err != nil {
		return "", err
	}
	after, err := s.do(ctx, http.MethodGet, "Patient/"+w.id, nil)
	if err != nil {
		return "", err
	}
	if err := after.wantOutcome("GET the deleted Patient", http.StatusGone, http.StatusNotFound); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s; then GET %d", x.brief(), after.status), nil
}

func (s *conditionalChecks) deleteMulti(ctx context.Context) (string, error) {
	if err := s.caps.needConditionalDelete("Patient", "single"); err != nil {
		return "", err
	}
	if err := s.caps.need("Patient", "create", "read"); err != nil {
		return "", err
	}
	if err := s.prepareTwins(ctx); err != nil {
		return "", err
	}
	x, err := s.do(ctx, http.MethodDelete, query("Patient", "identifier", s.system+"|cond-multi"), nil)
	if err != nil {
		return "", err
	}
	what := "DELETE Patient?identifier=… matching two"
	if err := x.want(what, http.StatusPreconditionFailed); err != nil {
		return "", err
	}
	var p problems
	if err := x.outcome(what); err != nil {
		p.add("%v", err)
	}
	for _, id := range s.twins {
		y, err := s.do(ctx, http.MethodGet, "Patient/"+id, nil)
		if err != nil {
			return "", err
		}
		if err := y.want("GET a Patient after the refused delete", http.StatusOK); err != nil {
			p.add("%v", err)
			break
		}
	}
	return x.brief() + ", both kept", p.err()
}
