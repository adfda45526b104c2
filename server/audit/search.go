package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/server/store"
)

// Export writes the records whose timestamp is at or after since (all of
// them for a zero since) to w as NDJSON, oldest first: one OPA
// decision-log event per line (decision_id, timestamp, path, input,
// result, revision, bundles, trace_id, span_id, req_id, labels, metrics),
// plus the chain fields seq, prev and hash. Each line is the record's
// stored bytes, so it can be checked without Parcours: hash is the
// SHA-256 of the line with its hash value replaced by "", and prev is the
// hash of the line before (when nothing was filtered out).
func Export(tx *store.Tx, w io.Writer, since time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var err error
	tx.Scan(logName, 1, func(_ uint64, v []byte) bool {
		if !since.IsZero() {
			if t, ok := timestampOf(v); ok && t.Before(since) {
				return true
			}
		}
		if _, err = bw.Write(v); err == nil {
			err = bw.WriteByte('\n')
		}
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

var timestampMarker = []byte(`,"timestamp":"`)

// timestampOf reads the timestamp of a stored record without decoding it:
// it is the second field, right after the decision_id string (which cannot
// contain an unescaped quote).
func timestampOf(v []byte) (time.Time, bool) {
	i := bytes.Index(v, timestampMarker)
	if i < 0 {
		return time.Time{}, false
	}
	rest := v[i+len(timestampMarker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:j]))
	return t, err == nil
}

var labelsMarker = []byte(`,"labels":{`)

// labelsOf returns the labels object of a stored record, as stored: they
// follow input and result, and no label or metric value is an object, so
// the last `,"labels":{` is theirs.
func labelsOf(v []byte) (labels, bool) {
	i := bytes.LastIndex(v, labelsMarker)
	j := bytes.LastIndex(v, seqMarker)
	if i < 0 || j < i {
		return nil, false
	}
	return labels(v[i+len(labelsMarker)-1 : j]), true
}

// labels is the canonical JSON of a record's labels (and what follows
// them up to the chain fields).
type labels []byte

// labelIs is a label test: the encoded members `{"k":"v"` and `,"k":"v"`
// (only a member can hold an unescaped quote), followed by , or }.
type labelIs [2][]byte

func newLabelIs(k, v string) labelIs {
	key, _ := json.Marshal(k)
	val, _ := json.Marshal(v)
	member := append(append(append([]byte{}, key...), ':'), val...)
	return labelIs{append([]byte{'{'}, member...), append([]byte{','}, member...)}
}

// in reports whether the labels have the member, comparing bytes.
func (m labelIs) in(l labels) bool {
	for _, pat := range m {
		if i := bytes.Index(l, pat); i >= 0 && i+len(pat) < len(l) && (l[i+len(pat)] == ',' || l[i+len(pat)] == '}') {
			return true
		}
	}
	return false
}

// Filter selects records for Search. Empty fields match everything;
// Patient, Agent, Purpose and Interaction may list several values,
// comma-separated: any of them matches.
type Filter struct {
	Patient string // the patient label (auditors' pseudonym), or one of the disclosed label
	Agent   string // the sub or the actor_type label
	Purpose string // the purpose label
	// Interaction is the interaction label (the AuditEvent's REST
	// subtype); NotBreakGlass leaves break-the-glass decisions out (their
	// subtype is the override's, not the interaction).
	Interaction   string
	NotBreakGlass bool
	Outcome       string    // "allow" or "deny" (or the AuditEvent codes "0" and "4")
	From, To      time.Time // From ≤ timestamp < To
	EntityType    string    // the resource_type label
	BreakGlass    bool      // only break-the-glass decisions (label break_glass)
	// CareRelation: only writes that declared a care relationship (label
	// care_relation).
	CareRelation bool
	Before       uint64 // paging cursor: only records with seq < Before (0: from the newest)
	Count        int    // page size (DefaultCount when ≤ 0)
}

// DefaultCount is the page size of a Filter without Count.
const DefaultCount = 50

// matcher is a Filter with its label tests encoded once.
type matcher struct {
	f     Filter
	all   []labelIs   // each must be present
	anyOf [][]labelIs // of each, one must be present
	none  []labelIs   // none may be present
	// patients: the patient label, or else a word of the disclosed or
	// queried label, is one of them.
	patients []patientIs
}

type patientIs struct {
	label     labelIs
	pseudonym string
}

// disclosedMarker and queriedMarker start those labels' values.
var (
	disclosedMarker = []byte(`"` + LabelDisclosed + `":"`)
	queriedMarker   = []byte(`"` + LabelQueried + `":"`)
)

// discloses reports whether the disclosed or the queried label of l lists
// pseudonym p (pseudonyms hold no space, quote or escape).
func discloses(l labels, p string) bool {
	return lists(l, disclosedMarker, p) || lists(l, queriedMarker, p)
}

// lists reports whether the label that marker starts lists word p.
func lists(l labels, marker []byte, p string) bool {
	i := bytes.Index(l, marker)
	if i < 0 || p == "" {
		return false
	}
	v := l[i+len(marker):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		v = v[:j]
	}
	for len(v) > 0 {
		word := v
		if k := bytes.IndexByte(v, ' '); k >= 0 {
			word, v = v[:k], v[k+1:]
		} else {
			v = nil
		}
		if string(word) == p {
			return true
		}
	}
	return false
}

func (f Filter) matcher() matcher {
	m := matcher{f: f}
	if f.Patient != "" {
		for p := range strings.SplitSeq(f.Patient, ",") {
			p = strings.TrimSpace(p)
			m.patients = append(m.patients, patientIs{newLabelIs(LabelPatient, p), p})
		}
	}
	for _, c := range []struct{ k, v string }{
		{LabelResourceType, f.EntityType}, {LabelOutcome, outcomeLabel(f.Outcome)},
		{LabelBreakGlass, map[bool]string{true: "true"}[f.BreakGlass]},
		{LabelCareRelation, map[bool]string{true: "declared"}[f.CareRelation]},
	} {
		if c.v != "" {
			m.all = append(m.all, newLabelIs(c.k, c.v))
		}
	}
	oneOf := func(list string, keys ...string) {
		if list == "" {
			return
		}
		var group []labelIs
		for v := range strings.SplitSeq(list, ",") {
			for _, k := range keys {
				group = append(group, newLabelIs(k, strings.TrimSpace(v)))
			}
		}
		m.anyOf = append(m.anyOf, group)
	}
	oneOf(f.Agent, LabelSub, LabelActorType)
	oneOf(f.Purpose, LabelPurpose)
	oneOf(f.Interaction, LabelInteraction)
	if f.NotBreakGlass {
		m.none = append(m.none, newLabelIs(LabelBreakGlass, "true"))
	}
	return m
}

// outcomeLabel accepts the AuditEvent outcome codes too.
func outcomeLabel(o string) string {
	switch o {
	case "0":
		return OutcomeAllow
	case "4":
		return OutcomeDeny
	}
	return o
}

func (m *matcher) match(v []byte) bool {
	if !m.f.From.IsZero() || !m.f.To.IsZero() {
		t, ok := timestampOf(v)
		if !ok || (!m.f.From.IsZero() && t.Before(m.f.From)) || (!m.f.To.IsZero() && !t.Before(m.f.To)) {
			return false
		}
	}
	l, ok := labelsOf(v)
	if !ok {
		return false
	}
	for _, t := range m.all {
		if !t.in(l) {
			return false
		}
	}
	for _, t := range m.none {
		if t.in(l) {
			return false
		}
	}
	if len(m.patients) > 0 && !slices.ContainsFunc(m.patients, func(p patientIs) bool { return p.label.in(l) || discloses(l, p.pseudonym) }) {
		return false
	}
	for _, group := range m.anyOf {
		if !slices.ContainsFunc(group, func(t labelIs) bool { return t.in(l) }) {
			return false
		}
	}
	return true
}

// Search returns a page of the records matching f, newest first; next is
// the Before of the following page (0 on the last page) and total the
// number of matching records, all pages together. It reads the whole log
// (see the scale note in doc.go).
func Search(tx *store.Tx, f Filter) (recs []Record, next uint64, total int) {
	count := f.Count
	if count <= 0 {
		count = DefaultCount
	}
	more := false
	m := f.matcher()
	tx.ScanBack(logName, 0, func(seq uint64, v []byte) bool {
		if !m.match(v) {
			return true
		}
		total++
		if f.Before != 0 && seq >= f.Before {
			return true
		}
		if len(recs) == count {
			more = true
			return true
		}
		if r, err := decode(v); err == nil {
			recs = append(recs, r)
		}
		return true
	})
	if more && len(recs) > 0 {
		next = recs[len(recs)-1].Seq
	}
	return recs, next, total
}
