// Package search is the hub's FHIR R4 search engine: every official R4
// SearchParameter (conformance/definitions) compiled once with the FHIRPath
// engine, the index entries a resource is findable by (extracted at write
// time, inside the store's write transaction), and the evaluation of search
// criteria against those entries.
//
// It sits under package server and imports only server/fhirpath,
// conformance/definitions, server/store and server/outcome from the
// project. It knows nothing of HTTP, callers or policy: it answers which
// resources match; the server decides which of them a caller may see,
// counts and pages what is left.
//
// # Index entries
//
// Extract turns a resource into store.IndexEntry values whose Param is the
// search parameter code, or code + ":suffix" for the auxiliary forms, and
// whose Value sorts in the order range searches need:
//
//	token      code = "code|system" ("code|" without system), code:text =
//	           display and text (normalised); identifier is written system
//	           first, as the access policy reads it: identifier =
//	           "system|value", identifier:code = "value", identifier:of-type =
//	           "typesystem|typecode|value"
//	string     code = normalised (lower case, accents removed); :exact is
//	           checked on the resources found by the normalised value
//	date       code = "lo/hi": the instant range of the value in UTC at its
//	           precision, fixed width (2006-01-02T15:04:05.000000); ranges
//	           wider than a day also code:hi = "hi/lo" (a narrower range
//	           ending after t starts after t - 1 day: the main entries answer)
//	number     code = sortable number (16 hex digits)
//	quantity   code = "number|unitcode|system" (the number alone without unit)
//	reference  code = "Type/id" (relative; this server's absolute URLs made
//	           relative), an absolute URL or a canonical; code:identifier = "system|value"
//	uri        code = the URI
//	composite  code = component values joined by "$", each in its own form
//	           (a token "code|system", a quantity "number|system|unitcode")
//
// A parameter whose expression is the union of others' (Observation
// combo-code = code | component-code) or the same as another's is not
// indexed: it is searched through them. phonetic is indexed on its own,
// as the Soundex codes of the name's words (Phonetic).
//
// Param codes starting with "_" are those of the Resource parameters
// (_lastUpdated, _tag, _profile, _security), except _source, indexed as
// "_meta.source" because "_source" names the access metadata the server
// keeps beside the search entries. _id is the store's key and is not
// indexed.
//
// # Searching
//
// Registry.Parse reads the criteria of a type (prefixes, modifiers, chains
// and _has one level deep, _sort, _include, _revinclude) and lists what it
// does not support; Query.IDs evaluates them: the most selective criteria
// first, and once few candidates are left the others are checked on each
// candidate's entries instead of scanning their index. Query.Visible lets
// the server keep chains and _has from going through resources the caller
// may not see.
//
// # Limits
//
// Values are cut at 512 bytes. Quantities are compared in the unit they
// were written in (no UCUM canonicalisation). :above and :below work on
// uri parameters only; :in, :not-in, :above and :below on tokens need a
// terminology server and are refused. _text, _content, _query, _filter,
// _list and Location near are not supported.
package search
