package server

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/parcours-sante/parcours/mappings"
	"github.com/parcours-sante/parcours/server/auth"
	"github.com/parcours-sante/parcours/server/store"
)

// TestPolicyScenarios is the end-to-end policy table: one world seeded
// through the API with the dev tokens (real JWT, real OPA, real HTTP on :0),
// then scenarios (actor, purpose, consent state, request) checking the exact
// status, the visible resources, totals, redaction, and leak probes (counts,
// paging, history, batch, _include/_revinclude/$everything).
//
// The table is ordered and stateful: rows with a before step change the
// world (a consent withdrawn, an objection recorded) just before they run;
// the step runs in the parent test, so it happens even when -run filters
// the row out. The rows whose comment says "once a bug" document bugs this
// table found, fixed since: they are regression checks.
func TestPolicyScenarios(t *testing.T) {
	w := seedScenarioWorld(t)
	table := w.scenarios()
	if len(table) < 40 {
		t.Fatalf("%d scenarios, want at least 40", len(table))
	}
	actors := map[string]bool{}
	for _, sc := range table {
		actors[sc.actor] = true
	}
	for _, u := range auth.DevUsers() {
		if !actors[u.ActorType] {
			t.Errorf("no scenario for actor type %s", u.ActorType)
		}
	}
	names := map[string]bool{}
	for _, sc := range table {
		if names[sc.name] {
			t.Fatalf("duplicate scenario name %q", sc.name)
		}
		names[sc.name] = true
		if sc.before != nil {
			sc.before(t)
		}
		tok := w.h.token(sc.actor, sc.tune...)
		t.Run(sc.name, func(t *testing.T) { w.run(t, sc, tok) })
	}
}

// scenario is one row of the policy table.
type scenario struct {
	name    string
	before  func(t *testing.T) // world change made just before the row (in the parent test)
	actor   string
	tune    []func(*auth.Claims) // token tuning (patient claim, extra purposes)
	purpose string
	headers []string
	method  string
	path    string
	body    any

	status int    // exact HTTP status
	reason string // a deny: a reason code the OperationOutcome must name
	total  *int   // exact Bundle.total
	ids    []string
	// ids: when non-nil, the exact multiset of "Type/id" the answer shows
	// (Bundle entries by fullUrl, or the single resource read).
	absent []string // strings that must not occur anywhere in the raw answer
	check  func(c scCall, r reply)
	// unsupported, when set, checks that the server answers the feature as
	// not implemented yet and skips the row (it runs once implemented).
	unsupported func(c scCall)
}

// scCall is a scenario's caller: its token, purpose and headers.
type scCall struct {
	t       *testing.T
	w       *scenarioWorld
	tok     string
	purpose string
	headers []string
}

func (c scCall) do(method, path string, body any, headers ...string) reply {
	c.t.Helper()
	return c.w.call(c.t, c.tok, c.purpose, method, path, body, append(slices.Clone(c.headers), headers...)...)
}

func (w *scenarioWorld) run(t *testing.T, sc scenario, tok string) {
	c := scCall{t: t, w: w, tok: tok, purpose: sc.purpose, headers: sc.headers}
	if sc.unsupported != nil {
		sc.unsupported(c)
	}
	r := c.do(sc.method, sc.path, sc.body)
	if r.status != sc.status {
		t.Fatalf("%s %s as %s/%s: status %d, want %d: %.600s", sc.method, sc.path, sc.actor, sc.purpose, r.status, sc.status, r.raw)
	}
	if sc.status >= 400 && str(r.body, "resourceType") != "OperationOutcome" {
		t.Errorf("a %d answer is not an OperationOutcome: %.300s", r.status, r.raw)
	}
	if sc.reason != "" && !strings.Contains(str(r.body, "issue", 0, "diagnostics"), sc.reason) {
		t.Errorf("deny reason: %q does not name %q", str(r.body, "issue", 0, "diagnostics"), sc.reason)
	}
	if sc.total != nil {
		if got := num(r.body, "total"); got != *sc.total {
			t.Errorf("Bundle.total %d, want %d: %.600s", got, *sc.total, r.raw)
		}
	}
	if sc.ids != nil {
		got := scVisibleIDs(w.h.url, r.body)
		want := slices.Clone(sc.ids)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("visible resources (-want +got):\n-%v\n+%v", want, got)
		}
	}
	for _, s := range sc.absent {
		if s != "" && strings.Contains(string(r.raw), s) {
			t.Errorf("the answer reveals %q: %.600s", s, r.raw)
		}
	}
	if sc.check != nil {
		sc.check(c, r)
	}
}

// scVisibleIDs lists "Type/id" of what an answer shows: the entries of a
// searchset or history Bundle (by fullUrl, which deleted versions have too),
// or the one resource of a read. Sorted.
func scVisibleIDs(base string, body map[string]any) []string {
	out := []string{}
	switch str(body, "resourceType") {
	case "Bundle":
		for _, e := range bundleEntries(body) {
			out = append(out, scRefOfURL(base, str(e, "fullUrl")))
		}
	case "":
	default:
		out = append(out, str(body, "resourceType")+"/"+str(body, "id"))
	}
	sort.Strings(out)
	return out
}

func scRefOfURL(base, u string) string {
	return strings.TrimPrefix(strings.TrimPrefix(u, base), "/")
}

func scN(i int) *int { return &i }

func scRefs(typ string, ids ...string) []string {
	out := []string{}
	for _, id := range ids {
		out = append(out, typ+"/"+id)
	}
	return out
}

func scCat(lists ...[]string) []string {
	out := []string{}
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func scSelfPatient(id string) func(*auth.Claims) {
	return func(c *auth.Claims) { c.Patient = "Patient/" + id }
}

func scWithPurposes(p ...string) func(*auth.Claims) {
	return func(c *auth.Claims) { c.Purposes = append(slices.Clone(c.Purposes), p...) }
}

// ---------------------------------------------------------------------------
// The world.

const (
	scSysINS        = "urn:oid:1.2.250.1.213.1.4.8"
	scSysActCode    = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	scSysActReason  = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	scSysConf       = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	scSysScope      = "http://terminology.hl7.org/CodeSystem/consentscope"
	scSysPartType   = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	scSysHubPurpose = "https://example.org/fhir/CodeSystem/hub-purpose"
	scSysResType    = "http://hl7.org/fhir/resource-types"
)

// scPerson is a seeded patient: id, identity and the resources of their
// compartment (hidden together from callers who may not see them).
type scPerson struct {
	id, family, ins, phone, street string
	res                            []string // ids of the patient's other resources
}

// secrets are the strings that must not leak about the person.
func (p scPerson) secrets() []string {
	return append([]string{p.id, p.family, p.ins, p.phone, p.street}, p.res...)
}

// identity are the direct identifiers (not the resource ids).
func (p scPerson) identity() []string {
	return []string{p.id, p.family, p.ins, p.phone, p.street}
}

type scenarioWorld struct {
	t *testing.T
	h *secureHub

	// Hospital (hospital-it HOPERAT): a fully documented patient.
	martin                                        scPerson
	eMartin, oMartin, cMartin, ctMartin, epMartin string
	// Objected to sharing with the hospital (OPTOUT, organisation).
	obj        scPerson
	eObj, oObj string
	// Opted in for the GP practice (outside the care team).
	optin                  scPerson
	eOptin, oOptin, cOptin string
	// PSY- and V-labelled data.
	psy                          scPerson
	ePsy, oPsyPlain, cPsy, oPsyV string
	// Objected to research.
	res        scPerson
	eRes, oRes string
	// An expired opt-in for the GP practice.
	exp        scPerson
	eExp, oExp string
	// In a CareTeam that names the GP (no encounter with the practice).
	team          scPerson
	ctTeam, oTeam string
	// Objects, late in the table, through a literal Organization reference.
	ref        scPerson
	eRef, oRef string
	// Created then deleted by the hospital.
	gone    scPerson
	orgHosp string

	// GP practice (gp, pharmacist TREAT).
	gp                  scPerson
	eGP, oGP, cGP, mdGP string
	// The programme operator's member (prevention consent).
	prev           scPerson
	oPrev1, oPrev2 string
	consPrev       string
	// Consents written by the patients.
	consObj, consOptin, consExp, consRes string
	consOptinBody                        map[string]any

	hospitalIT, gpTok, pharmTok, operTok string
	everyone, researchVisible            []*scPerson
}

func (w *scenarioWorld) call(t testing.TB, tok, purpose, method, path string, body any, headers ...string) reply {
	t.Helper()
	hh := &hub{t: t, s: w.h.s, srv: w.h.srv, url: w.h.url}
	return hh.do(method, path, body, append([]string{"Authorization", "Bearer " + tok, "X-Purpose-Of-Use", purpose}, headers...)...)
}

// create posts a resource and returns its id (from Location: hospital IT
// gets no content back).
func (w *scenarioWorld) create(tok, purpose, typ string, body map[string]any) string {
	w.t.Helper()
	r := w.call(w.t, tok, purpose, http.MethodPost, "/"+typ, body)
	if r.status != http.StatusCreated {
		w.t.Fatalf("seed POST /%s as %s: %d %.500s", typ, purpose, r.status, r.raw)
	}
	loc := strings.TrimPrefix(r.header.Get("Location"), w.h.url+"/"+typ+"/")
	id, _, _ := strings.Cut(loc, "/")
	if id == "" {
		w.t.Fatalf("seed POST /%s: no Location", typ)
	}
	return id
}

// scNewPerson is a person of the world; ins is a 13-character NIR, to
// which the INS-NIR key is added.
func scNewPerson(family, nir string) scPerson {
	ins := nir + mappings.INSKey(nir)
	return scPerson{family: family, ins: ins, phone: "+33 6 " + ins[len(ins)-8:], street: "12 rue " + family + " Haute"}
}

func (p scPerson) resource() map[string]any {
	return map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": scSysINS, "value": p.ins}},
		"name":         []any{map[string]any{"family": p.family, "given": []any{"Camille"}}},
		"telecom":      []any{map[string]any{"system": "phone", "value": p.phone}},
		"address":      []any{map[string]any{"line": []any{p.street}, "city": "Paris", "postalCode": "75011"}},
		"gender":       "female",
		"birthDate":    "1961-04-17",
	}
}

func scSubject(pid string) map[string]any { return map[string]any{"reference": "Patient/" + pid} }

func scEncounterOf(pid, class string) map[string]any {
	return map[string]any{"resourceType": "Encounter", "status": "finished",
		"class":   map[string]any{"system": scSysActCode, "code": class},
		"subject": scSubject(pid)}
}

func scObservationOf(pid, text string, labels ...map[string]any) map[string]any {
	return scLabelled(map[string]any{"resourceType": "Observation", "status": "final",
		"code": map[string]any{"text": text}, "subject": scSubject(pid),
		"valueQuantity": map[string]any{"value": 7.1, "unit": "%"}}, labels...)
}

func scConditionOf(pid, text string, labels ...map[string]any) map[string]any {
	return scLabelled(map[string]any{"resourceType": "Condition", "code": map[string]any{"text": text}, "subject": scSubject(pid)}, labels...)
}

func scLabelled(res map[string]any, labels ...map[string]any) map[string]any {
	if len(labels) > 0 {
		var sec []any
		for _, l := range labels {
			sec = append(sec, l)
		}
		res["meta"] = map[string]any{"security": sec}
	}
	return res
}

var (
	scLabelPSY = map[string]any{"system": scSysActCode, "code": "PSY"}
	scLabelV   = map[string]any{"system": scSysConf, "code": "V"}
)

func scCoding(system, code string) map[string]any {
	return map[string]any{"system": system, "code": code}
}

func scConcept(system, code string) map[string]any {
	return map[string]any{"coding": []any{scCoding(system, code)}}
}

// identifierRef is a Reference by identifier to an organisation
// "system|value" (how the dev tokens name their organisation).
func scIdentifierRef(org string) map[string]any {
	system, value, _ := strings.Cut(org, "|")
	return map[string]any{"identifier": map[string]any{"system": system, "value": value}}
}

func scActor(role string, ref map[string]any) map[string]any {
	return map[string]any{"role": scConcept(scSysPartType, role), "reference": ref}
}

// consentOf is a Consent of the patient (brief §4.2): scope, policy rule
// (OPTIN/OPTOUT) and the provision tree.
func scConsentOf(pid, scope, rule string, provision map[string]any) map[string]any {
	return map[string]any{
		"resourceType": "Consent", "status": "active",
		"scope":      scConcept(scSysScope, scope),
		"category":   []any{scConcept("http://loinc.org", "59284-0")},
		"patient":    scSubject(pid),
		"dateTime":   "2026-01-15",
		"policyRule": scConcept(scSysActCode, rule),
		"provision":  provision,
	}
}

func scClasses(types ...string) []any {
	var out []any
	for _, t := range types {
		out = append(out, scCoding(scSysResType, t))
	}
	return out
}

func seedScenarioWorld(t *testing.T) *scenarioWorld {
	h := newSecureHub(t)
	w := &scenarioWorld{t: t, h: h}
	w.hospitalIT = h.token("hospital-it")
	w.gpTok = h.token("gp")
	w.pharmTok = h.token("pharmacist")
	w.operTok = h.token("programme-operator")
	it := func(typ string, body map[string]any) string { return w.create(w.hospitalIT, "HOPERAT", typ, body) }
	hospitalPatient := func(p *scPerson) string {
		p.id = it("Patient", p.resource())
		enc := it("Encounter", scEncounterOf(p.id, "IMP"))
		p.res = append(p.res, enc)
		return enc
	}
	obs := func(p *scPerson, text string, labels ...map[string]any) string {
		id := it("Observation", scObservationOf(p.id, text, labels...))
		p.res = append(p.res, id)
		return id
	}
	cond := func(p *scPerson, text string, labels ...map[string]any) string {
		id := it("Condition", scConditionOf(p.id, text, labels...))
		p.res = append(p.res, id)
		return id
	}

	w.orgHosp = it("Organization", map[string]any{"resourceType": "Organization", "name": "CH Demo",
		"identifier": []any{scIdentifierRef(auth.DevHospital)["identifier"]}})

	// The hospital's fully documented patient: encounter, lab, diagnosis,
	// the care team (the clinician by RPPS, the hospital) and the episode.
	w.martin = scNewPerson("Martin", "2610475123401")
	w.eMartin = hospitalPatient(&w.martin)
	w.oMartin = obs(&w.martin, "HbA1c")
	w.cMartin = cond(&w.martin, "Diabete de type 2")
	w.ctMartin = it("CareTeam", map[string]any{"resourceType": "CareTeam", "status": "active", "subject": scSubject(w.martin.id),
		"participant":          []any{map[string]any{"member": map[string]any{"identifier": map[string]any{"system": rppsSystem, "value": "10000000011"}}}},
		"managingOrganization": []any{scIdentifierRef(auth.DevHospital)}})
	w.epMartin = it("EpisodeOfCare", map[string]any{"resourceType": "EpisodeOfCare", "status": "active", "patient": scSubject(w.martin.id),
		"managingOrganization": scIdentifierRef(auth.DevHospital)})
	w.martin.res = append(w.martin.res, w.ctMartin, w.epMartin)

	w.obj = scNewPerson("Lefebvre", "2620475123402")
	w.eObj = hospitalPatient(&w.obj)
	w.oObj = obs(&w.obj, "Creatinine")

	w.optin = scNewPerson("Moreau", "2630475123403")
	w.eOptin = hospitalPatient(&w.optin)
	w.oOptin = obs(&w.optin, "Kaliemie")
	w.cOptin = cond(&w.optin, "Insuffisance cardiaque")

	w.psy = scNewPerson("Girard", "2640475123404")
	w.ePsy = hospitalPatient(&w.psy)
	w.oPsyPlain = obs(&w.psy, "Glycemie")
	w.cPsy = cond(&w.psy, "Episode depressif", scLabelPSY)
	w.oPsyV = obs(&w.psy, "Serologie", scLabelV)

	w.res = scNewPerson("Roux", "2650475123405")
	w.eRes = hospitalPatient(&w.res)
	w.oRes = obs(&w.res, "NT-proBNP")

	w.exp = scNewPerson("Fournier", "2660475123406")
	w.eExp = hospitalPatient(&w.exp)
	w.oExp = obs(&w.exp, "Hemoglobine")

	// A patient whose care team (a CareTeam of the hospital) names the GP:
	// the GP is in the équipe de soins without any encounter.
	w.team = scNewPerson("Bonnet", "2670475123407")
	w.team.id = it("Patient", w.team.resource())
	w.ctTeam = it("CareTeam", map[string]any{"resourceType": "CareTeam", "status": "active", "subject": scSubject(w.team.id),
		"participant":          []any{map[string]any{"member": map[string]any{"identifier": map[string]any{"system": rppsSystem, "value": "10000000029"}}}},
		"managingOrganization": []any{scIdentifierRef(auth.DevHospital)}})
	w.team.res = append(w.team.res, w.ctTeam)
	w.oTeam = obs(&w.team, "INR")

	w.ref = scNewPerson("Faure", "2680475123408")
	w.eRef = hospitalPatient(&w.ref)
	w.oRef = obs(&w.ref, "TSH")

	w.gone = scNewPerson("Mercier", "2690475123409")
	w.gone.id = it("Patient", w.gone.resource())
	if r := w.call(t, w.hospitalIT, "HOPERAT", http.MethodDelete, "/Patient/"+w.gone.id, nil); r.status != http.StatusOK && r.status != http.StatusNoContent {
		t.Fatalf("hospital-it deletes a patient: %d %s", r.status, r.raw)
	}

	// The GP practice registers its patient and records an encounter (the
	// care relationship), a lab and a diagnosis; the pharmacist of the same
	// practice dispenses.
	w.gp = scNewPerson("Durand", "1700475123410")
	w.gp.id = w.create(w.gpTok, "TREAT", "Patient", w.gp.resource())
	w.eGP = w.create(w.gpTok, "TREAT", "Encounter", scEncounterOf(w.gp.id, "AMB"))
	w.oGP = w.create(w.gpTok, "TREAT", "Observation", scObservationOf(w.gp.id, "DFG"))
	w.cGP = w.create(w.gpTok, "TREAT", "Condition", scConditionOf(w.gp.id, "HTA"))
	w.mdGP = w.create(w.pharmTok, "TREAT", "MedicationDispense", map[string]any{"resourceType": "MedicationDispense", "status": "completed",
		"medicationCodeableConcept": map[string]any{"text": "Metformine 850"}, "subject": scSubject(w.gp.id)})
	w.gp.res = []string{w.eGP, w.oGP, w.cGP, w.mdGP}

	// The programme operator (trusted third party) enrols a member with the
	// prevention consent of brief §4.2 pattern 3, then records observations.
	w.prev = scNewPerson("Lambert", "1710475123411")
	delivery := "prevention-programme-delivery"
	w.prev.id = w.create(w.operTok, delivery, "Patient", w.prev.resource())
	prevConsent := scConsentOf(w.prev.id, "patient-privacy", "OPTIN", map[string]any{
		"type":    "permit",
		"period":  map[string]any{"start": "2020-01-01T00:00:00Z", "end": "2099-12-31T23:59:59Z"},
		"actor":   []any{scActor("PRCP", scIdentifierRef(auth.DevOperator))},
		"purpose": []any{scCoding(scSysHubPurpose, delivery)},
		"class":   scClasses("Patient", "Observation", "QuestionnaireResponse"),
		"provision": []any{
			map[string]any{"type": "deny", "actor": []any{scActor("IRCP", scIdentifierRef(auth.DevMutual))}},
			map[string]any{"type": "permit", "actor": []any{scActor("IRCP", scIdentifierRef(auth.DevMutual))},
				"purpose":   []any{scCoding(scSysHubPurpose, "prevention-programme-reporting")},
				"extension": []any{map[string]any{"url": "https://example.org/fhir/StructureDefinition/aggregation-min-k", "valueInteger": 10}}},
		},
	})
	prevConsent["performer"] = []any{scSubject(w.prev.id)}
	prevConsent["organization"] = []any{scIdentifierRef(auth.DevOperator)}
	w.consPrev = w.create(w.operTok, delivery, "Consent", prevConsent)
	w.oPrev1 = w.create(w.operTok, delivery, "Observation", scObservationOf(w.prev.id, "Poids"))
	w.oPrev2 = w.create(w.operTok, delivery, "Observation", scObservationOf(w.prev.id, "Tour de taille"))
	w.prev.res = []string{w.consPrev, w.oPrev1, w.oPrev2}

	// Patients write their own consents (patient actor, PATRQT).
	patientTok := func(p scPerson) string { return h.token("patient", scSelfPatient(p.id)) }
	w.consObj = w.create(patientTok(w.obj), "PATRQT", "Consent", scConsentOf(w.obj.id, "patient-privacy", "OPTOUT", map[string]any{
		"type":    "deny",
		"actor":   []any{scActor("IRCP", scIdentifierRef(auth.DevHospital))},
		"purpose": []any{scCoding(scSysActReason, "TREAT")},
	}))
	w.obj.res = append(w.obj.res, w.consObj)
	w.consOptinBody = scConsentOf(w.optin.id, "patient-privacy", "OPTIN", map[string]any{
		"type":    "permit",
		"period":  map[string]any{"start": "2020-01-01T00:00:00Z", "end": "2099-12-31T23:59:59Z"},
		"actor":   []any{scActor("PRCP", scIdentifierRef(auth.DevPractice))},
		"purpose": []any{scCoding(scSysActReason, "TREAT")},
		"class":   scClasses("Patient", "Observation"),
	})
	w.consOptin = w.create(patientTok(w.optin), "PATRQT", "Consent", w.consOptinBody)
	w.consOptinBody["id"] = w.consOptin
	w.optin.res = append(w.optin.res, w.consOptin)
	w.consExp = w.create(patientTok(w.exp), "PATRQT", "Consent", scConsentOf(w.exp.id, "patient-privacy", "OPTIN", map[string]any{
		"type":    "permit",
		"period":  map[string]any{"start": "2020-01-01T00:00:00Z", "end": "2024-12-31T23:59:59Z"},
		"actor":   []any{scActor("PRCP", scIdentifierRef(auth.DevPractice))},
		"purpose": []any{scCoding(scSysActReason, "TREAT")},
	}))
	w.exp.res = append(w.exp.res, w.consExp)
	// Research (brief §4.2 pattern 4, non-opposition = OPTOUT): this
	// patient uses the right to object.
	w.consRes = w.create(patientTok(w.res), "PATRQT", "Consent", scConsentOf(w.res.id, "research", "OPTOUT", map[string]any{
		"type":    "deny",
		"purpose": []any{scCoding(scSysActReason, "HRESCH")},
	}))
	w.res.res = append(w.res.res, w.consRes)

	w.everyone = []*scPerson{&w.martin, &w.obj, &w.optin, &w.psy, &w.res, &w.exp, &w.team, &w.ref, &w.gone, &w.gp, &w.prev}
	w.researchVisible = []*scPerson{&w.martin, &w.obj, &w.optin, &w.psy, &w.exp, &w.team, &w.ref, &w.gp, &w.prev}
	return w
}

// hiddenFrom are the secrets of every person but the visible ones.
func (w *scenarioWorld) hiddenFrom(visible ...*scPerson) []string {
	var out []string
	for _, p := range w.everyone {
		if !slices.Contains(visible, p) {
			out = append(out, p.secrets()...)
		}
	}
	return out
}

// identities are the direct identifiers of every person.
func (w *scenarioWorld) identities() []string {
	var out []string
	for _, p := range w.everyone {
		out = append(out, p.identity()...)
	}
	return out
}

// pseudo is the patient's pseudonym in a domain, as the hub computes it
// (brief §4.7: HMAC-SHA256 of the INS-NIR with the domain's key).
// rrefs are the references a pseudonymised caller of domain sees for the
// resources typ/ids (resource ids are pseudonymised per domain too).
func (w *scenarioWorld) rrefs(domain, typ string, ids ...string) []string {
	out := []string{}
	for _, id := range ids {
		out = append(out, typ+"/"+w.h.s.resourcePseudonym(domain, typ+"/"+id))
	}
	return out
}

func (w *scenarioWorld) pseudo(domain string, p scPerson) string {
	var out string
	if err := w.h.s.db.View(func(tx *store.Tx) error {
		out = w.h.s.patientPseudonym(tx, domain, "Patient/"+p.id)
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return out
}

// ---------------------------------------------------------------------------
// Checks shared by rows.

// scStrictRefuses skips the row when the server refuses param under
// Prefer: handling=strict (not implemented yet) and ignores it otherwise.
func scStrictRefuses(method, path, param string) func(c scCall) {
	return func(c scCall) {
		c.t.Helper()
		r := c.do(method, path, nil, "Prefer", "handling=strict")
		if r.status == http.StatusBadRequest && strings.Contains(str(r.body, "issue", 0, "diagnostics"), param) {
			c.t.Skipf("%s not implemented yet: search issue (strict handling answers 400: %s)", param, str(r.body, "issue", 0, "diagnostics"))
		}
	}
}

// scRedactedPatient checks a pseudonymised Patient (brief §4.7).
func scRedactedPatient(p scPerson, domain string) func(c scCall, r reply) {
	return func(c scCall, r reply) {
		for _, k := range []string{"name", "telecom", "address", "photo", "contact", "text"} {
			if _, ok := r.body[k]; ok {
				c.t.Errorf("pseudonymised Patient keeps %s: %s", k, r.raw)
			}
		}
		// Generalised (brief §4.7: month; the hub keeps the year).
		if got := str(r.body, "birthDate"); got != "1961" && got != "1961-04" {
			c.t.Errorf("birthDate %q, want 1961 or 1961-04 (no day)", got)
		}
		want := c.w.pseudo(domain, p)
		if got := str(r.body, "id"); got != want {
			c.t.Errorf("id %q, want the %s pseudonym %q", got, domain, want)
		}
		ids, _ := r.body["identifier"].([]any)
		if len(ids) != 1 || str(ids[0], "value") != want {
			c.t.Errorf("identifier %v, want only the pseudonym %s", r.body["identifier"], want)
		}
	}
}

// scSubjectIs checks the (pseudonymised) subject reference of a resource.
func scSubjectIs(ref string) func(c scCall, r reply) {
	return func(c scCall, r reply) {
		if got := str(r.body, "subject", "reference"); got != ref {
			c.t.Errorf("subject.reference %q, want %q", got, ref)
		}
	}
}

// scWalkPages follows next links from the first page: every page has the
// same total and at most count entries, no page reveals absent strings,
// and the ids seen are the visible set.
func scWalkPages(count, total int, want []string, absent []string) func(c scCall, r reply) {
	return func(c scCall, r reply) {
		var seen []string
		pages := 0
		for {
			pages++
			if got := num(r.body, "total"); got != total {
				c.t.Errorf("page %d: total %d, want %d", pages, got, total)
			}
			if got := len(bundleEntries(r.body)); got > count || got == 0 {
				c.t.Errorf("page %d: %d entries, want 1..%d", pages, got, count)
			}
			for _, s := range absent {
				if strings.Contains(string(r.raw), s) {
					c.t.Errorf("page %d reveals %q", pages, s)
				}
			}
			seen = append(seen, scVisibleIDs(c.w.h.url, r.body)...)
			next := linkURL(r.body, "next")
			if next == "" || pages > total+1 {
				break
			}
			hh := &hub{t: c.t, s: c.w.h.s, srv: c.w.h.srv, url: c.w.h.url}
			r = c.do(http.MethodGet, hh.rel(next), nil)
			if r.status != http.StatusOK {
				c.t.Fatalf("next page: %d %s", r.status, r.raw)
			}
		}
		wantPages := (total + count - 1) / count
		if pages != wantPages {
			c.t.Errorf("%d pages, want %d (the hidden results must not make pages)", pages, wantPages)
		}
		sort.Strings(seen)
		w := slices.Clone(want)
		sort.Strings(w)
		if !slices.Equal(seen, w) {
			c.t.Errorf("resources across pages (-want +got):\n-%v\n+%v", w, seen)
		}
	}
}

func scNoLink(relation string) func(c scCall, r reply) {
	return func(c scCall, r reply) {
		if u := linkURL(r.body, relation); u != "" {
			c.t.Errorf("link %s %s: the hidden results must not show through paging", relation, u)
		}
	}
}

func scBatchGet(urls ...string) map[string]any {
	var entries []any
	for _, u := range urls {
		entries = append(entries, map[string]any{"request": map[string]any{"method": "GET", "url": u}})
	}
	return map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries}
}

func scBatchStatuses(want ...string) func(c scCall, r reply) {
	return func(c scCall, r reply) {
		var got []string
		for _, e := range bundleEntries(r.body) {
			got = append(got, strings.Fields(str(e, "response", "status") + " ")[0])
		}
		if !slices.Equal(got, want) {
			c.t.Errorf("batch entry statuses %v, want %v", got, want)
		}
	}
}

func scAll(checks ...func(c scCall, r reply)) func(c scCall, r reply) {
	return func(c scCall, r reply) {
		for _, f := range checks {
			f(c, r)
		}
	}
}

// ---------------------------------------------------------------------------
// The table.

func (w *scenarioWorld) scenarios() []scenario {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		delivery            = "prevention-programme-delivery"
		reporting           = "prevention-programme-reporting"
	)
	btg := []string{"X-Break-Glass-Reason", "patient inconscient, SAMU"}
	self := func(p scPerson) []func(*auth.Claims) { return []func(*auth.Claims){scSelfPatient(p.id)} }
	// What the GP may see before the changes at the end of the table:
	// its own patient (encounter), the opted-in patient (Patient and
	// Observation only) and the patient whose CareTeam names the GP.
	gpPatients := scCat(scRefs("Patient", w.gp.id, w.optin.id, w.team.id))
	gpObservations := scRefs("Observation", w.oGP, w.oOptin, w.oTeam)
	gpHidden := append(w.hiddenFrom(&w.gp, &w.optin, &w.team), w.cOptin, w.eOptin, w.consOptin)
	// The hospital clinician: every hospital patient it has an encounter or
	// a CareTeam with, except the one who objected.
	clinicianObs := scRefs("Observation", w.oMartin, w.oOptin, w.oPsyPlain, w.oPsyV, w.oRes, w.oExp, w.oTeam, w.oRef)
	var researchPatients, researchSecrets []string
	for _, p := range w.researchVisible {
		researchPatients = append(researchPatients, "Patient/"+w.pseudo("research", *p))
	}
	for _, p := range w.everyone {
		researchSecrets = append(researchSecrets, p.identity()...)
	}
	martinSecrets := w.martin.identity()
	hospitalObs := scObservationOf(w.martin.id, "Glycemie capillaire saisie par la DSI")

	return []scenario{
		// --- ✅/🟡O inside the équipe de soins: hospital clinician TREAT.
		{name: "clinician TREAT reads own-hospital patient (care team via encounter)", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Patient/" + w.martin.id, status: 200, ids: scRefs("Patient", w.martin.id),
			check: func(c scCall, r reply) {
				if str(r.body, "name", 0, "family") != "Martin" {
					c.t.Errorf("care answer is redacted: %s", r.raw)
				}
			}},
		{name: "clinician TREAT searches Observation: care team only, objector excluded", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Observation?_total=accurate", status: 200, total: scN(8), ids: clinicianObs,
			absent: []string{w.oObj, w.oGP, w.oPrev1, w.oPrev2}},
		{name: "clinician TREAT reads EpisodeOfCare and CareTeam of its patient", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/CareTeam/" + w.ctMartin, status: 200, ids: scRefs("CareTeam", w.ctMartin)},
		{name: "opt-out objection (OPTOUT deny hospital) denies TREAT", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oObj, status: 403, reason: "patient-objection", absent: []string{"Creatinine"}},
		{name: "opt-out objection to TREAT also covers COC", actor: "hospital-clinician", purpose: "COC",
			method: get, path: "/Patient/" + w.obj.id, status: 403, reason: "patient-objection", absent: w.obj.identity()[1:]},
		{name: "clinician in care team reads PSY-labelled condition", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Condition/" + w.cPsy, status: 200, ids: scRefs("Condition", w.cPsy)},
		{name: "clinician in care team reads V-labelled observation", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oPsyV, status: 200, ids: scRefs("Observation", w.oPsyV)},
		{name: "clinician outside the care team (GP's patient) denied", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oGP, status: 403, reason: "outside-care-team-no-consent"},

		// --- 🟡O outside the équipe de soins = 🟡C: GP TREAT.
		{name: "gp TREAT outside care team without consent: 403 not 404", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oMartin, status: 403, reason: "outside-care-team-no-consent", absent: []string{"HbA1c"}},
		{name: "gp TREAT reads a missing observation: 404 (control)", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/does-not-exist", status: 404},
		{name: "gp TREAT reads opted-in observation (OPTIN permit practice)", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oOptin, status: 200, ids: scRefs("Observation", w.oOptin)},
		{name: "gp TREAT opt-in class excludes Condition", actor: "gp", purpose: "TREAT",
			method: get, path: "/Condition/" + w.cOptin, status: 403, reason: "outside-care-team-no-consent"},
		{name: "gp TREAT expired opt-in denied", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oExp, status: 403, reason: "outside-care-team-no-consent"},
		{name: "gp TREAT care team through a CareTeam participant", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oTeam, status: 200, ids: scRefs("Observation", w.oTeam)},
		{name: "gp TREAT care team through its own encounter", actor: "gp", purpose: "TREAT",
			method: get, path: "/Condition/" + w.cGP, status: 200, ids: scRefs("Condition", w.cGP)},
		{name: "gp TREAT PSY outside care team denied", actor: "gp", purpose: "TREAT",
			method: get, path: "/Condition/" + w.cPsy, status: 403, reason: "security-label-restricted", absent: []string{"depressif"}},

		// --- 🟡C prevention programme (pattern 3).
		{name: "programme-operator delivery with the prevention consent", actor: "programme-operator", purpose: delivery,
			method: get, path: "/Observation/" + w.oPrev1, status: 200, ids: scRefs("Observation", w.oPrev1)},
		{name: "programme-operator delivery searches Observation: consented member only", actor: "programme-operator", purpose: delivery,
			method: get, path: "/Observation", status: 200, total: scN(2), ids: scRefs("Observation", w.oPrev1, w.oPrev2),
			absent: w.hiddenFrom(&w.prev)},
		{name: "programme-operator delivery without consent denied", actor: "programme-operator", purpose: delivery,
			method: get, path: "/Observation/" + w.oMartin, status: 403, reason: "consent-required"},
		{name: "programme-operator reporting per patient: aggregate only", actor: "programme-operator", purpose: reporting,
			method: get, path: "/Observation/" + w.oPrev1, status: 403, reason: "aggregate-only"},

		// --- 🟡A / ⛔ mutual insurer.
		{name: "mutual-prevention reporting reads one observation: aggregate only", actor: "mutual-prevention", purpose: reporting,
			method: get, path: "/Observation/" + w.oPrev1, status: 403, reason: "aggregate-only", absent: []string{"Poids"}},
		{name: "leak: mutual-prevention counts Observation with _summary=count", actor: "mutual-prevention", purpose: reporting,
			method: get, path: "/Observation?_summary=count", status: 403, reason: "aggregate-only"},
		{name: "mutual-prevention delivery purpose is never", actor: "mutual-prevention", purpose: delivery,
			tune:   []func(*auth.Claims){scWithPurposes(delivery)},
			method: get, path: "/Observation/" + w.oPrev1, status: 403, reason: "matrix-never"},
		{name: "mutual-claims HPAYMT outside coverage types denied", actor: "mutual-claims", purpose: "HPAYMT",
			method: get, path: "/Observation", status: 403, reason: "coverage-eligibility-only"},
		{name: "mutual-claims HPAYMT Coverage search allowed (none stored)", actor: "mutual-claims", purpose: "HPAYMT",
			method: get, path: "/Coverage", status: 200, total: scN(0), ids: []string{}},

		// --- ⛔ never.
		{name: "never: underwriting-pricing search", actor: "mutual-claims", purpose: "underwriting-pricing",
			method: get, path: "/Observation?_summary=count", status: 403, reason: "matrix-never"},
		{name: "never: underwriting-pricing even on Coverage", actor: "mutual-prevention", purpose: "underwriting-pricing",
			method: get, path: "/Coverage", status: 403, reason: "matrix-never"},
		{name: "never: HMARKT granted in the token", actor: "gp", purpose: "HMARKT", tune: []func(*auth.Claims){scWithPurposes("HMARKT")},
			method: get, path: "/Patient/" + w.gp.id, status: 403, reason: "matrix-never", absent: w.gp.identity()[1:]},
		{name: "never: HMARKT not granted is refused before the policy", actor: "gp", purpose: "HMARKT",
			method: get, path: "/Patient/" + w.gp.id, status: 403, reason: "not granted"},

		// --- 🟡P pseudonymised: researcher HRESCH, liability, public health.
		{name: "researcher reads patient by its pseudonym: identity removed, birthDate generalised", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Patient/" + w.pseudo("research", w.martin), status: 200, ids: []string{"Patient/" + w.pseudo("research", w.martin)},
			absent: martinSecrets, check: scRedactedPatient(w.martin, "research")},
		{name: "researcher reads observation by its pseudonym: subject is the same pseudonym", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/" + w.rrefs("research", "Observation", w.oMartin)[0], status: 200, ids: w.rrefs("research", "Observation", w.oMartin), absent: append(slices.Clone(martinSecrets), w.oMartin),
			check: scAll(scSubjectIs("Patient/"+w.pseudo("research", w.martin)), func(c scCall, r reply) {
				p := c.do(get, "/"+str(r.body, "subject", "reference"), nil) // the reference resolves
				if got := "Patient/" + str(p.body, "id"); p.status != http.StatusOK || got != str(r.body, "subject", "reference") {
					c.t.Errorf("Observation.subject %q and the Patient's pseudonymised id %q differ", str(r.body, "subject", "reference"), got)
				}
			})},
		{name: "researcher reads condition: same pseudonym across resources", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/" + w.rrefs("research", "Condition", w.cMartin)[0], status: 200, ids: w.rrefs("research", "Condition", w.cMartin), absent: append(slices.Clone(martinSecrets), w.cMartin),
			check: scSubjectIs("Patient/" + w.pseudo("research", w.martin))},
		{name: "researcher searches Patient: all but the research objector, pseudonymised", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Patient?_total=accurate", status: 200, total: scN(len(researchPatients)), ids: researchPatients,
			absent: researchSecrets},
		{name: "researcher searches Encounter: every patient reference pseudonymised", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Encounter", status: 200, total: scN(7), ids: w.rrefs("research", "Encounter", w.eMartin, w.eObj, w.eOptin, w.ePsy, w.eExp, w.eRef, w.eGP),
			absent: append(researchSecrets, w.eRes),
			check: func(c scCall, r reply) {
				want := map[string]bool{}
				for _, p := range w.researchVisible {
					want["Patient/"+w.pseudo("research", *p)] = true
				}
				for _, e := range bundleEntries(r.body) {
					if ref := str(e, "resource", "subject", "reference"); !want[ref] {
						c.t.Errorf("Encounter.subject %q is not a research pseudonym of a visible patient", ref)
					}
				}
			}},
		// Refused by pseudonym: 404, a pseudonym names nothing the caller
		// may not see (a 403's reason would describe it).
		{name: "researcher: research objection excludes the patient", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/" + w.rrefs("research", "Observation", w.oRes)[0], status: 404},
		{name: "researcher: PSY-labelled data denied", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/" + w.rrefs("research", "Condition", w.cPsy)[0], status: 404},
		{name: "gp: a research pseudonym of a patient outside its care team is not found", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient/" + w.pseudo("research", w.martin), status: 404},
		// A pseudonymised caller reads by the ids it is shown, never by
		// the hub's (which would link the two), and a pseudonym opens
		// nothing to another domain or to a caller who sees hub ids.
		{name: "researcher reads an observation by the hub's id: not found", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Observation/" + w.oMartin, status: 404, absent: []string{w.rrefs("research", "Observation", w.oMartin)[0][len("Observation/"):]}},
		{name: "researcher reads a patient by the hub's id: not found", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Patient/" + w.martin.id, status: 404, absent: []string{w.pseudo("research", w.martin)}},
		{name: "researcher vread and history by the pseudonym", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/" + w.rrefs("research", "Observation", w.oMartin)[0] + "/_history/1", status: 200, ids: w.rrefs("research", "Observation", w.oMartin),
			check: func(c scCall, r reply) {
				h := c.do(get, "/"+w.rrefs("research", "Observation", w.oMartin)[0]+"/_history", nil)
				if got := scVisibleIDs(w.h.url, h.body); h.status != http.StatusOK || !slices.Equal(got, w.rrefs("research", "Observation", w.oMartin)) {
					c.t.Errorf("history by the pseudonym: %d, %v", h.status, got)
				}
				if h := c.do(get, "/Observation/"+w.oMartin+"/_history", nil); h.status != http.StatusNotFound {
					c.t.Errorf("history by the hub's id: %d, want 404", h.status)
				}
				b := c.do(http.MethodPost, "", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
					map[string]any{"request": map[string]any{"method": "GET", "url": w.rrefs("research", "Observation", w.oMartin)[0]}},
					map[string]any{"request": map[string]any{"method": "GET", "url": "Observation/" + w.oMartin}},
				}})
				entries := anySlice(b.body["entry"])
				if b.status != http.StatusOK || len(entries) != 2 || str(entries[0], "response", "status") != "200 OK" || !strings.HasPrefix(str(entries[1], "response", "status"), "404") {
					c.t.Errorf("batch GET by the pseudonym and by the hub's id: %d %.400s", b.status, b.raw)
				}
			}},
		{name: "liability-risk-manager cannot use a research pseudonym", actor: "liability-risk-manager", purpose: "liability-risk-analysis",
			method: get, path: "/" + w.rrefs("research", "Observation", w.oMartin)[0], status: 404},
		{name: "gp in care reads no pseudonym", actor: "gp", purpose: "TREAT",
			method: get, path: "/" + w.rrefs("research", "Observation", w.oGP)[0], status: 404},
		{name: "researcher searches Observation: labelled and objecting excluded", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Observation?_summary=count", status: 200, total: scN(10), ids: []string{}},
		// Once a bug, now a regression check: a deleted Patient shows its real id in the researcher's
		// history. Expected: every entry of a pseudonymised history
		// names the pseudonym, the real id absent (brief §4.7, README
		// obligation pseudonymise: "replace patient identifiers").
		// Was: history.go historyEntry uses r.ID for a deletion
		// (no content to pseudonymise), so fullUrl and request.url of the
		// DELETE entry carry Patient/<real id> next to the pseudonymised
		// create entry of the same patient.
		{name: "leak: researcher Patient history keeps a deleted patient pseudonymised", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Patient/_history?_count=100", status: 200, total: scN(len(researchPatients) + 2),
			ids:    append(slices.Clone(researchPatients), "Patient/"+w.pseudo("research", w.gone), "Patient/"+w.pseudo("research", w.gone)),
			absent: researchSecrets},
		// Once a bug, now a regression check: a pseudonymised caller
		// can search on the direct identifier (INS) and learn that the
		// person is in the hub and their pseudonym: a re-identification
		// oracle (brief §5 note 5 "no re-identification", §4.4 NORELINK).
		// Expected: the criterion matches nothing the caller can see
		// (200, total 0). Was: the pseudonymised record is returned.
		{name: "leak: researcher search by INS must not re-identify", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Patient?identifier=" + url.QueryEscape(scSysINS+"|"+w.martin.ins), status: 200, total: scN(0), ids: []string{},
			absent: []string{w.pseudo("research", w.martin), w.martin.id, "Martin"}},
		{name: "liability-risk-analysis: liability-domain pseudonym, not the research one", actor: "liability-risk-manager", purpose: "liability-risk-analysis",
			method: get, path: "/" + w.rrefs("liability", "Observation", w.oMartin)[0], status: 200, ids: w.rrefs("liability", "Observation", w.oMartin),
			absent: append(slices.Clone(martinSecrets), w.pseudo("research", w.martin), w.oMartin, w.rrefs("research", "Observation", w.oMartin)[0][len("Observation/"):]),
			check:  scSubjectIs("Patient/" + w.pseudo("liability", w.martin))},
		{name: "liability-claim-handling: claim file only", actor: "liability-risk-manager", purpose: "liability-claim-handling",
			method: get, path: "/Observation/" + w.oMartin, status: 403, reason: "claim-file-only"},
		{name: "public-health PUBHLTH on a non-mandated type: pseudonymised", actor: "public-health", purpose: "PUBHLTH",
			method: get, path: "/Patient/" + w.pseudo("research", w.psy), status: 200, ids: []string{"Patient/" + w.pseudo("research", w.psy)},
			absent: w.psy.identity(), check: scRedactedPatient(w.psy, "research")},

		// --- BTG: ETREAT / break-the-glass.
		{name: "break-glass: gp ETREAT with reason outside the care team", actor: "gp", purpose: "ETREAT", headers: btg,
			method: get, path: "/Observation/" + w.oPsyPlain, status: 200, ids: scRefs("Observation", w.oPsyPlain)},
		{name: "break-glass: gp ETREAT with reason lifts PSY, one review per window", actor: "gp", purpose: "ETREAT", headers: btg,
			method: get, path: "/Condition/" + w.cPsy, status: 200, ids: scRefs("Condition", w.cPsy),
			check: func(c scCall, r reply) {
				if got := w.reviewTasks("dr-generaliste", w.psy); got != 1 {
					c.t.Errorf("%d break-the-glass review Tasks for the GP and the patient, want 1 (one 4 h window)", got)
				}
			}},
		{name: "break-glass: gp ETREAT without reason denied", actor: "gp", purpose: "ETREAT",
			method: get, path: "/Observation/" + w.oPsyPlain, status: 403, reason: "break-glass-reason-missing"},
		{name: "break-glass: never V-labelled data", actor: "gp", purpose: "ETREAT", headers: btg,
			method: get, path: "/Observation/" + w.oPsyV, status: 403, reason: "security-label-V-never-via-break-glass", absent: []string{"Serologie"}},
		{name: "break-glass: clinician BTG lifts an objection", actor: "hospital-clinician", purpose: "BTG", headers: btg,
			method: get, path: "/Observation/" + w.oObj, status: 200, ids: scRefs("Observation", w.oObj)},
		{name: "break-glass: mutual with BTG is never", actor: "mutual-prevention", purpose: "ETREAT", headers: btg,
			tune:   []func(*auth.Claims){scWithPurposes("ETREAT")},
			method: get, path: "/Observation/" + w.oPsyPlain, status: 403, reason: "matrix-never"},
		{name: "break-glass: pharmacist may not break the glass", actor: "pharmacist", purpose: "ETREAT", headers: btg,
			tune:   []func(*auth.Claims){scWithPurposes("ETREAT")},
			method: get, path: "/Observation/" + w.oPsyPlain, status: 403, reason: "break-glass-not-permitted-for-actor"},

		// --- Pharmacist need-to-know.
		{name: "pharmacist TREAT reads MedicationDispense", actor: "pharmacist", purpose: "TREAT",
			method: get, path: "/MedicationDispense/" + w.mdGP, status: 200, ids: scRefs("MedicationDispense", w.mdGP)},
		{name: "pharmacist TREAT reads Observation", actor: "pharmacist", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oGP, status: 200, ids: scRefs("Observation", w.oGP)},
		{name: "pharmacist TREAT reads Condition: need-to-know", actor: "pharmacist", purpose: "TREAT",
			method: get, path: "/Condition/" + w.cGP, status: 403, reason: "pharmacist-need-to-know", absent: []string{"HTA"}},
		{name: "pharmacist TREAT searches Condition: need-to-know", actor: "pharmacist", purpose: "TREAT",
			method: get, path: "/Condition?_summary=count", status: 403, reason: "pharmacist-need-to-know"},
		{name: "pharmacist TREAT searches Observation: care team and opt-in to the practice", actor: "pharmacist", purpose: "TREAT",
			method: get, path: "/Observation", status: 200, total: scN(2), ids: scRefs("Observation", w.oGP, w.oOptin),
			absent: []string{w.oTeam, w.oMartin}},

		// --- Patient: self vs other.
		{name: "patient reads own record despite own objection", actor: "patient", tune: self(w.obj), purpose: "PATRQT",
			method: get, path: "/Patient/" + w.obj.id, status: 200, ids: scRefs("Patient", w.obj.id)},
		{name: "patient reads another patient", actor: "patient", tune: self(w.obj), purpose: "PATRQT",
			method: get, path: "/Patient/" + w.martin.id, status: 403, reason: "not-own-record", absent: martinSecrets[1:]},
		{name: "patient searches Observation: own only", actor: "patient", tune: self(w.obj), purpose: "PATRQT",
			method: get, path: "/Observation", status: 200, total: scN(1), ids: scRefs("Observation", w.oObj), absent: w.hiddenFrom(&w.obj)},
		{name: "patient searches own consents", actor: "patient", tune: self(w.obj), purpose: "PATRQT",
			method: get, path: "/Consent", status: 200, total: scN(1), ids: scRefs("Consent", w.consObj),
			absent: []string{w.consOptin, w.consExp, w.consRes, w.consPrev}},
		{name: "patient reads own PSY-labelled condition", actor: "patient", tune: self(w.psy), purpose: "PATRQT",
			method: get, path: "/Condition/" + w.cPsy, status: 200, ids: scRefs("Condition", w.cPsy)},
		{name: "patient does not read own V-labelled observation", actor: "patient", tune: self(w.psy), purpose: "PATRQT",
			method: get, path: "/Observation/" + w.oPsyV, status: 403, reason: "security-label-very-restricted"},

		// --- Auditor and hospital IT.
		{name: "auditor HCOMPL on health data denied", actor: "auditor", purpose: "HCOMPL",
			method: get, path: "/Observation", status: 403, reason: "auditor-audit-events-only"},
		{name: "auditor HCOMPL reads a patient denied", actor: "auditor", purpose: "HCOMPL",
			method: get, path: "/Patient/" + w.martin.id, status: 403, reason: "auditor-audit-events-only", absent: martinSecrets[1:]},
		{name: "auditor HCOMPL searches AuditEvent", actor: "auditor", purpose: "HCOMPL",
			method: get, path: "/AuditEvent", status: 200,
			// The number of AuditEvents is the audit issue's; no patient
			// identity may show in them.
			absent: w.identities()},
		{name: "hospital-it reads clinical data denied", actor: "hospital-it", purpose: "HOPERAT",
			method: get, path: "/Observation/" + w.oMartin, status: 403, reason: "no-clinical-content", absent: []string{"HbA1c"}},
		{name: "hospital-it searches Patient denied", actor: "hospital-it", purpose: "HSYSADMIN",
			method: get, path: "/Patient?_summary=count", status: 403, reason: "no-clinical-content"},
		{name: "hospital-it reads metadata (Organization)", actor: "hospital-it", purpose: "HSYSADMIN",
			method: get, path: "/Organization", status: 200, total: scN(1), ids: scRefs("Organization", w.orgHosp)},

		// --- Leak probes (GP TREAT sees 3 patients, 3 observations).
		{name: "leak: gp Patient _summary=count equals the allowed patients", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?_summary=count", status: 200, total: scN(3), ids: []string{}, absent: gpHidden},
		{name: "leak: gp Patient _total=accurate", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?_total=accurate", status: 200, total: scN(3), ids: gpPatients, absent: gpHidden},
		{name: "leak: gp Patient _count=3: no next link for hidden results", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?_count=3", status: 200, total: scN(3), ids: gpPatients, absent: gpHidden, check: scNoLink("next")},
		{name: "leak: gp Patient _count=1 paging", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?_count=1", status: 200, total: scN(3),
			check: scWalkPages(1, 3, gpPatients, gpHidden)},
		{name: "leak: gp Observation POST _search _summary=count", actor: "gp", purpose: "TREAT",
			headers: []string{"Content-Type", "application/x-www-form-urlencoded"},
			method:  post, path: "/Observation/_search", body: "_summary=count", status: 200, total: scN(3), ids: []string{}, absent: gpHidden},
		{name: "leak: gp Observation _count=0", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation?_count=0", status: 200, total: scN(3), ids: []string{}, absent: gpHidden, check: scNoLink("next")},
		{name: "leak: gp searches a hidden patient by _id", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?_id=" + w.martin.id, status: 200, total: scN(0), ids: []string{}, absent: martinSecrets[1:]},
		{name: "leak: gp searches a hidden patient by identifier", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?identifier=" + url.QueryEscape(scSysINS+"|"+w.martin.ins), status: 200, total: scN(0), ids: []string{},
			absent: []string{w.martin.id, "Martin", w.martin.phone}},
		{name: "leak: gp instance history of a hidden patient", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient/" + w.martin.id + "/_history", status: 403, reason: "outside-care-team-no-consent", absent: martinSecrets[1:]},
		{name: "leak: gp vread of a hidden observation", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oMartin + "/_history/1", status: 403, absent: []string{"HbA1c"}},
		{name: "leak: gp Observation type history", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/_history", status: 200, total: scN(3), ids: gpObservations, absent: gpHidden},
		{name: "leak: gp Patient type history _count=1", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient/_history?_count=1", status: 200, total: scN(3),
			check: scWalkPages(1, 3, gpPatients, gpHidden)},
		{name: "leak: gp system history", actor: "gp", purpose: "TREAT",
			method: get, path: "/_history?_count=100", status: 200, total: scN(11),
			ids: scCat(gpPatients, gpObservations, scRefs("Encounter", w.eGP), scRefs("Condition", w.cGP), scRefs("MedicationDispense", w.mdGP),
				scRefs("CareTeam", w.ctTeam), scRefs("Organization", w.orgHosp)),
			absent: gpHidden},
		{name: "leak: gp batch GET entries", actor: "gp", purpose: "TREAT",
			method: post, path: "", body: scBatchGet("Patient/"+w.martin.id, "Observation/"+w.oMartin, "Patient/"+w.gp.id, "Observation/"+w.oTeam, "Condition/"+w.cOptin),
			status: 200, absent: append(martinSecrets[1:], "HbA1c", "Insuffisance"),
			check: scBatchStatuses("403", "403", "200", "200", "403")},
		{name: "leak: clinician Observation _count=3 paging", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Observation?_count=3", status: 200, total: scN(8),
			check: scWalkPages(3, 8, clinicianObs, []string{w.oObj, w.oGP, w.oPrev1})},

		// --- Not implemented yet (search issue): they run once the server
		// stops refusing the parameter under strict handling.
		{name: "probe: _revinclude does not reveal hidden resources", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?_id=" + w.optin.id + "&_revinclude=Observation:subject&_revinclude=Condition:subject&_revinclude=Consent:patient",
			unsupported: scStrictRefuses(get, "/Patient?_id="+w.optin.id+"&_revinclude=Observation:subject", "_revinclude"),
			status:      200, total: scN(1), ids: scCat(scRefs("Patient", w.optin.id), scRefs("Observation", w.oOptin)),
			absent: []string{w.cOptin, w.consOptin, w.eOptin}},
		{name: "probe: _include adds only visible patients", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation?_include=Observation:subject",
			unsupported: scStrictRefuses(get, "/Observation?_include=Observation:subject", "_include"),
			status:      200, total: scN(3), ids: scCat(gpObservations, gpPatients), absent: gpHidden},
		// Once a bug, now a regression check: _id and references take the
		// hub's ids, which a pseudonymised caller is not shown; a criterion
		// on one linked it to its pseudonym (black-box review).
		{name: "probe: _id by the hub's id under pseudonymisation", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Observation?_id=" + w.oMartin + "&_include=Observation:subject",
			status: 200, total: scN(0), ids: []string{}, absent: []string{w.pseudo("research", w.martin)}},
		{name: "probe: _include under pseudonymisation", actor: "researcher", purpose: "HRESCH",
			method: get, path: "/Observation?code:text=HbA1c&_include=Observation:subject",
			unsupported: scStrictRefuses(get, "/Observation?code:text=HbA1c&_include=Observation:subject", "_include"),
			status:      200, absent: martinSecrets,
			check: func(c scCall, r reply) {
				got := scVisibleIDs(w.h.url, r.body)
				for _, want := range scCat(w.rrefs("research", "Observation", w.oMartin), []string{"Patient/" + w.pseudo("research", w.martin)}) {
					if !slices.Contains(got, want) {
						c.t.Errorf("%s not among %v", want, got)
					}
				}
			}},
		{name: "probe: $everything of a care-team patient shows only the visible", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient/" + w.gp.id + "/$everything",
			unsupported: scEverythingUnsupported(w.gp.id),
			status:      200, ids: scCat(scRefs("Patient", w.gp.id), scRefs("Encounter", w.eGP), scRefs("Observation", w.oGP), scRefs("Condition", w.cGP), scRefs("MedicationDispense", w.mdGP)),
			absent: gpHidden},
		{name: "probe: $everything of a hidden patient is 403", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient/" + w.martin.id + "/$everything",
			unsupported: scEverythingUnsupported(w.gp.id),
			status:      403, absent: martinSecrets[1:]},

		// --- Writes.
		{name: "hospital-it writes an observation, answer without content", actor: "hospital-it", purpose: "HOPERAT",
			headers: []string{"Prefer", "return=representation"},
			method:  post, path: "/Observation", body: hospitalObs, status: 201, absent: []string{"Glycemie capillaire", "valueQuantity"},
			check: func(c scCall, r reply) {
				if str(r.body, "resourceType") != "OperationOutcome" || r.header.Get("Location") == "" {
					c.t.Errorf("want an OperationOutcome and a Location (omit-content): %s", r.raw)
				}
			}},
		{name: "gp writes to a hospital observation of its care team: other org", actor: "gp", purpose: "TREAT",
			method: put, path: "/Observation/" + w.oTeam, body: scWithID(scObservationOf(w.team.id, "INR corrige"), w.oTeam),
			status: 403, reason: "not-own-organisation"},
		{name: "clinician writes to the GP's observation: other org", actor: "hospital-clinician", purpose: "TREAT",
			method: put, path: "/Observation/" + w.oGP, body: scWithID(scObservationOf(w.gp.id, "DFG corrige"), w.oGP),
			status: 403, reason: "not-own-organisation"},
		{name: "hospital-it deletes the GP's encounter: other org", actor: "hospital-it", purpose: "HOPERAT",
			method: del, path: "/Encounter/" + w.eGP, status: 403, reason: "not-own-organisation"},
		{name: "gp writes for a patient outside its care team", actor: "gp", purpose: "TREAT",
			method: post, path: "/Observation", body: scObservationOf(w.martin.id, "Tension"), status: 403, reason: "not-in-care-team"},
		{name: "patient writes a consent for themself", actor: "patient", tune: self(w.obj), purpose: "PATRQT",
			method: post, path: "/Consent", body: scConsentOf(w.obj.id, "research", "OPTIN", map[string]any{
				"type": "permit", "purpose": []any{scCoding(scSysActReason, "HRESCH")}}),
			status: 201, check: func(c scCall, r reply) {
				if str(r.body, "resourceType") != "Consent" || str(r.body, "patient", "reference") != "Patient/"+w.obj.id {
					c.t.Errorf("answer is not the patient's Consent: %s", r.raw)
				}
				// Once a bug, now a regression check: the patient's own
				// Consent is no organisation's to change (a clinician
				// withdrew a patient's objection: black-box review).
				withdrawn := maps.Clone(r.body)
				withdrawn["status"] = "inactive"
				for _, who := range [][2]string{{"hospital-clinician", "TREAT"}, {"programme-operator", "prevention-programme-delivery"}} {
					for _, m := range []string{put, del} {
						body := any(withdrawn)
						if m == del {
							body = nil
						}
						if x := c.w.call(c.t, c.w.h.token(who[0]), who[1], m, "/Consent/"+str(r.body, "id"), body); x.status != http.StatusForbidden {
							c.t.Errorf("%s %s the patient's Consent: %d, want 403: %.300s", who[0], m, x.status, x.raw)
						}
					}
				}
			}},
		{name: "patient writes a consent for another patient", actor: "patient", tune: self(w.obj), purpose: "PATRQT",
			method: post, path: "/Consent", body: scConsentOf(w.martin.id, "patient-privacy", "OPTOUT", map[string]any{"type": "deny"}),
			status: 403, reason: "not-own-record"},
		{name: "patient updates another patient's consent", actor: "patient", tune: self(w.obj), purpose: "PATRQT",
			method: put, path: "/Consent/" + w.consOptin, body: scWithStatus(w.consOptinBody, "inactive"),
			status: 403, reason: "not-own-record"},

		// --- Consent changes: the very next request sees them.
		{name: "opt-in active: gp reads the opted-in observation", actor: "gp", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oOptin, status: 200, ids: scRefs("Observation", w.oOptin)},
		{name: "opt-in withdrawn: the very next gp read is denied", actor: "gp", purpose: "TREAT",
			before: func(t *testing.T) {
				r := w.call(t, w.h.token("patient", scSelfPatient(w.optin.id)), "PATRQT", put, "/Consent/"+w.consOptin, scWithStatus(w.consOptinBody, "inactive"))
				if r.status != http.StatusOK {
					t.Fatalf("patient withdraws the opt-in: %d %s", r.status, r.raw)
				}
			},
			method: get, path: "/Observation/" + w.oOptin, status: 403, reason: "outside-care-team-no-consent"},
		{name: "opt-in withdrawn: gp Patient count drops", actor: "gp", purpose: "TREAT",
			method: get, path: "/Patient?_summary=count", status: 200, total: scN(2), ids: []string{}},
		{name: "objection restricted to PSY: PSY data denied", actor: "hospital-clinician", purpose: "TREAT",
			before: w.objects(w.psy, map[string]any{"type": "deny",
				"actor":         []any{scActor("IRCP", scIdentifierRef(auth.DevHospital))},
				"purpose":       []any{scCoding(scSysActReason, "TREAT")},
				"securityLabel": []any{scLabelPSY}}),
			method: get, path: "/Condition/" + w.cPsy, status: 403, reason: "patient-objection"},
		// Once a bug, now a regression check: the server drops Consent.provision.securityLabel when it
		// flattens provisions (authz.go consentSummary, provisionIn has no
		// security_labels), so an objection limited to PSY data (brief
		// §4.2 pattern 2 "optionally restricted by securityLabel") becomes
		// an objection to everything. Expected 200 (unlabelled data stays
		// shared inside the équipe de soins), was 403 patient-objection.
		// The same loss widens permits restricted by label.
		{name: "objection restricted to PSY: unlabelled data still shared", actor: "hospital-clinician", purpose: "TREAT",
			method: get, path: "/Observation/" + w.oPsyPlain, status: 200, ids: scRefs("Observation", w.oPsyPlain)},
		// Once a bug, now a regression check: a consent period written as FHIR dates (YYYY-MM-DD, valid
		// for Period.start/end and documented in policies/README.md:
		// "Dates are RFC 3339 or YYYY-MM-DD") makes every decision about
		// the patient fail: server/policy evaluates with
		// StrictBuiltinErrors(true), so time.parse_rfc3339_ns("2026-01-01")
		// in consent.rego start_ns/end_ns raises an error instead of being
		// undefined and falling through to the date-only branch (the Rego
		// tests run non-strict and pass). Expected 200 (an active opt-in
		// for the practice), was 403 "the policy could not be
		// evaluated". Every decision that reads such a period fails the
		// same way (a date-only deny provision too); the next row, whose
		// cell ignores consents, is the control.
		{name: "date-only consent period: gp reads with a renewed opt-in", actor: "gp", purpose: "TREAT",
			before: func(t *testing.T) {
				r := w.call(t, w.h.token("patient", scSelfPatient(w.optin.id)), "PATRQT", post, "/Consent",
					scConsentOf(w.optin.id, "patient-privacy", "OPTIN", map[string]any{
						"type":    "permit",
						"period":  map[string]any{"start": "2020-01-01", "end": "2099-12-31"},
						"actor":   []any{scActor("PRCP", scIdentifierRef(auth.DevPractice))},
						"purpose": []any{scCoding(scSysActReason, "TREAT")},
						"class":   scClasses("Patient", "Observation"),
					}))
				if r.status != http.StatusCreated {
					t.Fatalf("patient renews the opt-in: %d %s", r.status, r.raw)
				}
			},
			method: get, path: "/Observation/" + w.oOptin, status: 200, ids: scRefs("Observation", w.oOptin)},
		{name: "date-only consent period: the patient still reads their own record", actor: "patient", tune: self(w.optin), purpose: "PATRQT",
			method: get, path: "/Patient/" + w.optin.id, status: 200, ids: scRefs("Patient", w.optin.id)},
		// Once a bug, now a regression check: an objection naming the CareTeam (brief §4.2 pattern 2
		// "actor = CareTeam or organisation") does not bind its members:
		// the policy matches provision actors against subject.care_teams,
		// which the server fills from the token only (authz.go decide),
		// although patientContext knows from the CareTeam index that the
		// caller is a member. Expected 403 patient-objection, was 200.
		{name: "objection naming the CareTeam binds its members", actor: "gp", purpose: "TREAT",
			before: w.objects(w.team, map[string]any{"type": "deny",
				"actor":   []any{scActor("IRCP", map[string]any{"reference": "CareTeam/" + w.ctTeam})},
				"purpose": []any{scCoding(scSysActReason, "TREAT")}}),
			method: get, path: "/Observation/" + w.oTeam, status: 403, reason: "patient-objection", absent: []string{"INR"}},
		// Once a bug, now a regression check: an objection naming the hospital by a literal reference to
		// its Organization resource (the usual FHIR Reference) does not
		// bind the hospital: consentSummary passes "Organization/<id>"
		// verbatim while the policy compares actors with the caller's
		// "system|value" identifier. Expected 403 patient-objection,
		// was 200.
		{name: "objection naming the Organization resource binds its staff", actor: "hospital-clinician", purpose: "TREAT",
			before: w.objects(w.ref, map[string]any{"type": "deny",
				"actor":   []any{scActor("IRCP", map[string]any{"reference": "Organization/" + w.orgHosp})},
				"purpose": []any{scCoding(scSysActReason, "TREAT")}}),
			method: get, path: "/Observation/" + w.oRef, status: 403, reason: "patient-objection", absent: []string{"TSH"}},
	}
}

// reviewTasks counts the break-the-glass review Tasks of a user and a
// patient (one per window).
func (w *scenarioWorld) reviewTasks(sub string, p scPerson) int {
	n := 0
	if err := w.h.s.db.View(func(tx *store.Tx) error {
		n = len(tx.Lookup("Task", "identifier", breakGlassSystem+"|"+sub+"|Patient/"+p.id))
		return nil
	}); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// objects records, as the patient, an OPTOUT consent with that provision.
func (w *scenarioWorld) objects(p scPerson, provision map[string]any) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		r := w.call(t, w.h.token("patient", scSelfPatient(p.id)), "PATRQT", http.MethodPost, "/Consent", scConsentOf(p.id, "patient-privacy", "OPTOUT", provision))
		if r.status != http.StatusCreated {
			t.Fatalf("patient %s records an objection: %d %s", p.family, r.status, r.raw)
		}
	}
}

func scWithID(res map[string]any, id string) map[string]any {
	res["id"] = id
	return res
}

func scWithStatus(res map[string]any, status string) map[string]any {
	out := map[string]any{}
	for k, v := range res {
		out[k] = v
	}
	out["status"] = status
	return out
}

// scEverythingUnsupported skips while GET [base]/Patient/{id}/$everything is
// not a route of the server (the search issue adds it).
func scEverythingUnsupported(pid string) func(c scCall) {
	return func(c scCall) {
		c.t.Helper()
		r := c.do(http.MethodGet, "/Patient/"+pid+"/$everything", nil)
		if r.status != http.StatusOK && str(r.body, "resourceType") == "OperationOutcome" {
			c.t.Skipf("$everything not implemented yet: search issue (%d %s)", r.status, fmt.Sprint(str(r.body, "issue", 0, "diagnostics")))
		}
	}
}
