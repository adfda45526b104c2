# Entry point: data.parcours.authz.decision, always defined.
#
# {"allow": bool, "reasons": [string], "obligations": [object],
#  "legal_basis": [string]}: see README.md for the contract.
#
# Order: malformed input, then the matrix's "never" cells (deny and alert for
# every interaction), then the rule family of the request class.
package parcours.authz

import data.parcours.cells
import data.parcours.matrix
import data.parcours.operations
import data.parcours.outcome
import data.parcours.reads
import data.parcours.request as req
import data.parcours.writes

default decision := {
	"allow": false,
	"reasons": ["no-rule-allowed"],
	"obligations": [],
	"legal_basis": [],
}

decision := outcome.deny(req.errors_sorted, forbidden_purpose_alert, []) if {
	count(req.errors) > 0
} else := cells.never_decision if {
	cells.never
} else := reads.decision if {
	req.class == "read"
} else := writes.decision if {
	req.class == "write"
} else := operations.decision if {
	req.class in {"terminology", "ingest", "process", "bundle"}
}

# An attempt at a forbidden purpose (pricing, marketing) raises an alert even
# when the request is otherwise malformed or the token lacks the purpose.
forbidden_purpose_alert := [outcome.alert] if {
	matrix.columns[matrix.purposes[input.purpose].column].alert_always == true
} else := []
