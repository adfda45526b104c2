package parcours.authz_test

import data.parcours.authz
import data.parcours.fixtures_test as fx
import data.parcours.matrix

# The matrix of domain brief §5 (plus the programme-operator and patient rows
# and the PATRQT column), one kind per cell as the column's base kind. A
# change to matrix.json that changes the policy fails here: update both
# deliberately.
expected := {
	"hospital-clinician": ["opt-out", "allow", "not-applicable", "allow", "consent", "allow", "pseudonymised", "pseudonymised", "not-applicable", "never", "never", "not-applicable"],
	"hospital-it": ["not-applicable", "not-applicable", "not-applicable", "allow", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "allow", "never", "never", "not-applicable"],
	"gp": ["opt-out", "allow", "allow", "allow", "consent", "allow", "pseudonymised", "pseudonymised", "not-applicable", "never", "never", "not-applicable"],
	"pharmacist": ["opt-out", "not-applicable", "allow", "allow", "consent", "allow", "pseudonymised", "not-applicable", "not-applicable", "never", "never", "not-applicable"],
	"programme-operator": ["not-applicable", "not-applicable", "not-applicable", "not-applicable", "consent", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "never", "never", "not-applicable"],
	"mutual-prevention": ["never", "never", "not-applicable", "not-applicable", "aggregate", "not-applicable", "aggregate", "never", "not-applicable", "never", "never", "not-applicable"],
	"mutual-claims": ["never", "never", "allow", "not-applicable", "never", "not-applicable", "not-applicable", "never", "not-applicable", "never", "never", "not-applicable"],
	"liability-risk-manager": ["never", "never", "not-applicable", "pseudonymised", "not-applicable", "not-applicable", "aggregate", "pseudonymised", "not-applicable", "never", "never", "not-applicable"],
	"auditor": ["not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "allow", "never", "never", "not-applicable"],
	"researcher": ["not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "pseudonymised", "not-applicable", "not-applicable", "never", "never", "not-applicable"],
	"public-health": ["not-applicable", "not-applicable", "not-applicable", "not-applicable", "aggregate", "allow", "pseudonymised", "not-applicable", "allow", "never", "never", "not-applicable"],
	"patient": ["not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "not-applicable", "never", "never", "allow"],
}

columns := ["TREAT/COC", "BTG", "PAY", "OPS-QI", "PREV", "PH", "RES", "LIAB", "AUDIT", "PRICE", "MKT", "PATRQT"]

test_matrix_is_the_brief if {
	every actor, kinds in expected {
		every i, column in columns {
			matrix.cells[actor][column].kind == kinds[i]
		}
	}
	count(expected) == count(matrix.cells)
	count(columns) == count(matrix.columns)
}

# --- decision always defined, fail closed ------------------------------------

shape_ok(d) if {
	is_boolean(d.allow)
	is_array(d.reasons)
	count(d.reasons) > 0
	is_array(d.obligations)
	is_array(d.legal_basis)
}

test_decision_defined_for_garbage if {
	every x in [null, true, 1, "x", [], {}, {"subject": {}}, {"subject": {"actor_type": "gp"}}] {
		d := authz.decision with input as x
		shape_ok(d)
		d.allow == false
	}
}

test_decision_without_input_denied if {
	authz.decision.allow == false
	"malformed-input" in authz.decision.reasons
}

test_every_actor_and_purpose_decided if {
	every actor, _ in matrix.actor_types {
		every code, _ in matrix.purposes {
			shape_ok(fx.decide(fx.read(actor, code)))
			shape_ok(fx.decide(fx.aggregate(actor, code)))
			shape_ok(fx.decide(fx.search(actor, code, "Observation")))
		}
	}
}

test_every_allow_has_a_legal_basis if {
	every actor, _ in matrix.actor_types {
		every code, _ in matrix.purposes {
			every x in [fx.read(actor, code), fx.aggregate(actor, code), fx.search(actor, code, "")] {
				basis_if_allowed(fx.decide(x))
			}
		}
	}
}

basis_if_allowed(d) if d.allow == false

basis_if_allowed(d) if count(d.legal_basis) > 0

test_evaluation_error_free_on_odd_types if {
	# Strings where objects are expected must deny, not raise.
	x := object.union(fx.read("gp", "TREAT"), {"patient": {"care_team": "yes", "is_self": "true"}})
	d := fx.decide(x)
	shape_ok(d)
	d.allow == false
}

test_unknown_purpose_denied if {
	x := object.union(fx.read("gp", "TREAT"), {"purpose": "FUN", "subject": {"purposes": ["FUN"]}})
	d := fx.decide(x)
	d.allow == false
	d.reasons == ["unknown-purpose"]
}

test_purpose_not_in_token_denied if {
	x := object.union(fx.read("gp", "TREAT"), {"subject": {"purposes": ["HRESCH"]}})
	d := fx.decide(x)
	d.reasons == ["purpose-not-in-token"]
	d.obligations == []
}

test_unknown_actor_denied if fx.denied_because(object.union(fx.read("gp", "TREAT"), {"subject": {"actor_type": "root"}}), "unknown-actor-type")

test_errors_reported_together if {
	d := fx.decide({"subject": {"actor_type": "gp", "purposes": []}, "interaction": "read"})
	d.reasons == ["missing-now", "missing-purpose"]
}

# --- ⛔ never -------------------------------------------------------------------

test_never_pricing_per_resource_alert if fx.alerted(fx.read("mutual-claims", "underwriting-pricing"))

test_never_pricing_aggregated_alert if {
	d := fx.decide(fx.aggregate("mutual-claims", "underwriting-pricing"))
	d.allow == false
	d.obligations == [{"type": "alert"}]
	"CSP-L1461-1-V" in d.legal_basis
}

test_never_pricing_aggregated_for_every_actor if {
	every actor, _ in matrix.actor_types {
		fx.alerted(fx.aggregate(actor, "underwriting-pricing"))
	}
}

test_never_marketing_for_every_actor if {
	every actor, _ in matrix.actor_types {
		fx.alerted(fx.read(actor, "HMARKT"))
		fx.alerted(fx.aggregate(actor, "HMARKT"))
	}
}

test_never_liability_pricing_aggregated if fx.alerted(fx.aggregate("liability-risk-manager", "underwriting-pricing"))

test_never_mutual_treat_alert if {
	fx.alerted(fx.read("mutual-prevention", "TREAT"))
	fx.alerted(fx.read("mutual-claims", "COC"))
}

test_never_mutual_treat_aggregated if {
	fx.alerted(fx.aggregate("mutual-prevention", "TREAT"))
	fx.alerted(fx.aggregate("mutual-claims", "rupture-detection"))
}

test_never_mutual_treat_with_consent if {
	# Not even an explicit permit opens a never cell.
	fx.alerted(fx.outside("mutual-prevention", "TREAT", [fx.optin([], [])]))
}

test_never_mutual_programme_delivery if fx.alerted(fx.read("mutual-prevention", "prevention-programme-delivery"))

test_never_mutual_claims_programme_reports_aggregated if fx.alerted(fx.aggregate("mutual-claims", "prevention-programme-reporting"))

test_never_search_alert if fx.alerted(fx.search("mutual-claims", "HMARKT", "Patient"))

test_never_write_alert if fx.alerted(fx.write("hospital-it", "HMARKT", "create", "Organization", ""))

test_forbidden_purpose_alert_on_malformed_input if {
	d := fx.decide(object.remove(fx.aggregate("mutual-claims", "underwriting-pricing"), ["now"]))
	d.allow == false
	d.obligations == [{"type": "alert"}]
}

test_never_not_alerted_for_plain_deny if {
	d := fx.decide(fx.read("researcher", "TREAT"))
	d.allow == false
	d.obligations == []
}
