package pathway

import (
	_ "embed"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// DefaultPathwaysJSON is the embedded pathways table (pathways.json).
//
//go:embed pathways.json
var DefaultPathwaysJSON []byte

// Pathway says when a patient enters a pathway and which facts belong to it.
type Pathway struct {
	// Type is a code of the pathway-type CodeSystem.
	Type        string `json:"type"`
	Version     string `json:"version"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	// Population filters (age and sex at the start date, exclusions).
	Population *Population `json:"population,omitempty"`
	// Triggers: the episode starts on the first day any trigger is
	// satisfied over the whole record (triggers have no window).
	Triggers []Event `json:"triggers"`
	// Members: besides the trigger facts, the facts from the start on that
	// match any of these criteria.
	Members []Criteria `json:"members,omitempty"`
}

// Episode statuses (EpisodeOfCare.status).
const (
	EpisodeActive   = "active"
	EpisodeFinished = "finished"
)

// Episode is one patient's pathway, for the caller to write as an
// EpisodeOfCare.
type Episode struct {
	// Key is "<patient ref>|<pathway type>", stable across runs.
	Key     string
	Type    string
	Version string
	Patient string
	// Start is the day the trigger was satisfied; End the date of death
	// of a finished episode (zero otherwise).
	Start, End time.Time
	// Trigger is the fact that started the episode; Condition the first
	// Condition among the trigger facts ("" when none), for
	// EpisodeOfCare.diagnosis.
	Trigger, Condition string
	// Members are the facts of the episode, by date.
	Members []string
	// Stage and StageTop are the stage of the latest member with one.
	Stage, StageTop string
	// Status is EpisodeActive, or EpisodeFinished when the patient died.
	Status string
	// Establishment is the trigger fact's establishment.
	Establishment string
}

// ParsePathways reads a pathways table: a JSON array of pathways with
// distinct types. The error is a *DataError with JSON paths.
func ParsePathways(data []byte) ([]Pathway, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]any)
	if !ok {
		return nil, &DataError{Issues: []Issue{{Path: "$", Message: "must be an array of pathways"}}}
	}
	var is issues
	out := make([]Pathway, 0, len(l))
	seen := map[string]int{}
	for i, e := range l {
		p := "$[" + strconv.Itoa(i) + "]"
		var pw Pathway
		var dec, val issues
		decodeStrict(p, e, reflect.ValueOf(&pw).Elem(), &dec)
		if _, isObj := e.(map[string]any); isObj {
			validatePathway(p, &pw, &val)
		}
		is = append(is, dec...)
		is = append(is, dropUnder(val, dec)...)
		if j, dup := seen[pw.Type]; dup && pw.Type != "" {
			is.add(p+".type", "duplicate type %q (also $[%d])", pw.Type, j)
		}
		seen[pw.Type] = i
		out = append(out, pw)
	}
	if err := is.err(); err != nil {
		return nil, err
	}
	return out, nil
}

func validatePathway(p string, pw *Pathway, is *issues) {
	if pw.Type == "" {
		is.add(p+".type", "required")
	} else if _, ok := vocab.Lookup(vocab.PathwayTypeSystem, pw.Type); !ok {
		is.add(p+".type", "%q is not a code of %s", pw.Type, vocab.PathwayTypeSystem)
	}
	required(is, p+".version", pw.Version)
	required(is, p+".title", pw.Title)
	if pw.Population != nil {
		validatePopulation(p+".population", pw.Population, is)
	}
	if len(pw.Triggers) == 0 {
		is.add(p+".triggers", "required")
	}
	for i := range pw.Triggers {
		tp := p + ".triggers" + idx(i)
		validateEvent(tp, &pw.Triggers[i], ctx{}, is)
		if pw.Triggers[i].Window != nil {
			is.add(tp+".window", "triggers look at the whole record and take no window")
		}
	}
	for i := range pw.Members {
		validateCriteria(p+".members"+idx(i), &pw.Members[i], ctx{}, is)
	}
}

// DefaultPathways parses DefaultPathwaysJSON.
func DefaultPathways() ([]Pathway, error) { return ParsePathways(DefaultPathwaysJSON) }

var defaultPathways = sync.OnceValue(func() []Pathway {
	pws, err := DefaultPathways()
	if err != nil {
		// The table is embedded and tested: a failure is a build defect.
		panic("pathway: embedded pathways.json: " + err.Error())
	}
	return pws
})

// Types lists the pathway types of the default pathways table, in table
// order: the episodes Episodes can build.
func Types() []string {
	var out []string
	for _, pw := range defaultPathways() {
		out = append(out, pw.Type)
	}
	return out
}

// Episodes builds the patient's episodes from the default pathways table.
func Episodes(p Patient) []Episode { return EpisodesOf(defaultPathways(), p) }

// EpisodesOf builds the patient's episodes from a pathways table, one per
// pathway whose trigger the patient meets, in table order.
func EpisodesOf(pathways []Pathway, p Patient) []Episode {
	if !slices.IsSortedFunc(p.Facts, byStart) {
		p.Facts = slices.Clone(p.Facts)
		slices.SortStableFunc(p.Facts, byStart)
	}
	var end time.Time
	for i := range p.Facts {
		if p.Facts[i].Start.After(end) {
			end = p.Facts[i].Start
		}
	}
	all := history(end)
	var out []Episode
	for i := range pathways {
		pw := &pathways[i]
		var start time.Time
		var refs []string
		found := false
		for j := range pw.Triggers {
			t := &pw.Triggers[j]
			if d, rs, ok := t.satisfied(&p, all, end, nil, false); ok && (!found || d.Before(start)) {
				start, refs, found = d, rs, true
			}
		}
		if !found || !pw.Population.admits(&p, start) || pw.Population.excludes(&p, start, end) {
			continue
		}
		e := Episode{
			Key: p.Ref + "|" + pw.Type, Type: pw.Type, Version: pw.Version, Patient: p.Ref,
			Start: start, Trigger: refs[len(refs)-1], Status: EpisodeActive,
		}
		inRefs := map[string]bool{}
		for _, r := range refs {
			inRefs[r] = true
		}
		for j := range p.Facts {
			f := &p.Facts[j]
			member := inRefs[f.Ref]
			if !member && !f.Start.IsZero() && !f.Start.Before(start) {
				member = pw.matchesTrigger(f) || pw.matchesMember(f)
			}
			if !member {
				continue
			}
			e.Members = append(e.Members, f.Ref)
			if f.Ref == e.Trigger {
				e.Establishment = f.Establishment
			}
			if f.Type == "Condition" && e.Condition == "" && pw.matchesTrigger(f) {
				e.Condition = f.Ref
			}
			if f.Stage != "" {
				e.Stage, e.StageTop = f.Stage, f.StageTop
			}
		}
		if p.Deceased {
			e.Status, e.End = EpisodeFinished, p.DeceasedDate
		}
		out = append(out, e)
	}
	return out
}

func (pw *Pathway) matchesTrigger(f *Fact) bool {
	for i := range pw.Triggers {
		if pw.Triggers[i].Match.matches(f, nil) {
			return true
		}
	}
	return false
}

func (pw *Pathway) matchesMember(f *Fact) bool {
	for i := range pw.Members {
		if pw.Members[i].matches(f, nil) {
			return true
		}
	}
	return false
}
