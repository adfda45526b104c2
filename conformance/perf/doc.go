// Package perf is the engine of `parcours perf`: one reproducible
// performance report of the hub next to its peers, and the soak. It drives
// every target with the same HTTP load loop (package conformance/load: 16
// keep-alive connections, a warm-up, a fixed measured duration) and prints
// one table with req/s, p50, p99, the ratio to a trivial Go handler and
// the ratios the project's goals are stated in. cmd/parcours wires the
// hub in (Config.StartHub, Config.Decide) so that this package imports
// nothing from the project but conformance/load.
//
// The targets of Run, each measured alone, one after the other:
//
//   - the floor: a net/http handler answering a fixed small JSON;
//   - GET /fhir/Patient/{id} on the hub with the policy off, on (no audit),
//     with the audit log, and with audit and tracing (every request traced
//     and exported over OTLP/HTTP to a sink in this process);
//   - Medplum's @medplum/fhir-router over its MemoryRepository behind a
//     small Node HTTP wrapper (medplum.mjs, written with node_modules into
//     a temporary directory by npm), GET /fhir/R4/Patient/{id};
//   - OPA as a REST sidecar (the opa binary built from the module's
//     go.mod version into a temporary directory, loaded with the hub's
//     policies) answering POST /v1/data/parcours/authz/decision with the
//     input the hub recorded for one of its GETs, next to the same decision
//     taken in process, memoised (as a GET takes it) and evaluated;
//   - durable creates (POST Patient) with the policy off and on, next to the
//     rate of fsync of the disk holding the data directory;
//   - $ingest of a generated city-activity file, in rows per second;
//   - a few representative searches over the Synthea corpus (or testdata/fhir
//     when the corpus is absent), under the policy.
//
// Soak runs one hub with the policy and the audit log under a mix of
// reads, searches, creates and updates and gives a verdict: no errors, a
// bounded p99 and a heap that does not grow (see SoakConfig).
//
// Caveats: the generator, the in-process targets and the child processes
// share the machine's cores, so ratios are meaningful within one run, and
// absolute numbers only on the machine the report names. Peers that
// cannot be set up (no npm, no network, no Go toolchain) are reported as
// skipped with the reason, and the run goes on.
package perf
