package vocab

// Context is what is known around a fact when its stage is resolved: the
// dependsOn conditions of the ConceptMaps are evaluated against it.
type Context struct {
	// Setting is where the fact happened: SettingHospital, SettingCity,
	// SettingPrevention or SettingLiability.
	Setting string
	// Kind is the kind of fact in its source: a city-activity kind, a
	// prevention event type or a PMSI field (MCO, SMR, HAD, PSY).
	Kind string
	// PriorConditions are the diagnoses known for the patient (CIM-10), e.g.
	// the diagnoses of the same stay and of earlier stays.
	PriorConditions []Coding
	// RecentResults are the abnormal or positive results of the patient in
	// the RecentResultWindow before the fact (LOINC).
	RecentResults []Coding
	// Medications are the drugs dispensed to the patient before the fact (ATC).
	Medications []Coding
}

func (c Context) props() props {
	p := props{
		PropHasCondition:  c.PriorConditions,
		PropHasResult:     c.RecentResults,
		PropHasMedication: c.Medications,
	}
	if c.Setting != "" {
		p[PropSetting] = []Coding{{Code: c.Setting}}
	}
	if c.Kind != "" {
		p[PropKind] = []Coding{{Code: c.Kind}}
	}
	return p
}

// AbnormalInterpretation reports whether a v3 ObservationInterpretation
// code marks an abnormal or positive result: the results that count in
// Context.RecentResults, from a native row or a stored Observation alike.
func AbnormalInterpretation(code string) bool { return abnormalInterpretations[code] }

var abnormalInterpretations = map[string]bool{
	"H": true, "L": true, "A": true, "HH": true, "LL": true, "AA": true, "HU": true, "LU": true,
	"POS": true, "DET": true,
}

// StageCoding is a resolved pathway stage.
type StageCoding struct {
	Code, Display string
	// Top is the top-level stage (prevention, diagnostic, traitement, suivi)
	// and Order its position (1–4).
	Top   string
	Order int
	// ConceptMap is the canonical|version of the map that decided, and
	// Equivalence the equivalence of the target it used.
	ConceptMap  string
	Equivalence string
}

// Coding is the stage as a FHIR Coding.
func (s StageCoding) Coding() map[string]any {
	return Coding{System: StageSystem, Code: s.Code, Display: s.Display}.Map()
}

// Extension is the pathway-stage extension carrying the stage.
func (s StageCoding) Extension() map[string]any {
	return map[string]any{"url": StageExtensionURL, "valueCoding": s.Coding()}
}

// StageOf describes a stage code of parcours-stage.
func StageOf(code string) (StageCoding, bool) {
	for _, top := range stageDef().concepts {
		order := 0
		for _, p := range top.props {
			if p.code == "order" {
				order = p.value.(int)
			}
		}
		if top.code == code {
			return StageCoding{Code: code, Display: top.display, Top: top.code, Order: order}, true
		}
		for _, ch := range top.children {
			if ch.code == code {
				return StageCoding{Code: code, Display: ch.display, Top: top.code, Order: order}, true
			}
		}
	}
	return StageCoding{}, false
}

// Stage resolves the pathway stage of one source code in a context through
// the ConceptMaps whose target is parcours-stage. NABM codes go through
// nabm-to-loinc first. It reports false when no map has an element for the
// code (Resolve then tries the next candidate, usually the activity kind).
func Stage(system, code string, ctx Context) (StageCoding, bool) {
	if system == SystemNABM {
		l, ok := NABMToLOINC(code)
		if !ok {
			return StageCoding{}, false
		}
		system, code = l.System, l.Code
	}
	p := ctx.props()
	for _, sm := range built().stageMaps {
		if sm.source != system {
			continue
		}
		for _, m := range sm.cm.translate(system, code, p) {
			if m.fromDefault || m.concept.Code == "" {
				continue
			}
			st, ok := StageOf(m.concept.Code)
			if !ok {
				continue
			}
			st.ConceptMap = sm.cm.url + "|" + sm.cm.version
			st.Equivalence = m.equivalence
			return st, true
		}
	}
	return StageCoding{}, false
}

// Resolve returns the stage of the first candidate code that has one: the
// mappers pass the fact's codes first and its activity kind (or prevention
// event type) last, so that every fact gets a stage.
func Resolve(ctx Context, candidates ...Coding) (StageCoding, bool) {
	for _, c := range candidates {
		if c.Code == "" {
			continue
		}
		if st, ok := Stage(c.System, c.Code, ctx); ok {
			return st, true
		}
	}
	return StageCoding{}, false
}

// NABMToLOINC translates an NABM lab act to its LOINC code (nabm-to-loinc).
func NABMToLOINC(code string) (Coding, bool) {
	cm := built().maps[ConceptMapBase+"nabm-to-loinc"]
	for _, m := range cm.translate(SystemNABM, code, nil) {
		if m.concept.Code != "" && (m.equivalence == "equivalent" || m.equivalence == "equal") {
			return m.concept, true
		}
	}
	return Coding{}, false
}

// Concept is a code of a hub CodeSystem.
type Concept struct {
	System, Code, Display, Definition string
	// Properties holds the concept's property values: string (string, code),
	// int (integer) or Coding. A property given more than once (the
	// measures of rupture-parcours) holds its first value here; the
	// CodeSystem resource lists them all.
	Properties map[string]any
}

// Coding is the concept as a Coding.
func (c Concept) Coding() Coding { return Coding{System: c.System, Code: c.Code, Display: c.Display} }

// Lookup finds a code of a hub CodeSystem (the systems of this package).
func Lookup(system, code string) (Concept, bool) {
	d := built().concepts[system][code]
	if d == nil {
		return Concept{}, false
	}
	c := Concept{System: system, Code: code, Display: d.display, Definition: d.definition, Properties: map[string]any{}}
	for _, p := range d.props {
		if _, dup := c.Properties[p.code]; !dup {
			c.Properties[p.code] = p.value
		}
	}
	return c, true
}

// Programme is a prevention programme the hub knows.
type Programme struct {
	Code, Display string
	// Sponsor and Operator are identifiers (system and value) of the
	// sponsoring mutual and of the programme operator.
	SponsorSystem, SponsorValue   string
	OperatorSystem, OperatorValue string
	PathwayType                   Coding
}

// ProgrammeOf looks a programme up in the prevention-programme CodeSystem.
func ProgrammeOf(code string) (Programme, bool) {
	c, ok := Lookup(ProgrammeSystem, code)
	if !ok {
		return Programme{}, false
	}
	p := Programme{Code: code, Display: c.Display}
	p.SponsorSystem, p.SponsorValue = splitIdentifier(c.Properties["sponsor"])
	p.OperatorSystem, p.OperatorValue = splitIdentifier(c.Properties["operator"])
	p.PathwayType, _ = c.Properties["pathway-type"].(Coding)
	return p, true
}

func splitIdentifier(v any) (system, value string) {
	s, _ := v.(string)
	for i := 0; i < len(s); i++ {
		if s[i] == '|' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

// stageDef is the parcours-stage CodeSystem definition.
func stageDef() *csDef {
	for i := range codeSystems {
		if codeSystems[i].id == "parcours-stage" {
			return &codeSystems[i]
		}
	}
	panic("vocab: no parcours-stage CodeSystem") // data of this package: a broken build
}

// UsesHistory reports whether the stage of a fact with these candidate
// codes (as given to Resolve) may depend on the patient's history: a map
// element for one of them has a target conditioned on has-condition,
// has-result or has-medication. When it does not, Resolve gives the same
// stage whatever Context.PriorConditions, RecentResults and Medications
// hold, and a caller can skip reading them.
func UsesHistory(candidates ...Coding) bool {
	for _, c := range candidates {
		system, code := c.System, c.Code
		if code == "" {
			continue
		}
		if system == SystemNABM {
			l, ok := NABMToLOINC(code)
			if !ok {
				continue
			}
			system, code = l.System, l.Code
		}
		for _, sm := range built().stageMaps {
			if sm.source != system {
				continue
			}
			for _, g := range sm.cm.groups {
				if g.source != system {
					continue
				}
				for _, cand := range g.candidates(code) {
					e := g.elements[cand]
					if e == nil {
						continue
					}
					for _, t := range e.targets {
						for _, d := range t.deps {
							switch d.property {
							case PropHasCondition, PropHasResult, PropHasMedication:
								return true
							}
						}
					}
				}
			}
		}
	}
	return false
}
