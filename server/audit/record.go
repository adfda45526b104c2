package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/parcours-sante/parcours/server/policy"
)

// DecisionPath is the path of every Parcours decision (OPA's "path" field:
// the decision's rule, data.parcours.authz.decision).
const DecisionPath = "parcours/authz/decision"

// BundleName is the key of Record.Bundles: OPA names the bundle whose
// revision decided, Parcours has one, the embedded policies.
const BundleName = "parcours"

// Label keys. Labels hold what auditors filter on; their values are codes,
// identifiers and pseudonyms, never health content.
const (
	LabelPurpose      = "purpose"       // X-Purpose-Of-Use code
	LabelActorType    = "actor_type"    // the token's actor type
	LabelSub          = "sub"           // the token's subject
	LabelInteraction  = "interaction"   // read, search-type, create… (policy input)
	LabelResourceType = "resource_type" // the type addressed
	LabelResourceID   = "resource_id"   // the resource decided, when one is
	LabelOutcome      = "outcome"       // OutcomeAllow or OutcomeDeny
	LabelHTTPStatus   = "http_status"   // the status answered, "401", "403", "200"…
	LabelPatient      = "patient"       // the patient's pseudonym in the auditors' domain
	LabelEntry        = "entry"         // index of the entry in a batch/transaction Bundle
	LabelEntryStatus  = "entry_status"  // the status that entry answered ("201", "404"…)
	// LabelCareRelation is "declared" on an allowed write by which the
	// writer's organisation records a care relationship (a stay, an episode
	// of care, a care team) with a patient it had none with: from then on
	// it is in the patient's care team on its own word, which auditors
	// review (AuditEvent subtype care-relation-declared).
	LabelCareRelation = "care_relation"
	LabelMethod       = "method"      // HTTP method
	LabelURL          = "url"         // URL path plus query parameter NAMES only (no values)
	LabelBreakGlass   = "break_glass" // "true" for a break-the-glass request
	// LabelDisclosed lists, space-separated and sorted, the pseudonyms of
	// the patients whose resources a search, a history, $everything or
	// $pathway returned (the Search filter patient matches them too).
	LabelDisclosed = "disclosed"
	// LabelQueried lists, space-separated and sorted, the pseudonyms of
	// the patients a request named in its criteria (a search by patient,
	// an auditor's AuditEvent?patient=), allowed or refused: the patient's
	// lookups are found by AuditEvent?patient= too.
	LabelQueried = "queried"
	// LabelConsents lists, space-separated and sorted, the Consents the
	// per-resource checks of a search or history rested on (their reasons
	// name them; the request's own decision cannot): the AuditEvent's
	// agent.policy names them with those of the decision.
	LabelConsents = "consents"
)

// Outcome label values.
const (
	OutcomeAllow = "allow"
	OutcomeDeny  = "deny"
)

// MetricEvalNS is the policy evaluation time, as OPA names it (0 when the
// decision came from the engine's memo).
const MetricEvalNS = "timer_rego_query_eval_ns"

// Record is one decision, shaped like OPA's decision-log event (the field
// names of v1/plugins/logs EventV1 where one exists) plus the hash chain:
// Seq, Prev and Hash, set by AppendTx.
//
// The stored form of a record is its canonical JSON: encoding/json of this
// struct (fields in this order, map keys sorted, RawMessage fields
// compacted, HTML characters escaped), which ends with the hash field. Hash
// is the hex SHA-256 of that canonical JSON with Hash empty, i.e. of the
// stored bytes with the hash value replaced by "": anyone can check an
// exported line without this package.
type Record struct {
	DecisionID string `json:"decision_id"`
	Timestamp  string `json:"timestamp"` // RFC 3339 with nanoseconds, UTC
	Path       string `json:"path"`      // DecisionPath
	// Input is the policy input as decided. The server only puts types,
	// ids, pseudonyms, labels and consent summaries in it: no health
	// content.
	Input json.RawMessage `json:"input,omitempty"`
	// Result is {allow, reasons, obligations, legal_basis} (ResultOf).
	Result   json.RawMessage   `json:"result,omitempty"`
	Revision string            `json:"revision"`          // policy revision (policy.Engine.Revision)
	Bundles  map[string]Bundle `json:"bundles,omitempty"` // OPA-compatible: {"parcours": {"revision": …}}
	TraceID  string            `json:"trace_id,omitempty"`
	SpanID   string            `json:"span_id,omitempty"`
	// RequestID is the request's id (OPA: req_id).
	RequestID string `json:"req_id,omitempty"`
	// Labels are the filterable facts (Label* keys).
	Labels  map[string]string `json:"labels"`
	Metrics map[string]int64  `json:"metrics,omitempty"` // MetricEvalNS

	Seq  uint64 `json:"seq"`  // position in the log, from 1
	Prev string `json:"prev"` // Hash of the record Seq-1 ("" for the first)
	Hash string `json:"hash"` // hex SHA-256 of the canonical JSON with Hash ""
}

// Bundle is the revision of one policy bundle (OPA's BundleInfoV1).
type Bundle struct {
	Revision string `json:"revision"`
}

// Result is the recorded decision, the "result" of a record.
type Result struct {
	Allow       bool                `json:"allow"`
	Reasons     []string            `json:"reasons"`
	Obligations []policy.Obligation `json:"obligations"`
	LegalBasis  []string            `json:"legal_basis"`
}

// ResultOf is the result recorded for d (nil lists become empty lists).
func ResultOf(d policy.Decision) Result {
	r := Result{Allow: d.Allow, Reasons: d.Reasons, Obligations: d.Obligations, LegalBasis: d.LegalBasis}
	if r.Reasons == nil {
		r.Reasons = []string{}
	}
	if r.Obligations == nil {
		r.Obligations = []policy.Obligation{}
	}
	if r.LegalBasis == nil {
		r.LegalBasis = []string{}
	}
	return r
}

// SetDecision records d in r: Result, Revision, Bundles, the outcome label
// and the evaluation time.
func (r *Record) SetDecision(d policy.Decision) {
	r.Result = appendResult(make([]byte, 0, resultSize(&d)), &d) // json.Marshal(ResultOf(d))
	r.Revision = d.Revision
	if d.Revision != "" {
		r.Bundles = map[string]Bundle{BundleName: {Revision: d.Revision}}
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.Labels[LabelOutcome] = OutcomeDeny
	if d.Allow {
		r.Labels[LabelOutcome] = OutcomeAllow
	}
	if r.Metrics == nil {
		r.Metrics = map[string]int64{}
	}
	r.Metrics[MetricEvalNS] = d.Elapsed.Nanoseconds()
}

// URLLabel is the LabelURL value of a request URL: its path, a Patient's
// id replaced by ":id" (the record names the patient by the auditors'
// pseudonym only), and the names of its query parameters, sorted, without
// their values (which may be health content):
// "/fhir/Observation?code&patient", "/fhir/Patient/:id/$everything".
func URLLabel(u *url.URL, isType func(string) bool) string {
	return pathLabel(u.EscapedPath(), isType) + paramNames(u.RawQuery)
}

// pathLabel replaces every path segment that is not a resource type
// (isType), an operation or a keyword ($everything, _history, _search) or
// the base ("fhir") with ":id": whatever the caller put there (a
// resource's id, a patient's, a version) is not the route's, and a
// patient's real id must not reach the log (the resource's own id is
// recorded on its own label).
func pathLabel(path string, isType func(string) bool) string {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if seg == "" || seg == "fhir" || seg[0] == '_' || seg[0] == '$' || isType(seg) {
			continue
		}
		segs[i] = ":id"
	}
	return strings.Join(segs, "/")
}

// paramNames returns "?name1&name2" (sorted, deduplicated) for a raw query.
func paramNames(rawQuery string) string {
	if rawQuery == "" {
		return ""
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range strings.Split(rawQuery, "&") {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = url.QueryEscape(n)
		}
		if name != "" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return "?" + strings.Join(names, "&")
}

// Decision decodes the recorded result (zero if there is none).
func (r Record) Decision() (Result, error) {
	var res Result
	if len(r.Result) == 0 {
		return res, nil
	}
	err := json.Unmarshal(r.Result, &res)
	return res, err
}

// Allowed reports the recorded outcome: the outcome label, or else the
// result's allow.
func (r Record) Allowed() bool {
	switch r.Labels[LabelOutcome] {
	case OutcomeAllow:
		return true
	case OutcomeDeny:
		return false
	}
	res, err := r.Decision()
	return err == nil && res.Allow
}

// Time parses Timestamp (zero if malformed).
func (r Record) Time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r.Timestamp)
	return t
}

// zeroTail ends the canonical JSON of a record whose chain fields are
// zero: the chain fields come last, so a record is encoded once (body) and
// sealed in the transaction with its position and link.
const zeroTail = `,"seq":0,"prev":"","hash":""}`

// body returns the canonical JSON of r up to its chain fields (the
// expensive part of encoding, done outside the commit when possible).
// It is written by hand (appendBody), byte for byte what encoding/json
// writes.
func body(r *Record) ([]byte, error) {
	b, err := appendBody(nil, r)
	if err != nil {
		return nil, fmt.Errorf("audit: encode record %s: %w", r.DecisionID, err)
	}
	return b, nil
}

// seal completes a body with the chain fields: the result is exactly
// encoding/json of the record, its hash the SHA-256 of it with hash "".
func seal(body []byte, seq uint64, prev string) (stored []byte, hash string) {
	b := make([]byte, 0, len(body)+len(zeroTail)+20+2*64)
	b = append(b, body...)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prev":"`...)
	b = append(b, prev...)
	b = append(b, `","hash":"`...)
	n := len(b)
	sum := sha256.Sum256(append(b, '"', '}'))
	hash = hex.EncodeToString(sum[:])
	b = append(b[:n], hash...)
	return append(b, '"', '}'), hash
}

// encode returns the stored form of r and sets r.Hash (Seq and Prev set).
func encode(r *Record) ([]byte, error) {
	b, err := body(r)
	if err != nil {
		return nil, err
	}
	v, h := seal(b, r.Seq, r.Prev)
	r.Hash = h
	return v, nil
}

// chain is what Verify reads of a stored record: its claimed position and
// links, and the hash of its bytes recomputed.
type chain struct {
	seq        uint64
	prev, hash string
	actual     string // SHA-256 of the canonical form of the stored bytes
}

var (
	seqMarker  = []byte(`,"seq":`)
	prevMarker = []byte(`,"prev":"`)
	hashMarker = []byte(`","hash":"`)
)

// parseChain reads the chain fields from the tail of a stored record
// (`,"seq":N,"prev":"…","hash":"…"}`) and hashes the record's canonical
// form, without decoding the rest: verification stays a hash per record.
func parseChain(v []byte) (chain, error) {
	var c chain
	// The hash value: 64 hex digits before the closing `"}`.
	if len(v) < 2+64 || !bytes.HasSuffix(v, []byte(`"}`)) {
		return c, errors.New("does not end with a hash")
	}
	end := len(v) - 2
	hs := bytes.LastIndex(v[:end], hashMarker)
	if hs < 0 || end-(hs+len(hashMarker)) != 64 {
		return c, errors.New("malformed hash field")
	}
	c.hash = string(v[hs+len(hashMarker) : end])
	// The top-level seq is the last `,"seq":` (keys inside input come first).
	ss := bytes.LastIndex(v[:hs], seqMarker)
	if ss < 0 {
		return c, errors.New("no seq field")
	}
	rest := v[ss+len(seqMarker) : hs]
	ps := bytes.Index(rest, prevMarker)
	if ps < 0 {
		return c, errors.New("no prev field")
	}
	seq, err := strconv.ParseUint(string(rest[:ps]), 10, 64)
	if err != nil {
		return c, errors.New("malformed seq field")
	}
	c.seq = seq
	c.prev = string(rest[ps+len(prevMarker):])
	if !isHash(c.hash) || (c.prev != "" && !isHash(c.prev)) {
		return c, errors.New("malformed prev or hash field")
	}
	h := sha256.New()
	h.Write(v[:hs+len(hashMarker)]) // up to `"hash":"`
	h.Write([]byte(`"}`))
	c.actual = hex.EncodeToString(h.Sum(nil))
	return c, nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// decode decodes a stored record (a copy: v may be bbolt memory).
func decode(v []byte) (Record, error) {
	var r Record
	err := json.Unmarshal(v, &r)
	return r, err
}
