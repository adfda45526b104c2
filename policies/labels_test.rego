package parcours.labels_test

import data.parcours.fixtures_test as fx
import data.parcours.labels

test_normal_label_not_restricted if {
	not labels.restricted with input as fx.labelled("gp", "TREAT", ["N"])
	fx.allowed(fx.labelled("researcher", "HRESCH", ["N"]))
}

test_sensitive_label_restricted if labels.restricted with input as fx.labelled("gp", "TREAT", ["PSY"])

test_r_label_restricted if labels.restricted with input as fx.labelled("gp", "TREAT", ["R"])

test_v_label_very_restricted if {
	labels.very_restricted with input as fx.labelled("gp", "TREAT", ["V"])
	labels.restricted with input as fx.labelled("gp", "TREAT", ["V"])
}

test_gp_in_care_team_reads_psy_allowed if fx.allowed(fx.labelled("gp", "TREAT", ["PSY"]))

test_clinician_in_care_team_reads_v_allowed if fx.allowed(fx.labelled("hospital-clinician", "TREAT", ["V", "HIV"]))

test_clinician_in_care_team_reads_r_for_coc_allowed if fx.allowed(fx.labelled("hospital-clinician", "COC", ["R"]))

test_pharmacist_in_care_team_reads_psy_denied if fx.denied_because(fx.labelled("pharmacist", "TREAT", ["PSY"]), "security-label-restricted")

test_gp_outside_care_team_with_consent_reads_hiv_denied if {
	x := fx.object_labels(fx.outside("gp", "TREAT", [fx.optin([fx.org_a], ["TREAT"])]), ["HIV"])
	fx.denied_because(x, "security-label-restricted")
}

test_gp_outside_care_team_with_consent_reads_normal_allowed if {
	fx.allowed(fx.outside("gp", "TREAT", [fx.optin([fx.org_a], ["TREAT"])]))
}

test_researcher_reads_sdv_denied if fx.denied_because(fx.labelled("researcher", "HRESCH", ["SDV"]), "security-label-restricted")

test_clinician_ops_reads_r_denied if fx.denied_because(fx.labelled("hospital-clinician", "HOPERAT", ["R"]), "security-label-restricted")

test_researcher_reads_v_denied if fx.denied_because(fx.labelled("researcher", "HRESCH", ["V"]), "security-label-very-restricted")

test_aggregate_includes_sensitive_resource_allowed if {
	x := object.union(fx.aggregate("public-health", "PUBHLTH"), {"resource": fx.resource("Observation")})
	fx.allowed(fx.object_labels(x, ["HIV"]))
}

test_aggregate_excludes_v_resource_denied if {
	x := object.union(fx.aggregate("public-health", "PUBHLTH"), {"resource": fx.resource("Observation")})
	fx.denied_because(fx.object_labels(x, ["V"]), "security-label-very-restricted")
}

test_request_level_search_ignores_labels if {
	# Labels are per resource: a search is allowed and filtered.
	fx.obliged(fx.search("researcher", "HRESCH", "Observation"), {"type": "filter"})
}

test_unknown_label_is_not_restricted if fx.allowed(fx.labelled("researcher", "HRESCH", ["HTEST"]))

test_sensitivity_list_is_data if {
	d := fx.decide(fx.labelled("researcher", "HRESCH", ["IVG"])) with data.parcours.matrix.labels.sensitive as ["IVG"]
	d.allow == false
	"security-label-restricted" in d.reasons
}
