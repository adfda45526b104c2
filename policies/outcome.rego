# The shape of every decision: {allow, reasons, obligations, legal_basis}.
package parcours.outcome

allow(reasons, obligations, legal_basis) := {
	"allow": true,
	"reasons": reasons,
	"obligations": obligations,
	"legal_basis": legal_basis,
}

deny(reasons, obligations, legal_basis) := {
	"allow": false,
	"reasons": reasons,
	"obligations": obligations,
	"legal_basis": legal_basis,
}

# The decision when nothing applies (parcours.authz default).
no_rule := deny(["no-rule-allowed"], [], [])

alert := {"type": "alert"}

filter := {"type": "filter"}

audit := {"type": "audit"}

omit_content := {"type": "omit-content"}
