package parcours.consent_test

import data.parcours.consent
import data.parcours.fixtures_test as fx

org_permit := fx.optin([fx.org_a], ["TREAT"])

objections(x) := o if {
	o := consent.objections with input as x
}

permits(x) := p if {
	p := consent.permits with input as x
}

test_permit_matches_org if permits(fx.outside("gp", "TREAT", [org_permit])) == {"Consent/optin-1"}

test_permit_matches_rpps if {
	c := fx.optin(["10001234567"], ["TREAT"])
	permits(fx.outside("gp", "TREAT", [c])) == {"Consent/optin-1"}
}

test_permit_matches_care_team if {
	c := fx.optin(["CareTeam/ct-1"], ["TREAT"])
	permits(fx.outside("gp", "TREAT", [c])) == {"Consent/optin-1"}
}

test_permit_for_another_org_not_matched if {
	c := fx.optin([fx.org_b], ["TREAT"])
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_without_actors_applies_to_everyone if {
	c := fx.optin([], ["TREAT"])
	permits(fx.outside("gp", "TREAT", [c])) == {"Consent/optin-1"}
}

test_permit_without_purposes_applies_to_all_purposes if {
	c := fx.optin([fx.org_a], [])
	permits(fx.outside("gp", "COC", [c])) == {"Consent/optin-1"}
}

test_permit_for_another_purpose_not_matched if {
	# A TREAT permit does not grant COC: permits grant exactly what they name.
	count(permits(fx.outside("gp", "COC", [org_permit]))) == 0
}

test_permit_class_matches_type if {
	c := fx.with_classes(org_permit, ["Observation"])
	permits(fx.outside("gp", "TREAT", [c])) == {"Consent/optin-1"}
}

test_permit_class_excludes_other_types if {
	c := fx.with_classes(org_permit, ["Immunization"])
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_class_lenient_for_request_level_collection if {
	c := fx.with_classes(org_permit, ["Immunization"])
	x := object.union(fx.search("gp", "TREAT", "Patient"), {"patient": fx.patient(false, [c])})
	permits(x) == {"Consent/optin-1"}
}

test_permit_inside_period if {
	c := fx.with_period(org_permit, "2026-01-01T00:00:00Z", "2026-12-31T23:59:59Z")
	permits(fx.outside("gp", "TREAT", [c])) == {"Consent/optin-1"}
}

test_permit_expired_not_matched if {
	c := fx.with_period(org_permit, "2025-01-01T00:00:00Z", "2026-11-22T17:29:59Z")
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_not_yet_started_not_matched if {
	c := fx.with_period(org_permit, "2026-11-23", "2027-01-01")
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_date_only_end_includes_the_day if {
	c := fx.with_period(org_permit, "2026-01-01", "2026-11-22")
	permits(fx.outside("gp", "TREAT", [c])) == {"Consent/optin-1"}
}

test_permit_unreadable_period_not_matched if {
	c := fx.with_period(org_permit, "soon", "later")
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_withdrawn_not_matched if {
	c := object.union(org_permit, {"status": "inactive"})
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_draft_not_matched if {
	c := object.union(org_permit, {"status": "proposed"})
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_of_unknown_scope_not_matched if {
	c := object.union(org_permit, {"scope": "adr"})
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_permit_label_restricted if {
	c := object.union(org_permit, {"provisions": [object.union(org_permit.provisions[0], {"security_labels": ["PSY"]})]})
	count(permits(fx.outside("gp", "TREAT", [c]))) == 0
}

test_objection_matches_org if objections(fx.inside("gp", "TREAT", [fx.optout([fx.org_a], ["TREAT"])])) == {"Consent/optout-1"}

test_objection_without_actors_or_purposes_applies_to_all if objections(fx.inside("researcher", "HRESCH", [fx.optout([], [])])) == {"Consent/optout-1"}

test_objection_covers_the_column if {
	# An objection to TREAT is an objection to COC and rupture-detection.
	objections(fx.inside("gp", "COC", [fx.optout([fx.org_a], ["TREAT"])])) == {"Consent/optout-1"}
	objections(fx.inside("gp", "rupture-detection", [fx.optout([fx.org_a], ["TREAT"])])) == {"Consent/optout-1"}
}

test_objection_other_column_not_matched if {
	count(objections(fx.inside("gp", "HRESCH", [fx.optout([fx.org_a], ["TREAT"])]))) == 0
}

test_objection_other_actor_not_matched if {
	count(objections(fx.inside("gp", "TREAT", [fx.optout([fx.org_b], [])]))) == 0
}

test_objection_withdrawn_not_matched if {
	c := object.union(fx.optout([fx.org_a], []), {"status": "inactive"})
	count(objections(fx.inside("gp", "TREAT", [c]))) == 0
}

test_objection_expired_not_matched if {
	c := fx.with_period(fx.optout([fx.org_a], []), "2020-01-01", "2025-12-31")
	count(objections(fx.inside("gp", "TREAT", [c]))) == 0
}

test_objection_unreadable_period_still_objects if {
	c := fx.with_period(fx.optout([fx.org_a], []), "soon", "never")
	objections(fx.inside("gp", "TREAT", [c])) == {"Consent/optout-1"}
}

test_objection_limited_to_a_label if {
	c := object.union(fx.optout([], []), {"provisions": [{"type": "deny", "security_labels": ["PSY"]}]})
	count(objections(fx.inside("gp", "TREAT", [c]))) == 0
	objections(fx.object_labels(fx.inside("gp", "TREAT", [c]), ["PSY"])) == {"Consent/optout-1"}
}

test_nested_deny_wins_over_permit if {
	# Programme enrolment: permit the operator, deny the mutual (flattened).
	c := {
		"id": "Consent/prog-1", "status": "active", "scope": "patient-privacy", "policy": "OPTIN",
		"provisions": [
			{"type": "permit", "actors": [fx.org_a], "purposes": ["TREAT"]},
			{"type": "deny", "actors": [fx.org_a], "purposes": ["TREAT"], "classes": ["Observation"]},
		],
	}
	x := fx.outside("gp", "TREAT", [c])
	permits(x) == {"Consent/prog-1"}
	objections(x) == {"Consent/prog-1"}
	fx.denied_because(x, "patient-objection")
}

test_consent_without_id_still_objects if {
	c := object.remove(fx.optout([], []), ["id"])
	objections(fx.inside("gp", "TREAT", [c])) == {"Consent/?"}
}

test_no_patient_no_consents if {
	x := fx.search("gp", "TREAT", "Observation")
	count(objections(x)) == 0
	count(permits(x)) == 0
}

# Partial dates (a month, a year) bound a period by their first and last
# instants (now is 2026-11-22 in the fixtures).
test_permit_month_period if {
	permits(fx.outside("gp", "TREAT", [fx.with_period(org_permit, "2026-11", "2026-11")])) == {"Consent/optin-1"}
	count(permits(fx.outside("gp", "TREAT", [fx.with_period(org_permit, "2026-12", "2027")]))) == 0
	permits(fx.outside("gp", "TREAT", [fx.with_period(org_permit, "2026", "2026")])) == {"Consent/optin-1"}
}

test_objection_month_period_over if {
	count(objections(fx.outside("gp", "TREAT", [fx.with_period(fx.optout([fx.org_a], []), "2025", "2026-10")]))) == 0
}
