package vocab

// This file is the vocabulary as data. Codes the domain brief marks [K]
// carry TODO(verify); the stage assignments are the hub's proposal (brief
// §3.4 "seed mappings") and are equally open to review.

// csDef is one hub CodeSystem.
type csDef struct {
	id, title, description string
	content                string // complete | fragment | not-present
	hierarchical           bool
	properties             []propDef
	concepts               []conceptDef
}

type propDef struct{ code, typ, description string }

type conceptDef struct {
	code, display, definition string
	props                     []propVal
	children                  []conceptDef
}

// propVal is one concept property: value is an int (integer), a string
// (string, or code: a code of the same CodeSystem) or a Coding; it must
// agree with the type its propDef declares (checked when the resources are
// built).
type propVal struct {
	code  string
	value any
}

func c(code, display string, props ...propVal) conceptDef {
	return conceptDef{code: code, display: display, props: props}
}

func cd(code, display, definition string, props ...propVal) conceptDef {
	return conceptDef{code: code, display: display, definition: definition, props: props}
}

func pv(code string, value any) propVal { return propVal{code, value} }

// stageConcept is a top-level stage with its children; the children share
// the parent's order.
func stageConcept(code, display string, order int, children ...conceptDef) conceptDef {
	for i := range children {
		children[i].props = append(children[i].props, pv("order", order))
	}
	return conceptDef{code: code, display: display, props: []propVal{pv("order", order)}, children: children}
}

func stageCoding(code string) Coding { return Coding{System: StageSystem, Code: code} }

var codeSystems = []csDef{
	{
		id: "parcours-stage", title: "Étapes du parcours de soins",
		description:  "The pathway stages (prévention → diagnostic → traitement → suivi) and their finer children (domain brief §3.4). The property order (1–4) lets rules detect backward transitions.",
		content:      "complete",
		hierarchical: true,
		properties:   []propDef{{"order", "integer", "Position of the stage in the pathway (1 prevention … 4 suivi); children share their parent's order."}},
		concepts: []conceptDef{
			stageConcept("prevention", "Prévention", 1,
				c("depistage", "Dépistage"), c("vaccination", "Vaccination"),
				c("education-sante", "Éducation à la santé"), c("bilan-prevention", "Bilan de prévention")),
			stageConcept("diagnostic", "Diagnostic", 2,
				c("consultation-initiale", "Consultation initiale"), c("bilan-biologique", "Bilan biologique"),
				c("imagerie", "Imagerie"), c("anapath", "Anatomopathologie"), c("annonce", "Consultation d'annonce")),
			stageConcept("traitement", "Traitement", 3,
				c("medicamenteux", "Traitement médicamenteux"), c("chirurgical-interventionnel", "Chirurgie ou acte interventionnel"),
				c("hospitalisation", "Hospitalisation"), c("chimio-radiotherapie", "Chimiothérapie ou radiothérapie"),
				c("readaptation", "Réadaptation")),
			stageConcept("suivi", "Suivi", 4,
				c("surveillance-clinique", "Surveillance clinique"), c("surveillance-biologique", "Surveillance biologique"),
				c("observance", "Observance"), c("coordination-sortie", "Coordination de sortie"),
				c("soins-support", "Soins de support")),
		},
	},
	{
		id: "rupture-parcours", title: "Ruptures de parcours",
		description: "Pathway breaks detected by the hub (domain brief §3.4, §6). Each names the stage it leaves, the stage expected next and the Measure that counts it.",
		content:     "complete",
		properties: []propDef{
			{"stage-from", "Coding", "Stage of the index event."},
			{"stage-to", "Coding", "Stage of the expected event."},
			{"measure", "string", "Canonical URL of a Measure that aggregates the rupture: one per rule detecting it (a code two rules detect has two), none while no rule detects it."},
		},
		// The measures are the hub's rule Measures, rupture-<rule id>
		// (server/pathway/ruptures.json, stored at start-up with url
		// Base/Measure/rupture-<rule id>); server tests check that every one
		// resolves and that every rule's Measure is listed here.
		concepts: []conceptDef{
			rupture("no-gp-after-discharge", "Pas de consultation de médecin généraliste après une sortie d'hospitalisation", "traitement", "suivi", "R1"),
			rupture("no-specialist-after-discharge", "Pas de consultation de spécialiste après une sortie d'hospitalisation", "traitement", "suivi"),
			rupture("missed-monitoring-test", "Examen de surveillance manquant", "suivi", "suivi", "R2"),
			rupture("missed-screening", "Dépistage manqué", "prevention", "prevention", "R3-breast", "R3-colorectal"),
			rupture("missed-vaccination", "Vaccination manquée", "prevention", "prevention", "R10"),
			rupture("no-rehab-after-acute-event", "Pas de réadaptation après un événement aigu", "traitement", "traitement", "R4"),
			rupture("early-readmission", "Réhospitalisation non programmée précoce", "traitement", "suivi", "R5"),
			rupture("treatment-discontinuation", "Interruption de traitement", "traitement", "suivi", "R6"),
			rupture("abnormal-result-not-followed", "Résultat anormal non suivi", "diagnostic", "diagnostic", "R7"),
			rupture("delayed-diagnosis", "Retard de diagnostic", "prevention", "diagnostic"),
			rupture("delayed-treatment-start", "Retard de mise en route du traitement", "diagnostic", "traitement", "R9"),
			rupture("no-secondary-prevention-after-fracture", "Pas de prévention secondaire après une fracture de fragilité", "traitement", "suivi", "R8"),
		},
	},
	{
		id: "pathway-type", title: "Types de parcours",
		description: "The pathways the hub follows, one EpisodeOfCare per patient and pathway type (domain brief §3.2).",
		content:     "complete",
		concepts: []conceptDef{
			c("heart-failure", "Insuffisance cardiaque"),
			c("type-2-diabetes", "Diabète de type 2"),
			c("post-myocardial-infarction", "Post-infarctus du myocarde"),
			c("breast-cancer-screening", "Dépistage du cancer du sein"),
			c("colorectal-cancer-screening", "Dépistage du cancer colorectal"),
			c("cervical-cancer-screening", "Dépistage du cancer du col de l'utérus"),
			c("colorectal-cancer", "Cancer colorectal"),
			c("copd", "Bronchopneumopathie chronique obstructive"),
			c("fragility-fracture", "Fracture de fragilité"),
			c("cardiovascular-prevention", "Prévention cardiovasculaire"),
		},
	},
	{
		id: "measure-topic", title: "Thèmes des indicateurs",
		description: "What a Measure is about; the policy opens each topic to some purposes only (policies/matrix.json measure_topics): mutual prevention teams receive prevention indicators only.",
		content:     "complete",
		concepts: []conceptDef{
			cd("prevention", "Prévention", "Screening, vaccination and prevention-programme indicators."),
			cd("care-quality", "Qualité des parcours", "Ruptures in care and follow-up (care quality, risk management)."),
			cd("liability", "Sinistralité", "Claims feedback to the insured hospital."),
		},
	},
	{
		id: "hub-purpose", title: "Finalités propres au hub",
		description: "French-specific purposes of use with no v3 ActReason code (domain brief §4.1), mapped to v3 by the ConceptMap hub-purpose-to-v3-purposeofuse.",
		content:     "complete",
		concepts: []conceptDef{
			cd("prevention-programme-delivery", "Réalisation d'un programme de prévention", "Individual coaching by the programme's health professionals (trusted third party)."),
			cd("prevention-programme-reporting", "Rapports d'un programme de prévention", "Aggregated reports for the sponsoring mutual."),
			cd("liability-claim-handling", "Gestion d'un sinistre", "Handling a specific claim file (data supplied by the insured and the experts, not pulled from the hub)."),
			cd("liability-risk-analysis", "Analyse de risque responsabilité civile", "Episode-level pseudonymised analysis and feedback to hospitals."),
			cd("rupture-detection", "Détection des ruptures de parcours", "Detecting ruptures in order to act on them (care team)."),
			cd("rupture-reporting", "Indicateurs de ruptures de parcours", "Aggregated rupture indicators."),
			cd("underwriting-pricing", "Tarification ou sélection des risques", "Declared only so that it can be explicitly denied and logged."),
		},
	},
	{
		id: "actor-type", title: "Types d'acteurs",
		description: "The actor types of the hub's access tokens (DESIGN §3, claim actor_type).",
		content:     "complete",
		concepts: []conceptDef{
			c("hospital-clinician", "Clinicien hospitalier"),
			c("hospital-it", "Informatique hospitalière"),
			c("gp", "Médecin généraliste"),
			c("pharmacist", "Pharmacien"),
			cd("programme-operator", "Opérateur de programme de prévention", "The trusted third party whose health professionals deliver a mutual's prevention programme."),
			c("mutual-prevention", "Mutuelle : équipe prévention"),
			c("mutual-claims", "Mutuelle : gestion des remboursements"),
			c("liability-risk-manager", "Assureur responsabilité civile : gestionnaire de risques"),
			c("auditor", "Auditeur (DPO, CNIL, HDS)"),
			c("researcher", "Chercheur"),
			c("public-health", "Autorité de santé publique"),
			c("patient", "Patient"),
		},
	},
	{
		id: "liability-event-category", title: "Catégories d'événements en responsabilité civile médicale",
		description: "The event categories of the liability-claims native format (DESIGN §6.4). The property adverse-event-category gives the R4 AdverseEvent category when one fits.",
		content:     "complete",
		// Type Coding, not code: in R4 a property of type code holds a
		// code of this same CodeSystem, and this one names a code of
		// another system.
		properties: []propDef{{"adverse-event-category", "Coding", "The R4 AdverseEvent category (http://terminology.hl7.org/CodeSystem/adverse-event-category) that also applies."}},
		concepts: []conceptDef{
			c("defaut-depistage", "Défaut de dépistage"),
			c("erreur-diagnostic", "Erreur de diagnostic"),
			c("retard-diagnostic", "Retard de diagnostic"),
			c("complication-operatoire", "Complication opératoire"),
			c("erreur-medicamenteuse", "Erreur médicamenteuse", pv("adverse-event-category", Coding{System: SystemAECategory, Code: "product-use-error"})), // TODO(verify) [K]
			c("infection-associee-aux-soins", "Infection associée aux soins"),
			c("defaut-surveillance", "Défaut de surveillance"),
			c("defaut-information", "Défaut d'information"),
		},
	},
	{
		id: "activity-kind", title: "Natures d'activité des sources natives",
		description: "What a native row describes, when its code alone does not give a stage: the city-activity kinds (DESIGN §6.2) and the parts of a hospital stay.",
		content:     "complete",
		concepts: []conceptDef{
			c("consultation", "Consultation"),
			c("teleconsultation", "Téléconsultation"),
			c("dispensation", "Dispensation en pharmacie"),
			c("lab-result", "Résultat de biologie"),
			c("vaccination", "Vaccination"),
			c("procedure", "Acte technique"),
			c("stay-mco", "Séjour de médecine, chirurgie, obstétrique"),
			c("stay-smr", "Séjour de soins médicaux et de réadaptation"),
			c("stay-had", "Hospitalisation à domicile"),
			c("stay-psy", "Séjour de psychiatrie"),
			c("diagnosis", "Diagnostic codé d'un séjour"),
			c("act", "Acte codé d'un séjour"),
			c("care-plan", "Plan de prise en charge"),
		},
	},
	{
		id: "prevention-event-type", title: "Événements d'un programme de prévention",
		description: "The event types of the prevention-programme native format (DESIGN §6.3).",
		content:     "complete",
		concepts: []conceptDef{
			c("questionnaire", "Questionnaire"),
			c("measurement", "Mesure"),
			c("coaching", "Séance de coaching"),
			c("screening-reminder", "Relance de dépistage"),
			c("screening-done", "Dépistage réalisé"),
		},
	},
	{
		id: "prevention-programme", title: "Programmes de prévention",
		description: "The prevention programmes whose operators feed the hub, with the organisation that sponsors each (the mutual that receives aggregates only) and the operator (trusted third party). Demo data: register real programmes here.",
		content:     "complete",
		properties: []propDef{
			{"sponsor", "string", "Identifier (system|value) of the sponsoring mutual."},
			{"operator", "string", "Identifier (system|value) of the programme operator (trusted third party)."},
			{"pathway-type", "Coding", "The pathway the programme serves."},
		},
		concepts: []conceptDef{
			programme("coeur-sante", "Cœur santé", "cardiovascular-prevention"),
			programme("depistage-cancers", "Dépistage des cancers", "colorectal-cancer-screening"),
			programme("diabete-prevention", "Prévention du diabète", "type-2-diabetes"),
		},
	},
	{
		id: "specialty", title: "Spécialités des professionnels de ville",
		description: "Values of the specialty column of city-activity. The property profession gives the RASS profession (TRE_G15) code.",
		content:     "complete",
		properties:  []propDef{{"profession", "string", "Code of TRE_G15 (profession de santé)."}},
		concepts: []conceptDef{
			// TODO(verify) [K] TRE_G15 codes: 10 médecin, 21 pharmacien, 60 infirmier.
			// The TRE_R38 (spécialité ordinale) codes are still to be added from the official table.
			c("medecine-generale", "Médecine générale", pv("profession", "10")),
			c("cardiologie", "Cardiologie", pv("profession", "10")),
			c("gastro-enterologie", "Gastro-entérologie", pv("profession", "10")),
			c("endocrinologie", "Endocrinologie", pv("profession", "10")),
			c("gynecologie", "Gynécologie", pv("profession", "10")),
			c("pneumologie", "Pneumologie", pv("profession", "10")),
			c("radiologie", "Radiologie", pv("profession", "10")),
			c("oncologie", "Oncologie", pv("profession", "10")),
			c("biologie-medicale", "Biologie médicale", pv("profession", "10")),
			c("pharmacie", "Pharmacie d'officine", pv("profession", "21")),
			c("soins-infirmiers", "Soins infirmiers", pv("profession", "60")),
		},
	},
	{
		id: "ngap", title: "NGAP (fragment)",
		description: "Nomenclature générale des actes professionnels: the letter keys the hub uses. Hub-local system until an SMT URI is confirmed (domain brief §2.1).",
		content:     "fragment",
		concepts: []conceptDef{
			// TODO(verify) [K] letter keys and their meaning.
			c("G", "Consultation de médecine générale"),
			c("GS", "Consultation de médecine générale (spécialiste en médecine générale)"),
			c("VG", "Visite à domicile de médecine générale"),
			c("C", "Consultation"),
			c("CS", "Consultation de spécialiste"),
			c("APC", "Avis ponctuel de consultant"),
			c("TCG", "Téléconsultation de médecine générale"),
			c("TC", "Téléconsultation"),
			c("AMI", "Acte médico-infirmier"),
		},
	},
	{
		id: "nabm", title: "NABM (fragment)",
		description: "Nomenclature des actes de biologie médicale: the codes the hub maps to LOINC. Hub-local system until an SMT URI is confirmed (domain brief §2.1).",
		content:     "fragment",
		concepts: []conceptDef{
			c("1577", "Hémoglobine glyquée (HbA1c)"), // TODO(verify) [K]
			c("0592", "Créatinine"),                  // TODO(verify) [K]
			c("0552", "Glycémie"),                    // TODO(verify) [K]
		},
	},
	{
		id: "ghm", title: "Groupes homogènes de malades (GHM)",
		description: "ATIH GHM classification, carried as Encounter.type of a stay. Hub-local system; the codes are not listed (content not-present): CMD (2) + type C/K/M/Z + number (2) + level.",
		content:     "not-present",
	},
	{
		id: "pmsi-field", title: "Champs PMSI",
		description: "The PMSI field of a stay (unit_type of hospital-stays).",
		content:     "complete",
		concepts: []conceptDef{
			c("MCO", "Médecine, chirurgie, obstétrique"),
			c("SMR", "Soins médicaux et de réadaptation"),
			c("HAD", "Hospitalisation à domicile"),
			c("PSY", "Psychiatrie"),
		},
	},
	{
		id: "pmsi-mode", title: "Modes d'entrée et de sortie PMSI",
		description: "PMSI entry and discharge modes (domain brief §2.2).",
		content:     "complete",
		concepts: []conceptDef{
			// TODO(verify) [K]
			c("6", "Mutation"),
			c("7", "Transfert"),
			c("8", "Domicile"),
			c("9", "Décès"),
		},
	},
	{
		id: "pmsi-provenance", title: "Provenances PMSI",
		description: "PMSI provenance of an entry (admission_source of hospital-stays); 5 is an entry through the emergency department.",
		content:     "complete",
		concepts: []conceptDef{
			// TODO(verify) [K]
			c("1", "Unité de MCO"),
			c("2", "Unité de SMR"),
			c("3", "Unité de soins de longue durée"),
			c("4", "Unité de psychiatrie"),
			c("5", "Passage par les urgences"),
			c("6", "Hospitalisation à domicile"),
			c("7", "Structure d'hébergement médico-sociale"),
		},
	},
	{
		id: "pmsi-diagnosis-type", title: "Types de diagnostics PMSI",
		description: "Position of a diagnosis in a PMSI stay summary (domain brief §2.2).",
		content:     "complete",
		concepts: []conceptDef{
			c("DP", "Diagnostic principal"),
			c("DR", "Diagnostic relié"),
			c("DAS", "Diagnostic associé significatif"),
		},
	},
	{
		id: "identity-linkage", title: "Rattachement d'identité",
		description: "Meta tag of a Patient created without a valid INS-NIR: it is not linked across sources until someone qualifies its identity.",
		content:     "complete",
		concepts: []conceptDef{
			cd("unlinked", "Identité non rattachée", "The source sent no valid INS-NIR: the patient exists for this source only."),
		},
	},
	{
		id: "medico-legal-fault", title: "Conclusions médico-légales",
		description: "Fault finding of a medico-legal assessment (domain brief §2.5).",
		content:     "complete",
		concepts: []conceptDef{
			c("fault", "Faute"),
			c("no-fault", "Aléa thérapeutique"),
			c("hai", "Infection associée aux soins"),
			c("undetermined", "Indéterminé"),
		},
	},
}

// rupture is a rupture-parcours concept; rules are the ids of the hub
// rules that detect it, whose Measures (Base/Measure/rupture-<rule>) it
// names. A code no rule detects yet has no measure: it would name a Measure
// the hub does not have.
func rupture(code, display, from, to string, rules ...string) conceptDef {
	props := []propVal{pv("stage-from", stageCoding(from)), pv("stage-to", stageCoding(to))}
	for _, r := range rules {
		props = append(props, pv("measure", RuptureMeasureURL(r)))
	}
	return c(code, display, props...)
}

// The demo programmes are sponsored by the developer-mode mutual and run by
// the developer-mode operator (server/auth dev organisations).
const (
	demoSponsor  = SidSIREN + "|775671356"
	demoOperator = SidSIREN + "|552100554"
)

func programme(code, display, pathway string) conceptDef {
	return c(code, display,
		pv("sponsor", demoSponsor),
		pv("operator", demoOperator),
		pv("pathway-type", Coding{System: PathwayTypeSystem, Code: pathway}),
	)
}
