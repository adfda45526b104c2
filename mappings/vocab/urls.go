package vocab

import "time"

// Base is the canonical base of every hub artefact (domain brief §3.4).
const Base = "https://example.org/fhir"

// Version is the business version of every CodeSystem, ValueSet and ConceptMap.
const Version = "0.1.0"

// Hub canonical URLs (domain brief §3.4).
const (
	CodeSystemBase = Base + "/CodeSystem/"
	ValueSetBase   = Base + "/ValueSet/"
	ConceptMapBase = Base + "/ConceptMap/"
	ExtensionBase  = Base + "/StructureDefinition/"
	PropertyBase   = Base + "/concept-property/"
	SidBase        = Base + "/sid/"

	// StageSystem is the parcours-stage CodeSystem.
	StageSystem = CodeSystemBase + "parcours-stage"
	// StageValueSet holds every stage.
	StageValueSet = ValueSetBase + "parcours-stage"
	// StageExtensionURL is the extension (valueCoding from StageSystem) on every fact (brief §3.2).
	StageExtensionURL = ExtensionBase + "pathway-stage"
	// PrefixMatchExtensionURL marks a ConceptMap group whose source codes match by longest prefix.
	PrefixMatchExtensionURL = ExtensionBase + "conceptmap-prefix-match"

	// Pathway extensions (brief §3.2): the current stage of an
	// EpisodeOfCare, the episode a fact or DetectedIssue belongs to.
	CurrentStageExtensionURL = ExtensionBase + "pathway-current-stage"
	EpisodeExtensionURL      = ExtensionBase + "pathway-episode"
	// MeasureTopicSystem codes what a Measure is about (prevention,
	// care-quality, liability): the policy opens topics per purpose.
	MeasureTopicSystem = CodeSystemBase + "measure-topic"
	// SidRupture names a DetectedIssue by its rule and index event.
	SidRupture = SidBase + "rupture"
	// RuleContentType is the media type of a rupture rule held by a Library.
	RuleContentType = "application/vnd.parcours.rupture-rule+json"

	RupturePathwaySystem  = CodeSystemBase + "rupture-parcours"
	PathwayTypeSystem     = CodeSystemBase + "pathway-type"
	HubPurposeSystem      = CodeSystemBase + "hub-purpose"
	ActorTypeSystem       = CodeSystemBase + "actor-type"
	LiabilityEventSystem  = CodeSystemBase + "liability-event-category"
	ActivityKindSystem    = CodeSystemBase + "activity-kind"
	PreventionEventSystem = CodeSystemBase + "prevention-event-type"
	ProgrammeSystem       = CodeSystemBase + "prevention-programme"
	SpecialtySystem       = CodeSystemBase + "specialty"
	PMSIFieldSystem       = CodeSystemBase + "pmsi-field"
	PMSIModeSystem        = CodeSystemBase + "pmsi-mode"
	PMSIProvenanceSystem  = CodeSystemBase + "pmsi-provenance"
	PMSIDiagnosisSystem   = CodeSystemBase + "pmsi-diagnosis-type"
	IdentityLinkageSystem = CodeSystemBase + "identity-linkage"
	MedicoLegalSystem     = CodeSystemBase + "medico-legal-fault"
)

// Context properties of ConceptMap dependsOn (see the package documentation).
const (
	PropSetting       = PropertyBase + "setting"
	PropKind          = PropertyBase + "kind"
	PropHasCondition  = PropertyBase + "has-condition"
	PropHasResult     = PropertyBase + "has-result"
	PropHasMedication = PropertyBase + "has-medication"
)

// Settings (Context.Setting).
const (
	SettingHospital   = "hospital"
	SettingCity       = "city"
	SettingPrevention = "prevention"
	SettingLiability  = "liability"
)

// Source terminologies (domain brief §2.1).
const (
	SystemCIM10 = "https://smt.esante.gouv.fr/terminologie-cim-10"
	SystemCCAM  = "https://smt.esante.gouv.fr/terminologie-ccam"
	SystemLOINC = "http://loinc.org"
	SystemCIP13 = "urn:oid:1.2.250.1.213.2.3.2"
	SystemUCUM  = "http://unitsofmeasure.org"
	// SystemATC is the one ATC URI of the hub (the brief: pick one).
	SystemATC = "http://www.whocc.no/atc" // TODO(verify) [K] HL7 canonical; SMT form https://smt.esante.gouv.fr/terminologie-atc
	// SystemNGAP and SystemNABM are hub-local until the SMT URIs are confirmed.
	SystemNGAP = CodeSystemBase + "ngap" // TODO(verify) [K] no SMT URI confirmed
	SystemNABM = CodeSystemBase + "nabm" // TODO(verify) [K] no SMT URI confirmed
	// SystemGHM is hub-local: no published FHIR URI for the ATIH GHM classification is known.
	SystemGHM = CodeSystemBase + "ghm" // TODO(verify) [K]
)

// HL7 terminologies used by the mappers.
const (
	SystemV3ActReason        = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemV3ActCode          = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	SystemV3Interpretation   = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	SystemV3ParticipantType  = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	SystemObservationCat     = "http://terminology.hl7.org/CodeSystem/observation-category"
	SystemConditionCategory  = "http://terminology.hl7.org/CodeSystem/condition-category"
	SystemConditionVerStatus = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	SystemAdmitSource        = "http://terminology.hl7.org/CodeSystem/admit-source"
	SystemDischargeDisp      = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
	SystemConsentScope       = "http://terminology.hl7.org/CodeSystem/consentscope"
	SystemConsentCategory    = "http://terminology.hl7.org/CodeSystem/consentcategorycodes" // TODO(verify) [K]
	SystemResourceTypes      = "http://hl7.org/fhir/resource-types"
	SystemAESeriousness      = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness" // TODO(verify) [K]
	SystemAESeverity         = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"    // TODO(verify) [K]
	SystemAEOutcome          = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"     // TODO(verify) [K]
	SystemAECategory         = "http://terminology.hl7.org/CodeSystem/adverse-event-category"    // TODO(verify) [K]
	SystemRiskProbability    = "http://terminology.hl7.org/CodeSystem/risk-probability"
	SystemProvenanceAgent    = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
	SystemDataOperation      = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
	SystemFRCoreV20203       = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
	// SystemTREG15 is the RASS profession table (NOS pattern, brief §1.1).
	SystemTREG15 = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante" // TODO(verify) [K]
)

// Identifier systems (domain brief §1.3, the hub's NamingSystem table).
const (
	SidINSNIR         = "urn:oid:1.2.250.1.213.1.4.8"
	SidFINESS         = "https://finess.esante.gouv.fr"
	SidRPPS           = "https://rpps.esante.gouv.fr"
	SidSIREN          = "https://sirene.fr"
	SidLiabilityClaim = SidBase + "liability-claim"
	// SidPMSIStay + FINESS + "/" names the stay numbers of one establishment.
	SidPMSIStay = SidBase + "pmsi-stay/" // TODO(verify) FR Core derives it from the FINESS OID root
	// SidPreventionMember + programme code names the member numbers of one programme.
	SidPreventionMember = SidBase + "prevention-member/"
	// SidPractitionerRole names the hub's PractitionerRole keys (<rpps>-<specialty>).
	SidPractitionerRole = SidBase + "practitioner-role"
	// SidNativeFile names an ingested file by its SHA-256 (Provenance.entity).
	SidNativeFile = SidBase + "native-file-sha256"
)

// RuptureMeasureURL is the canonical URL of the Measure that aggregates the
// rupture rule ruleID: the url of the Measure rupture-<ruleID> the hub
// stores (server/ruptures.go), named by the measure property of the
// rupture-parcours CodeSystem.
func RuptureMeasureURL(ruleID string) string { return Base + "/Measure/rupture-" + ruleID }

// MinAggregationK is the smallest cell an aggregate may release (DESIGN §2,
// brief §4.2 pattern 3: the aggregation-min-k extension of programme consents).
const MinAggregationK = 10

// AggregationMinKExtensionURL is the extension on the consent provision that
// lets the sponsoring mutual receive aggregates only.
const AggregationMinKExtensionURL = ExtensionBase + "aggregation-min-k"

// RecentResultWindow is how far back a result counts as "recent" for the
// has-result rule (brief §3.4: a positive FIT test within the previous 6 months).
var RecentResultWindow = 183 * 24 * time.Hour // TODO(verify) [K]
