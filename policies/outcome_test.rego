package parcours.outcome_test

import data.parcours.outcome

test_allow_shape if {
	outcome.allow(["r"], [{"type": "audit"}], ["GDPR-9-2-h"]) == {
		"allow": true,
		"reasons": ["r"],
		"obligations": [{"type": "audit"}],
		"legal_basis": ["GDPR-9-2-h"],
	}
}

test_deny_shape if {
	outcome.deny(["r"], [], []) == {"allow": false, "reasons": ["r"], "obligations": [], "legal_basis": []}
}

test_no_rule_denied if {
	outcome.no_rule.allow == false
	outcome.no_rule.reasons == ["no-rule-allowed"]
}
