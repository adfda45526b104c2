package parcours.operations_test

import data.parcours.fixtures_test as fx

op(actor, purpose, operation) := object.union(fx.search(actor, purpose, ""), {
	"interaction": "operation",
	"operation": operation,
})

ingest(actor, purpose, source) := object.union(op(actor, purpose, "$ingest"), {"ingest_source": source})

# --- terminology ------------------------------------------------------------

test_translate_allowed_for_any_actor if {
	every actor in ["gp", "auditor", "mutual-claims", "researcher"] {
		fx.allowed_because(op(actor, "HPAYMT", "$translate"), "terminology-no-personal-data")
	}
}

test_translate_for_marketing_never if fx.alerted(op("gp", "HMARKT", "$translate"))

# --- ingest -------------------------------------------------------------------

test_ingest_hospital_stays_allowed if {
	d := fx.decide(ingest("hospital-it", "HOPERAT", "hospital-stays"))
	d.allow
	{"type": "filter"} in d.obligations
	{"type": "omit-content"} in d.obligations
	d.legal_basis == ["CSP-L1111-8", "GDPR-9-2-h"]
}

test_ingest_city_activity_by_pharmacist_allowed if fx.allowed(ingest("pharmacist", "TREAT", "city-activity"))

test_ingest_prevention_by_operator_allowed if fx.allowed(ingest("programme-operator", "prevention-programme-delivery", "prevention-programme"))

test_ingest_claims_by_liability_allowed if fx.allowed(ingest("liability-risk-manager", "liability-claim-handling", "liability-claims"))

test_ingest_hospital_stays_by_gp_denied if fx.denied_because(ingest("gp", "TREAT", "hospital-stays"), "ingest-source-not-permitted")

test_ingest_wrong_purpose_denied if fx.denied_because(ingest("hospital-it", "HRESCH", "hospital-stays"), "ingest-source-not-permitted")

test_ingest_by_mutual_denied if fx.denied_because(ingest("mutual-prevention", "prevention-programme-reporting", "prevention-programme"), "ingest-source-not-permitted")

test_ingest_without_source_denied if fx.denied_because(op("hospital-it", "HOPERAT", "$ingest"), "missing-ingest-source")

test_ingest_unknown_source_denied if fx.denied_because(ingest("hospital-it", "HOPERAT", "emails"), "unknown-ingest-source")

# --- process: $detect-ruptures ---------------------------------------------------

test_detect_ruptures_hospital_it_allowed if {
	d := fx.decide(op("hospital-it", "HSYSADMIN", "$detect-ruptures"))
	d.allow
	d.obligations == [{"type": "omit-content"}]
	d.legal_basis == ["GDPR-9-2-h", "CSP-L1111-8"]
}

# hospital-it runs detection over all patients, never for one (the answer
# would be that patient's ruptures).
test_detect_ruptures_hospital_it_one_patient_denied if {
	x := object.union(op("hospital-it", "HSYSADMIN", "$detect-ruptures"), {"patient": fx.patient(true, [])})
	fx.denied_because(x, "single-patient-run-not-permitted")
}

test_detect_ruptures_gp_care_team_patient_allowed if {
	x := object.union(op("gp", "rupture-detection", "$detect-ruptures"), {"patient": fx.patient(true, [])})
	fx.allowed(x)
}

test_detect_ruptures_gp_all_patients_denied if fx.denied_because(op("gp", "rupture-detection", "$detect-ruptures"), "patient-required")

test_detect_ruptures_gp_outside_care_team_denied if {
	x := object.union(op("gp", "rupture-detection", "$detect-ruptures"), {"patient": fx.patient(false, [])})
	fx.denied_because(x, "not-in-care-team")
}

test_detect_ruptures_gp_objection_denied if {
	x := object.union(op("gp", "rupture-detection", "$detect-ruptures"), {"patient": fx.patient(true, [fx.optout([], ["COC"])])})
	fx.denied_because(x, "patient-objection")
}

test_detect_ruptures_researcher_denied if fx.denied_because(op("researcher", "HRESCH", "$detect-ruptures"), "operation-not-permitted")

# --- bundle as a whole --------------------------------------------------------

bundle(actor, purpose) := object.union(op(actor, purpose, ""), {"interaction": "transaction"})

test_transaction_hospital_it_filtered if {
	d := fx.decide(bundle("hospital-it", "HOPERAT"))
	d.allow
	d.obligations == [{"type": "filter"}]
}

test_batch_gp_filtered if fx.obliged(object.union(bundle("gp", "TREAT"), {"interaction": "batch"}), {"type": "filter"})

test_transaction_auditor_research_denied if fx.denied_because(bundle("auditor", "HRESCH"), "no-write-scope")

test_transaction_for_pricing_never if fx.alerted(bundle("mutual-claims", "underwriting-pricing"))

# --- process: $review-break-glass (auditors close break-the-glass reviews) --

test_review_break_glass_auditor_allowed if {
	x := object.union(op("auditor", "HCOMPL", "$review-break-glass"), {"resource_type": "AuditEvent"})
	d := fx.decide(x)
	d.allow
	"operation:$review-break-glass" in d.reasons
}

test_review_break_glass_others_denied if {
	every actor in ["gp", "hospital-clinician", "hospital-it", "public-health"] {
		x := object.union(op(actor, "HCOMPL", "$review-break-glass"), {"resource_type": "AuditEvent"})
		not fx.decide(x).allow
	}
}

test_review_break_glass_auditor_other_purpose_denied if {
	x := object.union(op("auditor", "TREAT", "$review-break-glass"), {"resource_type": "AuditEvent"})
	not fx.decide(x).allow
}
