package pathway

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parcours-sante/parcours/mappings/vocab"
)

// Extension URLs this package reads besides vocab.StageExtensionURL. They
// are the mappers' (mappings/hospital, mappings/liability), restated here
// because this package may not import them; a test checks they agree.
const (
	DiagnosisTypeExtensionURL = vocab.ExtensionBase + "pmsi-diagnosis-type"
	IndemnityExtensionURL     = vocab.ExtensionBase + "indemnity"
)

// sourcePrefix starts the meta.source the hub stamps on every write:
// urn:parcours:<actor_type>:<org system|value>.
const sourcePrefix = "urn:parcours:"

// Coding is one code of a code system.
type Coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

// Patient is one patient's record as the rules see it.
type Patient struct {
	// Ref is "Patient/<id>" ("" when the Patient resource has no id).
	Ref string
	// BirthDate is zero when unknown. Gender is the FHIR administrative
	// gender (male, female, other, unknown) or "".
	BirthDate time.Time
	Gender    string
	// Deceased is true when the patient is known to have died; DeceasedDate
	// is the date of death when known (see the package documentation for
	// where it comes from).
	Deceased     bool
	DeceasedDate time.Time
	// Department is the French département of the first postal code: two
	// characters, three for overseas (97x, 98x), 2A or 2B for Corsica.
	Department string
	// Facts are the patient's clinical and financial facts, sorted by Start
	// (undated facts first), then type and reference.
	Facts []Fact
}

// Fact is one clinical or financial resource reduced to what rules and
// pathways need.
type Fact struct {
	// Ref is "<Type>/<id>"; Type the resource type.
	Ref, Type string
	// Start is the date the fact happened (admission for a stay) and End its
	// end (discharge; Start + daysSupply for a dispensation; Start for a
	// point in time); End is zero for an interval without end (an ongoing
	// stay, an active Condition). Both are calendar days at 00:00 UTC.
	Start, End time.Time
	// Codes are all codings of the resource's main code-ish elements.
	Codes []Coding
	// Stage is the pathway-stage code and StageTop its top-level stage.
	Stage, StageTop string
	// Status is the resource's status element.
	Status string
	// SourceActor and SourceOrg come from meta.source.
	SourceActor, SourceOrg string
	// Class is the Encounter class code (IMP, AMB, VR, HH, EMER…).
	Class string
	// ServiceType holds the Encounter.serviceType codings (PMSI field).
	ServiceType []Coding
	// AdmitSource and Discharge hold the Encounter.hospitalization
	// admitSource and dischargeDisposition codings.
	AdmitSource, Discharge []Coding
	// DiagnosisRole is a Condition's PMSI role (DP, DR, DAS, DAD).
	DiagnosisRole string
	// Encounter is the reference of the Encounter the fact belongs to.
	Encounter string
	// Diagnoses are, on an Encounter, the Conditions of that encounter.
	Diagnoses []Diagnosis
	// Specialties are the specialty codings of the performers.
	Specialties []Coding
	// Interpretation holds an Observation's interpretation codings.
	Interpretation []Coding
	// Establishment is the FINESS of the establishment (or the
	// Organization reference when it has no FINESS identifier).
	Establishment string
	// DaysSupply is a dispensation's days of supply (0 when unknown).
	DaysSupply int
	// Costs are the amounts the resource carries (indemnities, claim
	// totals), if any.
	Costs []Amount
}

// Diagnosis is one Condition of an Encounter.
type Diagnosis struct {
	Condition string
	Role      string
	Codes     []Coding
}

// Amount is a money amount a fact carries.
type Amount struct {
	// Kind names the amount: indemnity-reserve, indemnity-paid,
	// total:<category code>, payment.
	Kind     string
	Value    float64
	Currency string
}

// factTypes are the resource types that become facts.
var factTypes = map[string]bool{
	"Encounter": true, "Condition": true, "Procedure": true, "Observation": true,
	"DiagnosticReport": true, "MedicationDispense": true, "MedicationRequest": true,
	"MedicationAdministration": true, "MedicationStatement": true, "Immunization": true,
	"ServiceRequest": true, "CarePlan": true, "AdverseEvent": true,
	"ExplanationOfBenefit": true, "Claim": true,
}

// FactTypes lists, sorted, the resource types that become facts: with the
// Patient and the context types their references name, all Facts reads
// of a record.
func FactTypes() []string {
	out := make([]string, 0, len(factTypes))
	for t := range factTypes {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Facts reduces one patient's resources (decoded JSON: the Patient, the
// resources of its compartment and, so that specialties and establishments
// resolve, the Practitioner, PractitionerRole, Organization and Location
// resources they reference) to a Patient. It never fails: what is missing
// or malformed is left empty.
func Facts(resources []map[string]any) Patient {
	x := newIndex(resources)
	var p Patient
	if x.patient != nil {
		p = patientOf(x.patient)
	}
	encounters := map[string]int{} // Encounter ref → index in p.Facts
	for i, r := range resources {
		typ := str(r, "resourceType")
		if !factTypes[typ] {
			continue
		}
		if str(r, "status") == "entered-in-error" {
			continue
		}
		f := x.fact(typ, r, i)
		if typ == "Encounter" {
			encounters[f.Ref] = len(p.Facts)
		}
		p.Facts = append(p.Facts, f)
	}
	x.link(&p, encounters)
	deathFromStays(&p)
	slices.SortStableFunc(p.Facts, func(a, b Fact) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return cmp.Compare(a.Ref, b.Ref)
	})
	return p
}

// index holds the resources by reference.
type index struct {
	byRef   map[string]map[string]any
	patient map[string]any
	// rolesOf lists the PractitionerRoles of a Practitioner reference.
	rolesOf map[string][]map[string]any
	// listedBy is the first Encounter whose diagnosis lists a Condition,
	// and listedRole the role it gives (use, or DP for rank 1).
	listedBy, listedRole map[string]string
}

func newIndex(resources []map[string]any) *index {
	x := &index{
		byRef: map[string]map[string]any{}, rolesOf: map[string][]map[string]any{},
		listedBy: map[string]string{}, listedRole: map[string]string{},
	}
	for i, r := range resources {
		if r == nil {
			continue
		}
		typ := str(r, "resourceType")
		if typ == "" {
			continue
		}
		x.byRef[refOf(typ, r, i)] = r
		if typ == "Patient" && x.patient == nil {
			x.patient = r
		}
	}
	for i, r := range resources {
		switch str(r, "resourceType") {
		case "PractitionerRole":
			if k := refKey(str(obj(r, "practitioner"), "reference")); k != "" {
				x.rolesOf[k] = append(x.rolesOf[k], r)
			}
		case "Encounter":
			enc := refOf("Encounter", r, i)
			for _, d := range arr(r, "diagnosis") {
				dm, _ := d.(map[string]any)
				c := refKey(str(obj(dm, "condition"), "reference"))
				if c == "" {
					continue
				}
				if _, seen := x.listedBy[c]; seen {
					continue
				}
				x.listedBy[c] = enc
				if role := pmsiRole(dm["use"]); role != "" {
					x.listedRole[c] = role
				} else if rank, ok := number(dm["rank"]); ok && rank == 1 {
					x.listedRole[c] = "DP"
				}
			}
		}
	}
	return x
}

// refOf is a resource's reference: Type/id, or Type/#<position> without id.
func refOf(typ string, r map[string]any, pos int) string {
	if id := str(r, "id"); id != "" {
		return typ + "/" + id
	}
	return typ + "/#" + strconv.Itoa(pos)
}

// refKey normalises a reference to Type/id: absolute URLs and _history
// suffixes are dropped; urn:uuid references are kept whole; contained
// (#id) references give "".
func refKey(ref string) string {
	if ref == "" || ref[0] == '#' {
		return ""
	}
	if strings.HasPrefix(ref, "urn:") {
		return ref
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return ""
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if typ == "" || id == "" || typ[0] < 'A' || typ[0] > 'Z' {
		return ""
	}
	return typ + "/" + id
}

func patientOf(r map[string]any) Patient {
	p := Patient{Gender: str(r, "gender"), BirthDate: parseDate(str(r, "birthDate"))}
	if id := str(r, "id"); id != "" {
		p.Ref = "Patient/" + id
	}
	if d := str(r, "deceasedDateTime"); d != "" {
		p.DeceasedDate = parseDate(d)
		p.Deceased = true
	}
	if b, ok := r["deceasedBoolean"].(bool); ok && b {
		p.Deceased = true
	}
	var home, first string
	for _, a := range arr(r, "address") {
		am, _ := a.(map[string]any)
		pc := strings.TrimSpace(str(am, "postalCode"))
		if pc == "" {
			continue
		}
		if first == "" {
			first = pc
		}
		if home == "" && str(am, "use") == "home" {
			home = pc
		}
	}
	if home != "" {
		first = home
	}
	p.Department = department(first)
	return p
}

// department is the département of a French postal code.
func department(pc string) string {
	if len(pc) < 2 {
		return ""
	}
	for i := 0; i < len(pc) && i < 5; i++ {
		if pc[i] < '0' || pc[i] > '9' {
			return ""
		}
	}
	switch {
	case (pc[:2] == "97" || pc[:2] == "98") && len(pc) >= 3:
		return pc[:3]
	case pc[:2] == "20" && len(pc) >= 3:
		// Corse-du-Sud uses 200xx–201xx, Haute-Corse 202xx–206xx.
		if pc[2] <= '1' {
			return "2A"
		}
		return "2B"
	}
	return pc[:2]
}

// fact builds the fact of one resource.
func (x *index) fact(typ string, r map[string]any, pos int) Fact {
	f := Fact{Ref: refOf(typ, r, pos), Type: typ, Status: str(r, "status")}
	f.Stage = stageOf(r)
	f.StageTop = stageTop(f.Stage)
	if src := str(obj(r, "meta"), "source"); strings.HasPrefix(src, sourcePrefix) {
		rest := src[len(sourcePrefix):]
		if i := strings.IndexByte(rest, ':'); i >= 0 {
			f.SourceActor, f.SourceOrg = rest[:i], rest[i+1:]
		} else {
			f.SourceActor = rest
		}
	}
	f.Encounter = refKey(str(obj(r, "encounter"), "reference"))
	if f.Encounter == "" {
		f.Encounter = refKey(str(obj(r, "context"), "reference"))
	}
	switch typ {
	case "Encounter":
		f.Start, f.End = period(obj(r, "period"))
		f.Class = classCode(r["class"])
		f.Codes = append(f.Codes, codingsOf(r["type"])...)
		f.ServiceType = codingsOf(r["serviceType"])
		f.Codes = append(f.Codes, f.ServiceType...)
		if c, ok := r["class"].(map[string]any); ok {
			f.Codes = append(f.Codes, codingsOf(c)...)
		}
		h := obj(r, "hospitalization")
		f.AdmitSource = codingsOf(h["admitSource"])
		f.Discharge = codingsOf(h["dischargeDisposition"])
		for _, p := range arr(r, "participant") {
			pm, _ := p.(map[string]any)
			f.Specialties = append(f.Specialties, x.specialties(obj(pm, "individual"))...)
		}
		f.Establishment = x.establishment(obj(r, "serviceProvider"))
	case "Condition":
		f.Codes = codingsOf(r["code"])
		if f.Encounter == "" {
			f.Encounter = x.listedBy[f.Ref]
		}
		f.Start = firstDate(r, "onsetDateTime", "onsetPeriod")
		f.End = firstDate(r, "abatementDateTime", "abatementPeriod")
		if f.Start.IsZero() {
			if enc := x.byRef[f.Encounter]; enc != nil {
				f.Start, _ = period(obj(enc, "period"))
			}
		}
		if f.Start.IsZero() {
			f.Start = parseDate(str(r, "recordedDate"))
		}
		f.DiagnosisRole = diagnosisRole(r)
		if f.DiagnosisRole == "" {
			f.DiagnosisRole = x.listedRole[f.Ref]
		}
	case "Procedure":
		f.Codes = codingsOf(r["code"])
		f.Start, f.End = dates(r, "performedDateTime", "performedPeriod")
		f.Specialties = x.performers(arr(r, "performer"))
	case "Observation":
		f.Codes = codingsOf(r["code"])
		f.Start, f.End = dates(r, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
		f.Interpretation = codingsOf(r["interpretation"])
		f.Specialties = x.performers(arr(r, "performer"))
	case "DiagnosticReport":
		f.Codes = codingsOf(r["code"])
		f.Start, f.End = dates(r, "effectiveDateTime", "effectivePeriod", "issued")
		f.Specialties = x.performers(arr(r, "performer"))
	case "MedicationDispense":
		f.Codes = codingsOf(r["medicationCodeableConcept"])
		f.Start = firstDate(r, "whenHandedOver", "whenPrepared")
		f.End = f.Start
		f.DaysSupply = daysSupply(obj(r, "daysSupply"))
		f.Specialties = x.performers(arr(r, "performer"))
	case "MedicationRequest":
		f.Codes = codingsOf(r["medicationCodeableConcept"])
		f.Start = parseDate(str(r, "authoredOn"))
		f.End = f.Start
		f.Specialties = x.specialties(obj(r, "requester"))
	case "MedicationAdministration", "MedicationStatement":
		f.Codes = codingsOf(r["medicationCodeableConcept"])
		f.Start, f.End = dates(r, "effectiveDateTime", "effectivePeriod", "dateAsserted")
	case "Immunization":
		f.Codes = codingsOf(r["vaccineCode"])
		f.Start = firstDate(r, "occurrenceDateTime", "recorded")
		f.End = f.Start
		f.Specialties = x.performers(arr(r, "performer"))
	case "ServiceRequest":
		f.Codes = codingsOf(r["code"])
		f.Start, f.End = dates(r, "authoredOn", "occurrenceDateTime", "occurrencePeriod")
		f.Specialties = append(x.specialties(obj(r, "requester")), x.performers(arr(r, "performer"))...)
	case "CarePlan":
		f.Codes = codingsOf(r["category"])
		for _, a := range arr(r, "activity") {
			am, _ := a.(map[string]any)
			f.Codes = append(f.Codes, codingsOf(obj(am, "detail")["code"])...)
		}
		f.Start, f.End = period(obj(r, "period"))
		if f.Start.IsZero() {
			f.Start = parseDate(str(r, "created"))
		}
	case "AdverseEvent":
		f.Codes = append(codingsOf(r["event"]), codingsOf(r["category"])...)
		f.Start = firstDate(r, "date", "detected", "recordedDate")
		f.End = f.Start
		f.Establishment = x.adverseEventEstablishment(r)
		f.Costs = indemnity(r)
	case "ExplanationOfBenefit", "Claim":
		f.Codes = codingsOf(r["type"])
		for _, it := range arr(r, "item") {
			im, _ := it.(map[string]any)
			f.Codes = append(f.Codes, codingsOf(im["productOrService"])...)
		}
		f.Start, f.End = period(obj(r, "billablePeriod"))
		if f.Start.IsZero() {
			f.Start = parseDate(str(r, "created"))
		}
		f.Establishment = x.establishment(obj(r, "provider"))
		f.Costs = claimCosts(r)
	}
	if f.End.Before(f.Start) {
		f.End = time.Time{}
	}
	if f.Type == "MedicationDispense" && f.DaysSupply > 0 && !f.Start.IsZero() {
		f.End = f.Start.AddDate(0, 0, f.DaysSupply)
	}
	return f
}

// link fills what needs other facts: the Conditions of each Encounter and
// the establishment a fact inherits from its Encounter.
func (x *index) link(p *Patient, encounters map[string]int) {
	for i := range p.Facts {
		f := &p.Facts[i]
		j, ok := encounters[f.Encounter]
		if !ok {
			continue
		}
		enc := &p.Facts[j]
		if f.Establishment == "" {
			f.Establishment = enc.Establishment
		}
		if f.Type == "Condition" {
			enc.Diagnoses = append(enc.Diagnoses, Diagnosis{Condition: f.Ref, Role: f.DiagnosisRole, Codes: f.Codes})
		}
	}
}

// deathFromStays takes the end of a stay discharged by death (PMSI mode 9
// or HL7 exp) as the date of death when the Patient gives none.
func deathFromStays(p *Patient) {
	if !p.DeceasedDate.IsZero() {
		return
	}
	for _, f := range p.Facts {
		if f.Type != "Encounter" || f.End.IsZero() {
			continue
		}
		for _, c := range f.Discharge {
			if (c.System == vocab.PMSIModeSystem && c.Code == "9") || (c.System == vocab.SystemDischargeDisp && c.Code == "exp") {
				p.Deceased = true
				if p.DeceasedDate.IsZero() || f.End.Before(p.DeceasedDate) {
					p.DeceasedDate = f.End
				}
			}
		}
	}
}

// specialties resolves a reference to a PractitionerRole (its specialty)
// or a Practitioner (its qualifications and the specialties of its roles).
func (x *index) specialties(ref map[string]any) []Coding {
	k := refKey(str(ref, "reference"))
	r := x.byRef[k]
	if r == nil {
		return nil
	}
	switch str(r, "resourceType") {
	case "PractitionerRole":
		return codingsOf(r["specialty"])
	case "Practitioner":
		var out []Coding
		for _, q := range arr(r, "qualification") {
			qm, _ := q.(map[string]any)
			out = append(out, codingsOf(qm["code"])...)
		}
		for _, role := range x.rolesOf[k] {
			out = append(out, codingsOf(role["specialty"])...)
		}
		return out
	}
	return nil
}

// performers resolves performer[] (Reference, or {actor: Reference}).
func (x *index) performers(list []any) []Coding {
	var out []Coding
	for _, p := range list {
		pm, _ := p.(map[string]any)
		if a := obj(pm, "actor"); a != nil {
			pm = a
		}
		out = append(out, x.specialties(pm)...)
	}
	return out
}

// establishment is the FINESS of an Organization reference (resolved in
// the list, or a logical identifier reference), else the reference.
func (x *index) establishment(ref map[string]any) string {
	if ref == nil {
		return ""
	}
	if id := obj(ref, "identifier"); str(id, "system") == vocab.SidFINESS && str(id, "value") != "" {
		return str(id, "value")
	}
	k := refKey(str(ref, "reference"))
	if r := x.byRef[k]; r != nil {
		for _, id := range arr(r, "identifier") {
			im, _ := id.(map[string]any)
			if str(im, "system") == vocab.SidFINESS && str(im, "value") != "" {
				return str(im, "value")
			}
		}
	}
	return k
}

// adverseEventEstablishment follows AdverseEvent.location (contained or
// not) to the Location's managingOrganization.
func (x *index) adverseEventEstablishment(r map[string]any) string {
	ref := str(obj(r, "location"), "reference")
	var loc map[string]any
	if strings.HasPrefix(ref, "#") {
		for _, c := range arr(r, "contained") {
			cm, _ := c.(map[string]any)
			if str(cm, "id") == ref[1:] {
				loc = cm
			}
		}
	} else {
		loc = x.byRef[refKey(ref)]
	}
	return x.establishment(obj(loc, "managingOrganization"))
}

func diagnosisRole(r map[string]any) string {
	for _, e := range arr(r, "extension") {
		em, _ := e.(map[string]any)
		if str(em, "url") == DiagnosisTypeExtensionURL {
			return str(obj(em, "valueCoding"), "code")
		}
	}
	return ""
}

// pmsiRole reads a PMSI diagnosis role from Encounter.diagnosis.use.
func pmsiRole(use any) string {
	for _, c := range codingsOf(use) {
		if c.System == vocab.PMSIDiagnosisSystem {
			return c.Code
		}
	}
	return ""
}

func stageOf(r map[string]any) string {
	for _, e := range arr(r, "extension") {
		em, _ := e.(map[string]any)
		if str(em, "url") == vocab.StageExtensionURL {
			return str(obj(em, "valueCoding"), "code")
		}
	}
	return ""
}

var stageTops sync.Map // stage code → top-level stage

func stageTop(code string) string {
	if code == "" {
		return ""
	}
	if v, ok := stageTops.Load(code); ok {
		return v.(string)
	}
	top := ""
	if st, ok := vocab.StageOf(code); ok {
		top = st.Top
	}
	stageTops.Store(code, top)
	return top
}

func indemnity(r map[string]any) []Amount {
	var out []Amount
	for _, e := range arr(r, "extension") {
		em, _ := e.(map[string]any)
		if str(em, "url") != IndemnityExtensionURL {
			continue
		}
		for _, sub := range arr(em, "extension") {
			sm, _ := sub.(map[string]any)
			if a, ok := money(obj(sm, "valueMoney")); ok {
				a.Kind = "indemnity-" + str(sm, "url")
				out = append(out, a)
			}
		}
	}
	return out
}

func claimCosts(r map[string]any) []Amount {
	var out []Amount
	switch t := r["total"].(type) {
	case map[string]any: // Claim.total is Money
		if a, ok := money(t); ok {
			a.Kind = "total"
			out = append(out, a)
		}
	case []any: // ExplanationOfBenefit.total[]
		for _, it := range t {
			im, _ := it.(map[string]any)
			if a, ok := money(obj(im, "amount")); ok {
				cat := codingsOf(im["category"])
				a.Kind = "total"
				if len(cat) > 0 {
					a.Kind += ":" + cat[0].Code
				}
				out = append(out, a)
			}
		}
	}
	if a, ok := money(obj(obj(r, "payment"), "amount")); ok {
		a.Kind = "payment"
		out = append(out, a)
	}
	return out
}

func money(m map[string]any) (Amount, bool) {
	v, ok := number(m["value"])
	if !ok {
		return Amount{}, false
	}
	return Amount{Value: v, Currency: str(m, "currency")}, true
}

func daysSupply(q map[string]any) int {
	v, ok := number(q["value"])
	if !ok || v <= 0 || v > 100000 {
		return 0
	}
	unit := str(q, "code")
	if unit == "" {
		unit = str(q, "unit")
	}
	switch strings.ToLower(unit) {
	case "wk", "week", "weeks":
		v *= 7
	case "mo", "month", "months":
		v *= 30
	}
	return int(v)
}

// classCode reads Encounter.class: a Coding in R4, a CodeableConcept in
// later versions.
func classCode(v any) string {
	cs := codingsOf(v)
	if len(cs) == 0 {
		return ""
	}
	return cs[0].Code
}

// codingsOf collects the codings of a CodeableConcept, a Coding, or a list
// of either.
func codingsOf(v any) []Coding {
	switch t := v.(type) {
	case []any:
		var out []Coding
		for _, e := range t {
			out = append(out, codingsOf(e)...)
		}
		return out
	case map[string]any:
		if cs, ok := t["coding"].([]any); ok {
			var out []Coding
			for _, c := range cs {
				cm, _ := c.(map[string]any)
				if code := str(cm, "code"); code != "" {
					out = append(out, Coding{System: str(cm, "system"), Code: code})
				}
			}
			return out
		}
		if code := str(t, "code"); code != "" {
			return []Coding{{System: str(t, "system"), Code: code}}
		}
	}
	return nil
}

// dates reads the first present of several date or Period elements.
func dates(r map[string]any, names ...string) (start, end time.Time) {
	for _, n := range names {
		switch v := r[n].(type) {
		case string:
			if d := parseDate(v); !d.IsZero() {
				return d, d
			}
		case map[string]any:
			if s, e := period(v); !s.IsZero() {
				return s, e
			}
		}
	}
	return time.Time{}, time.Time{}
}

func firstDate(r map[string]any, names ...string) time.Time {
	s, _ := dates(r, names...)
	return s
}

func period(p map[string]any) (start, end time.Time) {
	start = parseDate(str(p, "start"))
	end = parseDate(str(p, "end"))
	if start.IsZero() {
		start = end
	}
	return start, end
}

// parseDate reads the calendar day of a FHIR date, dateTime or instant as
// written (the time and zone are dropped). Partial dates take the first
// day of the year or month. Anything else is the zero time.
func parseDate(s string) time.Time {
	if len(s) < 4 {
		return time.Time{}
	}
	num := func(a string) int {
		n := 0
		for i := 0; i < len(a); i++ {
			if a[i] < '0' || a[i] > '9' {
				return -1
			}
			n = n*10 + int(a[i]-'0')
		}
		return n
	}
	y, m, d := num(s[:4]), 1, 1
	if len(s) >= 7 {
		if s[4] != '-' {
			return time.Time{}
		}
		m = num(s[5:7])
	}
	if len(s) >= 10 {
		if s[7] != '-' {
			return time.Time{}
		}
		d = num(s[8:10])
	}
	if len(s) > 4 && len(s) < 7 || len(s) > 7 && len(s) < 10 || len(s) > 10 && s[10] != 'T' {
		return time.Time{}
	}
	if y < 1 || m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // 31 February
		return time.Time{}
	}
	return t
}

// Day is the calendar day of t (in t's location) at 00:00 UTC, the form of
// every date of this package.
func Day(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// number reads a JSON number decoded as float64 or json.Number, or a Go
// integer or float when the resources were built in Go.
func number(v any) (float64, bool) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case json.Number:
		x, err := n.Float64()
		if err != nil {
			return 0, false
		}
		f = x
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func arr(m map[string]any, k string) []any {
	a, _ := m[k].([]any)
	return a
}
