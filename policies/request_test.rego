package parcours.request_test

import data.parcours.fixtures_test as fx
import data.parcours.request

ok := fx.read("gp", "TREAT")

errors_of(x) := e if {
	e := request.errors with input as x
}

test_well_formed_input_no_errors if count(errors_of(ok)) == 0

test_non_object_input_denied if {
	fx.denied_because("TREAT", "malformed-input")
	fx.denied_because(null, "malformed-input")
	fx.denied_because([ok], "malformed-input")
}

test_missing_subject_denied if fx.denied_because(object.remove(ok, ["subject"]), "missing-subject")

test_missing_actor_type_denied if {
	x := json.remove(ok, ["subject/actor_type"])
	fx.denied_because(x, "missing-actor-type")
}

test_empty_actor_type_denied if fx.denied_because(object.union(ok, {"subject": {"actor_type": " "}}), "missing-actor-type")

test_unknown_actor_type_denied if fx.denied_because(object.union(ok, {"subject": {"actor_type": "insurer-ceo"}}), "unknown-actor-type")

test_missing_purpose_denied if fx.denied_because(object.remove(ok, ["purpose"]), "missing-purpose")

test_unknown_purpose_denied if {
	x := object.union(ok, {"purpose": "CURIOSITY", "subject": {"purposes": ["CURIOSITY"]}})
	fx.denied_because(x, "unknown-purpose")
}

test_purpose_not_in_token_denied if {
	x := object.union(ok, {"subject": {"purposes": ["COC"]}})
	fx.denied_because(x, "purpose-not-in-token")
}

test_token_purposes_not_a_list_denied if {
	x := object.union(ok, {"subject": {"purposes": "TREAT"}})
	fx.denied_because(x, "malformed-token-purposes")
}

test_token_without_purposes_denied if {
	x := json.remove(ok, ["subject/purposes"])
	fx.denied_because(x, "malformed-token-purposes")
}

test_forbidden_purpose_not_in_token_alerts if {
	x := object.union(fx.read("mutual-claims", "HPAYMT"), {"purpose": "underwriting-pricing"})
	fx.denied_because(x, "purpose-not-in-token")
	fx.alerted(x)
}

test_missing_now_denied if fx.denied_because(object.remove(ok, ["now"]), "missing-now")

test_malformed_now_denied if fx.denied_because(object.union(ok, {"now": "yesterday"}), "malformed-now")

test_unknown_interaction_denied if fx.denied_because(object.union(ok, {"interaction": "peek"}), "unknown-interaction")

test_missing_interaction_denied if fx.denied_because(object.remove(ok, ["interaction"]), "unknown-interaction")

test_unknown_operation_denied if {
	x := object.union(ok, {"interaction": "operation", "operation": "$exfiltrate"})
	fx.denied_because(x, "unknown-operation")
}

test_resource_not_an_object_denied if fx.denied_because(object.union(ok, {"resource": "Observation/1"}), "malformed-resource")

test_resource_without_type_denied if {
	x := json.remove(ok, ["resource/type"])
	fx.denied_because(x, "malformed-resource")
}

test_labels_not_a_list_denied if fx.denied_because(object.union(ok, {"resource": {"security_labels": "R"}}), "malformed-security-labels")

test_patient_not_an_object_denied if fx.denied_because(object.union(ok, {"patient": true}), "malformed-patient")

test_consents_not_a_list_denied if fx.denied_because(object.union(ok, {"patient": {"consents": {"id": "c"}}}), "malformed-consents")

test_consent_not_an_object_denied if fx.denied_because(object.union(ok, {"patient": {"consents": ["Consent/1"]}}), "malformed-consents")

test_provision_with_unknown_type_denied if {
	c := object.union(fx.optout([], []), {"provisions": [{"type": "maybe"}]})
	fx.denied_because(fx.inside("gp", "TREAT", [c]), "malformed-consents")
}

test_provision_actors_not_a_list_denied if {
	c := object.union(fx.optout([], []), {"provisions": [{"type": "deny", "actors": "Organization/x"}]})
	fx.denied_because(fx.inside("gp", "TREAT", [c]), "malformed-consents")
}

test_aggregate_not_boolean_denied if fx.denied_because(object.union(ok, {"aggregate": "yes"}), "malformed-aggregate")

test_break_glass_not_object_denied if fx.denied_because(object.union(ok, {"break_glass": "emergency"}), "malformed-break-glass")

test_resource_type_not_string_denied if fx.denied_because(object.union(ok, {"resource_type": 42}), "malformed-resource-type")

test_patient_actor_without_patient_claim_denied if fx.denied_because(fx.read("patient", "PATRQT"), "missing-subject-patient")

test_malformed_decision_has_no_legal_basis if {
	d := fx.decide(object.remove(ok, ["purpose"]))
	d.legal_basis == []
	d.allow == false
}

test_resource_type_from_resource if {
	x := object.union(ok, {"resource_type": ""})
	request.resource_type == "Observation" with input as x
}

test_resource_type_from_request if {
	request.resource_type == "Condition" with input as fx.search("gp", "TREAT", "Condition")
}

test_resource_type_empty_for_system_search if {
	x := object.remove(fx.search("gp", "TREAT", ""), ["resource_type"])
	request.resource_type == "" with input as x
}

test_classes_of_interactions if {
	request.class == "read" with input as fx.search("gp", "TREAT", "Observation")
	request.class == "write" with input as fx.write("gp", "TREAT", "delete", "Observation", "")
	request.class == "read" with input as fx.aggregate("public-health", "PUBHLTH")
	request.class == "bundle" with input as object.union(ok, {"interaction": "transaction"})
	request.class == "terminology" with input as object.union(ok, {"interaction": "operation", "operation": "$translate"})
}

test_collection_of_everything if {
	request.collection with input as object.union(ok, {"interaction": "operation", "operation": "$everything"})
	not request.collection with input as ok
}

test_evaluate_measure_is_aggregate if {
	x := object.union(fx.aggregate("public-health", "PUBHLTH"), {"aggregate": false})
	request.aggregate with input as x
}

test_caller_ids if {
	ids := request.caller_ids with input as ok
	ids == {fx.org_a, "10001234567", "https://rpps.esante.gouv.fr|10001234567", "CareTeam/ct-1"}
}

test_own_org_requires_subject_org if {
	x := object.union(ok, {"subject": {"org": ""}, "resource": {"source_org": ""}})
	not request.from_own_org with input as x
	not request.writable_by_own_org with input as x
}
