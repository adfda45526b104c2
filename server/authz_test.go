package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/search"
	"github.com/parcours-sante/parcours/server/store"
)

// secureHub is a developer-mode hub: real JWT verification, the embedded
// policies evaluated by OPA.
type secureHub struct {
	*hub
	secret []byte
}

func newSecureHub(t testing.TB) *secureHub {
	t.Helper()
	return newSecureHubWith(t, func(*Config) {})
}

func newSecureHubWith(t testing.TB, tune func(*Config)) *secureHub {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Dev: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	tune(&cfg)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	secret, err := auth.DevSecret(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &secureHub{hub: &hub{t: t, s: s, srv: srv, url: srv.URL + "/fhir"}, secret: secret}
}

// token mints a dev token for the demo user of an actor type.
func (h *secureHub) token(actor string, tune ...func(*auth.Claims)) string {
	h.t.Helper()
	for _, c := range auth.DevUsers() {
		if c.ActorType == actor {
			for _, f := range tune {
				f(&c)
			}
			tok, err := auth.Mint(h.secret, c, time.Hour)
			if err != nil {
				h.t.Fatal(err)
			}
			return tok
		}
	}
	h.t.Fatalf("no dev user %q", actor)
	return ""
}

// as sends a request as actor for purpose.
func (h *secureHub) as(actor, purpose, method, path string, body any, headers ...string) reply {
	h.t.Helper()
	return h.do(method, path, body, append([]string{"Authorization", "Bearer " + h.token(actor), "X-Purpose-Of-Use", purpose}, headers...)...)
}

func TestAuthentication(t *testing.T) {
	h := newSecureHub(t)
	good := h.token("hospital-clinician")
	expired, _ := auth.Mint(h.secret, auth.DevUsers()[0], -time.Minute)
	otherKey, _ := auth.Mint([]byte("not-the-dev-key-not-the-dev-key!"), auth.DevUsers()[0], time.Hour)
	wrongAud := func() string {
		c := auth.DevUsers()[0]
		c.Issuer, c.Audience = auth.DevIssuer, jwt.ClaimStrings{"someone-else"}
		now := time.Now()
		c.ExpiresAt, c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)), jwt.NewNumericDate(now)
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(h.secret)
		return s
	}()
	notYet := func() string {
		c := auth.DevUsers()[0]
		c.Issuer, c.Audience = auth.DevIssuer, jwt.ClaimStrings{auth.DevAudience}
		now := time.Now()
		c.ExpiresAt, c.NotBefore = jwt.NewNumericDate(now.Add(2*time.Hour)), jwt.NewNumericDate(now.Add(time.Hour))
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(h.secret)
		return s
	}()
	noneAlg := func() string {
		c := auth.DevUsers()[0]
		c.Issuer, c.Audience = auth.DevIssuer, jwt.ClaimStrings{auth.DevAudience}
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
		s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}()
	tests := []struct {
		name    string
		headers []string
		want    int
	}{
		{"no token", []string{"X-Purpose-Of-Use", "TREAT"}, 401},
		{"not bearer", []string{"Authorization", "Basic abc", "X-Purpose-Of-Use", "TREAT"}, 401},
		{"malformed", []string{"Authorization", "Bearer abc.def", "X-Purpose-Of-Use", "TREAT"}, 401},
		{"expired", []string{"Authorization", "Bearer " + expired, "X-Purpose-Of-Use", "TREAT"}, 401},
		{"wrong signature", []string{"Authorization", "Bearer " + otherKey, "X-Purpose-Of-Use", "TREAT"}, 401},
		{"wrong audience", []string{"Authorization", "Bearer " + wrongAud, "X-Purpose-Of-Use", "TREAT"}, 401},
		{"not valid yet", []string{"Authorization", "Bearer " + notYet, "X-Purpose-Of-Use", "TREAT"}, 401},
		{"alg none", []string{"Authorization", "Bearer " + noneAlg, "X-Purpose-Of-Use", "TREAT"}, 401},
		{"no purpose", []string{"Authorization", "Bearer " + good}, 403},
		{"purpose not granted", []string{"Authorization", "Bearer " + good, "X-Purpose-Of-Use", "HMARKT"}, 403},
		{"good", []string{"Authorization", "Bearer " + good, "X-Purpose-Of-Use", "TREAT"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(http.MethodGet, "/Patient", nil, tt.headers...)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.raw)
			}
			if tt.want != 200 && (str(r.body, "resourceType") != "OperationOutcome") {
				t.Errorf("answer is not an OperationOutcome: %s", r.raw)
			}
		})
	}
	for _, path := range []string{"/metadata"} {
		if r := h.do(http.MethodGet, path, nil); r.status != 200 {
			t.Errorf("GET %s without token: %d, want 200 (public)", path, r.status)
		}
	}
	resp, err := http.Get(h.srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /healthz without token: %v %v", err, resp)
	}
}

// TestJWKS verifies ES256 tokens against a JWKS file (the production path).
func TestJWKS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "kid": "k1", "use": "sig", "crv": "P-256",
		"x": b64(key.X.FillBytes(make([]byte, 32))), "y": b64(key.Y.FillBytes(make([]byte, 32))),
	}}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: "https://idp.example.org", Audience: "parcours", JWKSFile: path})
	if err != nil {
		t.Fatal(err)
	}
	c := auth.DevUsers()[0]
	c.Issuer, c.Audience = "https://idp.example.org", jwt.ClaimStrings{"parcours"}
	c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(time.Hour))
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify("Bearer " + signed)
	if err != nil || got.ActorType != c.ActorType {
		t.Fatalf("Verify ES256: %v %+v", err, got)
	}
	// HS256 is refused without a dev secret (no algorithm confusion).
	hs, _ := auth.Mint([]byte("secret"), auth.DevUsers()[0], time.Hour)
	if _, err := v.Verify("Bearer " + hs); err == nil {
		t.Error("HS256 token accepted by a production verifier")
	}
	tok.Header["kid"] = "unknown"
	signed, _ = tok.SignedString(key)
	if _, err := v.Verify("Bearer " + signed); err == nil {
		t.Error("token with an unknown kid accepted")
	}
}

// Demo data: the hospital (hospital-it) pushes a patient with a stay; the
// same hospital's clinician may read it for TREAT, others may not.
func seedHospital(t *testing.T, h *secureHub, family string) (patientID string) {
	t.Helper()
	r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Patient", patient(family, testINS(family)))
	if r.status != http.StatusCreated {
		t.Fatalf("hospital-it create Patient: %d %s", r.status, r.raw)
	}
	patientID = strings.Split(strings.TrimPrefix(r.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	enc := map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}, "subject": map[string]any{"reference": "Patient/" + patientID}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Encounter", enc); r.status != http.StatusCreated {
		t.Fatalf("hospital-it create Encounter: %d %s", r.status, r.raw)
	}
	obs := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "HbA1c"}, "subject": map[string]any{"reference": "Patient/" + patientID}, "valueQuantity": map[string]any{"value": 7.9, "unit": "%"}}
	if r := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", obs); r.status != http.StatusCreated {
		t.Fatalf("hospital-it create Observation: %d %s", r.status, r.raw)
	}
	return patientID
}

func TestPolicyCareTeam(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Martin")

	// The writer does not read clinical content back.
	w := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "x"}, "subject": map[string]any{"reference": "Patient/" + pid}})
	if w.status != http.StatusCreated || str(w.body, "resourceType") != "OperationOutcome" {
		t.Errorf("hospital-it create answered %d with %s, want 201 and an OperationOutcome (omit-content)", w.status, str(w.body, "resourceType"))
	}
	if r := h.as("hospital-it", "HOPERAT", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusForbidden {
		t.Errorf("hospital-it reads the patient back: %d, want 403", r.status)
	}
	// Same hospital's clinician, care team through the encounter.
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusOK {
		t.Fatalf("hospital-clinician TREAT read: %d %s", r.status, r.raw)
	}
	if r := h.as("hospital-clinician", "TREAT", http.MethodGet, "/Observation?_count=10", nil); r.status != 200 || r.body["total"].(float64) != 2 {
		t.Errorf("hospital-clinician search Observation: %d total %v, want 2", r.status, r.body["total"])
	}
	// A GP of another organisation is outside the care team: no consent, no data.
	if r := h.as("gp", "TREAT", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusForbidden || r.header.Get("X-Request-Id") == "" {
		t.Errorf("gp outside the care team reads: %d, want 403", r.status)
	}
	// Mutual insurers never see per-patient data, even by id.
	if r := h.as("mutual-prevention", "prevention-programme-reporting", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusForbidden {
		t.Errorf("mutual-prevention reads a patient: %d, want 403", r.status)
	}
	if r := h.as("mutual-claims", "underwriting-pricing", http.MethodGet, "/Observation", nil); r.status != http.StatusForbidden {
		t.Errorf("pricing search: %d, want 403", r.status)
	}
}

// TestPolicyNoLeak: what a caller may not see does not show through totals,
// paging links, history or batch entries.
func TestPolicyNoLeak(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Bernard")
	for i := 0; i < 3; i++ {
		seedHospital(t, h, "Petit"+string(rune('A'+i)))
	}
	// The GP's practice records an encounter for one more patient: the GP
	// sees that one only.
	gpPatient := h.as("gp", "TREAT", http.MethodPost, "/Patient", patient("Durand", testINS("Durand")))
	if gpPatient.status != http.StatusCreated {
		t.Fatalf("gp creates a patient: %d %s", gpPatient.status, gpPatient.raw)
	}
	gpPID := str(gpPatient.body, "id")
	if gpPID == "" {
		gpPID = strings.Split(strings.TrimPrefix(gpPatient.header.Get("Location"), h.url+"/Patient/"), "/")[0]
	}
	enc := map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "subject": map[string]any{"reference": "Patient/" + gpPID}}
	if r := h.as("gp", "TREAT", http.MethodPost, "/Encounter", enc); r.status != http.StatusCreated {
		t.Fatalf("gp creates an encounter: %d %s", r.status, r.raw)
	}

	search := h.as("gp", "TREAT", http.MethodGet, "/Patient?_count=1", nil)
	if search.status != 200 {
		t.Fatalf("gp search: %d %s", search.status, search.raw)
	}
	if total := search.body["total"].(float64); total != 1 {
		t.Errorf("gp search total %v, want 1 (only the practice's patient)", total)
	}
	if strings.Contains(string(search.raw), `"next"`) {
		t.Errorf("paging link reveals hidden results: %s", search.raw)
	}
	if strings.Contains(string(search.raw), pid) {
		t.Errorf("search answer mentions a hidden patient")
	}
	for _, path := range []string{"/_history", "/Patient/_history", "/Observation/_history", "/Patient/" + pid + "/_history"} {
		r := h.as("gp", "TREAT", http.MethodGet, path, nil)
		if r.status == http.StatusForbidden {
			continue
		}
		if strings.Contains(string(r.raw), pid) || strings.Contains(string(r.raw), "Bernard") {
			t.Errorf("GET %s reveals the hidden patient: %.300s", path, r.raw)
		}
	}
	if r := h.as("gp", "TREAT", http.MethodGet, "/Patient/_history", nil); r.status == 200 && r.body["total"].(float64) != 1 {
		t.Errorf("gp Patient history total %v, want 1", r.body["total"])
	}
	batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}},
		map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + gpPID}},
	}}
	r := h.as("gp", "TREAT", http.MethodPost, "", batch)
	if r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.raw)
	}
	entries := r.body["entry"].([]any)
	if st := entries[0].(map[string]any)["response"].(map[string]any)["status"]; !strings.HasPrefix(st.(string), "403") {
		t.Errorf("batch GET of a hidden patient: %v, want 403", st)
	}
	if st := entries[1].(map[string]any)["response"].(map[string]any)["status"]; !strings.HasPrefix(st.(string), "200") {
		t.Errorf("batch GET of the practice's patient: %v, want 200", st)
	}
	if strings.Contains(string(r.raw), "Bernard") {
		t.Error("batch answer leaks the hidden patient's content")
	}
}

// TestPatientCompartment: a resource's patients are those of the official
// patient compartment, by every parameter that defines it.
func TestPatientCompartment(t *testing.T) {
	ref := func(id string) map[string]any { return map[string]any{"reference": "Patient/" + id} }
	tests := []struct {
		typ  string
		res  map[string]any
		want []string
	}{
		{"Observation", map[string]any{"subject": ref("a"), "performer": []any{ref("b"), map[string]any{"reference": "Practitioner/x"}}}, []string{"Patient/a", "Patient/b"}},
		{"Encounter", map[string]any{"subject": ref("a")}, []string{"Patient/a"}},
		{"AllergyIntolerance", map[string]any{"patient": ref("a"), "recorder": ref("b"), "asserter": ref("c")}, []string{"Patient/a", "Patient/b", "Patient/c"}},
		{"CareTeam", map[string]any{"subject": ref("a"), "participant": []any{map[string]any{"member": ref("b")}}}, []string{"Patient/a", "Patient/b"}},
		{"Consent", map[string]any{"patient": ref("a")}, []string{"Patient/a"}},
		{"Organization", map[string]any{"partOf": ref("a")}, nil},
	}
	for _, tt := range tests {
		tt.res["resourceType"] = tt.typ
		got := accessOf(tt.typ, "x", tt.res, "").patients
		slices.Sort(got)
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s patients = %v, want %v", tt.typ, got, tt.want)
		}
		// The write path reads the same patients from the search entries.
		indexed := search.Default().CompartmentOwnersIn(tt.typ, search.Default().Extract(tt.typ, tt.res, ""), "Patient")
		slices.Sort(indexed)
		if strings.Join(indexed, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s patients from the search entries = %v, want %v", tt.typ, indexed, tt.want)
		}
	}
	got := accessOf("Observation", "x", map[string]any{"resourceType": "Observation", "subject": map[string]any{"reference": "https://hub.example.org/fhir/Patient/a"}}, "https://hub.example.org/fhir").patients
	if strings.Join(got, ",") != "Patient/a" {
		t.Errorf("absolute reference to this hub: %v, want Patient/a", got)
	}
}

// TestBreakGlass: a justified emergency access by a GP outside the care
// team is allowed, opens one review Task per window, and never reaches
// V-labelled data.
func TestBreakGlass(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Urgence")
	tasks := func() int {
		n := 0
		h.s.db.View(func(tx *store.Tx) error {
			n = len(tx.Lookup("Task", "identifier", breakGlassSystem+"|dr-generaliste|Patient/"+pid))
			return nil
		})
		return n
	}
	if r := h.as("gp", "BTG", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusForbidden {
		t.Errorf("BTG without a reason: %d, want 403", r.status)
	}
	for i := 0; i < 2; i++ {
		r := h.as("gp", "BTG", http.MethodGet, "/Patient/"+pid, nil, "X-Break-Glass-Reason", "SAMU: patient unconscious")
		if r.status != http.StatusOK {
			t.Fatalf("BTG with a reason: %d %s", r.status, r.raw)
		}
	}
	if n := tasks(); n != 1 {
		t.Errorf("%d review Tasks, want 1 for one window", n)
	}
	v := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "secret"},
		"meta":    map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}}},
		"subject": map[string]any{"reference": "Patient/" + pid}}
	w := h.as("hospital-it", "HOPERAT", http.MethodPost, "/Observation", v)
	if w.status != http.StatusCreated {
		t.Fatalf("create V-labelled: %d %s", w.status, w.raw)
	}
	vid := strings.Split(strings.TrimPrefix(w.header.Get("Location"), h.url+"/Observation/"), "/")[0]
	if r := h.as("gp", "BTG", http.MethodGet, "/Observation/"+vid, nil, "X-Break-Glass-Reason", "SAMU"); r.status != http.StatusForbidden {
		t.Errorf("BTG on V-labelled data: %d, want 403", r.status)
	}
	if r := h.as("mutual-claims", "HPAYMT", http.MethodGet, "/Patient/"+pid, nil, "X-Break-Glass-Reason", "urgent"); r.status != http.StatusForbidden {
		t.Errorf("mutual with a break-glass reason: %d, want 403", r.status)
	}
}

// TestAlertMetric: a forbidden purpose is counted as a security alert on
// the public /metrics, which carries no identifier.
func TestAlertMetric(t *testing.T) {
	h := newSecureHub(t)
	pid := seedHospital(t, h, "Metric")
	if r := h.as("mutual-claims", "underwriting-pricing", http.MethodGet, "/Patient/"+pid, nil); r.status != http.StatusForbidden {
		t.Fatalf("pricing read: %d", r.status)
	}
	resp, err := http.Get(h.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	has := func(name string, labels ...string) bool {
		for _, line := range strings.Split(body, "\n") {
			if !strings.HasPrefix(line, name+"{") {
				continue
			}
			all := true
			for _, l := range labels {
				all = all && strings.Contains(line, l)
			}
			if all {
				return true
			}
		}
		return false
	}
	checks := []struct {
		name   string
		labels []string
	}{
		{"parcours_policy_alerts_total", []string{`actor_type="mutual-claims"`, `purpose="underwriting-pricing"`}},
		{"parcours_policy_decisions_total", []string{`actor_type="hospital-it"`, `outcome="allow"`}},
		{"parcours_policy_decisions_total", []string{`actor_type="mutual-claims"`, `outcome="deny"`}},
		{"parcours_http_requests_total", []string{`method="GET"`, `route="/fhir/:type/:id"`, `status="403"`}},
		{"parcours_store_commit_batch_bucket", nil},
	}
	for _, c := range checks {
		if !has(c.name, c.labels...) {
			t.Errorf("/metrics lacks %s with %v", c.name, c.labels)
		}
	}
	if strings.Contains(body, pid) || strings.Contains(body, "Metric") {
		t.Error("/metrics carries an identifier or a name")
	}
}
