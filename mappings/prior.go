package mappings

import (
	"slices"
	"time"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// History is what the hub already stores about a patient, reduced to what
// the stage context rules (vocab.Context, the dependsOn of the
// ConceptMaps) read: dated codes. Options.Prior gives it for a patient's
// INS-NIR, and Batch.Prior merges it into the context a mapper builds from
// its file, so that a colonoscopy of a patient whose colorectal cancer came
// with an earlier upload is follow-up, not diagnosis.
//
// Days are DayNumbers (YYYYMMDD). Day 0 is an undated entry: it never
// counts, since only what is dated before a fact is its context.
type History struct {
	// Conditions are the patient's diagnoses (CIM-10), each code once with
	// the earliest day it is known from.
	Conditions []Dated
	// Results are the patient's abnormal or positive results (LOINC), each
	// code and day once.
	Results []Dated
	// Medications are the drugs dispensed to the patient (ATC), each code
	// once with its earliest dispensation.
	Medications []Dated
}

// Dated is a code known from a day.
type Dated struct {
	Code vocab.Coding
	Day  uint32
}

// AddCondition records a diagnosis known from day (a DayNumber, 0 when
// undated): a code already there keeps its earliest day.
func (h *History) AddCondition(c vocab.Coding, day uint32) {
	h.Conditions = earliest(h.Conditions, c, day)
}

// AddMedication records a dispensation of a drug on day.
func (h *History) AddMedication(c vocab.Coding, day uint32) {
	h.Medications = earliest(h.Medications, c, day)
}

// AddResult records an abnormal or positive result on day.
func (h *History) AddResult(c vocab.Coding, day uint32) {
	if day == 0 || slices.Contains(h.Results, Dated{c, day}) {
		return
	}
	h.Results = append(h.Results, Dated{c, day})
}

func earliest(list []Dated, c vocab.Coding, day uint32) []Dated {
	if day == 0 {
		return list
	}
	for i := range list {
		if list[i].Code == c {
			list[i].Day = min(list[i].Day, day)
			return list
		}
	}
	return append(list, Dated{c, day})
}

// Empty reports whether h tells nothing.
func (h *History) Empty() bool {
	return h == nil || len(h.Conditions)+len(h.Results)+len(h.Medications) == 0
}

// Merge adds to ctx what h tells about the patient before date (the fact's
// date, YYYY-MM-DD; a longer date-time is cut to its day): the conditions
// known and the drugs dispensed strictly before that day, and the results
// of the vocab.RecentResultWindow before it. The day itself is left out,
// so that a fact stored earlier is never its own context (an upload sent
// again is mapped as the first time). Codes ctx already holds are not
// repeated; ctx's slices are not written to.
func (h *History) Merge(ctx vocab.Context, date string) vocab.Context {
	if h.Empty() || len(date) < 10 {
		return ctx
	}
	to := DayNumber(date[:10])
	if to == 0 {
		return ctx
	}
	add := func(list []vocab.Coding, c vocab.Coding) []vocab.Coding {
		if slices.Contains(list, c) {
			return list
		}
		return append(slices.Clip(list), c)
	}
	for _, d := range h.Conditions {
		if d.Day < to {
			ctx.PriorConditions = add(ctx.PriorConditions, d.Code)
		}
	}
	for _, d := range h.Medications {
		if d.Day < to {
			ctx.Medications = add(ctx.Medications, d.Code)
		}
	}
	if len(h.Results) > 0 {
		from := uint32(0)
		if t, err := time.Parse(DateLayout, date[:10]); err == nil {
			from = DayNumber(t.Add(-vocab.RecentResultWindow).Format(DateLayout))
		}
		for _, d := range h.Results {
			if d.Day < to && d.Day >= from {
				ctx.RecentResults = add(ctx.RecentResults, d.Code)
			}
		}
	}
	return ctx
}

// Prior merges into ctx what the hub stores about the patient of ins
// before date (Options.Prior, History.Merge): the mappers call it with the
// context they built from the file and the candidate codes they will
// resolve with it. Without Options.Prior, for an unlinked patient (ins
// empty), or when no candidate's stage depends on the patient's history
// (vocab.UsesHistory: most codes), ctx is returned as it is and the store
// is not read.
func (b *Batch) Prior(ctx vocab.Context, ins, date string, candidates ...vocab.Coding) vocab.Context {
	if b.opt.Prior == nil || ins == "" || !vocab.UsesHistory(candidates...) {
		return ctx
	}
	return b.opt.Prior(ins).Merge(ctx, date)
}
