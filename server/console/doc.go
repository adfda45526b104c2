// Package console is the auditor console: one static web page, embedded in
// the binary, that the hub serves under /audit/ (issue 5, item 6).
//
// The page is plain HTML, CSS and JavaScript with no build step and nothing
// fetched from elsewhere. It holds no data of its own: signed in with an
// auditor's bearer token (kept in the tab's sessionStorage), it reads the
// hub's FHIR API as any other client, sending X-Purpose-Of-Use: HCOMPL:
//
//   - GET /fhir/AuditEvent?date=ge…&date=le…&agent=&purpose=&outcome=&patient=&_count=50
//     to filter decisions, following Bundle.link[next] to page;
//   - GET /fhir/AuditEvent?subtype=110127&_count=50 for the break-the-glass
//     events, each with the status of its review (extension
//     break-glass-review: requested or completed);
//   - POST /fhir/AuditEvent/{decision id}/$review to mark one reviewed;
//   - GET /fhir/AuditEvent?subtype=care-relation-declared&_count=50 for the
//     writes by which a professional joined a patient's care team;
//   - GET /fhir/$audit-verify to check the hash chain.
//
// The package imports nothing from the project and only net/http and embed
// from the standard library; server registers Handler on /audit/*.
package console
