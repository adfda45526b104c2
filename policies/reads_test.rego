package parcours.reads_test

import data.parcours.fixtures_test as fx

filter := {"type": "filter"}

aggregate_k := {"type": "aggregate", "k": 10}

# --- ✅ allowed ---------------------------------------------------------------

test_allow_clinician_own_establishment_ops_allowed if {
	d := fx.decide(fx.read("hospital-clinician", "HOPERAT"))
	d.allow
	"own-establishment-operations" in d.reasons
	d.legal_basis == ["GDPR-9-2-h"]
	d.obligations == []
}

test_allow_own_org_other_establishment_denied if {
	x := object.union(fx.read("hospital-clinician", "HOPERAT"), {"resource": {"source_org": fx.org_b}})
	fx.denied_because(x, "not-own-organisation")
}

test_allow_own_org_unknown_source_denied if {
	x := object.union(fx.read("gp", "HOPERAT"), {"resource": {"source_org": ""}})
	fx.denied_because(x, "not-own-organisation")
}

test_allow_own_org_search_filtered if fx.obliged(fx.search("gp", "HOPERAT", "Observation"), filter)

test_allow_mutual_claims_coverage_allowed if {
	d := fx.decide(fx.read_type("mutual-claims", "HPAYMT", "Coverage"))
	d.allow
	d.legal_basis == ["GDPR-6-1-b"]
}

test_allow_mutual_claims_claim_denied if fx.denied_because(fx.read_type("mutual-claims", "HPAYMT", "Observation"), "coverage-eligibility-only")

test_allow_public_health_mandated_dataset_allowed if {
	x := fx.read_type("public-health", "PUBHLTH", "AdverseEvent")
	fx.allowed_because(x, "mandated-dataset")
	fx.not_obliged(x, {"type": "pseudonymise", "domain": "research"})
}

test_allow_mandated_ignores_objection if {
	x := object.union(fx.read_type("public-health", "PUBHLTH", "AdverseEvent"), {"patient": fx.patient(false, [fx.optout([], [])])})
	fx.allowed_because(x, "mandated-dataset")
}

# A care actor's PUBHLTH cell covers its mandated declarations (EIGS,
# pharmacovigilance: AdverseEvent), not the rest of the record: switching
# to PUBHLTH must not get around an objection or a need-to-know limit.
test_allow_mandated_declaration_by_care_actors if {
	every actor in ["hospital-clinician", "gp", "pharmacist"] {
		x := object.union(fx.read_type(actor, "PUBHLTH", "AdverseEvent"), {"patient": fx.patient(false, [fx.optout([], [])])})
		fx.allowed_because(x, "mandated-declaration")
	}
}

test_deny_care_actors_public_health_beyond_declarations if {
	every actor in ["hospital-clinician", "gp", "pharmacist"] {
		every type in ["Condition", "Encounter", "Procedure", "Observation", "Patient"] {
			fx.denied_because(fx.read_type(actor, "PUBHLTH", type), "aggregate-only")
		}
	}
}

test_allow_public_health_other_type_pseudonymised if {
	fx.obliged(fx.read("public-health", "PUBHLTH"), {"type": "pseudonymise", "domain": "research"})
}

test_allow_evidence_carries_the_cell if {
	d := fx.decide(fx.read("hospital-clinician", "HOPERAT"))
	"cell:hospital-clinician:OPS-QI" in d.reasons
}

# --- 🟡O opt-out ------------------------------------------------------------

test_optout_care_team_no_objection_allowed if {
	d := fx.decide(fx.read("gp", "TREAT"))
	d.allow
	d.reasons == ["care-team-opt-out-no-objection", "cell:gp:TREAT/COC"]
	d.legal_basis == ["GDPR-9-2-h", "CSP-L1110-4"]
	d.obligations == []
}

test_optout_care_team_objection_denied if {
	x := fx.inside("gp", "TREAT", [fx.optout([fx.org_a], ["TREAT"])])
	d := fx.decide(x)
	d.allow == false
	"patient-objection" in d.reasons
	"consent:Consent/optout-1" in d.reasons
}

test_optout_care_team_objection_to_care_team_denied if {
	fx.denied_because(fx.inside("hospital-clinician", "COC", [fx.optout(["CareTeam/ct-1"], [])]), "patient-objection")
}

test_optout_objection_to_other_org_allowed if {
	fx.allowed(fx.inside("gp", "TREAT", [fx.optout([fx.org_b], ["TREAT"])]))
}

test_optout_withdrawn_objection_allowed if {
	c := object.union(fx.optout([fx.org_a], []), {"status": "inactive"})
	fx.allowed_because(fx.inside("gp", "TREAT", [c]), "care-team-opt-out-no-objection")
}

test_optout_outside_care_team_no_consent_denied if fx.denied_because(fx.outside("gp", "TREAT", []), "outside-care-team-no-consent")

test_optout_outside_care_team_with_consent_allowed if {
	d := fx.decide(fx.outside("hospital-clinician", "TREAT", [fx.optin([fx.org_a], ["TREAT"])]))
	d.allow
	"outside-care-team-opt-in-consent" in d.reasons
	"consent:Consent/optin-1" in d.reasons
}

# An opt-in that names no professional (a programme's "share with my GP",
# whose file names no GP) does not open the record to everyone outside the
# care team: pattern 1 consents to a given professional or organisation.
test_optout_outside_care_team_permit_without_actor_denied if {
	every actor in ["gp", "hospital-clinician", "pharmacist"] {
		fx.denied_because(fx.outside(actor, "TREAT", [fx.optin([], ["TREAT", "COC"])]), "outside-care-team-no-consent")
	}
}

# Inside the care team such a permit changes nothing: the opt-out regime
# already shares.
test_optout_inside_care_team_permit_without_actor_allowed if {
	fx.allowed_because(fx.inside("gp", "TREAT", [fx.optin([], ["TREAT"])]), "care-team-opt-out-no-objection")
}

test_optout_outside_care_team_consent_and_objection_denied if {
	x := fx.outside("gp", "TREAT", [fx.optin([fx.org_a], ["TREAT"]), fx.optout([fx.org_a], ["TREAT"])])
	fx.denied_because(x, "patient-objection")
}

test_optout_search_request_level_filtered if {
	d := fx.decide(fx.search("gp", "TREAT", "Observation"))
	d.allow
	"opt-out-checked-per-resource" in d.reasons
	d.obligations == [filter]
}

test_optout_request_level_with_patient_outside_denied if {
	x := object.union(fx.search("gp", "TREAT", "Observation"), {"patient": fx.patient(false, [])})
	fx.denied_because(x, "outside-care-team-no-consent")
}

test_optout_compartment_resource_without_patient_denied if {
	x := object.remove(fx.read("gp", "TREAT"), ["patient"])
	fx.denied_because(x, "patient-context-missing")
}

test_optout_non_patient_resource_allowed if {
	x := object.remove(fx.read_type("pharmacist", "TREAT", "Medication"), ["patient"])
	fx.allowed_because(x, "no-patient-data")
}

test_optout_rupture_detection_in_care_team_allowed if fx.allowed(fx.read("hospital-clinician", "rupture-detection"))

# --- pharmacist need-to-know --------------------------------------------------

test_pharmacist_dispensing_types_allowed if {
	every t in ["MedicationRequest", "MedicationDispense", "MedicationStatement", "AllergyIntolerance", "Observation", "Patient", "Immunization"] {
		fx.allowed(fx.read_type("pharmacist", "TREAT", t))
	}
}

test_pharmacist_condition_denied if fx.denied_because(fx.read_type("pharmacist", "TREAT", "Condition"), "pharmacist-need-to-know")

test_pharmacist_diagnostic_report_denied if fx.denied_because(fx.read_type("pharmacist", "TREAT", "DiagnosticReport"), "pharmacist-need-to-know")

test_pharmacist_search_condition_denied if fx.denied_because(fx.search("pharmacist", "TREAT", "Condition"), "pharmacist-need-to-know")

test_pharmacist_search_medication_request_filtered if fx.obliged(fx.search("pharmacist", "TREAT", "MedicationRequest"), filter)

test_pharmacist_system_search_filtered if fx.obliged(fx.search("pharmacist", "TREAT", ""), filter)

test_pharmacist_need_to_know_is_data if {
	x := fx.read_type("pharmacist", "TREAT", "Condition")
	d := fx.decide(x) with data.parcours.matrix.type_lists.dispensing as ["Condition"]
	d.allow
}

# --- 🟡C consent required -------------------------------------------------------

test_consent_with_permit_allowed if {
	x := fx.inside("gp", "prevention-programme-delivery", [fx.optin([fx.org_a], ["prevention-programme-delivery"])])
	d := fx.decide(x)
	d.allow
	"opt-in-consent-permit" in d.reasons
	d.legal_basis == ["GDPR-9-2-a", "CSP-L1110-4"]
}

test_consent_without_consent_denied if {
	# Care team membership is not enough for a consent cell.
	fx.denied_because(fx.read("gp", "prevention-programme-delivery"), "consent-required")
}

test_consent_expired_denied if {
	c := fx.with_period(fx.optin([fx.org_a], ["prevention-programme-delivery"]), "2025-01-01", "2025-12-31")
	fx.denied_because(fx.inside("gp", "prevention-programme-delivery", [c]), "consent-required")
}

test_consent_withdrawn_denied if {
	c := object.union(fx.optin([fx.org_a], ["prevention-programme-delivery"]), {"status": "inactive"})
	fx.denied_because(fx.inside("gp", "prevention-programme-delivery", [c]), "consent-required")
}

test_consent_other_purpose_denied if {
	c := fx.optin([fx.org_a], ["TREAT"])
	fx.denied_because(fx.inside("pharmacist", "prevention-programme-delivery", [c]), "consent-required")
}

test_consent_class_mismatch_denied if {
	c := fx.with_classes(fx.optin([fx.org_a], ["prevention-programme-delivery"]), ["QuestionnaireResponse"])
	fx.denied_because(fx.inside("programme-operator", "prevention-programme-delivery", [c]), "consent-required")
}

test_consent_class_match_allowed if {
	c := fx.with_classes(fx.optin([fx.org_a], ["prevention-programme-delivery"]), ["Observation", "QuestionnaireResponse"])
	fx.allowed_because(fx.inside("programme-operator", "prevention-programme-delivery", [c]), "opt-in-consent-permit")
}

test_consent_nested_deny_wins_denied if {
	c := {
		"id": "Consent/prog", "status": "active", "scope": "patient-privacy", "policy": "OPTIN",
		"provisions": [
			{"type": "permit", "actors": [fx.org_a], "purposes": ["prevention-programme-delivery"]},
			{"type": "deny", "actors": [], "purposes": [], "classes": ["Observation"]},
		],
	}
	fx.denied_because(fx.inside("programme-operator", "prevention-programme-delivery", [c]), "patient-objection")
}

test_consent_search_request_level_filtered if {
	d := fx.decide(fx.search("programme-operator", "prevention-programme-delivery", "Observation"))
	d.allow
	"consent-checked-per-resource" in d.reasons
	filter in d.obligations
}

test_consent_not_for_reporting_clinician_denied if fx.denied_because(fx.read("hospital-clinician", "prevention-programme-reporting"), "cell-not-applicable")

# --- 🟡P pseudonymised only -----------------------------------------------------

test_pseudonymised_research_obligation if {
	d := fx.decide(fx.read("researcher", "HRESCH"))
	d.allow
	"pseudonymised-only" in d.reasons
	d.obligations == [{"type": "pseudonymise", "domain": "research"}]
	d.legal_basis == ["GDPR-9-2-j", "GDPR-89"]
}

test_pseudonymised_clinical_trial_obligation if fx.obliged(fx.read("researcher", "CLINTRCH"), {"type": "pseudonymise", "domain": "research"})

test_pseudonymised_liability_domain if fx.obliged(fx.read("liability-risk-manager", "liability-risk-analysis"), {"type": "pseudonymise", "domain": "liability"})

test_pseudonymised_clinician_quality_care_domain if fx.obliged(fx.read("hospital-clinician", "HQUALIMP"), {"type": "pseudonymise", "domain": "care"})

test_pseudonymised_research_objection_denied if {
	x := fx.inside("researcher", "HRESCH", [fx.optout([], ["HRESCH"])])
	fx.denied_because(x, "patient-objection")
}

test_pseudonymised_search_filtered if {
	d := fx.decide(fx.search("researcher", "HRESCH", "Condition"))
	d.allow
	filter in d.obligations
	{"type": "pseudonymise", "domain": "research"} in d.obligations
}

test_pseudonymised_also_answers_aggregates if {
	x := fx.aggregate("liability-risk-manager", "HQUALIMP")
	fx.obliged(x, aggregate_k)
	fx.obliged(x, {"type": "pseudonymise", "domain": "liability"})
}

test_pseudonymised_gp_own_defence_other_org_denied if {
	x := object.union(fx.read("gp", "liability-claim-handling"), {"resource": {"source_org": fx.org_b}})
	fx.denied_because(x, "not-own-organisation")
}

# --- 🟡A aggregate only ----------------------------------------------------------

test_aggregate_mutual_prevention_report_allowed if {
	d := fx.decide(fx.aggregate("mutual-prevention", "prevention-programme-reporting"))
	d.allow
	"aggregate-only" in d.reasons
	d.obligations == [aggregate_k]
	d.legal_basis == ["GDPR-recital-26", "CMut-L112-1"]
}

test_aggregate_mutual_prevention_per_resource_denied if {
	x := fx.read("mutual-prevention", "prevention-programme-reporting")
	fx.denied_because(x, "aggregate-only")
	fx.alerted(x)
}

test_aggregate_mutual_prevention_search_denied if {
	fx.denied_because(fx.search("mutual-prevention", "prevention-programme-reporting", "Observation"), "aggregate-only")
}

test_aggregate_flag_without_operation_allowed if {
	x := object.union(fx.search("public-health", "POPHLTH", "MeasureReport"), {"aggregate": true})
	fx.obliged(x, aggregate_k)
}

test_aggregate_public_health_programme_evaluation_allowed if fx.obliged(fx.aggregate("public-health", "prevention-programme-reporting"), aggregate_k)

test_aggregate_public_health_per_resource_programme_denied if {
	x := fx.read("public-health", "prevention-programme-reporting")
	fx.denied_because(x, "aggregate-only")
	not fx.alerted(x)
}

test_aggregate_liability_research_allowed if fx.obliged(fx.aggregate("liability-risk-manager", "HRESCH"), aggregate_k)

test_aggregate_k_is_data if {
	d := fx.decide(fx.aggregate("mutual-prevention", "prevention-programme-reporting")) with data.parcours.matrix.aggregation.k as 20
	d.obligations == [{"type": "aggregate", "k": 20}]
}

test_aggregate_own_org_filtered if {
	d := fx.decide(fx.aggregate("hospital-clinician", "PUBHLTH"))
	d.allow
	filter in d.obligations
	aggregate_k in d.obligations
}

test_aggregate_not_for_individual_care_denied if fx.denied_because(fx.aggregate("gp", "TREAT"), "aggregate-not-for-this-cell")

test_aggregate_with_objection_excludes_patient if {
	x := object.union(fx.aggregate("researcher", "HRESCH"), {"resource": fx.resource("Observation"), "patient": fx.patient(false, [fx.optout([], [])])})
	fx.denied_because(x, "patient-objection")
}

# --- — not applicable --------------------------------------------------------

test_not_applicable_auditor_treat_denied if {
	d := fx.decide(fx.read("auditor", "TREAT"))
	d.allow == false
	"cell-not-applicable" in d.reasons
	d.obligations == []
}

test_not_applicable_clinician_payment_denied if fx.denied_because(fx.read("hospital-clinician", "HPAYMT"), "cell-not-applicable")

test_not_applicable_researcher_public_health_denied if fx.denied_because(fx.aggregate("researcher", "PUBHLTH"), "cell-not-applicable")

# --- hospital IT reads ------------------------------------------------------

test_hospital_it_reads_observation_denied if fx.denied_because(fx.read("hospital-it", "HSYSADMIN"), "no-clinical-content")

test_hospital_it_reads_patient_denied if fx.denied_because(fx.read_type("hospital-it", "HOPERAT", "Patient"), "no-clinical-content")

test_hospital_it_treat_denied if fx.denied_because(fx.read("hospital-it", "TREAT"), "cell-not-applicable")

test_hospital_it_reads_metadata_allowed if {
	every t in ["Organization", "Location", "Practitioner", "PractitionerRole"] {
		fx.allowed_because(fx.read_type("hospital-it", "HSYSADMIN", t), "hub-operations-metadata")
		fx.allowed(fx.read_type("hospital-it", "HOPERAT", t))
	}
}

test_hospital_it_searches_metadata_unfiltered if {
	d := fx.decide(fx.search("hospital-it", "HSYSADMIN", "Organization"))
	d.allow
	d.obligations == []
}

test_hospital_it_searches_everything_filtered if fx.obliged(fx.search("hospital-it", "HSYSADMIN", ""), filter)

# --- patient --------------------------------------------------------------

patient_subject := object.union(fx.subject("patient", ["PATRQT"]), {"patient": "Patient/123"})

self_read := object.union(fx.read("patient", "PATRQT"), {"subject": patient_subject, "patient": {"is_self": true}})

test_patient_reads_own_record_allowed if {
	d := fx.decide(self_read)
	d.allow
	"patient-own-record" in d.reasons
	d.legal_basis == ["GDPR-15", "GDPR-20", "CSP-L1111-7"]
}

test_patient_reads_other_record_denied if {
	x := object.union(self_read, {"patient": {"is_self": false}})
	fx.denied_because(x, "not-own-record")
}

test_patient_reads_resource_outside_compartment_denied if {
	x := object.remove(self_read, ["patient"])
	fx.denied_because(x, "not-own-record")
}

test_patient_reads_own_psy_allowed if fx.allowed(fx.object_labels(self_read, ["PSY", "R"]))

test_patient_reads_own_v_denied if fx.denied_because(fx.object_labels(self_read, ["V"]), "security-label-very-restricted")

test_patient_reads_hidden_denied if fx.denied_because(fx.object_labels(self_read, ["INVISIBLE_PATIENT"]), "security-label-hidden-from-patient")

test_patient_own_record_despite_objection_allowed if {
	x := object.union(self_read, {"patient": {"consents": [fx.optout([], [])]}})
	fx.allowed(x)
}

test_patient_searches_own_compartment_filtered if {
	x := object.union(fx.search("patient", "PATRQT", "Observation"), {"subject": patient_subject})
	fx.obliged(x, filter)
}

test_patient_everything_of_other_patient_denied if {
	x := object.union(fx.search("patient", "PATRQT", "Patient"), {
		"subject": patient_subject,
		"interaction": "operation", "operation": "$everything",
		"patient": {"is_self": false},
	})
	fx.denied_because(x, "not-own-record")
}

test_patient_treat_denied if {
	x := object.union(fx.read("patient", "TREAT"), {"subject": object.union(patient_subject, {"purposes": ["TREAT"]})})
	fx.denied_because(x, "cell-not-applicable")
}

# --- auditor ------------------------------------------------------------------

test_auditor_reads_audit_event_allowed if {
	d := fx.decide(object.remove(fx.read_type("auditor", "HCOMPL", "AuditEvent"), ["patient"]))
	d.allow
	"compliance-audit" in d.reasons
}

test_auditor_searches_audit_events_unfiltered if {
	d := fx.decide(fx.search("auditor", "HCOMPL", "AuditEvent"))
	d.allow
	d.obligations == []
}

test_auditor_reads_observation_denied if fx.denied_because(fx.read("auditor", "HCOMPL"), "auditor-audit-events-only")

test_auditor_searches_patients_denied if fx.denied_because(fx.search("auditor", "HCOMPL", "Patient"), "auditor-audit-events-only")

test_auditor_research_denied if fx.denied_because(fx.read("auditor", "HRESCH"), "cell-not-applicable")

test_public_health_inspection_reads_audit_events_allowed if fx.allowed(fx.search("public-health", "HCOMPL", "AuditEvent"))

# --- liability ------------------------------------------------------------

test_liability_own_claim_file_allowed if fx.allowed_because(fx.read_type("liability-risk-manager", "liability-claim-handling", "AdverseEvent"), "own-claim-file")

test_liability_other_org_claim_file_denied if {
	x := object.union(fx.read_type("liability-risk-manager", "liability-claim-handling", "AdverseEvent"), {"resource": {"source_org": fx.org_b}})
	fx.denied_because(x, "not-own-organisation")
}

test_liability_claim_handling_pulls_observation_denied if fx.denied_because(fx.read("liability-risk-manager", "liability-claim-handling"), "claim-file-only")

test_liability_treat_never if fx.alerted(fx.read("liability-risk-manager", "TREAT"))

# --- operations that read ---------------------------------------------------

everything(actor, purpose, member) := object.union(fx.search(actor, purpose, "Patient"), {
	"interaction": "operation",
	"operation": "$everything",
	"patient": fx.patient(member, []),
})

test_everything_care_team_filtered if {
	d := fx.decide(everything("gp", "TREAT", true))
	d.allow
	d.obligations == [filter]
}

test_everything_outside_care_team_denied if fx.denied_because(everything("gp", "TREAT", false), "outside-care-team-no-consent")

test_everything_outside_care_team_with_class_limited_consent_filtered if {
	c := fx.with_classes(fx.optin([fx.org_a], ["TREAT"]), ["Immunization"])
	x := object.union(everything("gp", "TREAT", false), {"patient": {"consents": [c]}})
	fx.obliged(x, filter)
}

test_pathway_operation_filtered if {
	x := object.union(everything("hospital-clinician", "COC", true), {"operation": "$pathway"})
	fx.obliged(x, filter)
}

# --- purposes declared by the source (GDPR art. 5(1)(b)) ------------------------

declared(x, purposes) := object.union(x, {"resource": {"allowed_purposes": purposes}})

test_declared_purpose_allowed if fx.allowed(declared(fx.read("researcher", "HRESCH"), ["TREAT", "HRESCH"]))

test_declared_column_allowed if fx.allowed(declared(fx.read("gp", "COC"), ["TREAT"]))

test_undeclared_purpose_denied if fx.denied_because(declared(fx.read("researcher", "HRESCH"), ["TREAT", "COC"]), "purpose-not-declared-by-source")

test_undeclared_purpose_break_glass_allowed if fx.allowed(declared(fx.btg("gp", "ETREAT", "emergency"), ["TREAT"]))

test_declared_purposes_not_a_list_denied if fx.denied_because(declared(fx.read("gp", "TREAT"), "TREAT"), "malformed-allowed-purposes")

# The source actor's row of matrix.source_columns declares for it.
from_liability(x) := object.union(x, {"resource": {"type": "AdverseEvent", "source_actor": "liability-risk-manager"}, "resource_type": "AdverseEvent"})

test_liability_claims_not_for_care_denied if {
	fx.denied_because(from_liability(fx.read("gp", "TREAT")), "purpose-not-declared-by-source")
	fx.denied_because(from_liability(fx.read("hospital-clinician", "COC")), "purpose-not-declared-by-source")
}

test_liability_claims_for_research_pseudonymised_allowed if fx.allowed(from_liability(fx.read("researcher", "HRESCH")))

test_liability_claims_break_glass_allowed if fx.allowed(from_liability(fx.btg("gp", "ETREAT", "emergency")))

test_liability_claims_declared_purposes_win if fx.allowed(declared(from_liability(fx.read("gp", "TREAT")), ["TREAT"]))

test_hospital_data_not_restricted_by_source_columns if fx.allowed(fx.read("gp", "TREAT"))

# What the hub derives per patient (ruptures, episodes) is for the care team.
from_hub(x) := object.union(x, {"resource": {"type": "DetectedIssue", "source_actor": "hub", "source_org": ""}, "resource_type": "DetectedIssue"})

test_detected_issue_for_care_team_allowed if fx.allowed(from_hub(fx.read("gp", "TREAT")))

test_detected_issue_for_research_denied if fx.denied_because(from_hub(fx.read("researcher", "HRESCH")), "purpose-not-declared-by-source")

test_detected_issue_for_public_health_denied if fx.denied(from_hub(fx.read("public-health", "PUBHLTH")))

test_terminology_read_by_any_actor_allowed if {
	every pair in [["mutual-prevention", "prevention-programme-reporting"], ["auditor", "HCOMPL"], ["researcher", "HRESCH"], ["hospital-it", "HOPERAT"]] {
		d := fx.decide(fx.read_type(pair[0], pair[1], "ConceptMap"))
		d.allow
	}
}

test_terminology_never_for_pricing if {
	d := fx.decide(fx.read_type("mutual-claims", "underwriting-pricing", "ConceptMap"))
	not d.allow
}

test_audit_log_for_auditors_only if {
	not fx.decide(fx.read_type("gp", "TREAT", "AuditEvent")).allow
	not fx.decide(fx.read_type("hospital-clinician", "TREAT", "AuditEvent")).allow
	fx.decide(fx.read_type("auditor", "HCOMPL", "AuditEvent")).allow
}

# $evaluate-measure: the Measure's topics must be open to the purpose column.
test_measure_mutual_prevention_topic_allowed if {
	d := fx.decide(fx.measure("mutual-prevention", "prevention-programme-reporting", ["prevention"]))
	d.allow == true
	some o in d.obligations
	o.type == "aggregate"
	o.k == 10
}

test_measure_mutual_care_quality_topic_denied if {
	fx.denied_because(fx.measure("mutual-prevention", "prevention-programme-reporting", ["care-quality"]), "measure-topic-not-for-purpose")
}

test_measure_mutual_liability_topic_denied if {
	fx.denied_because(fx.measure("mutual-prevention", "prevention-programme-reporting", ["liability"]), "measure-topic-not-for-purpose")
}

test_measure_without_topics_denied if {
	fx.denied_because(object.remove(fx.aggregate("public-health", "PUBHLTH"), ["measure_topics"]), "measure-topic-not-for-purpose")
}

test_measure_liability_feedback_to_risk_manager_allowed if fx.allowed(fx.measure("liability-risk-manager", "liability-risk-analysis", ["liability"]))

test_measure_liability_feedback_to_own_hospital_filtered if {
	d := fx.decide(fx.measure("hospital-clinician", "HOPERAT", ["liability"]))
	d.allow == true
	some o in d.obligations
	o.type == "filter"
}

test_measure_public_health_prevention_allowed if fx.allowed(fx.measure("public-health", "PUBHLTH", ["prevention"]))

test_measure_malformed_topics_denied if fx.denied(fx.measure("public-health", "PUBHLTH", "prevention"))

test_measure_pricing_denied_whatever_the_topic if fx.alerted(fx.measure("mutual-claims", "underwriting-pricing", ["prevention"]))
