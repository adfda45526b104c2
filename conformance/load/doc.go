// Package load drives a FHIR R4 server over HTTP with a fixed number of
// concurrent keep-alive connections for a fixed time and reports throughput
// and latency percentiles. It is the engine of the `parcours load` command:
// cmd/parcours parses flags into a Config, calls Run and prints the Report.
// It speaks plain FHIR REST to any server, not only Parcours, and imports
// nothing from the project.
//
// A run has three phases. Seeding creates Config.Seed Patients, each with a
// distinct identifier in the system IdentifierSystem, and remembers the ids
// the server assigned. An optional warm-up (one second by default) opens the
// connections and warms the server's caches without being counted. The
// measured phase then runs one worker per connection, each issuing requests
// back to back: reads of seeded ids, searches by seeded identifier, creates,
// updates of seeded Patients, or a 70/20/5/5 mix of the four. A worker
// updates only its own share of the seeded Patients, so that two updates of
// one resource are never in flight together. A custom run (Config.Requests)
// seeds nothing and sends given requests instead, to any HTTP endpoint.
//
// With Config.Interval the measured phase is also reported interval by
// interval (Config.OnInterval) while it runs, for soak tests.
//
// Each worker records latencies in its own log-linear histogram (128
// sub-buckets per power of two, under 0.5% relative error), merged only when
// the run ends (an uncontended mutex per worker lets the end of an interval
// take a worker's interval histograms), so the generator adds no shared
// state per request. Response bodies are read to the end so connections
// are reused; request bodies are built once.
//
// Caveats: latency is measured on the client, from sending the request to
// reading the last byte of the response, and includes the generator's own
// scheduling delays; run it on other cores or another machine than the
// server when the numbers matter. It is a closed-loop generator: a slow
// server gets fewer requests, so RPS is what the server sustained at this
// concurrency, not an offered rate. Requests still in flight when the phase
// ends are neither counted nor timed.
package load
