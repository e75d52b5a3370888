package policy

import "mamori/internal/model"

// knownExploited reports whether v is in CISA's Known Exploited
// Vulnerabilities catalog. model.Vulnerability carries no KEV data yet: the
// vulnerability prioritisation work (issue 15) adds it. Until then nothing
// is known exploited, so a `knownExploited: true` condition matches nothing
// and Compile says so in Evaluator.Warnings. When the field lands, this
// function reads it and nothing else in the package changes.
func knownExploited(v *model.Vulnerability) bool {
	_ = v
	return false
}

// kevAvailable says whether knownExploited can answer (see above).
const kevAvailable = false
