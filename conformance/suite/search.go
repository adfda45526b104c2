package suite

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The search sample: Patient i has family prefix+sampleFamilies[i], gender
// sampleGenders[i] and birthDate sampleBirthDates[i]; Observation j is about
// Patient j/2, heart rate when j is even and body weight when odd, on
// 2024-(j+1)-15.
var (
	sampleFamilies   = []string{"Alpha", "Bravo", "Charlie", "Delta", "Echo"}
	sampleGenders    = []string{"male", "female", "male", "female", "other"}
	sampleBirthDates = []string{"1950-03-14", "1962-07-01", "1975-01-01", "1988-11-30", "2001-05-20"}
)

const sampleObservations = 10

type searchChecks struct {
	*runner
	sys      string // identifier system of the sample alone
	loaded   bool
	patients []string          // ids by sample index
	obs      []string          // ids by sample index
	names    map[string]string // id → sample name (pat-1, obs-3)
}

func (r *runner) searchChecks() []check {
	s := &searchChecks{runner: r, sys: r.system + ":search", names: map[string]string{}}
	return []check{
		{"load sample (5 Patient, 10 Observation)", s.load},
		{"Patient _id", s.byID},
		{"Patient identifier=system|value", s.byIdentifier},
		{"_count=2 follows next", s.paging},
		{"Bundle.total", s.total},
		{"Patient name", s.name},
		{"Patient birthdate=ge", s.birthdate},
		{"Patient gender", s.gender},
		{"Observation subject=Patient/id", s.subject},
		{"Observation code=system|code", s.code},
		{"Observation date=ge", s.date},
		{"_include=Observation:subject", s.include},
	}
}

// prefix starts the family name of every sample Patient.
func (s *searchChecks) prefix() string { return "Cnf" + s.runID }

func (s *searchChecks) load(ctx context.Context) (string, error) {
	if err := s.caps.need("Patient", "create"); err != nil {
		return "", err
	}
	if err := s.caps.need("Observation", "create"); err != nil {
		return "", err
	}
	for i, f := range sampleFamilies {
		res := with(s.patient("", s.prefix()+f), "identifier", s.identifier(fmt.Sprintf("pat-%d", i)),
			"gender", sampleGenders[i], "birthDate", sampleBirthDates[i])
		w, _, err := s.create(ctx, res)
		if err != nil {
			return "", fmt.Errorf("Patient %d: %w", i, err)
		}
		s.patients = append(s.patients, w.id)
		s.names[w.id] = fmt.Sprintf("pat-%d", i)
	}
	for j := range sampleObservations {
		code, display, unit := "8867-4", "Heart rate", "/min"
		if j%2 == 1 {
			code, display, unit = "29463-7", "Body weight", "kg"
		}
		res := s.observation("", "Patient/"+s.patients[j/2], code, display,
			fmt.Sprintf("2024-%02d-15T10:00:00Z", j+1), 60+j, unit)
		res["identifier"] = s.identifier(fmt.Sprintf("obs-%d", j))
		w, _, err := s.create(ctx, res)
		if err != nil {
			return "", fmt.Errorf("Observation %d: %w", j, err)
		}
		s.obs = append(s.obs, w.id)
		s.names[w.id] = fmt.Sprintf("obs-%d", j)
	}
	s.loaded = true
	return fmt.Sprintf("identifier system %s", s.sys), nil
}

// identifier is the identifier list of a sample resource.
func (s *searchChecks) identifier(value string) []any {
	return []any{map[string]any{"system": s.sys, "value": value}}
}

// ready checks the declarations, then that the sample is loaded.
func (s *searchChecks) ready(typ string, params ...string) error {
	if err := s.caps.needSearch(typ, params...); err != nil {
		return err
	}
	if !s.loaded {
		return skipf("needs the sample")
	}
	return nil
}

// expect compares the matches of a search with the wanted ids, ignoring
// order; what names the search.
func (s *searchChecks) expect(sr searchResult, err error, what string, want ...string) (string, error) {
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	got := slices.Sorted(slices.Values(sr.matches))
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		return "", fmt.Errorf("%s: got %s, want %s", what, s.describe(got), s.describe(want))
	}
	return fmt.Sprintf("%s: %s", what, s.describe(got)), nil
}

// describe names ids by their sample names, others by id.
func (s *searchChecks) describe(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	var named, others []string
	for _, id := range ids {
		if n := s.names[id]; n != "" {
			named = append(named, n)
		} else {
			others = append(others, clip(id, 40))
		}
	}
	if len(others) > 3 {
		others = append(others[:3], fmt.Sprintf("and %d others", len(others)-3))
	}
	return "[" + strings.Join(append(named, others...), " ") + "]"
}

func pick(ids []string, idx ...int) []string {
	out := make([]string, len(idx))
	for i, n := range idx {
		out[i] = ids[n]
	}
	return out
}

func (s *searchChecks) byID(ctx context.Context) (string, error) {
	if err := s.ready("Patient", "_id"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Patient", "_id", s.patients[0])
	return s.expect(sr, err, "_id=pat-0", s.patients[0])
}

func (s *searchChecks) byIdentifier(ctx context.Context) (string, error) {
	if err := s.ready("Patient", "identifier"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Patient", "identifier", s.sys+"|pat-2")
	return s.expect(sr, err, "identifier=…|pat-2", s.patients[2])
}

func (s *searchChecks) paging(ctx context.Context) (string, error) {
	if err := s.ready("Patient", "identifier"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Patient", "identifier", s.sys+"|", "_count", "2")
	if err != nil {
		return "", err
	}
	var p problems
	for i, pg := range sr.pages {
		if len(pg.entries) > 2 {
			p.add("page %d has %d entries with _count=2", i+1, len(pg.entries))
		}
	}
	if len(sr.pages) < 3 {
		p.add("%d pages for 5 matches with _count=2, want 3", len(sr.pages))
	}
	if _, err := s.expect(sr, nil, "identifier=…|", s.patients...); err != nil {
		p.add("%v", err)
	}
	return fmt.Sprintf("5 Patients over %d pages", len(sr.pages)), p.err()
}

func (s *searchChecks) total(ctx context.Context) (string, error) {
	if err := s.ready("Patient", "identifier"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Patient", "identifier", s.sys+"|")
	if err != nil {
		return "", err
	}
	t := at(sr.pages[0].res, "total")
	if t == nil {
		return "", skipf("Bundle.total absent (optional in R4)")
	}
	if got := str(sr.pages[0].res, "total"); got != "5" {
		return "", fmt.Errorf("total %s for the 5 sample Patients", got)
	}
	return "total 5", nil
}

func (s *searchChecks) name(ctx context.Context) (string, error) {
	if err := s.ready("Patient", "name"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Patient", "name", s.prefix()+"Bravo")
	d1, err := s.expect(sr, err, "name=…Bravo", s.patients[1])
	if err != nil {
		return "", err
	}
	// String search is case-insensitive and matches the start of a name.
	sr, err = s.search(ctx, "Patient", "name", strings.ToLower(s.prefix()))
	d2, err := s.expect(sr, err, "name=(lower-case prefix)", s.patients...)
	return d1 + "; " + d2, err
}

func (s *searchChecks) birthdate(ctx context.Context) (string, error) {
	if err := s.ready("Patient", "identifier", "birthdate"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Patient", "identifier", s.sys+"|", "birthdate", "ge1975-01-01")
	return s.expect(sr, err, "birthdate=ge1975-01-01", pick(s.patients, 2, 3, 4)...)
}

func (s *searchChecks) gender(ctx context.Context) (string, error) {
	if err := s.ready("Patient", "identifier", "gender"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Patient", "identifier", s.sys+"|", "gender", "female")
	return s.expect(sr, err, "gender=female", pick(s.patients, 1, 3)...)
}

func (s *searchChecks) subject(ctx context.Context) (string, error) {
	if err := s.ready("Observation", "subject"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Observation", "subject", "Patient/"+s.patients[0])
	return s.expect(sr, err, "subject=Patient/pat-0", pick(s.obs, 0, 1)...)
}

func (s *searchChecks) code(ctx context.Context) (string, error) {
	if err := s.ready("Observation", "identifier", "code"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Observation", "identifier", s.sys+"|", "code", "http://loinc.org|29463-7")
	return s.expect(sr, err, "code=http://loinc.org|29463-7", pick(s.obs, 1, 3, 5, 7, 9)...)
}

func (s *searchChecks) date(ctx context.Context) (string, error) {
	if err := s.ready("Observation", "identifier", "date"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Observation", "identifier", s.sys+"|", "date", "ge2024-06-01")
	return s.expect(sr, err, "date=ge2024-06-01", pick(s.obs, 5, 6, 7, 8, 9)...)
}

func (s *searchChecks) include(ctx context.Context) (string, error) {
	if err := s.ready("Observation", "_id", "Observation:subject"); err != nil {
		return "", err
	}
	sr, err := s.search(ctx, "Observation", "_id", s.obs[2], "_include", "Observation:subject")
	detail, err := s.expect(sr, err, "_id=obs-2", s.obs[2])
	if err != nil {
		return "", err
	}
	want := "Patient/" + s.patients[1]
	if !slices.Contains(sr.included, want) {
		return "", fmt.Errorf("included %v, want the subject %s (pat-1)", sr.included, want)
	}
	return detail + ", included pat-1", nil
}
