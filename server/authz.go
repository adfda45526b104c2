package server

import (
	"context"
	"encoding/binary"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/audit"
	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/outcome"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
	"github.com/parcours-sante/parcours/server/telemetry"
)

// caller is the authenticated identity and purpose of a request.
type caller struct {
	claims  *auth.Claims
	purpose string
	btg     string
	// btgPatient is the patient whose record this request's
	// break-the-glass decisions opened: one per request (a batch of reads
	// of many patients once opened them all: black-box review).
	btgPatient string
	now        string // decision time, to the second (part of the replayable input)
	// decisionID identifies the request's first decision (X-Decision-Id).
	decisionID string
	// reviews are the break-the-glass windows this request opened: a
	// review Task is stored for each before the answer leaves.
	reviews []breakGlassWindow
	// contexts memoises patient contexts within one read-only snapshot
	// (a search or a history deciding many resources); nil otherwise.
	contexts map[string]*patientIn
	// memo holds the store's decision memos (authz_cache.go).
	memo *authzMemo

	// Audit: the request's decision records, written durably before the
	// answer leaves; per-resource checks of a search or history are
	// counted (kept, hidden) on the request's record.
	requestID, method, url string
	records                []audit.Record
	filtering              bool
	kept, hidden           int
	// entry is 1 + the index of the bundle entry being decided (0: none):
	// its records carry it (LabelEntry).
	entry int
	// disclosed holds the pseudonyms of the patients whose resources the
	// answer returns (LabelDisclosed on the request's record).
	disclosed map[string]bool
	// consents holds the Consents the per-resource checks rested on
	// (LabelConsents on the request's record).
	consents map[string]bool
	// queried: the auditors' pseudonyms of the patients the request's
	// criteria named (LabelQueried on the request's record).
	queried map[string]bool

	// span is the request's server span: policy spans of decisions taken
	// with a background context hang under it, and the request's first
	// decision describes it (described).
	span      trace.Span
	described bool
}

// disclose notes that the answer returns typ/id: its patients, by their
// auditors' pseudonyms, are disclosed to the caller (LabelDisclosed).
// Only what the answer returns is looked at, not every match decided.
func (s *Server) disclose(tx *store.Tx, cl *caller, typ, id string) {
	if cl == nil || s.cfg.NoAudit {
		return
	}
	for _, p := range storedAccess(tx, typ, id).patients {
		if cl.disclosed == nil {
			cl.disclosed = map[string]bool{}
		}
		cl.disclosed[s.patientPseudonym(tx, "audit", p)] = true
	}
}

// snapshotMemo lets the decisions of one read-only request share patient
// contexts; the returned function ends it.
func (cl *caller) snapshotMemo() func() {
	if cl == nil {
		return func() {}
	}
	cl.contexts = map[string]*patientIn{}
	cl.filtering = true
	return func() { cl.contexts, cl.filtering = nil, false }
}

const ctxCaller = "parcours.caller"

// authenticate verifies the bearer token and the purpose of use of every
// FHIR request but metadata. Without a verifier (Config.Insecure) requests
// pass unauthenticated and undecided.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.verifier == nil {
			return next(c)
		}
		// Every answer names its decision, denials before any policy
		// evaluation included, and is held until its records are durable.
		r := c.Request()
		cl := &caller{decisionID: store.NewID(), requestID: c.Response().Header().Get("X-Request-Id"), method: r.Method,
			span: trace.SpanFromContext(r.Context()), memo: s.memo()}
		if !s.cfg.NoAudit { // the URL label is for the decision records only
			cl.url = audit.URLLabel(r.URL, conformance.IsResourceType)
		}
		c.Response().Header()["X-Decision-Id"] = []string{cl.decisionID}
		c.Response().Before(func() { s.storeReviews(c.Request().Context(), cl) })
		return s.audited(c, cl, func(c echo.Context) error {
			if err := s.authn(c, cl); err != nil {
				return err
			}
			c.Set(ctxCaller, cl)
			return next(c)
		})
	}
}

// authn verifies the bearer token and the purpose of use of cl's request,
// traced as the authn span; a refusal is recorded (denyRecord) and
// returned.
func (s *Server) authn(c echo.Context, cl *caller) error {
	r := c.Request()
	_, span := s.child(r.Context(), "authn")
	result := "ok"
	deny := func(reason string) {
		result = reason
		s.denyRecord(cl, span.SpanContext(), reason)
		cl.describe(question{}, "deny")
	}
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(attrAuthn.String(result))
			if cl.claims != nil {
				span.SetAttributes(attrActorType.String(cl.claims.ActorType))
			}
		}
		span.End()
	}()
	h := r.Header
	claims, err := s.verifier.Verify(h.Get("Authorization"))
	if err != nil {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="parcours"`)
		deny("unauthenticated")
		return err
	}
	cl.claims = claims
	purposes := h.Values("X-Purpose-Of-Use")
	cl.purpose = strings.TrimSpace(h.Get("X-Purpose-Of-Use"))
	if cl.span.IsRecording() {
		cl.span.SetAttributes(attrActorType.String(claims.ActorType))
	}
	switch {
	case len(purposes) > 1:
		// Which one would apply is the client's guess: refused, and a
		// forbidden one among them alerts (black-box review: the first
		// header was used and a pricing purpose after it went unseen).
		cl.purpose = ""
		deny("purpose-ambiguous")
		s.alertForbiddenPurpose(r, claims, purposes)
		return outcome.New(http.StatusForbidden, outcome.CodeForbidden, "", "exactly one X-Purpose-Of-Use header is allowed: this request carries %d", len(purposes))
	case cl.purpose == "":
		deny("purpose-missing")
		return outcome.New(http.StatusForbidden, outcome.CodeForbidden, "", "X-Purpose-Of-Use is required: the purpose of use of this request (HL7 v3 ActReason or hub-purpose code)")
	case !slices.Contains(claims.Purposes, cl.purpose):
		deny("purpose-not-granted")
		s.alertForbiddenPurpose(r, claims, purposes)
		return outcome.New(http.StatusForbidden, outcome.CodeForbidden, "", "purpose of use %q is not granted to this client", cl.purpose)
	}
	// Only a purpose the token grants is a span attribute: the header of
	// a refused request is free text.
	if cl.span.IsRecording() {
		cl.span.SetAttributes(attrPurpose.String(cl.purpose))
	}
	cl.btg = strings.TrimSpace(h.Get("X-Break-Glass-Reason"))
	cl.now = decisionTime()
	return nil
}

// decisionTime is the current second in RFC 3339 (UTC), formatted once a
// second.
func decisionTime() string {
	t := time.Now()
	sec := t.Unix()
	if s := lastSecond.Load(); s != nil && s.unix == sec {
		return s.text
	}
	text := t.UTC().Format(time.RFC3339)
	lastSecond.Store(&second{unix: sec, text: text})
	return text
}

type second struct {
	unix int64
	text string
}

var lastSecond atomic.Pointer[second]

// isForbiddenPurpose: attempts at these purposes are security alerts even
// when the token does not carry them.
func isForbiddenPurpose(p string) bool { return p == "underwriting-pricing" || p == "HMARKT" }

// alertForbiddenPurpose raises the security alert of a refused request
// whose purpose headers name a forbidden purpose, alone or in a list.
func (s *Server) alertForbiddenPurpose(r *http.Request, claims *auth.Claims, headers []string) {
	for _, h := range headers {
		// Any separator, any case (black-box review: "HPAYMT;underwriting-pricing"
		// and "UNDERWRITING-PRICING" went unseen).
		for _, p := range strings.FieldsFunc(h, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' }) {
			if isForbiddenPurpose(p) || isForbiddenPurpose(strings.ToLower(p)) || isForbiddenPurpose(strings.ToUpper(p)) {
				s.tel.Alerts.Add(r.Context(), 1, telemetry.Attrs("purpose", p, "actor_type", claims.ActorType))
				s.log.WarnContext(r.Context(), "security alert: refused request for a forbidden purpose the client is not granted", "actor_type", claims.ActorType, "purpose", p)
				return
			}
		}
	}
}

func callerOf(c echo.Context) *caller {
	cl, _ := c.Get(ctxCaller).(*caller)
	return cl
}

// Policy input, as documented in policies/README.md.
type policyInput struct {
	Now          string    `json:"now"`
	Subject      subjectIn `json:"subject"`
	Purpose      string    `json:"purpose"`
	BreakGlass   *btgIn    `json:"break_glass"`
	Interaction  string    `json:"interaction"`
	Operation    string    `json:"operation,omitempty"`
	ResourceType string    `json:"resource_type"`
	IngestSource string    `json:"ingest_source,omitempty"`
	Aggregate    bool      `json:"aggregate"`
	// MeasureTopics: the evaluated Measure's topics ($evaluate-measure).
	MeasureTopics []string `json:"measure_topics,omitempty"`
	// OnePatient: a request-level search that can only reach one
	// patient's record (break-the-glass needs it).
	OnePatient bool        `json:"one_patient,omitempty"`
	Resource   *resourceIn `json:"resource,omitempty"`
	Patient    *patientIn  `json:"patient,omitempty"`
}

// AppendMemoKey appends the memo key of the input (policy.Keyer): every
// field but the audit-only ones (policy.AuditOnly) and those the policy
// never sees (json:"-"), in declaration order, strings and lists prefixed
// by their length and absent values (nil pointers and lists) marked, so
// that two inputs share a key only when their policy views are equal.
// TestMemoKeyFields checks by reflection that every field is written.
func (in *policyInput) AppendMemoKey(b []byte) []byte {
	b = keyString(b, in.Now)
	s := &in.Subject // Sub: audit-only
	b = keyString(b, s.ActorType)
	b = keyString(b, s.Org)
	b = keyString(b, s.RPPS)
	b = keyString(b, s.Patient)
	b = keyStrings(b, s.CareTeams)
	b = keyStrings(b, s.Purposes)
	b = keyString(b, in.Purpose)
	if g := in.BreakGlass; g == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = keyString(b, g.Reason)
		b = keyString(b, g.Started)
		b = keyString(b, g.Expires)
	}
	b = keyString(b, in.Interaction)
	b = keyString(b, in.Operation)
	b = keyString(b, in.ResourceType)
	b = keyString(b, in.IngestSource)
	b = keyBool(b, in.Aggregate)
	b = keyStrings(b, in.MeasureTopics)
	b = keyBool(b, in.OnePatient)
	if r := in.Resource; r == nil {
		b = append(b, 0)
	} else { // ID: audit-only
		b = append(b, 1)
		b = keyString(b, r.Type)
		b = keyString(b, r.SourceActor)
		b = keyString(b, r.SourceOrg)
		b = keyStrings(b, r.SecurityLabels)
	}
	p := in.Patient
	if p == nil {
		return append(b, 0)
	}
	// CareTeams: not in the input (merged into subject.care_teams);
	// Pseudonym: audit-only.
	b = append(b, 1)
	b = keyBool(b, p.IsSelf)
	b = keyBool(b, p.CareTeam.Member)
	b = keyStrings(b, p.CareTeam.Via)
	if p.Consents == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(p.Consents))+1)
	for i := range p.Consents {
		c := &p.Consents[i]
		b = keyString(b, c.ID)
		b = keyString(b, c.Author)
		b = keyString(b, c.Status)
		b = keyString(b, c.Scope)
		b = keyString(b, c.Policy)
		if c.Provisions == nil {
			b = append(b, 0)
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(c.Provisions))+1)
		for j := range c.Provisions {
			v := &c.Provisions[j]
			b = keyString(b, v.Type)
			b = keyStrings(b, v.Actors)
			b = keyStrings(b, v.Purposes)
			b = keyStrings(b, v.Classes)
			b = keyStrings(b, v.SecurityLabels)
			if v.Period == nil {
				b = append(b, 0)
			} else {
				b = append(b, 1)
				b = keyString(b, v.Period.Start)
				b = keyString(b, v.Period.End)
			}
			if len(v.Unsupported) == 0 { // omitted from the view when empty
				b = keyStrings(b, nil)
			} else {
				b = keyStrings(b, v.Unsupported)
			}
		}
	}
	return b
}

// keyString, keyStrings and keyBool write memo key fields (AppendMemoKey).
func keyString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// keyStrings writes 0 for a nil list (JSON null), else its length + 1 and
// its items.
func keyStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(list))+1)
	for _, s := range list {
		b = keyString(b, s)
	}
	return b
}

func keyBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

type subjectIn struct {
	Sub       string   `json:"sub"`
	ActorType string   `json:"actor_type"`
	Org       string   `json:"org,omitempty"`
	RPPS      string   `json:"rpps,omitempty"`
	Patient   string   `json:"patient,omitempty"`
	CareTeams []string `json:"care_teams"`
	Purposes  []string `json:"purposes"`
}

type btgIn struct {
	Reason  string `json:"reason"`
	Started string `json:"started,omitempty"`
	Expires string `json:"expires,omitempty"`
}

type resourceIn struct {
	Type           string   `json:"type"`
	ID             string   `json:"id,omitempty"`
	SourceActor    string   `json:"source_actor"`
	SourceOrg      string   `json:"source_org"`
	SecurityLabels []string `json:"security_labels"`
}

type patientIn struct {
	// CareTeams are the patient's CareTeams that list the caller (merged
	// into subject.care_teams of the input).
	CareTeams []string    `json:"-"`
	Pseudonym string      `json:"pseudonym"`
	IsSelf    bool        `json:"is_self"`
	CareTeam  careTeamIn  `json:"care_team"`
	Consents  []consentIn `json:"consents"`
}

type careTeamIn struct {
	Member bool     `json:"member"`
	Via    []string `json:"via"`
}

type consentIn struct {
	ID string `json:"id"`
	// Author is the actor type that wrote the Consent's current version
	// (its meta.source), "" when unknown.
	Author     string        `json:"author"`
	Status     string        `json:"status"`
	Scope      string        `json:"scope"`
	Policy     string        `json:"policy"`
	Provisions []provisionIn `json:"provisions"`
}

type provisionIn struct {
	Type           string    `json:"type"`
	Actors         []string  `json:"actors"`
	Purposes       []string  `json:"purposes"`
	Classes        []string  `json:"classes"`
	SecurityLabels []string  `json:"security_labels"`
	Period         *periodIn `json:"period,omitempty"`
	// Unsupported names the limits of the provision the policy cannot
	// apply (data, dataPeriod, code, action): a permit with any grants
	// nothing (it would share more than the patient said); a deny still
	// applies to everything it names (fail closed).
	Unsupported []string `json:"unsupported,omitempty"`
}

type periodIn struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// target is the resource a decision is about.
type target struct {
	typ, id string
	access  accessInfo
	// version is the number of the target's version when it is known to
	// be the current one (0: unknown). A Patient's own pseudonym needs no
	// second read of its record then.
	version uint64
}

// question is one decision to take.
type question struct {
	interaction string
	operation   string
	typ         string
	aggregate   bool
	// measureTopics are the topics of the Measure of $evaluate-measure.
	measureTopics []string
	target        *target // nil: request-level decision
	// owner marks the request's own decision about a target (the Patient
	// of $everything or $pathway): traced and recorded like a request-level
	// decision, even while the request filters its resources.
	owner bool
	// ingestSource names the native format of an $ingest.
	ingestSource string
	// onePatient: a request-level search restricted to one patient.
	onePatient bool
	// declares: the write declared a care relationship for one of its
	// patients (set while deciding; LabelCareRelation).
	declares bool
}

// decide asks the policy about one question for the caller of c, reading
// care-team and consent context from tx. With several patients in the
// resource's compartment every one of them must be allowed. It returns a
// 403 *outcome.Error when denied.
func (s *Server) decide(ctx context.Context, cl *caller, tx *store.Tx, q question) (policy.Decision, error) {
	if cl == nil {
		return policy.Decision{Allow: true}, nil // insecure mode: no policy
	}
	// The input and its resource part, in one allocation.
	st := &struct {
		in  policyInput
		res resourceIn
	}{}
	in := &st.in
	*in = policyInput{
		Now: cl.now,
		Subject: subjectIn{
			Sub: cl.claims.Subject, ActorType: cl.claims.ActorType, Org: cl.claims.Org, RPPS: cl.claims.RPPS,
			Patient: cl.claims.Patient, CareTeams: nonNil(cl.claims.CareTeams), Purposes: cl.claims.Purposes,
		},
		Purpose:       cl.purpose,
		Interaction:   q.interaction,
		Operation:     q.operation,
		ResourceType:  q.typ,
		IngestSource:  q.ingestSource,
		Aggregate:     q.aggregate,
		MeasureTopics: q.measureTopics,
		OnePatient:    q.onePatient,
	}
	if cl.btg != "" {
		in.BreakGlass = &btgIn{Reason: cl.btg}
	}
	var window *breakGlassWindow
	var patients []string
	if t := q.target; t != nil {
		st.res = resourceIn{Type: t.typ, ID: t.id, SourceActor: t.access.sourceActor, SourceOrg: t.access.sourceOrg, SecurityLabels: nonNil(t.access.labels)}
		in.Resource = &st.res
		patients = t.access.patients
	}
	var d policy.Decision
	var err error
	// Each decision is a policy span, except the per-resource checks of a
	// search or a history (filtering): they are counted on the request's
	// span and audit record instead.
	var span trace.Span = noop.Span{}
	traced := !cl.filtering || q.target == nil || q.owner
	if traced {
		ctx, span = s.policySpan(ctx, cl)
	}
	defer func() { s.record(cl, span.SpanContext(), in, d, q) }()
	if self := cl.claims.Patient; self != "" && len(patients) > 1 && !isWrite(q.interaction) && slices.Contains(patients, self) && isSubjectOf(tx, q.target, self) {
		// A patient reading a resource about itself (its subject) that
		// names another patient too (a performer): decided as its own
		// record, the right of access (GDPR art. 15); once refused as
		// another's (black-box review). The other patient, named only as
		// performer, still does not read it; writes need every patient
		// allowed.
		patients = []string{self}
	}
	if len(patients) == 0 {
		d, err = s.policy.Decide(ctx, in)
	}
	for _, p := range patients {
		in.Patient = s.contextOf(tx, cl, p, q.target)
		in.Subject.CareTeams = union(nonNil(cl.claims.CareTeams), in.Patient.CareTeams)
		if cl.btg != "" {
			window = s.breakGlassWindow(tx, cl, p)
			in.BreakGlass.Started, in.BreakGlass.Expires = window.start, window.end
		}
		d, err = s.policy.Decide(ctx, in)
		// Patients of the caller's care team are open to it anyway: they
		// neither count as the request's one patient nor are refused as a
		// second one (black-box review: a resource of the patient naming a
		// care-team patient as performer was refused).
		if err == nil && d.Allow && cl.btg != "" && slices.Contains(d.Reasons, "break-the-glass") && !in.Patient.CareTeam.Member {
			record := p // whose record the override opens
			if t := q.target; t != nil && t.typ == "Patient" {
				// A Patient is its own record, even in another's
				// compartment (black-box review: a Patient linking to the
				// opened one came with its compartment).
				record = "Patient/" + t.id
			}
			if cl.btgPatient == "" {
				cl.btgPatient = record
			} else if cl.btgPatient != record {
				d = policy.Decision{Allow: false, Reasons: []string{"break-glass-one-patient-only", "request-opened-another-patient"}, Revision: d.Revision, Elapsed: d.Elapsed}
			}
		}
		if err != nil || !d.Allow {
			break
		}
		// A write covering several patients declares a care relationship
		// if it does so for any of them (once only the last one decided
		// counted: black-box review).
		q.declares = q.declares || declaresCareRelation(q, in)
		if window != nil && window.opened && d.Has("notify") {
			cl.addReview(*window)
		}
	}
	outcomeLabel := "allow"
	if err != nil || !d.Allow {
		outcomeLabel = "deny"
	}
	s.tel.Decisions.Add(ctx, 1, s.tel.DecisionAttrs.Add(outcomeLabel, cl.purpose, cl.claims.ActorType)...)
	if traced {
		endPolicySpan(span, cl, q, d, outcomeLabel, err)
		cl.describe(q, outcomeLabel)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "policy evaluation failed", "error", err.Error())
		return d, outcome.New(http.StatusForbidden, outcome.CodeForbidden, "", "access denied: the policy could not be evaluated")
	}
	if !d.Allow {
		if d.Has("alert") {
			s.tel.Alerts.Add(ctx, 1, telemetry.Attrs("purpose", cl.purpose, "actor_type", cl.claims.ActorType))
			s.log.WarnContext(ctx, "security alert: refused request the policy alerts on (forbidden purpose or per-patient data for an insurer)", "actor_type", cl.claims.ActorType, "purpose", cl.purpose, "interaction", q.interaction, "resource_type", q.typ)
		}
		return d, outcome.New(http.StatusForbidden, outcome.CodeForbidden, "", "access denied by policy: %s", strings.Join(d.Reasons, ", "))
	}
	return d, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// recordedVia are the resource types whose _recorded index ties a patient
// to the caller's organisation, with the care-team relation each gives,
// sorted by relation.
var recordedVia = [...]struct{ typ, via string }{
	{"Encounter", "encounter"}, {"EpisodeOfCare", "episodeofcare"}, {"Patient", "registration"},
}

// patientContext builds input.patient: the caller's care-team relation and
// the patient's consents, from the indexes (never a search). t, the
// decision's target, spares a read when it is the patient itself.
func (s *Server) patientContext(tx *store.Tx, cl *caller, patient string, t *target) *patientIn {
	// The target is the patient itself: its current version, and its own
	// registrations from its index entries (only a Patient's own
	// registrations are indexed under its reference: accessIndex).
	var self *target
	if id, ok := strings.CutPrefix(patient, "Patient/"); ok && t != nil && t.typ == "Patient" && t.id == id {
		self = t
	}
	var version uint64 // the patient's current version, if known
	if self != nil {
		version = self.version
	}
	p := &patientIn{Pseudonym: s.patientPseudonymAt(tx, "audit", patient, version), IsSelf: cl.claims.Patient != "" && cl.claims.Patient == patient, Consents: []consentIn{}}
	// The caller's identifiers (organisation, RPPS), each paired with the
	// patient as the _recorded and _member indexes pair them.
	var buf [2]string
	pairs := buf[:0]
	if cl.claims.Org != "" {
		pairs = append(pairs, patient+"|"+cl.claims.Org)
	}
	if cl.claims.RPPS != "" {
		pairs = append(pairs, patient+"|"+rppsSystem+"|"+cl.claims.RPPS)
	}
	// The caller's organisation registered the patient or recorded a stay
	// or an episode of care for them.
	if cl.claims.Org != "" {
		for _, r := range recordedVia {
			var found bool
			switch {
			case r.typ == "Patient" && self != nil && self.access.indexed:
				found = slices.Contains(self.access.recorded, pairs[0])
			case r.typ == "Patient" && self != nil:
				// A past or deleted version: its own registration, or the
				// current one's.
				found = slices.Contains(self.access.recorded, pairs[0]) || tx.Has(r.typ, paramRecorded, pairs[0])
			default:
				found = tx.Has(r.typ, paramRecorded, pairs[0])
			}
			if found {
				p.CareTeam.Via = append(p.CareTeam.Via, r.via)
			}
		}
	}
	// A CareTeam of the patient lists the caller (by identifier, or one of
	// the token's CareTeams). Those listing one of the caller's
	// identifiers are kept, in id order, so that a consent naming one of
	// them binds its members: the member index holds an entry for each of
	// a CareTeam's patients, so they are all the patient's CareTeams.
	member := false
	for _, pair := range pairs {
		ids := tx.Lookup("CareTeam", paramMember, pair)
		if len(ids) == 0 {
			continue
		}
		member = true
		for _, id := range ids {
			ref := "CareTeam/" + id
			if i, found := slices.BinarySearch(p.CareTeams, ref); !found {
				p.CareTeams = slices.Insert(p.CareTeams, i, ref)
			}
		}
	}
	for _, k := range cl.claims.CareTeams {
		if member {
			break
		}
		member = tx.Has("CareTeam", paramMember, patient+"|"+k)
	}
	if member {
		p.CareTeam.Via = append(p.CareTeam.Via, "careteam")
	}
	p.CareTeam.Member = len(p.CareTeam.Via) > 0
	p.CareTeam.Via = nonNil(p.CareTeam.Via)
	for _, id := range tx.Lookup("Consent", paramConsent, patient) {
		if r, err := tx.Get("Consent", id); err == nil && !r.Deleted() {
			p.Consents = append(p.Consents, s.consentSummary(tx, r))
		}
	}
	return p
}

// consentSummary turns a stored Consent into the policy's consent shape:
// the base provision and each nested provision become provisions.
//
// A summary that resolved no reference depends on the Consent version
// alone and is memoised by it (type, id, version and commit time, as
// currentAccess); one naming an Organization or Practitioner by reference
// also holds that resource's current identifiers, read each time.
func (s *Server) consentSummary(tx *store.Tx, r store.Resource) consentIn {
	key := accessKey{typ: "Consent", id: r.ID, version: r.Version, at: r.LastUpdated.UnixNano()}
	if c, ok := s.authz.consent(key); ok {
		return c
	}
	resolved := false
	consentTime := r.LastUpdated
	res := decodeStored(r.JSON)
	c := consentIn{ID: "Consent/" + r.ID, Provisions: []provisionIn{}}
	c.Author = accessMeta(res).sourceActor
	c.Status, _ = res["status"].(string)
	c.Scope = firstCode(res["scope"])
	for _, rule := range asList(res["policyRule"]) {
		if code := firstCode(rule); code != "" {
			c.Policy = code
		}
	}
	var walk func(p map[string]any, parent *provisionIn)
	walk = func(p map[string]any, parent *provisionIn) {
		if p == nil {
			return
		}
		pv := provisionIn{Actors: []string{}, Purposes: []string{}, Classes: []string{}, SecurityLabels: []string{}}
		pv.Type, _ = p["type"].(string)
		if pv.Type == "" {
			pv.Type = "permit"
			if parent != nil {
				pv.Type = oppositeType(parent.Type)
			}
		}
		for _, k := range []string{"data", "dataPeriod", "code", "action"} {
			if p[k] != nil {
				pv.Unsupported = append(pv.Unsupported, k)
			}
		}
		for _, a := range asList(p["actor"]) {
			am, _ := a.(map[string]any)
			ref, _ := am["reference"].(map[string]any)
			if r, _ := ref["reference"].(string); r != "" {
				// Absolute (the hub's fullUrl) and versioned references name
				// the same actor as Type/id (once ignored: an objection
				// written so failed open: black-box review).
				r = s.localReference(r, pv.Type == "permit")
				pv.Actors = append(pv.Actors, r)
				// An Organization or Practitioner named by reference also
				// matches callers by its identifiers (FINESS, RPPS…).
				if typ, id, ok := strings.Cut(r, "/"); ok && (typ == "Organization" || typ == "Practitioner") {
					// Its identifiers when the Consent was written and now:
					// an edit since (by whoever registered the actor) widens
					// a deny (both count) and narrows a permit (only those in
					// both), so that it can neither escape an objection nor
					// take over a permit (black-box review).
					resolved = true
					then := identifiersAsOf(tx, typ, id, consentTime)
					var now []string
					for _, e := range tx.Entries(typ, id) {
						if e.Param == "identifier" {
							now = append(now, e.Value)
						}
					}
					for _, x := range union(then, now) {
						if pv.Type == "deny" || slices.Contains(then, x) && slices.Contains(now, x) {
							pv.Actors = append(pv.Actors, x)
						}
					}
				} else if ok && typ == "PractitionerRole" {
					// A role names its practitioner (once accepted and
					// ignored: black-box review): the practitioner's
					// identifiers (RPPS) match, wherever it works.
					resolved = true
					for _, e := range tx.Entries(typ, id) {
						if e.Param == "practitioner" {
							if pt, pid, ok := strings.Cut(e.Value, "/"); ok && pt == "Practitioner" {
								for _, pe := range tx.Entries(pt, pid) {
									if pe.Param == "identifier" {
										pv.Actors = append(pv.Actors, pe.Value)
									}
								}
							}
						}
					}
				}
			}
			if ident, _ := ref["identifier"].(map[string]any); ident != nil {
				sys, _ := ident["system"].(string)
				val, _ := ident["value"].(string)
				pv.Actors = append(pv.Actors, sys+"|"+val)
			}
		}
		for _, x := range asList(p["purpose"]) {
			if xm, _ := x.(map[string]any); xm != nil {
				if code, _ := xm["code"].(string); code != "" {
					pv.Purposes = append(pv.Purposes, code)
				}
			}
		}
		for _, x := range asList(p["securityLabel"]) {
			if xm, _ := x.(map[string]any); xm != nil {
				if code, _ := xm["code"].(string); code != "" {
					pv.SecurityLabels = append(pv.SecurityLabels, code)
				}
			}
		}
		for _, x := range asList(p["class"]) {
			if xm, _ := x.(map[string]any); xm != nil {
				if code, _ := xm["code"].(string); code != "" {
					pv.Classes = append(pv.Classes, code)
				}
			}
		}
		if per, _ := p["period"].(map[string]any); per != nil {
			pv.Period = &periodIn{}
			pv.Period.Start, _ = per["start"].(string)
			pv.Period.End, _ = per["end"].(string)
		}
		// A nested provision is an exception within its parent: it holds
		// within the parent's period too (once a nested permit outlived
		// an expired parent), and for the parent's actors, purposes,
		// classes and labels where it names none of its own (flattened,
		// a nested permit without actors opened the record to everyone:
		// black-box review).
		if parent != nil {
			pv.Period = withinPeriod(pv.Period, parent.Period)
			inherit := func(own *[]string, from []string) {
				if len(*own) == 0 {
					*own = slices.Clone(from)
				}
			}
			inherit(&pv.Actors, parent.Actors)
			inherit(&pv.Purposes, parent.Purposes)
			inherit(&pv.Classes, parent.Classes)
			inherit(&pv.SecurityLabels, parent.SecurityLabels)
		}
		c.Provisions = append(c.Provisions, pv)
		for _, n := range asList(p["provision"]) {
			nm, _ := n.(map[string]any)
			walk(nm, &pv)
		}
	}
	prov, _ := res["provision"].(map[string]any)
	walk(prov, nil)
	if !resolved && !r.LastUpdated.IsZero() {
		s.authz.putConsent(key, c)
	}
	return c
}

// localReference reads a literal reference to a resource of the hub as
// Type/id: a versioned one (Type/id/_history/v), or an absolute one. For
// a permit (strict) an absolute reference counts only under the hub's
// configured base URL: another server's Practitioner/x is not the hub's;
// for a deny any base does (an objection fails closed).
func (s *Server) localReference(r string, strict bool) string {
	if strings.Contains(r, "://") && strict && (s.cfg.BaseURL == "" || !strings.HasPrefix(r, strings.TrimSuffix(s.cfg.BaseURL, "/")+"/")) {
		return r
	}
	if typ, id, ok := referenceParts(r); ok {
		return typ + "/" + id
	}
	return r
}

// identifiersAsOf lists the identifiers ("system|value") of typ/id in its
// version current at t (none when it did not exist then).
func identifiersAsOf(tx *store.Tx, typ, id string, t time.Time) []string {
	r, err := tx.Get(typ, id)
	if err != nil {
		return nil
	}
	for v := r.Version; v > 0; v-- {
		if v != r.Version {
			if r, err = tx.Version(typ, id, v); err != nil {
				return nil
			}
		}
		if r.LastUpdated.After(t) {
			continue
		}
		if r.Deleted() {
			return nil
		}
		var out []string
		for _, x := range asList(decodeStored(r.JSON)["identifier"]) {
			m, _ := x.(map[string]any)
			sys, _ := m["system"].(string)
			val, _ := m["value"].(string)
			if val != "" {
				out = append(out, sys+"|"+val)
			}
		}
		return out
	}
	return nil
}

// withinPeriod is the period p restricted to the parent's (either may be
// nil: no bound). Dates and dateTimes compare as text, to the precision
// they share.
func withinPeriod(p, parent *periodIn) *periodIn {
	if parent == nil {
		return p
	}
	if p == nil {
		return &periodIn{Start: parent.Start, End: parent.End}
	}
	out := *p
	if parent.Start != "" && (out.Start == "" || parent.Start > out.Start) {
		out.Start = parent.Start
	}
	if parent.End != "" && (out.End == "" || parent.End < out.End) {
		out.End = parent.End
	}
	return &out
}

func oppositeType(t string) string {
	if t == "permit" {
		return "deny"
	}
	return "permit"
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

// firstCode returns the first coding code of a CodeableConcept.
func firstCode(v any) string {
	cc, _ := v.(map[string]any)
	for _, c := range asList(cc["coding"]) {
		if cm, _ := c.(map[string]any); cm != nil {
			if code, _ := cm["code"].(string); code != "" {
				return code
			}
		}
	}
	return ""
}

// pseudonym is the keyring's pseudonym of ref in domain.
func (s *Server) pseudonym(domain, ref string) string { return s.keys.pseudonym(domain, ref) }

// isSubjectOf reports whether the stored resource t is about patient
// (Patient/<id>) by its subject or patient element (search parameters
// subject and patient).
func isSubjectOf(tx *store.Tx, t *target, patient string) bool {
	if t == nil || t.id == "" {
		return false
	}
	for _, e := range tx.Entries(t.typ, t.id) {
		if (e.Param == "subject" || e.Param == "patient") && e.Value == patient {
			return true
		}
	}
	return false
}

// isWrite reports whether an interaction changes the store.
func isWrite(interaction string) bool {
	return interaction == "create" || interaction == "update" || interaction == "delete" || interaction == "patch"
}
