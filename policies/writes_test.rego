package parcours.writes_test

import data.parcours.fixtures_test as fx

omit := {"type": "omit-content"}

# --- hospital IT -------------------------------------------------------------

test_hospital_it_creates_new_observation_allowed if {
	d := fx.decide(fx.write("hospital-it", "HSYSADMIN", "create", "Observation", ""))
	d.allow
	d.reasons == ["write-scope:hospital-it-operations"]
	d.obligations == [omit]
	d.legal_basis == ["CSP-L1111-8", "GDPR-9-2-h"]
}

test_hospital_it_updates_own_org_encounter_allowed if {
	fx.obliged(fx.write("hospital-it", "HOPERAT", "update", "Encounter", fx.org_a), omit)
}

test_hospital_it_updates_other_org_denied if {
	fx.denied_because(fx.write("hospital-it", "HOPERAT", "update", "Encounter", fx.org_b), "not-own-organisation")
}

test_hospital_it_deletes_other_org_denied if {
	fx.denied_because(fx.write("hospital-it", "HSYSADMIN", "delete", "Condition", fx.org_b), "not-own-organisation")
}

test_hospital_it_writes_without_org_denied if {
	x := object.union(fx.write("hospital-it", "HSYSADMIN", "create", "Observation", ""), {"subject": {"org": ""}})
	fx.denied_because(x, "not-own-organisation")
}

test_hospital_it_writes_consent_denied if {
	fx.denied_because(fx.write("hospital-it", "HSYSADMIN", "create", "Consent", ""), "resource-type-not-writable")
}

test_hospital_it_writes_for_treat_denied if {
	fx.denied_because(fx.write("hospital-it", "TREAT", "create", "Observation", ""), "no-write-scope")
}

test_hospital_it_transaction_entry_allowed if {
	# Each transaction entry is decided with its own interaction.
	fx.allowed(fx.write("hospital-it", "HOPERAT", "create", "Claim", ""))
}

# --- hospital clinician ------------------------------------------------------

test_clinician_writes_own_org_for_treat_allowed if {
	d := fx.decide(fx.write("hospital-clinician", "TREAT", "create", "Condition", ""))
	d.allow
	d.obligations == []
}

test_clinician_updates_other_org_denied if {
	fx.denied_because(fx.write("hospital-clinician", "TREAT", "update", "Condition", fx.org_b), "not-own-organisation")
}

test_clinician_writes_for_research_denied if {
	fx.denied_because(fx.write("hospital-clinician", "HRESCH", "create", "Condition", ""), "no-write-scope")
}

# --- GP and pharmacist ---------------------------------------------------------

test_gp_writes_for_care_team_patient_allowed if fx.allowed(fx.write("gp", "TREAT", "create", "Observation", ""))

test_gp_writes_outside_care_team_denied if {
	x := object.union(fx.write("gp", "TREAT", "create", "Observation", ""), {"patient": {"care_team": {"member": false}}})
	fx.denied_because(x, "not-in-care-team")
}

test_gp_writes_without_patient_denied if {
	x := object.remove(fx.write("gp", "TREAT", "create", "Observation", ""), ["patient"])
	fx.denied_because(x, "not-in-care-team")
}

test_gp_updates_hospital_data_denied if {
	fx.denied_because(fx.write("gp", "TREAT", "update", "Observation", fx.org_b), "not-own-organisation")
}

test_gp_registers_new_patient_allowed if {
	# No care team can exist before the Patient does.
	x := object.union(fx.write("gp", "TREAT", "create", "Patient", ""), {"patient": {"care_team": {"member": false}}})
	fx.allowed_because(x, "write-scope:city-patient-registration")
}

test_gp_updates_patient_outside_care_team_denied if {
	x := object.union(fx.write("gp", "TREAT", "update", "Patient", fx.org_a), {"patient": {"care_team": {"member": false}}})
	fx.denied_because(x, "resource-type-not-writable")
}

test_gp_records_first_encounter_allowed if {
	x := object.union(fx.write("gp", "TREAT", "create", "Encounter", ""), {"patient": {"care_team": {"member": false}}})
	fx.allowed_because(x, "write-scope:gp-care-relationship")
}

test_gp_updates_other_org_encounter_denied if {
	fx.denied_because(fx.write("gp", "TREAT", "update", "Encounter", fx.org_b), "not-own-organisation")
}

test_gp_observation_outside_care_team_still_denied if {
	x := object.union(fx.write("gp", "TREAT", "create", "Observation", ""), {"patient": {"care_team": {"member": false}}})
	fx.denied_because(x, "not-in-care-team")
}

test_pharmacist_registers_new_patient_allowed if fx.allowed(fx.write("pharmacist", "TREAT", "create", "Patient", ""))

test_pharmacist_records_encounter_denied if {
	fx.denied_because(fx.write("pharmacist", "TREAT", "create", "Encounter", ""), "resource-type-not-writable")
}

test_pharmacist_writes_dispense_allowed if fx.allowed(fx.write("pharmacist", "TREAT", "create", "MedicationDispense", ""))

test_pharmacist_writes_condition_denied if fx.denied_because(fx.write("pharmacist", "TREAT", "create", "Condition", ""), "resource-type-not-writable")

test_unmet_conditions_all_reported if {
	x := object.union(fx.write("gp", "TREAT", "update", "Observation", fx.org_b), {"patient": {"care_team": {"member": false}}})
	d := fx.decide(x)
	d.reasons == ["not-in-care-team", "not-own-organisation"]
}

# --- programme operator, liability ----------------------------------------------

test_programme_operator_writes_questionnaire_allowed if {
	d := fx.decide(fx.write("programme-operator", "prevention-programme-delivery", "create", "QuestionnaireResponse", ""))
	d.allow
	d.legal_basis == ["GDPR-9-2-a"]
}

test_programme_operator_writes_consent_allowed if fx.allowed(fx.write("programme-operator", "prevention-programme-delivery", "create", "Consent", ""))

test_programme_operator_updates_other_org_denied if {
	fx.denied_because(fx.write("programme-operator", "prevention-programme-delivery", "update", "Observation", fx.org_b), "not-own-organisation")
}

test_programme_operator_writes_condition_denied if {
	fx.denied_because(fx.write("programme-operator", "prevention-programme-delivery", "create", "Condition", ""), "resource-type-not-writable")
}

test_liability_writes_adverse_event_allowed if fx.allowed(fx.write("liability-risk-manager", "liability-claim-handling", "create", "AdverseEvent", ""))

test_liability_writes_observation_denied if {
	fx.denied_because(fx.write("liability-risk-manager", "liability-claim-handling", "create", "Observation", ""), "resource-type-not-writable")
}

test_liability_updates_other_org_denied if {
	fx.denied_because(fx.write("liability-risk-manager", "liability-claim-handling", "update", "AdverseEvent", fx.org_b), "not-own-organisation")
}

# --- patient ----------------------------------------------------------------------

patient_write(interaction, is_self) := object.union(fx.write("patient", "PATRQT", interaction, "Consent", ""), {
	"subject": {"patient": "Patient/123"},
	"patient": {"is_self": is_self},
})

test_patient_creates_own_consent_allowed if fx.allowed_because(patient_write("create", true), "write-scope:patient-own-consent")

test_patient_updates_own_consent_allowed if fx.allowed(patient_write("update", true))

test_patient_creates_consent_for_other_denied if fx.denied_because(patient_write("create", false), "not-own-record")

test_patient_deletes_consent_denied if fx.denied_because(patient_write("delete", true), "resource-type-not-writable")

test_patient_writes_observation_denied if {
	x := object.union(patient_write("create", true), {"resource_type": "Observation", "resource": {"type": "Observation"}})
	fx.denied_because(x, "resource-type-not-writable")
}

# --- no writes for the others ---------------------------------------------------

test_researcher_writes_denied if fx.denied_because(fx.write("researcher", "HRESCH", "create", "Observation", ""), "no-write-scope")

test_auditor_writes_audit_event_denied if fx.denied_because(fx.write("auditor", "HCOMPL", "create", "AuditEvent", ""), "no-write-scope")

test_mutual_writes_for_pricing_never if fx.alerted(fx.write("mutual-claims", "underwriting-pricing", "create", "Observation", ""))

test_write_without_resource_denied if {
	x := object.remove(fx.write("hospital-it", "HSYSADMIN", "create", "Observation", ""), ["resource"])
	fx.denied_because(x, "missing-resource")
}

test_write_scopes_are_data if {
	x := fx.write("researcher", "HRESCH", "create", "Observation", "")
	scope := {"id": "test", "actors": ["researcher"], "purposes": ["HRESCH"], "types": "audit", "obligations": [], "legal_basis": ["GDPR-9-2-j"]}
	d := fx.decide(x) with data.parcours.matrix.writes as [scope]
		with data.parcours.matrix.type_lists.audit as ["Observation"]
	d.allow
}

test_gp_city_activity_ingest_outside_care_team_allowed if {
	d := fx.decide(object.union(fx.write("gp", "TREAT", "create", "Observation", ""), {"patient": fx.patient(false, []), "ingest_source": "city-activity"}))
	d.allow
	"write-scope:city-activity-ingest" in d.reasons
}

test_gp_rest_write_outside_care_team_denied if {
	d := fx.decide(object.union(fx.write("gp", "TREAT", "create", "Observation", ""), {"patient": fx.patient(false, [])}))
	not d.allow
}

test_liability_register_ingest_patient_allowed if {
	d := fx.decide(object.union(fx.write("liability-risk-manager", "liability-claim-handling", "create", "Patient", ""), {"ingest_source": "liability-claims"}))
	d.allow
}

test_ingest_scope_of_another_source_denied if {
	d := fx.decide(object.union(fx.write("gp", "TREAT", "create", "Observation", ""), {"patient": fx.patient(false, []), "ingest_source": "hospital-stays"}))
	not d.allow
}

# Rupture rules are data the hub operator edits without a rebuild.
test_write_rule_library_by_hub_operator_allowed if {
	fx.allowed_because(fx.write("hospital-it", "HSYSADMIN", "update", "Library", ""), "write-scope:rupture-rule-definitions")
}

test_write_rule_library_by_clinician_denied if fx.denied(fx.write("hospital-clinician", "TREAT", "update", "Library", ""))

test_write_rule_library_for_operations_purpose_denied if fx.denied(fx.write("hospital-it", "HOPERAT", "update", "Measure", ""))

test_write_rule_library_delete_denied if fx.denied(fx.write("hospital-it", "HSYSADMIN", "delete", "Library", ""))

# A care team member records the consent its patient expressed.
test_write_consent_collected_in_care_team_allowed if {
	x := object.union(fx.write("hospital-clinician", "TREAT", "create", "Consent", ""), {"patient": fx.patient(true, [])})
	fx.allowed_because(x, "write-scope:consent-collection")
}

test_write_consent_collected_outside_care_team_denied if {
	x := object.union(fx.write("hospital-clinician", "TREAT", "create", "Consent", ""), {"patient": fx.patient(false, [])})
	fx.denied_because(x, "not-in-care-team")
}

test_write_consent_by_hospital_it_denied if fx.denied(fx.write("hospital-it", "HOPERAT", "create", "Consent", ""))

# A Consent the patient wrote (no organisation, the patient as source) is
# no organisation's to update or delete: once an empty source organisation
# counted as the caller's own, and a clinician withdrew the patient's
# objection (black-box review).
test_patient_consent_not_writable_by_organisations if {
	every ap in [["hospital-clinician", "TREAT"], ["programme-operator", "prevention-programme-delivery"]] {
		every interaction in ["update", "delete"] {
			w := fx.write(ap[0], ap[1], interaction, "Consent", "")
			d := fx.decide(object.union(w, {"resource": object.union(w.resource, {"source_actor": "patient"})}))
			not d.allow
		}
	}
}

# The same writers may still write a Consent they collect (a new one).
test_consent_collected_still_writable if {
	fx.decide(fx.write("hospital-clinician", "TREAT", "create", "Consent", "")).allow
}
