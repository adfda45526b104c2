// Package gen generates the native files of Parcours' four sources
// (DESIGN §6: hospital-stays, city-activity, prevention-programme,
// liability-claims) for a synthetic population, deterministically from a
// seed, with the counts a correct hub must find in them (expected.json):
// rows, linked and unlinked patients, the FHIR resources an ingest stores,
// and the rupture counts of rules R1, R2, R3, R5 and R7 (domain brief §6)
// at an evaluation date, computed by an oracle of its own from the rows.
// It sits beside the mappers (mappings/<source>) and imports nothing from
// the project: cmd/parcours (`parcours gen`) and the tests use it; its
// output is what the mappers must read with zero issues.
//
// # The population
//
// Adults aged 21–95 (a French-like age pyramid, 52 % women) living in
// Paris, the inner suburbs, Nord, Rhône, Bouches-du-Rhône, Gironde,
// Ille-et-Vilaine, Corsica (postcodes 20xxx, INS-NIR birthplace 2A/2B) and
// overseas (971, 972, 974), some born elsewhere or abroad (99 + country in
// the NIR). Each has a GP, a pharmacy, a lab and specialists of their
// département (RPPS with a Luhn key, plus the developer-mode GP and
// pharmacist in Paris) and an establishment (FINESS). Some have heart
// failure, type-2 diabetes, a myocardial infarction, colorectal cancer or
// an inflammatory bowel disease; women of 50–74 are screened (or not);
// results are sometimes abnormal and not always followed; stays are
// followed by readmissions, transfers to SMR and deaths; a few people join
// a prevention programme with mixed consents (programme, sharing with the
// GP, research); a few stays lead to a liability claim (all 8 categories,
// a few never events). A small share of rows carries no INS-NIR.
//
// Every date lies in the 3 years up to Config.AsOf, none after; every stay
// is discharged, and every abnormal result dated, at least 35 days before
// it (no 30-day window is cut short by AsOf); no event of the 12-month
// and 2-year look-backs falls within 3 days of their boundaries, no
// birthday within 3 days of AsOf, so that the population rules have one
// reading. The dead are over 75 and not diabetic for the same reason.
//
// # Planted cases
//
// The first patients (35 scenarios, fewer in a smaller file) each carry
// one situation with nothing else in their record: clear cases and the
// exact boundaries (a GP on day 7 and on day 8 after discharge, a
// readmission on day 30 and on day 31, a follow-up on the result day).
// Expected.Planted lists them with the outcome their author expects.
//
// # Determinism and size
//
// Each patient is drawn from its own math/rand/v2 PCG stream (seed,
// patient number): the same Config gives the same bytes, and a larger
// file starts with the same people. Nothing depends on map order or the
// clock. The large-file mode (Config.Source, Config.Rows) streams rows of
// one source patient by patient, so memory does not grow with the number
// of rows (INS-NIRs are unique by construction, not by remembering them).
package gen
