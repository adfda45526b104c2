// Package suite is a REST conformance suite for any FHIR R4 server: it reads
// the CapabilityStatement, then exercises the interactions over plain HTTP and
// JSON and reports one pass, fail or skip Result per check. It is the engine
// of the `parcours conformance` command: cmd/parcours parses flags into a
// Config, calls Run and prints Report.Table. It imports nothing from the
// project; the command passes the R4 JSON-schema validator of package
// conformance as Config.Validate.
//
// The checks come in groups run in this order: metadata (the
// CapabilityStatement), crud (with the read of a never-created id: 404),
// history (vread, of a version beyond the current too: 404; instance and
// type history, paging), etag (If-Match, If-None-Match), conditional
// (create, update and delete by criteria), bundles (transaction and batch),
// search (on a sample of 5 Patients and 10 Observations the suite loads
// itself), errors (bad input answers 4xx) and validity (every resource the
// server returned in the run, checked with Config.Validate). Every error
// status a check expects must come with an OperationOutcome body (JSON, an
// issue with a severity and a code), as R4 http.html recommends. A check that depends on an interaction,
// a search parameter or a capability flag the CapabilityStatement does not
// declare is skipped with the reason; a check that fails never stops the
// others.
//
// Every run draws a random run id. The resources it writes carry an
// identifier in the system IdentifierSystem + run id (the search sample in
// that system + ":search"), so searches see only this run's data and the
// suite can run repeatedly against a shared server. Next links are followed
// only on the server under test, so the token goes nowhere else.
// What a run creates is deleted at its end (deletion is logical on most
// servers: history keeps it).
//
// Caveats: the suite writes to the server it tests; never point it at a
// server holding real health data. Search checks isolate their sample with
// the identifier search parameter (token system|, any value in the system),
// so they are skipped on a server without it. The type-history check looks
// for the run's versions in the first pages of history since the run's first
// write and may miss them on a server with very many concurrent writes.
package suite
