package policy

import "mamori/internal/model"

// knownExploited reports whether v is in CISA's Known Exploited
// Vulnerabilities catalog, as the vulnerability database recorded it at
// match time (model.Vulnerability.KEV; `mamori db update` fetches the
// catalogue with the OSV data).
func knownExploited(v *model.Vulnerability) bool { return v.KEV != nil }

// kevAvailable says whether knownExploited can answer: the model carries
// KEV data. A result matched against a database without the catalogue has
// no KEV entries, and the condition then matches nothing; the scan result's
// DB info says whether the catalogue was there.
const kevAvailable = true
