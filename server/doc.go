// Package server is the Parcours FHIR R4 HTTP API: echo routes, the request
// path of DESIGN §2 as middleware, the REST interactions over package store,
// batch and transaction bundles, and the one place where errors become
// OperationOutcome responses (errors.go).
//
// Every interaction is expressed once, as a function of a request and a store
// transaction (interactions.go), and used both by the HTTP handlers and by
// bundle entries, so that the later policy, audit and obligation steps apply
// to both alike. echo stops here.
package server
