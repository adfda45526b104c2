package server

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/fhirjson"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// record adds the decision of q, taken in the span sc, to the request's
// audit records. The per-resource checks of a search or a history
// (filtering) are counted on the request's record instead of one record
// each.
func (s *Server) record(cl *caller, sc trace.SpanContext, in *policyInput, d policy.Decision, q question) {
	if s.cfg.NoAudit {
		return
	}
	if cl.filtering && q.target != nil && !q.owner {
		if d.Allow {
			cl.kept++
		} else {
			cl.hidden++
		}
		for _, reason := range d.Reasons {
			if c, ok := strings.CutPrefix(reason, "consent:"); ok && c != "" {
				if cl.consents == nil {
					cl.consents = map[string]bool{}
				}
				cl.consents[c] = true
			}
		}
		return
	}
	id := cl.decisionID
	if len(cl.records) > 0 {
		id = store.NewID()
	}
	var res resourceIn
	view := auditorsView(in, &res)
	var scratch [2048]byte // the input is encoded on the stack, then copied once at its size
	input := bytes.Clone(view.appendJSON(scratch[:0]))
	rec := audit.Record{
		DecisionID: id,
		Timestamp:  time.Now().UTC().Format(time.RFC3339Nano),
		Path:       audit.DecisionPath,
		Input:      input,
		RequestID:  cl.requestID,
		TraceID:    traceID(sc),
		SpanID:     spanID(sc),
		Labels: map[string]string{
			audit.LabelPurpose:      cl.purpose,
			audit.LabelActorType:    cl.claims.ActorType,
			audit.LabelSub:          cl.claims.Subject,
			audit.LabelInteraction:  q.interaction,
			audit.LabelResourceType: q.typ,
			audit.LabelMethod:       cl.method,
			audit.LabelURL:          cl.url,
		},
	}
	if q.operation != "" {
		rec.Labels[audit.LabelInteraction] = q.operation
	}
	if q.target != nil && q.target.id != "" {
		rec.Labels[audit.LabelResourceID] = q.target.id
		if q.target.typ == "Patient" && in.Patient != nil {
			rec.Labels[audit.LabelResourceID] = in.Patient.Pseudonym
		}
	}
	if in.Patient != nil {
		rec.Labels[audit.LabelPatient] = in.Patient.Pseudonym
	}
	if cl.btg != "" {
		rec.Labels[audit.LabelBreakGlass] = "true"
	}
	if cl.entry > 0 {
		rec.Labels[audit.LabelEntry] = strconv.Itoa(cl.entry - 1)
	}
	if d.Allow && (q.declares || declaresCareRelation(q, in)) {
		rec.Labels[audit.LabelCareRelation] = "declared"
	}
	rec.SetDecision(d)
	cl.records = append(cl.records, rec)
}

// careRelationTypes are the types whose writes put the writer's
// organisation in a patient's care team (recordedVia, CareTeam members),
// or give it access as a Consent's actor (a programme operator granting
// itself a patient's consent: black-box review).
var careRelationTypes = []string{"Encounter", "EpisodeOfCare", "CareTeam", "Consent"}

// declaresCareRelation reports whether a write decision is one by which
// the caller records a care relationship with a patient whose care team it
// was not in (LabelCareRelation).
func declaresCareRelation(q question, in *policyInput) bool {
	return (q.interaction == "create" || q.interaction == "update") && slices.Contains(careRelationTypes, q.typ) &&
		in.Patient != nil && !in.Patient.CareTeam.Member && !in.Patient.IsSelf
}

// noteCreated names the resource a create made on the record of its
// decision, taken before the resource had its id (a single write; a
// bundle's entries are named by labelEntries).
func (s *Server) noteCreated(cl *caller, typ, id string) {
	if cl == nil || len(cl.records) == 0 {
		return
	}
	_ = s.db.View(func(tx *store.Tx) error {
		for i := range cl.records {
			if cl.records[i].Labels[audit.LabelEntry] == "" {
				s.nameCreated(tx, &cl.records[i], typ, id)
			}
		}
		return nil
	})
}

// nameCreated gives the record of a create decision without a resource id
// the resource it made: typ/id's id, or a Patient's pseudonym (records
// never hold a patient's id).
func (s *Server) nameCreated(tx *store.Tx, rec *audit.Record, typ, id string) {
	if id == "" || rec.Labels[audit.LabelInteraction] != "create" || rec.Labels[audit.LabelResourceType] != typ || rec.Labels[audit.LabelResourceID] != "" {
		return
	}
	if typ == "Patient" {
		id = s.patientPseudonym(tx, "audit", "Patient/"+id)
	}
	rec.Labels[audit.LabelResourceID] = id
}

// auditorsView is the input as recorded: the patient appears only as the
// auditors' pseudonym (a Patient's own id and a patient actor's claim are
// replaced by it). The policy never reads these fields (policy.AuditOnly,
// and subject.patient only for presence), so a replay decides the same.
// The view's resource is res when it differs from the input's (res is the
// caller's: the view stays on its stack).
func auditorsView(in *policyInput, res *resourceIn) policyInput {
	out := *in
	if in.Patient != nil {
		if in.Resource != nil && in.Resource.Type == "Patient" {
			*res = *in.Resource
			res.ID = in.Patient.Pseudonym
			out.Resource = res
		}
		if in.Subject.Patient != "" && in.Patient.IsSelf {
			out.Subject.Patient = "Patient/" + in.Patient.Pseudonym
		}
	}
	if out.Subject.Patient != "" && !strings.HasPrefix(out.Subject.Patient, "Patient/p-") {
		out.Subject.Patient = "Patient/pseudonymised"
	}
	return out
}

// traceID and spanID are the ids of sc as audit records hold them (hex,
// as in traceparent), or "" without a span.
func traceID(sc trace.SpanContext) string {
	if !sc.TraceID().IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

func spanID(sc trace.SpanContext) string {
	if !sc.SpanID().IsValid() {
		return ""
	}
	return sc.SpanID().String()
}

// reasonUndecided is the reason recorded for a request the hub refused
// before asking the policy anything (its status says why: 400, 404…).
const reasonUndecided = "refused-before-decision"

// denyRecord is the record of a request refused before any policy
// evaluation (401, 403 for a missing or ungranted purpose), in the authn
// span sc.
func (s *Server) denyRecord(cl *caller, sc trace.SpanContext, reason string) {
	id := cl.decisionID
	if len(cl.records) > 0 {
		id = store.NewID() // a batch entry's, after other records
	}
	rec := audit.Record{
		DecisionID: id,
		Timestamp:  time.Now().UTC().Format(time.RFC3339Nano),
		Path:       audit.DecisionPath,
		RequestID:  cl.requestID,
		TraceID:    traceID(sc),
		SpanID:     spanID(sc),
		Labels:     map[string]string{audit.LabelMethod: cl.method, audit.LabelURL: cl.url},
	}
	if cl.entry > 0 {
		rec.Labels[audit.LabelEntry] = strconv.Itoa(cl.entry - 1)
	}
	if cl.claims != nil {
		rec.Labels[audit.LabelActorType] = cl.claims.ActorType
		rec.Labels[audit.LabelSub] = cl.claims.Subject
		rec.Labels[audit.LabelPurpose] = cl.purpose
	}
	rec.SetDecision(policy.Decision{Allow: false, Reasons: []string{reason}, Revision: s.policy.Revision()})
	cl.records = append(cl.records, rec)
}

// bufferedWriter holds an answer until its audit records are durable.
type bufferedWriter struct {
	real   http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *bufferedWriter) Header() http.Header { return w.real.Header() }
func (w *bufferedWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *bufferedWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.buf.Write(b)
}

// audited holds the answer of an authenticated FHIR request until its
// decision records are durable (group-committed), then sends it; when the
// records cannot be written the answer is withheld and a 500 goes out
// instead: no decision without its record.
func (s *Server) audited(c echo.Context, cl *caller, next echo.HandlerFunc) error {
	res := c.Response()
	bw := &bufferedWriter{real: res.Writer}
	res.Writer = bw
	err := s.recoverPanics(next)(c) // a panic still answers, and is recorded
	if err != nil {
		s.errorHandler(err, c) // answer now, into the buffer, so that it is recorded
	}
	res.Writer = bw.real
	if cl.kept+cl.hidden > 0 && cl.span.IsRecording() {
		cl.span.SetAttributes(attrKept.Int(cl.kept), attrHidden.Int(cl.hidden))
	}
	if len(cl.records) == 0 && !s.cfg.NoAudit {
		// Refused before any decision (an unknown type, a malformed or
		// invalid body…): the record says so, so that the X-Decision-Id the
		// answer carries names a record like every other.
		var sc trace.SpanContext
		if cl.span != nil {
			sc = cl.span.SpanContext()
		}
		s.denyRecord(cl, sc, reasonUndecided)
	}
	if len(cl.records) > 0 && !s.cfg.NoAudit {
		first := &cl.records[0]
		if bw.status == http.StatusForbidden && first.Labels[audit.LabelOutcome] != audit.OutcomeDeny {
			// A refusal names the decision that refused, with the
			// answer's labels (a transaction refused at its second entry
			// once named its first entry's allow: black-box review).
			for i := range cl.records {
				if cl.records[i].Labels[audit.LabelOutcome] == audit.OutcomeDeny {
					first = &cl.records[i]
					res.Header()["X-Decision-Id"] = []string{first.DecisionID}
					break
				}
			}
		}
		first.Labels[audit.LabelHTTPStatus] = strconv.Itoa(bw.status)
		if cl.kept+cl.hidden > 0 {
			first.Labels["filter_kept"] = strconv.Itoa(cl.kept)
			first.Labels["filter_hidden"] = strconv.Itoa(cl.hidden)
		}
		if len(cl.disclosed) > 0 {
			first.Labels[audit.LabelDisclosed] = strings.Join(slices.Sorted(maps.Keys(cl.disclosed)), " ")
		}
		if len(cl.queried) > 0 {
			first.Labels[audit.LabelQueried] = strings.Join(slices.Sorted(maps.Keys(cl.queried)), " ")
		}
		if len(cl.consents) > 0 {
			first.Labels[audit.LabelConsents] = strings.Join(slices.Sorted(maps.Keys(cl.consents)), " ")
		}
		ctx := c.Request().Context()
		_, span := s.child(ctx, "audit")
		if span.IsRecording() {
			span.SetAttributes(attrRecords.Int(len(cl.records)))
		}
		aerr := s.audit.Append(context.Background(), cl.records...)
		end(span, aerr)
		if aerr != nil {
			s.log.ErrorContext(ctx, "audit records not written: answer withheld", "error", aerr.Error())
			h := bw.real.Header()
			for k := range h {
				if k != "X-Request-Id" && k != "X-Decision-Id" {
					delete(h, k)
				}
			}
			h.Set("Content-Type", ctFHIRJSON)
			bw.real.WriteHeader(http.StatusInternalServerError)
			_, _ = bw.real.Write(fhirjson.Marshal(outcome.Resource([]outcome.Issue{{Severity: outcome.SeverityFatal, Code: outcome.CodeException, Diagnostics: "the decision could not be recorded: nothing is answered"}})))
			return nil
		}
	}
	if bw.status == 0 {
		bw.status = http.StatusOK
	}
	bw.real.WriteHeader(bw.status)
	_, _ = bw.real.Write(bw.buf.Bytes())
	return nil
}

// auditEventParams are the parameters GET /fhir/AuditEvent applies
// (besides _cursor, its paging, and _format/_pretty).
var auditEventParams = []string{"patient", "agent", "purpose", "outcome", "date", "entity-type", "subtype", "review", "_count", "_summary"}

// auditEvents answers GET /fhir/AuditEvent (auditors): decision records as
// IHE BALP AuditEvents, newest first, filtered by patient (pseudonym),
// agent (sub or actor type), purpose, outcome (allow/deny or 0/4), date
// (ge/gt/le/lt) and entity-type (resource type), with cursor paging.
func (s *Server) auditEvents(c echo.Context) error {
	if s.audit == nil {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "this hub runs without an audit log")
	}
	if err := s.audit.Flush(); err != nil { // the latest records too
		return err
	}
	cl := callerOf(c)
	q := c.QueryParams()
	var unknown []string
	for k := range q {
		if !slices.Contains(auditEventParams, k) && k != "_cursor" && k != "_format" && k != "_pretty" {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	if len(unknown) > 0 {
		if preferStrict(c) {
			issues := make([]outcome.Issue, 0, len(unknown))
			for _, n := range unknown {
				issues = append(issues, outcome.Issue{Severity: outcome.SeverityError, Code: outcome.CodeNotSupported, Expression: []string{n},
					Diagnostics: "unknown or unsupported search parameter " + strconv.Quote(n) + " for AuditEvent: the decision log is searched by " + strings.Join(auditEventParams, ", ")})
			}
			return &outcome.Error{Status: http.StatusBadRequest, Issues: issues}
		}
		q = merge(q, nil)
		for _, n := range unknown {
			q.Del(n) // ignored: the self link shows what was applied
		}
	}
	summaryCount := false
	if v, ok := q["_summary"]; ok {
		if len(v) != 1 || v[0] != "count" {
			return outcome.Invalid("_summary", "AuditEvent searches support _summary=count only")
		}
		summaryCount = true
	}
	// The standard forms too: a purpose as system|code, the patient as the
	// entity's reference (Patient/p-…), outcomes as a list.
	// Token lists: any of the values; system|code: the code.
	codes := func(name string) string {
		list := strings.Split(q.Get(name), ",")
		for i, v := range list {
			list[i] = v[strings.LastIndexByte(v, '|')+1:]
		}
		return strings.Join(list, ",")
	}
	patients := strings.Split(q.Get("patient"), ",")
	for i, p := range patients {
		patients[i] = strings.TrimPrefix(strings.TrimSpace(p), "Patient/")
	}
	f := audit.Filter{Patient: strings.Join(patients, ","), Agent: codes("agent"), Purpose: codes("purpose"),
		Outcome: outcomeFilter(codes("outcome")), EntityType: q.Get("entity-type")}
	if cl := callerOf(c); cl != nil && f.Patient != "" && !s.cfg.NoAudit {
		// Auditing the auditors: whose log they read, each patient named.
		cl.queried = map[string]bool{}
		for _, p := range patients {
			if p != "" {
				cl.queried[s.queriedPseudonym(c.Request().Context(), p)] = true
			}
		}
	}
	var err error
	if f.Count, err = parseCount(q); err != nil {
		return err
	}
	// Each date criterion covers its precision (2026-11 is November, an
	// instant its microsecond); several intersect (From ≤ timestamp < To).
	narrow := func(from, to time.Time) {
		if !from.IsZero() && from.After(f.From) {
			f.From = from
		}
		if !to.IsZero() && (f.To.IsZero() || to.Before(f.To)) {
			f.To = to
		}
	}
	for _, d := range q["date"] {
		prefix, value := d[:min(2, len(d))], d
		switch prefix {
		case "ge", "gt", "le", "lt", "eq":
			value = d[2:]
		default:
			prefix = "eq"
		}
		lo, hi, ok := search.DateRange(value)
		if !ok {
			return outcome.Invalid("date", "date must be a FHIR date or instant with an optional prefix eq, ge, gt, le, lt")
		}
		end := hi.Add(time.Microsecond) // hi is the last microsecond the value covers
		switch prefix {
		case "eq":
			narrow(lo, end)
		case "ge":
			narrow(lo, time.Time{})
		case "gt":
			narrow(end, time.Time{})
		case "le":
			narrow(time.Time{}, end)
		case "lt":
			narrow(time.Time{}, lo)
		}
	}
	if v := q.Get("_cursor"); v != "" {
		if f.Before, err = strconv.ParseUint(v, 10, 64); err != nil {
			return outcome.Invalid("_cursor", "malformed paging cursor")
		}
	}
	subtype, review := q.Get("subtype"), q.Get("review")
	switch review {
	case "", "requested", "completed":
	default:
		return outcome.Invalid("review", "review is requested or completed (the status of a break-the-glass review)")
	}
	if review != "" {
		// Only break-the-glass decisions have a review.
		f.BreakGlass = true
	}
	countZero := q.Get("_count") == "0" // the total only
	if (summaryCount || countZero) && review != "" {
		return outcome.Invalid("_summary", "_summary=count and _count=0 cannot be combined with review (filtered page by page: no total)")
	}
	// The subtypes are filtered in the log (once the REST interactions
	// after paging: pages of nothing before the first match).
	switch subtype = subtype[strings.LastIndexByte(subtype, '|')+1:]; subtype {
	case "":
	case "110127": // break-the-glass
		f.BreakGlass = true
	case "care-relation-declared":
		f.CareRelation = true
	default: // a REST interaction: break-the-glass decisions show 110127 instead
		f.Interaction, f.NotBreakGlass = subtype, true
	}
	var recs []audit.Record
	var reviews []string // the review status of each of recs (break-the-glass)
	var next uint64
	var total int
	err = s.view(c.Request().Context(), func(tx *store.Tx) error {
		// The log itself is the resource decided: only callers whose
		// purpose reaches audit records (auditors, HCOMPL) pass.
		if _, err := s.decide(c.Request().Context(), cl, tx, auditQuestion("search-type")); err != nil {
			return err
		}
		recs, next, total = audit.Search(tx, f)
		if summaryCount || countZero {
			recs, next = nil, 0
		}
		for _, r := range recs {
			reviews = append(reviews, s.reviewStatus(tx, r))
		}
		return nil
	})
	if err != nil {
		return err
	}
	base := s.base(c)
	entries := make([]any, 0, len(recs))
	for i, r := range recs {
		ev := s.auditEventOf(r, reviews[i])
		if review != "" && reviews[i] != review {
			continue
		}
		entries = append(entries, map[string]any{"fullUrl": base + "/AuditEvent/" + r.DecisionID, "resource": ev, "search": map[string]any{"mode": "match"}})
	}
	self := base + "/AuditEvent"
	links := []any{link("self", self, q)}
	if next != 0 && !summaryCount {
		nq := merge(q, nil)
		nq.Set("_cursor", strconv.FormatUint(next, 10))
		links = append(links, link("next", self, nq))
	}
	bundle := map[string]any{"resourceType": "Bundle", "id": store.NewID(), "type": "searchset", "link": links}
	if len(entries) > 0 { // FHIR JSON has no empty arrays
		bundle["entry"] = entries
	}
	if review == "" {
		bundle["total"] = total
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(bundle))
}

// auditEventOf is the AuditEvent of a record with its review status; a
// developer hub's are labelled HTEST, test data (domain brief §4.5:
// meta.security HTEST outside production).
func (s *Server) auditEventOf(r audit.Record, review string) map[string]any {
	ev := withReview(r.AuditEvent(), review)
	if s.cfg.Dev {
		ev["meta"] = map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST", "display": "test health data"}}}
	}
	return ev
}

// auditQuestion asks about the audit log as a resource of the hub.
func auditQuestion(interaction string) question {
	return question{interaction: interaction, typ: "AuditEvent", target: &target{typ: "AuditEvent", access: accessInfo{sourceActor: "hub"}}}
}

// auditEvent answers GET /fhir/AuditEvent/{decision id}.
func (s *Server) auditEvent(c echo.Context) error {
	if s.audit == nil {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "this hub runs without an audit log")
	}
	if err := s.audit.Flush(); err != nil { // the latest records too
		return err
	}
	var rec audit.Record
	var found bool
	var review string
	err := s.view(c.Request().Context(), func(tx *store.Tx) error {
		if _, err := s.decide(c.Request().Context(), callerOf(c), tx, auditQuestion("read")); err != nil {
			return err
		}
		rec, found = audit.Find(tx, c.Param("id"))
		if found {
			review = s.reviewStatus(tx, rec)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return outcome.NotFound("no decision with this id")
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(s.auditEventOf(rec, review)))
}

// auditVerify answers GET /fhir/$audit-verify (auditors): the hash chain
// checked from the first record, as a Parameters resource.
func (s *Server) auditVerify(c echo.Context) error {
	if s.audit == nil {
		return outcome.New(http.StatusNotFound, outcome.CodeNotSupported, "", "this hub runs without an audit log")
	}
	if err := s.audit.Flush(); err != nil { // the latest records too
		return err
	}
	var v audit.VerifyResult
	err := s.view(c.Request().Context(), func(tx *store.Tx) error {
		if _, err := s.decide(c.Request().Context(), callerOf(c), tx, auditQuestion("read")); err != nil {
			return err
		}
		v = audit.Verify(tx)
		return nil
	})
	if err != nil {
		return err
	}
	params := []any{
		map[string]any{"name": "ok", "valueBoolean": v.OK},
		map[string]any{"name": "records", "valueInteger": v.Records},
	}
	if !v.OK {
		params = append(params,
			map[string]any{"name": "firstBad", "valueInteger": v.FirstBad},
			map[string]any{"name": "problem", "valueString": v.Problem})
	} else {
		params = append(params, map[string]any{"name": "head", "valueString": strconv.FormatUint(v.Head.Seq, 10) + ":" + v.Head.Hash})
	}
	return writeJSON(c, http.StatusOK, fhirjson.Marshal(map[string]any{"resourceType": "Parameters", "parameter": params}))
}

// outcomeFilter reads an outcome criterion, a list too ("4,0": either, no
// filter).
func outcomeFilter(v string) string {
	seen := map[string]bool{}
	for _, o := range strings.Split(v, ",") {
		switch strings.TrimSpace(o) {
		case "allow", "0":
			seen["allow"] = true
		case "deny", "4":
			seen["deny"] = true
		case "":
		default:
			return v // an unknown code matches nothing, as before
		}
	}
	switch {
	case seen["allow"] && seen["deny"], len(seen) == 0:
		return ""
	case seen["allow"]:
		return "allow"
	}
	return "deny"
}

// queriedPseudonym is what an auditor's patient criterion is recorded as:
// the auditors' pseudonym it is, or that of the patient it names by hub id
// or INS, or a keyed digest of anything else; never the value as typed (a
// hub id or an INS would stay in the chain for good: black-box review).
func (s *Server) queriedPseudonym(ctx context.Context, v string) string {
	if isKeyedPseudonym(v) {
		return v
	}
	out := s.pseudonym("audit", "query:"+v)
	_ = s.view(ctx, func(tx *store.Tx) error {
		if r, err := tx.Get("Patient", v); err == nil && !r.Deleted() {
			out = s.patientPseudonym(tx, "audit", "Patient/"+v)
		} else if ids := tx.Lookup("Patient", "identifier", insSystem+"|"+v); len(ids) > 0 {
			out = s.patientPseudonym(tx, "audit", "Patient/"+ids[0])
		}
		return nil
	})
	return out
}
