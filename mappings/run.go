package mappings

import (
	"cmp"
	"io"
	"slices"
	"strconv"

	"github.com/parcours-sante/parcours/server/outcome"
)

// Spec describes a native format for Run.
type Spec[T any] struct {
	Source string
	// Columns are the CSV header columns (also the keys of flat NDJSON);
	// nil means NDJSON with nested objects (fields named by path).
	Columns []string
	// Parse checks one row and extracts what Build needs. Issues go on the
	// row (r.Fail…); Checks holds the cross-row checks of the file.
	Parse func(r *Row, c *Checks) T
	// Build adds the good rows' resources to the batch. It is called once,
	// with the good rows in file order, when a Bundle is to be made.
	Build func(b *Batch, rows []T)
}

// Run reads a file with a Spec and makes the Result (see the package
// documentation for the all-or-nothing and partial rules).
func Run[T any](spec Spec[T], in io.Reader, opt Options) (*Result, error) {
	data, err := io.ReadAll(in)
	if err != nil {
		return nil, err
	}
	today := opt.now().AddDate(0, 0, 1).Format(DateLayout) // one day of slack for time zones
	res := &Result{}
	checks := &Checks{people: map[string]person{}, keys: map[string]int{}}
	var good []T
	rows, issues := table(data, spec.Columns, today, func(r *Row) {
		v := spec.Parse(r, checks)
		if r.OK() {
			good = append(good, v)
			return
		}
		res.Issues = append(res.Issues, r.Issues...)
	})
	res.Rows = rows
	res.Good = len(good)
	res.Issues = append(res.Issues, issues...)
	slices.SortStableFunc(res.Issues, func(a, b outcome.Issue) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	if len(good) == 0 || (len(res.Issues) > 0 && !opt.Partial) {
		return res, nil
	}
	b := NewBatch(spec.Source, Digest(data), opt)
	spec.Build(b, good)
	res.Bundle = b.Bundle()
	return res, nil
}

// Checks are the checks across the rows of one file.
type Checks struct {
	people map[string]person
	keys   map[string]int
}

type person struct {
	line              int
	birthDate, gender string
}

// SamePerson checks that every row with the same INS-NIR describes the same
// person (birth date and sex); the first row sets them.
func (c *Checks) SamePerson(r *Row, insCol, ins, birthCol, birth, sexCol, gender string) {
	if ins == "" {
		return
	}
	p, ok := c.people[ins]
	if !ok {
		c.people[ins] = person{line: r.Line, birthDate: birth, gender: gender}
		return
	}
	if birth != "" && p.birthDate != "" && birth != p.birthDate {
		r.Fail(birthCol, outcome.CodeValue, "%s differs from line %d for the same %s", birthCol, p.line, insCol)
	}
	if gender != "" && p.gender != "" && gender != p.gender {
		r.Fail(sexCol, outcome.CodeValue, "%s differs from line %d for the same %s", sexCol, p.line, insCol)
	}
}

// Unique checks that a key (stay, claim, member…) appears once in the file.
func (c *Checks) Unique(r *Row, col, key string) {
	if key == "" {
		return
	}
	k := col + "\x00" + key
	if first, ok := c.keys[k]; ok {
		r.Fail(col, outcome.CodeValue, "%s repeats the one of line %s", col, strconv.Itoa(first))
		return
	}
	c.keys[k] = r.Line
}
