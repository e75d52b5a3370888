package match

import (
	"slices"

	"mamori/internal/version"
	"mamori/internal/vulndb"
)

// This file evaluates OSV affected ranges as the OSV schema's "Evaluation"
// section specifies (https://ossf.github.io/osv-schema/#evaluation):
//
//	vulnerable = false
//	for evt in sorted(range.events):          # by version, introduced "0" first
//	    if evt.introduced and (evt.introduced == "0" or v >= evt.introduced): vulnerable = true
//	    elif evt.fixed and v >= evt.fixed:                 vulnerable = false
//	    elif evt.last_affected and v > evt.last_affected:  vulnerable = false
//	affected = vulnerable and beforeLimits(v, range)   # v < some limit, or no limit
//
// Versions are parsed once, when an advisory is prepared, with the ordering
// of the range type (SEMVER: SemVer 2.0; ECOSYSTEM: the ecosystem's own).

type eventKind uint8

const (
	evIntroduced eventKind = iota
	evFixed
	evLastAffected
	evLimit
)

type event struct {
	kind eventKind
	raw  string
	// zero is introduced "0" (or limit "*"): before (after) every version.
	zero bool
	v    version.Version
}

// prepRange is one SEMVER or ECOSYSTEM range with parsed, sorted events.
type prepRange struct {
	scheme *version.Scheme
	events []event // introduced, fixed, last_affected, sorted
	limits []event
}

// prepAffected is one affected[] entry of an advisory for the package being
// matched.
type prepAffected struct {
	ecosystem string // as the record spells it ("Debian:12")
	ranges    []prepRange
	// versions is the explicit versions list, matched as exact strings.
	versions map[string]struct{}
	// urgency is the distro's own severity word for this entry (Debian's
	// ecosystem_specific.urgency, a database_specific.severity).
	urgency  string
	severity []vulndb.Severity
}

// prepareRange parses a range's events. ok is false when the range cannot
// be evaluated (GIT, an unknown ordering, an unparsable event version):
// evaluating part of a range could turn an unknown fix into a false
// "affected" or hide a real one.
func prepareRange(r vulndb.Range, ecosystem string) (prepRange, bool) {
	var scheme *version.Scheme
	var err error
	switch r.Type {
	case vulndb.RangeSemver:
		scheme, err = version.SchemeFor("npm") // SEMVER ranges are SemVer 2.0 whatever the ecosystem
	case vulndb.RangeEcosystem:
		scheme, err = version.SchemeFor(ecosystem)
	default:
		return prepRange{}, false
	}
	if err != nil {
		return prepRange{}, false
	}
	pr := prepRange{scheme: scheme}
	for _, e := range r.Events {
		var ev event
		switch {
		case e.Introduced != "":
			ev = event{kind: evIntroduced, raw: e.Introduced, zero: e.Introduced == "0"}
		case e.Fixed != "":
			ev = event{kind: evFixed, raw: e.Fixed}
		case e.LastAffected != "":
			ev = event{kind: evLastAffected, raw: e.LastAffected}
		case e.Limit != "":
			ev = event{kind: evLimit, raw: e.Limit, zero: e.Limit == "*"}
		default:
			continue
		}
		if !ev.zero {
			v, err := scheme.Parse(ev.raw)
			if err != nil {
				return prepRange{}, false
			}
			ev.v = v
		}
		if ev.kind == evLimit {
			pr.limits = append(pr.limits, ev)
		} else {
			pr.events = append(pr.events, ev)
		}
	}
	// Stable, so that events at one version keep the record's order.
	slices.SortStableFunc(pr.events, compareEvents)
	return pr, true
}

func compareEvents(a, b event) int {
	switch {
	case a.zero && b.zero:
		return 0
	case a.zero:
		return -1
	case b.zero:
		return 1
	}
	c, err := a.v.Compare(b.v)
	if err != nil {
		return 0
	}
	return c
}

// affected evaluates v against the range; fix is the first fixed event
// above v when v is affected (nil when the range has none).
func (r *prepRange) affected(v version.Version) (hit bool, fix *event) {
	vulnerable := false
	for i := range r.events {
		e := &r.events[i]
		switch e.kind {
		case evIntroduced:
			if e.zero || vcmp(v, e.v) >= 0 {
				vulnerable = true
			}
		case evFixed:
			if vcmp(v, e.v) >= 0 {
				vulnerable = false
			}
		case evLastAffected:
			if vcmp(v, e.v) > 0 {
				vulnerable = false
			}
		}
	}
	if !vulnerable || !r.beforeLimits(v) {
		return false, nil
	}
	return true, r.fixAbove(v)
}

// fixAbove returns the lowest fixed event above v, or nil.
func (r *prepRange) fixAbove(v version.Version) *event {
	for i := range r.events {
		e := &r.events[i]
		if e.kind == evFixed && vcmp(v, e.v) < 0 {
			return e
		}
	}
	return nil
}

func (r *prepRange) beforeLimits(v version.Version) bool {
	if len(r.limits) == 0 {
		return true
	}
	for i := range r.limits {
		if r.limits[i].zero || vcmp(v, r.limits[i].v) < 0 {
			return true
		}
	}
	return false
}

// vcmp compares two versions of one scheme; the scheme is the same by
// construction, so the error cannot happen and counts as equal.
func vcmp(a, b version.Version) int {
	c, err := a.Compare(b)
	if err != nil {
		return 0
	}
	return c
}
