// Package policies holds the Rego v1 policies of Parcours and the data they
// use, embedded in the binary. package server/policy loads them; the
// input/output contract is README.md. Every rule file has a _test.rego,
// run by `go test ./...` (policies_test.go).
package policies

import "embed"

// FS holds every .rego and .json file of this directory (tests included:
// the policy engine skips *_test.rego when it prepares the decision).
//
//go:embed *.rego *.json
var FS embed.FS
