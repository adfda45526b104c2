// Package mappings turns the native files of the hub's actors (DESIGN §6)
// into FHIR R4 transaction Bundles. It holds the Mapper contract, the
// registry the server looks sources up in, and what every mapper shares:
// the CSV/NDJSON reader that reports bad rows with line and column, field
// checks (dates, INS-NIR keys, code formats), and the Batch that assembles
// the Bundle. One package per native format (mappings/hospital, city,
// prevention, liability) implements Mapper and registers itself in init;
// import mappings/all to register them all. The shared vocabulary and stage
// resolution live in mappings/vocab (a leaf). From the project it imports
// server/outcome (the one error vocabulary) and mappings/vocab only.
//
// # The contract
//
// Map reads one whole file. It returns an error only when reading fails
// (or, with Options.Chunks, with what Chunks returned);
// every problem with the content is an outcome.Issue in Result.Issues:
// Line (1-based; the CSV header is line 1), Column, Expression (the column
// name, or the JSON path of an NDJSON field such as events[2].date), Code
// (invalid, value, required or structure) and Diagnostics that never repeat
// the offending value (it may be health data). Column is the 1-based index
// of the field in the CSV header, or the 1-based character column where the
// value starts in an NDJSON line; 0 when the problem has no one field (a
// row with the wrong number of fields, a missing header column).
//
// A file with any bad row gives Result.Bundle == nil (nothing is stored);
// with Options.Partial the Bundle holds the good rows and Issues still lists
// every bad one. A header that misses a column rejects the file whole, as
// does a file with no good row (Bundle nil in both modes). Result.Err turns
// the issues of a rejected file into an *outcome.Error (422): the
// "MappingError with line/column" of the house style is outcome.Issue's
// Line and Column, so that the project keeps one error type.
//
// # Two readings, and chunks
//
// Run reads a file twice: the first reading checks every row (the cross-row
// checks of Checks included) and lets the format gather what building a
// row needs to know about the others (Spec.Note: a patient's other stays,
// results and dispensations, member numbers); the second, only when
// something is to be stored, parses the good rows again and builds them
// one at a time. With Options.Chunks (the server's $ingest, reading a file
// spooled to disk) the Bundle is delivered in parts of about
// Options.ChunkEntries entries: memory holds a part, the issues, and the
// cross-row state, which grows with the file by one small entry per
// distinct patient (and, for the formats with a row key, per row: Checks).
// The parts of a file are its Bundle cut in pieces: a patient or a
// reference resource is in the first part that needs it and later parts
// refer to its fullUrl (Chunk.Shared), each fact is in the part of its row,
// and each part has its Provenance.
//
// # The Bundle
//
//   - type transaction; entries: reference data (Organization by FINESS,
//     Practitioner by RPPS, PractitionerRole), then Patients, then facts in
//     file order, then one Provenance.
//   - Patient: conditional create on the INS-NIR
//     (ifNoneExist identifier=urn:oid:1.2.250.1.213.1.4.8|<NIR>), one entry
//     per person per file, every fact referring to its urn:uuid fullUrl.
//     A row without an INS-NIR makes an unlinked Patient: no INS identifier,
//     meta.tag identity-linkage#unlinked, one per row (or per programme
//     member, matched on the member number). An INS-NIR that is present but
//     malformed or whose key is wrong is a bad row (code value): storing it
//     unlinked would create a duplicate of a person the hub could link.
//   - Organization, Practitioner, PractitionerRole: conditional creates on
//     their identifier.
//   - Facts are plain creates; each carries the pathway-stage extension
//     (vocab.Resolve with the mapper's context). meta.source is stamped by
//     the server from the uploader's token, not here.
//   - Provenance: target = every fact and consent of the batch (of the
//     part, for a file delivered in parts), recorded = Options.Now, agent =
//     the uploader (Options.Org as identifier, Options.Actor as role) and
//     the mapping, entity = the file (its SHA-256 and source name).
//   - fullUrls are UUIDv5 of the file's SHA-256, the source and the row's
//     key: the same file always gives the same Bundle (golden tests), and a
//     fullUrl reveals nothing without the file.
//
// # Formats
//
// CSV sources are ';'-separated UTF-8 with a header row (a leading BOM is
// ignored; header names and cells are trimmed; columns may come in any
// order; an unknown or duplicated column is an issue). They are also
// accepted as NDJSON (detected by a first '{'): one flat JSON object per
// line with the column names as keys and string, number, boolean or null
// values; lists stay '|'-separated strings. Dates are YYYY-MM-DD, decimals
// use '.', lists are '|'-separated.
package mappings
