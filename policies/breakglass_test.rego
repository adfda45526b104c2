package parcours.breakglass_test

import data.parcours.breakglass
import data.parcours.fixtures_test as fx

btg_obligations := [
	{"type": "audit"},
	{"type": "notify", "target": "privacy-officer"},
	{"type": "notify", "target": "patient"},
]

test_clinician_etreat_with_reason_allowed if {
	d := fx.decide(fx.btg("hospital-clinician", "ETREAT", "unconscious patient, emergency department"))
	d.allow
	"break-the-glass" in d.reasons
	d.obligations == btg_obligations
	d.legal_basis == ["GDPR-9-2-c"]
}

test_gp_btg_with_reason_allowed if {
	d := fx.decide(fx.btg("gp", "BTG", "SAMU call"))
	d.allow
	d.obligations == btg_obligations
}

test_clinician_etreat_without_reason_denied if fx.denied_because(fx.outside("hospital-clinician", "ETREAT", []), "break-glass-reason-missing")

test_clinician_blank_reason_denied if fx.denied_because(fx.btg("hospital-clinician", "ETREAT", "   "), "break-glass-reason-missing")

test_break_glass_overrides_objection_allowed if {
	x := object.union(fx.btg("hospital-clinician", "ETREAT", "cardiac arrest"), {"patient": fx.patient(true, [fx.optout([], [])])})
	fx.allowed_because(x, "break-the-glass")
}

test_break_glass_overrides_sensitive_label_allowed if {
	fx.allowed_because(fx.object_labels(fx.btg("gp", "ETREAT", "overdose"), ["PSY", "R"]), "break-the-glass")
}

test_break_glass_never_overrides_v_denied if {
	x := fx.object_labels(fx.btg("hospital-clinician", "ETREAT", "emergency"), ["V"])
	fx.denied_because(x, "security-label-V-never-via-break-glass")
}

test_break_glass_pharmacist_denied if {
	x := fx.btg("pharmacist", "ETREAT", "emergency dispensing")
	fx.denied_because(x, "break-glass-not-permitted-for-actor")
	fx.denied_because(x, "cell-not-applicable")
}

test_break_glass_researcher_denied if fx.denied_because(fx.btg("researcher", "BTG", "curiosity"), "break-glass-not-permitted-for-actor")

test_break_glass_mutual_never_alert if {
	x := fx.btg("mutual-prevention", "ETREAT", "please")
	fx.denied_because(x, "matrix-never")
	fx.alerted(x)
}

test_break_glass_liability_never_alert if fx.alerted(fx.btg("liability-risk-manager", "BTG", "claim"))

test_break_glass_reason_ignored_for_treat if {
	# A justification sent with TREAT changes nothing: outside the care team
	# without consent stays denied.
	x := object.union(fx.outside("gp", "TREAT", []), {"break_glass": {"reason": "hurry"}})
	fx.denied_because(x, "outside-care-team-no-consent")
}

test_break_glass_search_filtered if {
	x := object.union(fx.search("hospital-clinician", "ETREAT", "Observation"), {"break_glass": {"reason": "emergency"}, "one_patient": true})
	d := fx.decide(x)
	d.allow
	{"type": "filter"} in d.obligations
	{"type": "audit"} in d.obligations
}

test_break_glass_not_for_aggregates_denied if {
	x := object.union(fx.aggregate("hospital-clinician", "ETREAT"), {"break_glass": {"reason": "emergency"}})
	fx.denied_because(x, "aggregate-not-for-this-cell")
}

test_in_effect_needs_entitled_actor if {
	# Even a misconfigured cell cannot give break-the-glass to a mutual.
	x := object.union(fx.btg("mutual-claims", "ETREAT", "x"), {})
	not breakglass.in_effect with input as x
		with data.parcours.matrix.cells["mutual-claims"].BTG as {"kind": "allow", "break_glass": true, "legal_basis": ["GDPR-9-2-c"]}
}

test_break_glass_within_window_allowed if {
	d := fx.decide(object.union(fx.btg("gp", "BTG", "SAMU call"), {"break_glass": {"reason": "SAMU call", "started": "2026-11-22T16:00:00Z", "expires": "2026-11-22T20:00:00Z"}}))
	d.allow
}

test_break_glass_after_window_denied if {
	d := fx.decide(object.union(fx.btg("gp", "BTG", "SAMU call"), {"break_glass": {"reason": "SAMU call", "started": "2026-11-21T08:00:00Z", "expires": "2026-11-21T12:00:00Z"}}))
	not d.allow
}

# Break-the-glass opens one patient's record, never a search across
# patients (black-box review: one justified search returned the hub).
test_break_glass_search_across_patients_denied if {
	every actor in ["hospital-clinician", "gp"] {
		every interaction in ["search-type", "search-system", "history-type", "history-system"] {
			x := object.union(fx.search(actor, "ETREAT", "Condition"), {"interaction": interaction, "break_glass": {"reason": "SAMU"}})
			fx.denied_because(x, "break-glass-one-patient-only")
		}
	}
}

test_break_glass_search_of_one_patient_allowed if {
	x := object.union(fx.search("gp", "ETREAT", "Condition"), {"break_glass": {"reason": "SAMU"}, "one_patient": true})
	fx.allowed_because(x, "break-the-glass")
}

test_break_glass_instance_level_allowed if {
	every interaction in ["read", "vread", "history-instance"] {
		x := object.union(fx.search("gp", "ETREAT", "Condition"), {"interaction": interaction, "break_glass": {"reason": "SAMU"}})
		fx.allowed_because(x, "break-the-glass")
	}
}
