// Package vocab is Parcours' shared pathway vocabulary: the hub CodeSystems
// (parcours-stage, rupture-parcours, pathway-type, hub-purpose, actor-type,
// liability-event-category and the small local systems the native formats
// need), one ValueSet per CodeSystem, and the ConceptMaps that turn source
// codes (CIM-10, CCAM, NGAP, NABM, LOINC, ATC, GHM, liability categories,
// activity kinds, prevention-programme event types) into a pathway stage.
// It is a leaf: it imports nothing from the project, and everything else
// (mappings, server, rupture rules) reads the vocabulary from here.
//
// Every artefact is a FHIR R4 resource as map[string]any, built from the Go
// data tables of tables.go at start-up. The tables are data, not logic: codes
// the domain brief marks [K] (known but not checked against a primary
// source) carry a TODO(verify) comment beside them.
//
//	Resources() []map[string]any                   every CodeSystem, ValueSet and ConceptMap (deep copies)
//	Stage(system, code string, ctx Context)         the pathway stage of one source code in a context
//	Resolve(ctx Context, codes ...Coding)           the first code that has a stage (code, then activity kind)
//	StageOf(code)                                   a stage code's display, top-level stage and order
//	StageExtensionURL, StageCoding.Extension()      the pathway-stage extension on every fact
//	Translate(p TranslateParams) map[string]any     the standard ConceptMap/$translate, answering a Parameters resource
//	ParseTranslateQuery / ParseTranslateParameters  $translate input from a GET query or a POSTed Parameters (bad input: *ParamError)
//	CheckConceptMap(r)                              whether Translate can evaluate a ConceptMap resource
//	UCUMUnit(text), UCUMUnits()                     the hub's list of UCUM units (ucum-units.txt, data) and French spellings
//	RuptureMeasureURL(ruleID)                       the canonical of a rupture rule's Measure
//	Lookup, ProgrammeOf, NABMToLOINC                small lookups the mappers need
//
// The server stores Resources() at start-up and answers
// GET /fhir/ConceptMap/$translate with Translate(ParseTranslateQuery(q))
// (POST: ParseTranslateParameters), answering a *ParamError with a 400
// OperationOutcome. Translate evaluates the hub's own maps; to honour a map
// changed through the REST API, pass the stored resource as
// TranslateParams.ConceptMap: the server does so for url and for
// ConceptMap/{id}/$translate (404 when there is no such map or version).
//
// # Context rules (dependsOn)
//
// The same code can sit at different stages: a colonoscopy is screening
// (prevention/depistage) in a screening programme, diagnosis after a positive
// FIT test, and follow-up (suivi) after colorectal cancer. ConceptMap targets
// carry R4 dependsOn conditions whose property is a hub URI
// (https://example.org/fhir/concept-property/<name>); Go evaluates them
// against a Context:
//
//	setting         Context.Setting          hospital | city | prevention | liability (exact)
//	kind            Context.Kind             activity kind, prevention event type or PMSI field (exact)
//	has-condition   Context.PriorConditions  diagnoses known for the patient (CIM-10 by prefix)
//	has-result      Context.RecentResults    abnormal or positive results of the look-back window (LOINC, exact)
//	has-medication  Context.Medications      drugs dispensed before (ATC by prefix)
//
// Several dependsOn on one target must all hold (AND); alternatives are
// separate targets (OR). Evaluation: the targets whose conditions all hold
// win, in document order; when none does, the unconditional targets apply.
// Stage takes the first winner; $translate returns all of them.
//
// Codes of hierarchical systems (CIM-10, CCAM, ATC, GHM) match by longest
// prefix: an element for I50 covers I50.9 and I509, an element for HHQE
// covers every colonoscopy code. A group that matches this way says so with
// the extension https://example.org/fhir/StructureDefinition/conceptmap-prefix-match.
// Dots are ignored when comparing (I50.9 = I509).
//
// When no element matches, Stage reports false and the caller falls back to
// the activity-kind map (Resolve does this in one call): the code maps hold
// specific knowledge only, the activity-kind and prevention-event maps give
// every fact a stage.
//
// # Canonical URLs
//
// The base is https://example.org/fhir (domain brief §3.4, a placeholder to
// replace once before production). Every artefact has version Version and
// status draft.
package vocab
