package suite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// patient is a valid R4 Patient with one identifier in the run's system.
func (r *runner) patient(value, family string) map[string]any {
	return map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": r.system, "value": value}},
		"name":         []any{map[string]any{"family": family, "given": []any{"Conformance"}}},
		"gender":       "unknown",
		"birthDate":    "1970-01-01",
	}
}

func with(res map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(res)+len(kv)/2)
	for k, v := range res {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func family(res map[string]any) string { return str(res, "name", 0, "family") }

// written is a resource version the server stored.
type written struct {
	typ, id, version, lastUpdated string
}

// writtenBy reads what a create or update answered: the id from the body,
// else the Location; the version from meta, ETag or Location.
func writtenBy(typ string, x *response) written {
	_, id, _ := parseRef(x.header.Get("Location"))
	if str(x.res, "resourceType") == typ && str(x.res, "id") != "" {
		id = str(x.res, "id")
	}
	return written{typ: typ, id: id, version: x.version(), lastUpdated: str(x.res, "meta", "lastUpdated")}
}

// create POSTs res asking for the stored resource back and wants 201 with
// an id. What it creates is deleted at the end of the run.
func (r *runner) create(ctx context.Context, res map[string]any, header ...string) (written, *response, error) {
	typ := str(res, "resourceType")
	x, err := r.do(ctx, http.MethodPost, typ, res, append([]string{"Prefer", "return=representation"}, header...)...)
	if err != nil {
		return written{}, nil, err
	}
	w := writtenBy(typ, x)
	if x.status/100 == 2 {
		r.track(typ, w.id)
	}
	if err := x.want("POST "+typ, http.StatusCreated); err != nil {
		return w, x, err
	}
	if w.id == "" {
		return w, x, fmt.Errorf("POST %s: 201 without an id in the Location or the body", typ)
	}
	return w, x, nil
}

// update PUTs res at target (Type/id or Type?criteria) and wants one of
// codes.
func (r *runner) update(ctx context.Context, target string, res map[string]any, codes []int, header ...string) (written, *response, error) {
	typ := str(res, "resourceType")
	x, err := r.do(ctx, http.MethodPut, target, res, append([]string{"Prefer", "return=representation"}, header...)...)
	if err != nil {
		return written{}, nil, err
	}
	w := writtenBy(typ, x)
	if x.status == http.StatusCreated {
		r.track(typ, w.id)
	}
	return w, x, x.want("PUT "+clip(target, 100), codes...)
}

// problems gathers the failed expectations of one check.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New(strings.Join(p, "; "))
}

// once runs a group's setup for the first check that needs it. A failure is
// that check's failure and the others' skip; a skip is everyone's.
type once struct {
	done bool
	err  error
}

func (o *once) do(f func() error) error {
	if o.done {
		var skip skipError
		if o.err == nil || errors.As(o.err, &skip) {
			return o.err
		}
		return skipf("setup failed (reported by an earlier check of the group)")
	}
	o.done = true
	o.err = f()
	var skip skipError
	if o.err != nil && !errors.As(o.err, &skip) {
		return fmt.Errorf("setup: %w", o.err)
	}
	return o.err
}

// checkETag wants ETag W/"version".
func checkETag(p *problems, x *response, version string) {
	switch etag := x.header.Get("ETag"); {
	case etag == "":
		p.add("no ETag")
	case etag != `W/"`+version+`"`:
		p.add(`ETag %s, want W/"%s"`, etag, version)
	}
}

type crudChecks struct {
	*runner
	p       written // the Patient created
	deleted bool
}

func (r *runner) crudChecks() []check {
	s := &crudChecks{runner: r}
	return []check{
		{"create", s.create},
		{"read", s.read},
		{"read unknown id: 404", s.readUnknown},
		{"update", s.update},
		{"delete", s.delete},
		{"read after delete", s.readDeleted},
		{"create on update (client id)", s.createOnUpdate},
	}
}

func (s *crudChecks) create(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "create"); err != nil {
		return "", err
	}
	w, x, err := s.runner.create(ctx, s.patient("crud", "Crud"))
	if err != nil {
		return "", err
	}
	s.p = w
	var p problems
	loc := x.header.Get("Location")
	switch typ, id, vid := parseRef(loc); {
	case loc == "":
		p.add("no Location header")
	case typ != "Patient" || id != w.id:
		p.add("Location %q does not name Patient/%s", loc, w.id)
	case vid == "":
		p.add("Location %q lacks /_history/{versionId}", loc)
	case vid != w.version:
		p.add("Location version %s, meta.versionId %s", vid, w.version)
	}
	// Prefer: return=representation is a hint a server may ignore; the
	// resource it does return must carry its id and version.
	if str(x.res, "resourceType") == "Patient" {
		if str(x.res, "id") == "" {
			p.add("no id in the returned Patient")
		}
		if str(x.res, "meta", "versionId") == "" {
			p.add("no meta.versionId in the returned Patient")
		}
	}
	if w.version == "" {
		p.add("no version id in meta, ETag or Location")
	}
	checkETag(&p, x, w.version)
	return fmt.Sprintf("201 Patient/%s version %s", w.id, w.version), p.err()
}

func (s *crudChecks) read(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "read"); err != nil {
		return "", err
	}
	if s.p.id == "" {
		return "", skipf("needs crud/create")
	}
	x, err := s.do(ctx, http.MethodGet, "Patient/"+s.p.id, nil)
	if err != nil {
		return "", err
	}
	if err := x.want("GET Patient/{id}", http.StatusOK); err != nil {
		return "", err
	}
	var p problems
	if got := label(x.res); got != "Patient/"+s.p.id {
		p.add("got %s, want Patient/%s", got, s.p.id)
	}
	if v := str(x.res, "meta", "versionId"); v != s.p.version {
		p.add("meta.versionId %q, want %q", v, s.p.version)
	}
	if f := family(x.res); f != "Crud" {
		p.add("name[0].family %q, want %q as created", f, "Crud")
	}
	checkETag(&p, x, s.p.version)
	return "200, ETag " + x.header.Get("ETag"), p.err()
}

func (s *crudChecks) update(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "update"); err != nil {
		return "", err
	}
	if s.p.id == "" {
		return "", skipf("needs crud/create")
	}
	res := with(s.patient("crud", "CrudUpdated"), "id", s.p.id)
	w, x, err := s.runner.update(ctx, "Patient/"+s.p.id, res, []int{http.StatusOK})
	if err != nil {
		return "", err
	}
	var p problems
	switch {
	case w.version == "":
		p.add("no version in the answer (meta.versionId, ETag)")
	case w.version == s.p.version:
		p.add("version still %s after the update", w.version)
	case s.p.version == "1" && w.version != "2":
		p.add("version %s after version 1, want 2", w.version)
	}
	if str(x.res, "resourceType") == "Patient" && family(x.res) != "CrudUpdated" {
		p.add("answered name[0].family %q, want the update's %q", family(x.res), "CrudUpdated")
	}
	checkETag(&p, x, w.version)
	detail := fmt.Sprintf("200, version %s → %s", s.p.version, w.version)
	return detail, p.err()
}

func (s *crudChecks) delete(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "delete"); err != nil {
		return "", err
	}
	if s.p.id == "" {
		return "", skipf("needs crud/create")
	}
	x, err := s.do(ctx, http.MethodDelete, "Patient/"+s.p.id, nil)
	if err != nil {
		return "", err
	}
	if err := x.want("DELETE Patient/{id}", http.StatusOK, http.StatusNoContent, http.StatusAccepted); err != nil {
		return "", err
	}
	s.deleted = true
	return x.brief(), nil
}

func (s *crudChecks) readDeleted(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "read"); err != nil {
		return "", err
	}
	if !s.deleted {
		return "", skipf("needs crud/delete")
	}
	x, err := s.do(ctx, http.MethodGet, "Patient/"+s.p.id, nil)
	if err != nil {
		return "", err
	}
	return x.brief(), x.wantOutcome("GET Patient/{deleted id}", http.StatusGone, http.StatusNotFound)
}

// absentID is a well-formed id no server holds: fresh and random (never
// created, so never deleted either).
func (r *runner) absentID() string {
	return "cnf-" + r.runID + "-absent-" + strings.ReplaceAll(uuid4(), "-", "")
}

// readUnknown reads a well-formed id that was never created: 404 (not 410:
// nothing was deleted) with an OperationOutcome, never a made-up resource.
func (s *crudChecks) readUnknown(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "read"); err != nil {
		return "", err
	}
	x, err := s.do(ctx, http.MethodGet, "Patient/"+s.absentID(), nil)
	if err != nil {
		return "", err
	}
	return x.brief(), x.wantOutcome("GET Patient/{never-created id}", http.StatusNotFound)
}

func (s *crudChecks) createOnUpdate(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "update"); err != nil {
		return "", err
	}
	if err := s.caps.needBool("Patient", "updateCreate", func(t *typeCaps) bool { return t.updateCreate }); err != nil {
		return "", err
	}
	id := "cnf-" + s.runID + "-client"
	res := with(s.patient("create-on-update", "CreateOnUpdate"), "id", id)
	s.track("Patient", id)
	w, x, err := s.runner.update(ctx, "Patient/"+id, res, []int{http.StatusCreated})
	if err != nil {
		return "", err
	}
	var p problems
	if w.id != id {
		p.add("created Patient/%s, want Patient/%s", w.id, id)
	}
	if w.version == "" {
		p.add("no version in the answer")
	}
	return fmt.Sprintf("%d, Patient/%s", x.status, id), p.err()
}
