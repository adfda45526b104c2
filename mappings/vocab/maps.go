package vocab

import "fmt"

// cmDef is one ConceptMap with a single group (source system → target system).
type cmDef struct {
	id, title, description string
	source, target         string
	targetVS               string
	elements               []elDef
}

type elDef struct {
	code    string
	targets []tgDef
}

type tgDef struct {
	code, equivalence, comment string
	deps                       []depDef
}

type depDef struct{ property, system, value string }

func el(code string, targets ...tgDef) elDef { return elDef{code: code, targets: targets} }

// els gives several source codes the same targets.
func els(targets []tgDef, codes ...string) []elDef {
	out := make([]elDef, len(codes))
	for i, code := range codes {
		out[i] = elDef{code: code, targets: targets}
	}
	return out
}

// to is an unconditional target; wider: the stage is wider in meaning than the code.
func to(stage string) tgDef { return tgDef{code: stage, equivalence: "wider"} }

// when is a conditional target: the code sits at this stage only in this context.
func when(stage, comment string, deps ...depDef) tgDef {
	return tgDef{code: stage, equivalence: "inexact", comment: comment, deps: deps}
}

// otherwise is the default of a context-dependent code.
func otherwise(stage, comment string) tgDef {
	return tgDef{code: stage, equivalence: "inexact", comment: comment}
}

func hasCondition(cim10 string) depDef { return depDef{PropHasCondition, SystemCIM10, cim10} }
func hasResult(loinc string) depDef    { return depDef{PropHasResult, SystemLOINC, loinc} }
func hasMedication(atc string) depDef  { return depDef{PropHasMedication, SystemATC, atc} }
func inSetting(setting string) depDef  { return depDef{PropSetting, "", setting} }
func stageMap(id string) string        { return ConceptMapBase + id }
func concat(parts ...[]elDef) (o []elDef) {
	for _, p := range parts {
		o = append(o, p...)
	}
	return o
}

// LOINC codes the context rules use.
const (
	loincHbA1c     = "4548-4"  // TODO(verify) [K] brief §2.1
	loincFIT       = "29771-3" // TODO(verify) [K] haemoglobin in stool by immunoassay (FIT)
	loincNTproBNP  = "33762-6" // TODO(verify) [K]
	loincCreat     = "2160-0"  // TODO(verify) [K]
	loincGlucose   = "2345-7"  // TODO(verify) [K]
	loincCholTotal = "2093-3"  // TODO(verify) [K]
)

// Prefix-matched source systems: hierarchical codes whose prefix is their ancestor.
var prefixSystems = map[string]bool{SystemCIM10: true, SystemCCAM: true, SystemATC: true, SystemGHM: true}

// colonoscopy is the brief's example of a code whose stage depends on context (§3.4).
var colonoscopy = []tgDef{
	when("suivi", "history of colorectal cancer: follow-up colonoscopy", hasCondition("Z85.0")),
	when("suivi", "follow-up examination after treatment", hasCondition("Z08")),
	when("suivi", "known colorectal cancer", hasCondition("C18")),
	when("suivi", "known colorectal cancer", hasCondition("C19")),
	when("suivi", "known colorectal cancer", hasCondition("C20")),
	when("diagnostic", "positive FIT test in the look-back window: diagnostic colonoscopy", hasResult(loincFIT)),
	when("depistage", "stay coded as screening for a neoplasm (Z12)", hasCondition("Z12")),
	when("depistage", "performed within a screening programme", inSetting(SettingPrevention)),
	otherwise("diagnostic", "no context: a colonoscopy is taken as diagnostic"),
}

func ghmElements() []elDef {
	var out []elDef
	// TODO(verify) [K] CMD 01–27 + C (surgical) / K (interventional); CMD 28 = sessions; CMD 23 = Z codes.
	for cmd := 1; cmd <= 27; cmd++ {
		out = append(out,
			el(fmt.Sprintf("%02dC", cmd), to("chirurgical-interventionnel")),
			el(fmt.Sprintf("%02dK", cmd), to("chirurgical-interventionnel")))
	}
	out = append(out,
		el("28", to("chimio-radiotherapie")),
		el("23",
			when("suivi", "stay for a follow-up examination", hasCondition("Z08")),
			when("suivi", "stay for a follow-up examination", hasCondition("Z09")),
			when("depistage", "stay for screening", hasCondition("Z12")),
			when("readaptation", "stay for rehabilitation care", hasCondition("Z50")),
			otherwise("hospitalisation", "other factors influencing health status")),
	)
	return out
}

var conceptMaps = []cmDef{
	{
		id: "cim10-to-parcours-stage", title: "CIM-10 → étape du parcours",
		description: "Stage of a CIM-10 diagnosis (brief §3.4 seed mappings, chapter Z first). Codes not listed fall back to the activity-kind map (diagnosis → diagnostic).",
		source:      SystemCIM10, target: StageSystem, targetVS: StageValueSet,
		elements: concat(
			// TODO(verify) [K] all CIM-10 seeds below.
			els([]tgDef{to("bilan-prevention")}, "Z00", "Z01", "Z02", "Z03", "Z04", "Z10", "Z11", "Z13"),
			[]elDef{el("Z12", to("depistage"))},
			els([]tgDef{to("surveillance-clinique")}, "Z08", "Z09", "Z85"),
			els([]tgDef{to("vaccination")}, "Z23", "Z24", "Z25", "Z26", "Z27"),
			[]elDef{
				el("Z51.0", to("chimio-radiotherapie")),
				el("Z51.1", to("chimio-radiotherapie")),
				el("Z50", to("readaptation")),
				el("I50",
					when("suivi", "known heart failure seen in city medicine", inSetting(SettingCity)),
					otherwise("diagnostic", "heart failure coded in a stay")),
			},
			els([]tgDef{
				when("surveillance-clinique", "diabetes seen in city medicine", inSetting(SettingCity)),
				otherwise("diagnostic", "diabetes coded in a stay"),
			}, "E10", "E11", "E12", "E13", "E14"),
		),
	},
	{
		id: "ccam-to-parcours-stage", title: "CCAM → étape du parcours",
		description: "Stage of a CCAM act. Four-letter prefixes stand for every act of that family. Acts not listed fall back to the activity-kind map.",
		source:      SystemCCAM, target: StageSystem, targetVS: StageValueSet,
		elements: []elDef{
			// TODO(verify) [K] all CCAM codes below.
			el("HHQE", colonoscopy...), // colonoscopies (HHQE002 total colonoscopy…)
			el("QEQK004", to("depistage")),
			el("QEQK001",
				when("suivi", "history of breast cancer", hasCondition("Z85.3")),
				when("suivi", "known breast cancer", hasCondition("C50")),
				otherwise("imagerie", "diagnostic mammography")),
			el("JKHD001", to("depistage")),
			el("DEQP003", to("diagnostic")),
			el("DZQM006",
				when("surveillance-clinique", "echocardiography of a known heart failure", hasCondition("I50")),
				otherwise("imagerie", "echocardiography")),
			el("ZBQK002", to("imagerie")),
			el("DDAF", to("chirurgical-interventionnel")),
			el("NEKA", to("chirurgical-interventionnel")),
			el("HMFC004", to("chirurgical-interventionnel")),
		},
	},
	{
		id: "ngap-to-parcours-stage", title: "NGAP → étape du parcours",
		description: "Stage of an NGAP act (letter key).",
		source:      SystemNGAP, target: StageSystem, targetVS: StageValueSet,
		elements: concat(
			// TODO(verify) [K] a GP visit is taken as follow-up, a specialist opinion as diagnosis.
			els([]tgDef{to("surveillance-clinique")}, "G", "GS", "VG", "C", "TCG", "TC"),
			els([]tgDef{to("consultation-initiale")}, "CS", "APC"),
			[]elDef{el("AMI", to("soins-support"))},
		),
	},
	{
		id: "nabm-to-loinc", title: "NABM → LOINC",
		description: "LOINC code of an NABM lab act (NABM is for billing; results use LOINC, brief §2.1).",
		source:      SystemNABM, target: SystemLOINC,
		elements: []elDef{
			// TODO(verify) [K]
			el("1577", tgDef{code: loincHbA1c, equivalence: "equivalent"}),
			el("0592", tgDef{code: loincCreat, equivalence: "equivalent"}),
			el("0552", tgDef{code: loincGlucose, equivalence: "equivalent"}),
		},
	},
	{
		id: "loinc-to-parcours-stage", title: "LOINC → étape du parcours",
		description: "Stage of a lab result or measurement. Codes not listed fall back to the activity-kind map (lab-result → bilan-biologique).",
		source:      SystemLOINC, target: StageSystem, targetVS: StageValueSet,
		elements: []elDef{
			el(loincHbA1c,
				when("surveillance-biologique", "HbA1c of a known diabetic", hasCondition("E10")),
				when("surveillance-biologique", "HbA1c of a known diabetic", hasCondition("E11")),
				when("surveillance-biologique", "HbA1c of a known diabetic", hasCondition("E12")),
				when("surveillance-biologique", "HbA1c of a known diabetic", hasCondition("E13")),
				when("surveillance-biologique", "HbA1c of a known diabetic", hasCondition("E14")),
				when("surveillance-biologique", "HbA1c of a patient on antidiabetics", hasMedication("A10")),
				when("bilan-prevention", "HbA1c measured by a prevention programme", inSetting(SettingPrevention)),
				otherwise("bilan-biologique", "HbA1c without known diabetes")),
			el(loincNTproBNP,
				when("surveillance-biologique", "NT-proBNP of a known heart failure", hasCondition("I50")),
				otherwise("bilan-biologique", "NT-proBNP without known heart failure")),
			el(loincFIT, to("depistage")),
			el(loincCholTotal,
				when("bilan-prevention", "cholesterol measured by a prevention programme", inSetting(SettingPrevention)),
				otherwise("bilan-biologique", "cholesterol")),
			el(loincGlucose,
				when("bilan-prevention", "glucose measured by a prevention programme", inSetting(SettingPrevention)),
				otherwise("bilan-biologique", "glucose")),
			// TODO(verify) [K] vital signs: 8480-6 systolic, 8462-4 diastolic, 29463-7 weight, 39156-5 BMI, 8302-2 height.
			vital("8480-6"), vital("8462-4"), vital("29463-7"), vital("39156-5"), vital("8302-2"),
		},
	},
	{
		id: "atc-to-parcours-stage", title: "ATC → étape du parcours",
		description: "Stage of a drug by ATC class (brief §3.4). Classes not listed fall back to the activity-kind map (dispensation → medicamenteux).",
		source:      SystemATC, target: StageSystem, targetVS: StageValueSet,
		elements: []elDef{
			el("J07", to("vaccination")),
			el("L01", to("chimio-radiotherapie")),
			el("A10", to("medicamenteux")),
			el("C03", to("medicamenteux")),
			el("C07", to("medicamenteux")),
			el("C09", to("medicamenteux")),
			el("C10", to("medicamenteux")),
			el("B01", to("medicamenteux")),
			el("M05B", to("medicamenteux")),
		},
	},
	{
		id: "ghm-to-parcours-stage", title: "GHM → étape du parcours",
		description: "Stage of an MCO stay from its GHM (CMD + type): surgical and interventional stays, sessions (CMD 28), and CMD 23 stays by their Z diagnosis. Medical stays fall back to the activity-kind map (stay-mco → hospitalisation).",
		source:      SystemGHM, target: StageSystem, targetVS: StageValueSet,
		elements: ghmElements(),
	},
	{
		id: "liability-event-to-parcours-stage", title: "Catégorie d'événement RC → étape du parcours",
		description: "Stage at which a liability event happened (brief §3.4).",
		source:      LiabilityEventSystem, target: StageSystem, targetVS: StageValueSet,
		elements: []elDef{
			el("defaut-depistage", to("depistage")),
			el("erreur-diagnostic", to("diagnostic")),
			el("retard-diagnostic", to("diagnostic")),
			el("complication-operatoire", to("chirurgical-interventionnel")),
			el("erreur-medicamenteuse", to("medicamenteux")),
			el("infection-associee-aux-soins", to("traitement")),
			el("defaut-surveillance", to("surveillance-clinique")),
			el("defaut-information", to("traitement")), // TODO(verify) information before an intervention
		},
	},
	{
		id: "prevention-event-to-parcours-stage", title: "Événement de prévention → étape du parcours",
		description: "Stage of a prevention-programme event whose code has no stage of its own.",
		source:      PreventionEventSystem, target: StageSystem, targetVS: StageValueSet,
		elements: []elDef{
			el("questionnaire", to("bilan-prevention")),
			el("measurement", to("bilan-prevention")),
			el("coaching", to("education-sante")),
			el("screening-reminder", to("depistage")),
			el("screening-done", to("depistage")),
		},
	},
	{
		id: "activity-kind-to-parcours-stage", title: "Nature d'activité → étape du parcours",
		description: "Default stage of a fact whose code has no stage of its own.",
		source:      ActivityKindSystem, target: StageSystem, targetVS: StageValueSet,
		elements: []elDef{
			el("consultation", to("surveillance-clinique")),
			el("teleconsultation", to("surveillance-clinique")),
			el("dispensation", to("medicamenteux")),
			el("lab-result", to("bilan-biologique")),
			el("vaccination", to("vaccination")),
			el("procedure",
				when("chirurgical-interventionnel", "technical act in a hospital", inSetting(SettingHospital)),
				otherwise("diagnostic", "technical act in city medicine (mostly examinations)")),
			el("stay-mco", to("hospitalisation")),
			el("stay-smr", to("readaptation")),
			el("stay-had", to("hospitalisation")),
			el("stay-psy", to("hospitalisation")),
			el("diagnosis", to("diagnostic")),
			el("act", to("chirurgical-interventionnel")),
			el("care-plan",
				when("prevention", "the plan of a prevention programme", inSetting(SettingPrevention)),
				otherwise("suivi", "a care plan organises follow-up")),
		},
	},
	{
		id: "hub-purpose-to-v3-purposeofuse", title: "Finalité du hub → v3 PurposeOfUse",
		description: "The v3 ActReason purpose each hub purpose falls under (brief §4.1).",
		source:      HubPurposeSystem, target: SystemV3ActReason,
		elements: []elDef{
			// TODO(verify) [K] COC, POPHLTH, HQUALIMP in the THO release the hub pins.
			el("prevention-programme-delivery", tgDef{code: "TREAT", equivalence: "wider"}),
			el("prevention-programme-reporting",
				tgDef{code: "POPHLTH", equivalence: "inexact", comment: "aggregated programme reports"},
				tgDef{code: "HOPERAT", equivalence: "inexact", comment: "programme operations"}),
			el("liability-claim-handling", tgDef{code: "HLEGAL", equivalence: "wider"}),
			el("liability-risk-analysis", tgDef{code: "HQUALIMP", equivalence: "inexact", comment: "risk feedback on behalf of the hospital"}),
			el("rupture-detection", tgDef{code: "COC", equivalence: "wider"}),
			el("rupture-reporting", tgDef{code: "POPHLTH", equivalence: "wider"}),
			el("underwriting-pricing", tgDef{equivalence: "unmatched", comment: "forbidden purpose: declared only to be denied and logged"}),
		},
	},
}

func vital(loinc string) elDef {
	return el(loinc,
		when("bilan-prevention", "measured by a prevention programme", inSetting(SettingPrevention)),
		otherwise("surveillance-clinique", "vital sign"))
}
