// Package measure turns per-event rupture rows into a summary FHIR R4
// MeasureReport (counts, rate, distinct patients, rupture-associated
// downstream cost, stratifiers) and applies the statistical secret to it:
// every value behind fewer than k distinct patients is masked, and so are the
// complementary values that would let a reader recover it. It is the only
// shape in which rupture indicators leave the hub for mutual insurers,
// liability insurers and public bodies (domain brief §3.2 item 5, §4.7, §6).
// Package server calls Evaluate from GET /fhir/Measure/{id}/$evaluate-measure
// with the rows that the rupture detection produced; this package reads no
// store and imports only mappings/vocab.
//
// # Input and counts
//
// A Row is one index event (or one patient for rules evaluated as of a date),
// with an opaque patient key, flags InDenominator, InNumerator, Excluded, a
// cost for numerator rows and its stratifier values. Every row is in the
// initial population and falls in exactly one of three atoms: excluded (X),
// numerator (N) or denominator outside the numerator (M). The populations are
//
//	initial-population   IP = DX + D
//	denominator-exclusion DX = X
//	denominator          D  = N + M
//	numerator            N
//
// Counts are of rows; the population-patient-count extension gives the
// distinct patients behind each published count. measureScore is N / D (a
// proportion, UCUM "1", four decimals). The rupture-cost extension (total and
// mean per numerator row in EUR, perspective AMO / AMC / establishment, and a
// label that says the cost is associated, not causal: never "perte de
// chance") is on the group and on every stratum when a perspective is given.
//
// Each stratifier names a Row.Strata attribute; a missing value is the
// stratum "unknown", so the strata of a stratifier always partition the
// group. Age bands (AgeBand) are at least 5 years wide with an open top band,
// geography is the département, never the commune (the caller's job).
//
// # Suppression: primary
//
// A value is sensitive when fewer than k distinct patients are behind it
// (k = 10 by default; zero counts are sensitive too). The cells are IP, DX, D,
// N and the unpublished M = D − N, in the group and in every stratum: M is a
// cell because "all 12 patients of this stratum had a rupture" discloses as
// much as a count of 3. Every sensitive published cell is masked: it is
// published without count and with the data-absent-reason extension
// (valueCode masked) on _count; so are a masked score (_value of the
// Quantity) and a masked cost (_value of Money). When the initial population
// as a whole is sensitive, everything is masked and no stratum is listed (a
// list of strata would tell, say, that all of them are women).
//
// # Suppression: complementary
//
// The reader knows, per table, IP = DX + D and D = N + M, and per stratifier
// and column that the strata add up to the group; counts are never negative
// and a listed stratum has at least one row. A masked cell (or a sensitive M)
// is safe when the unknown cells (masked cells and every M) can change
// together, keeping all these relations and bounds, so that the cell changes
// too: two tables consistent with everything published then disagree on it,
// and no differencing, elimination or bound reasoning over the published
// values can pin it down. For every such cell the suppression looks for that
// change (its witness), and when none exists it masks the published cells of
// the cheapest one.
//
// Within one stratifier the relations form a directed graph. Per stratum s,
// with R1(s) the relation IP = DX + D, R2(s) the relation D = N + M and CX,
// CIP, CN, CM the column sums, each cell is an edge:
//
//	DX(s): CX → R1(s)    D(s): R2(s) → R1(s)    IP(s): R1(s) → CIP
//	N(s):  CN → R2(s)    M(s): CM → R2(s)
//
// (the column sum of D follows from the others). A change is a cycle: an
// edge walked forwards gains one, backwards loses one (allowed only above
// the cell's lower bound). A stratum cell first looks for a cycle through it
// among the strata, the group unchanged: a shortest path (Dijkstra) where an
// unknown cell costs nothing and a published one what masking it costs.
// "Exactly one stratum masked: mask the next smallest" and "a numerator
// masked in one stratum: mask it in another (the Ms balance)" are the
// simplest such cycles; two masked zeros in a column have none (their sum,
// zero, would pin both), so a third, positive cell gets masked.
//
// The group is shared by all stratifiers. A change of the group is one of
// twelve cycles over its own two relations (gCycles), valid only when it can
// be carried into every stratifier by a path between the two column sums it
// touches. A group cell gets such a change; a stratum cell uses one when no
// cycle among the strata exists (a column that is zero in the group, or a
// stratifier of one stratum, which then copies the group's masks).
//
// What a path newly masks is priced: the initial population first (it is
// redundant with D + DX), then exclusions, then the denominator and the
// numerator, the smaller count first; a group cell costs far more than a
// stratum cell. Masking only adds unknowns, so a cell once protected stays
// protected, and each cell masked on the way is protected by the very change
// that masked it. Passes repeat until one masks nothing.
//
// # Suppression: derived values
//
// A score is masked when its numerator or its denominator is. Patient counts
// share the mask of their count. A cost (total and mean) is masked when its
// numerator is, and so is the group's. In a stratifier whose group cost is
// published, the masked stratum costs add up (group total minus the
// published strata) to a cost a reader learns: it must be over at least k
// distinct numerator patients and above zero (costs are not negative: a zero
// sum would give each of them away), else the published stratum cost behind
// the fewest numerator patients is masked as well (when the sum is zero, the
// smallest positive one). When the group's cost is masked, every stratifier
// keeps at least one masked stratum cost.
//
// # Guarantees and limits
//
// Published counts and patient counts are all ≥ k; published costs are over ≥
// k numerator patients; no masked count, no M below k and no masked cost can
// be recovered exactly from the report by linear reasoning with the bounds
// above (the witness is a real-valued change, so an attacker reasoning on
// integers is not covered in theory, though each change moves cells by ±1
// unless a path crosses itself). It is not interval protection: a reader
// learns what the masked cells of a sum add up to (the cost rule bounds this
// for costs only). Protection holds between the stratifiers of one report,
// which share only the group; it does not extend across reports: two reports
// over overlapping periods or populations can be differenced, and the caller
// must not release such pairs (the policy's job, not this package's).
// Patient counts follow the count masks; their own relations (patients add up
// across strata only when an attribute is constant per patient) are covered
// when each patient has one row, and the threshold applies to them always.
// Exclusion reasons are never published (a breakdown by reason has structural
// zeros a reader knows in advance).
package measure
