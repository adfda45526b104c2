package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parcours-sante/parcours/conformance"
	"github.com/parcours-sante/parcours/server/policy"
	"github.com/parcours-sante/parcours/server/store"
)

var hashValue = regexp.MustCompile(`"hash":"[0-9a-f]{64}"}$`)

// TestExport: one OPA decision-log event per line, oldest first, each
// checkable without Parcours.
func TestExport(t *testing.T) {
	db, _ := openDB(t)
	recs := fill(t, New(db), 12)
	var buf bytes.Buffer
	if err := view(t, db, func(tx *store.Tx) error { return Export(tx, &buf, time.Time{}) }); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	prev, n := "", 0
	for sc.Scan() {
		line := sc.Bytes()
		var ev map[string]any
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("line %d is not JSON: %v", n+1, err)
		}
		for _, k := range []string{"decision_id", "timestamp", "path", "input", "result", "revision", "labels", "seq", "prev", "hash"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("line %d lacks %s", n+1, k)
			}
		}
		if ev["decision_id"] != recs[n].DecisionID || ev["path"] != DecisionPath {
			t.Errorf("line %d: decision_id %v path %v, want %s %s", n+1, ev["decision_id"], ev["path"], recs[n].DecisionID, DecisionPath)
		}
		if b, _ := ev["bundles"].(map[string]any)["parcours"].(map[string]any); b["revision"] != ev["revision"] {
			t.Errorf("line %d: bundles %v, want parcours.revision = revision", n+1, ev["bundles"])
		}
		if _, ok := ev["result"].(map[string]any)["allow"].(bool); !ok {
			t.Errorf("line %d: result %v has no boolean allow", n+1, ev["result"])
		}
		// The check an auditor can run with sha256sum: blank the hash, hash the line.
		blank := hashValue.ReplaceAll(line, []byte(`"hash":""}`))
		sum := sha256.Sum256(blank)
		if hex.EncodeToString(sum[:]) != ev["hash"] || ev["prev"] != prev {
			t.Errorf("line %d: hash or prev does not check out", n+1)
		}
		prev = ev["hash"].(string)
		n++
	}
	if n != len(recs) {
		t.Errorf("%d lines, want %d", n, len(recs))
	}
	buf.Reset()
	since, _ := time.Parse(time.RFC3339Nano, recs[8].Timestamp)
	if err := view(t, db, func(tx *store.Tx) error { return Export(tx, &buf, since) }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != 4 {
		t.Errorf("export since record 9: %d lines, want 4", got)
	}
}

// TestAuditEvent: records render as schema-valid R4 AuditEvents in the
// BALP shape.
func TestAuditEvent(t *testing.T) {
	v, err := conformance.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	db, _ := openDB(t)
	l := New(db)

	allow := sample(0)
	deny := sample(2)
	btg := sample(3)
	var in map[string]any
	_ = json.Unmarshal(btg.Input, &in)
	in["break_glass"] = map[string]any{"reason": "emergency"}
	in["purpose"] = "ETREAT"
	btg.Input, _ = json.Marshal(in)
	btg.Labels[LabelPurpose] = "ETREAT"
	btg.SetDecision(policy.Decision{Allow: true, Reasons: []string{"break-glass", "consent:Consent/c9"}, Obligations: []policy.Obligation{{Type: "audit"}, {Type: "notify", Target: "privacy-officer"}}, LegalBasis: []string{"CSP-L1110-4"}, Revision: hexOf(3)})
	search := Record{DecisionID: store.NewID(), Labels: map[string]string{
		LabelPurpose: "rupture-detection", LabelActorType: "gp", LabelSub: "dr-1", LabelInteraction: "search-type",
		LabelResourceType: "Encounter", LabelMethod: "GET", LabelURL: "/fhir/Encounter?patient=Patient/1&date=ge2026-01-01&_count=10", LabelHTTPStatus: "200",
	}}
	search.SetDecision(policy.Decision{Allow: true, Reasons: []string{"cell:gp:TREAT/COC"}, Revision: hexOf(3)})
	unauth := Record{DecisionID: "batch/1 entry", Labels: map[string]string{LabelOutcome: OutcomeDeny, LabelHTTPStatus: "401", LabelMethod: "GET", LabelURL: "/fhir/Patient"}}
	recs := []Record{allow, deny, btg, search, unauth}
	if err := l.Append(t.Context(), recs...); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name           string
		rec            Record
		outcome        string
		subtype        string
		action         string
		entityRoles    []string // object-role codes, then the policy decision ("")
		purposeSystems []string
	}{
		{"allowed read", recs[0], "0", "read", "R", []string{"1", "4", ""}, []string{SystemActReason}},
		{"denied read", recs[1], "4", "read", "R", []string{"1", "4", ""}, []string{SystemHubPurpose}},
		{"break-the-glass", recs[2], "0", "110127", "R", []string{"1", "4", ""}, []string{SystemActReason}},
		{"search", recs[3], "0", "search-type", "E", []string{"24", ""}, []string{SystemHubPurpose, SystemActReason}},
		{"401 without a policy input", recs[4], "4", "", "E", []string{""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := roundTrip(t, tt.rec.AuditEvent())
			if err := v.Validate(ev); err != nil {
				b, _ := json.MarshalIndent(ev, "", "  ")
				t.Fatalf("not a valid R4 AuditEvent: %v\n%s", err, b)
			}
			if ev["outcome"] != tt.outcome || ev["action"] != tt.action {
				t.Errorf("outcome %v action %v, want %s %s", ev["outcome"], ev["action"], tt.outcome, tt.action)
			}
			if got := codeOf(first(ev["subtype"])); got != tt.subtype {
				t.Errorf("subtype %q, want %q", got, tt.subtype)
			}
			if got := codeOf(ev["type"]); got != "rest" {
				t.Errorf("type %q, want rest", got)
			}
			var roles []string
			for _, e := range ev["entity"].([]any) {
				em := e.(map[string]any)
				roles = append(roles, codeOf(em["role"]))
				if codeOf(em["type"]) == EntityPolicyDecision {
					details := map[string]string{}
					for _, d := range em["detail"].([]any) {
						dm := d.(map[string]any)
						details[dm["type"].(string)] = dm["valueString"].(string)
					}
					if details["decision_id"] != tt.rec.DecisionID || details["hash"] != tt.rec.Hash {
						t.Errorf("policy-decision details %v", details)
					}
				}
				if q, ok := em["query"].(string); ok {
					b, _ := base64.StdEncoding.DecodeString(q)
					if want := "/fhir/Encounter?_count&date&patient"; string(b) != want {
						t.Errorf("query entity %q, want %q (parameter names only)", b, want)
					}
				}
			}
			if strings.Join(roles, ",") != strings.Join(tt.entityRoles, ",") {
				t.Errorf("entity roles %v, want %v", roles, tt.entityRoles)
			}
			var systems []string
			for _, p := range asList(ev["purposeOfEvent"]) {
				for _, c := range asList(p.(map[string]any)["coding"]) {
					systems = append(systems, c.(map[string]any)["system"].(string))
				}
			}
			if strings.Join(systems, ",") != strings.Join(tt.purposeSystems, ",") {
				t.Errorf("purposeOfEvent systems %v, want %v", systems, tt.purposeSystems)
			}
			res, _ := tt.rec.Decision()
			if want := strings.Join(res.Reasons, ", "); want != "" && ev["outcomeDesc"] != want {
				t.Errorf("outcomeDesc %v, want %q", ev["outcomeDesc"], want)
			}
		})
	}
	if ev := recs[2].AuditEvent(); first(ev["agent"]).(map[string]any)["policy"] == nil {
		t.Error("the consent of a decision is not in agent.policy")
	}
	if ev := recs[4].AuditEvent(); ev["id"] != "audit-5" {
		t.Errorf("id of a record whose decision id is not a FHIR id: %v", ev["id"])
	}
}

func roundTrip(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func first(v any) any {
	if l := asList(v); len(l) > 0 {
		return l[0]
	}
	return nil
}

// codeOf returns the code of a Coding or of a CodeableConcept's first coding.
func codeOf(v any) string {
	m, _ := v.(map[string]any)
	if m == nil {
		return ""
	}
	if c, ok := m["code"].(string); ok {
		return c
	}
	return codeOf(first(m["coding"]))
}
