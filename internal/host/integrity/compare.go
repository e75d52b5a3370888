package integrity

import (
	"maps"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Diff returns the events that turn old into cur, with this scanner's rule
// set deciding which file attributes count and its collectors which
// object attributes are volatile.
func (s *Scanner) Diff(old, cur *Baseline, src Source) []Event {
	return Compare(old, cur, s.rs, s.o.colls, src, time.Now().UTC())
}

// Compare is the pure comparison of two baselines: added, removed and
// modified files (by the checks of the rule governing each path in rs;
// rules rs does not have compare everything) and objects (every attribute
// but the collectors' volatile ones). Events come files first in path
// order, then objects by kind and key. now stamps the events.
func Compare(old, cur *Baseline, rs *RuleSet, colls []Collector, src Source, now time.Time) []Event {
	events := diffFiles(old.Files, cur.Files, old.Rules, cur.Rules, rs, src, now)
	return append(events, diffObjects(old.Objects, cur.Objects, colls, src, now)...)
}

// ruleInfo resolves a file's rule index against the rule names of its
// baseline and the current rule set.
func ruleInfo(idx uint16, refs []RuleRef, rs *RuleSet) (name string, sev Severity, checks Check) {
	checks = CheckAll
	if int(idx) < len(refs) {
		name, sev = refs[idx].Name, refs[idx].Severity
	}
	if rs != nil {
		if i := rs.ruleIndex(name); i >= 0 {
			sev, checks = rs.Rules[i].Severity, rs.Rules[i].checks
			if checks == 0 {
				checks = CheckAll
			}
		}
	}
	return name, sev, checks
}

// diffFiles merge-joins two path-sorted file lists.
func diffFiles(old, cur []File, oldRefs, curRefs []RuleRef, rs *RuleSet, src Source, now time.Time) []Event {
	var out []Event
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i].Path < cur[j].Path):
			name, sev, _ := ruleInfo(old[i].Rule, oldRefs, rs)
			out = append(out, Event{Time: now, Kind: KindFile, Key: SafeText(old[i].Path), Change: Removed, Before: old[i].Attrs(), Rule: name, Severity: sev, Source: src})
			i++
		case i == len(old) || cur[j].Path < old[i].Path:
			name, sev, _ := ruleInfo(cur[j].Rule, curRefs, rs)
			if privileged(cur[j].Mode) || hasXattr(&cur[j], xattrCapability) {
				sev = atLeast(sev, SeverityHigh)
			}
			out = append(out, Event{Time: now, Kind: KindFile, Key: SafeText(cur[j].Path), Change: Added, After: cur[j].Attrs(), Rule: name, Severity: sev, Source: src})
			j++
		default:
			name, sev, checks := ruleInfo(cur[j].Rule, curRefs, rs)
			if changed := diffFile(&old[i], &cur[j], checks); len(changed) > 0 {
				if cur[j].Mode&^old[i].Mode&(unix.S_ISUID|unix.S_ISGID) != 0 || slices.Contains(changed, "caps") {
					sev = atLeast(sev, SeverityHigh)
				}
				out = append(out, Event{Time: now, Kind: KindFile, Key: SafeText(cur[j].Path), Change: Modified, Changed: changed,
					Before: old[i].Attrs(), After: cur[j].Attrs(), Rule: name, Severity: sev, Source: src})
			}
			i++
			j++
		}
	}
	return out
}

func privileged(mode uint32) bool { return mode&(unix.S_ISUID|unix.S_ISGID) != 0 }

func hasXattr(f *File, name string) bool {
	for _, x := range f.Xattrs {
		if x.Name == name {
			return true
		}
	}
	return false
}

// atLeast raises s to min.
func atLeast(s, min Severity) Severity {
	rank := func(x Severity) int {
		switch x {
		case SeverityCritical:
			return 4
		case SeverityHigh:
			return 3
		case SeverityMedium:
			return 2
		case SeverityLow:
			return 1
		}
		return 0
	}
	if rank(s) < rank(min) {
		return min
	}
	return s
}

// objectMeta is what the collectors say about a kind.
type objectMeta struct {
	rule     string
	volatile []string
}

func metaByKind(colls []Collector) map[Kind]objectMeta {
	m := make(map[Kind]objectMeta, len(colls))
	for _, c := range colls {
		m[c.Kind()] = objectMeta{rule: c.Name(), volatile: c.Volatile()}
	}
	return m
}

// objectSeverity: what a change of each kind is worth by default.
func objectSeverity(k Kind) Severity {
	switch k {
	case KindUser, KindGroup, KindSudoers, KindModule:
		return SeverityHigh
	case KindService, KindPort:
		return SeverityMedium
	}
	return SeverityLow
}

// diffObjects merge-joins two sorted object lists.
func diffObjects(old, cur []Object, colls []Collector, src Source, now time.Time) []Event {
	meta := metaByKind(colls)
	var out []Event
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		var c int
		switch {
		case j == len(cur):
			c = -1
		case i == len(old):
			c = 1
		default:
			c = compareObjects(&old[i], &cur[j])
		}
		switch {
		case c < 0:
			o := &old[i]
			out = append(out, Event{Time: now, Kind: o.Kind, Key: o.Key, Change: Removed, Before: maps.Clone(o.Attrs), Rule: meta[o.Kind].rule, Severity: objectSeverity(o.Kind), Source: src})
			i++
		case c > 0:
			o := &cur[j]
			out = append(out, Event{Time: now, Kind: o.Kind, Key: o.Key, Change: Added, After: maps.Clone(o.Attrs), Rule: meta[o.Kind].rule, Severity: objectSeverity(o.Kind), Source: src})
			j++
		default:
			a, b := &old[i], &cur[j]
			if changed := diffAttrs(a.Attrs, b.Attrs, meta[a.Kind].volatile); len(changed) > 0 {
				out = append(out, Event{Time: now, Kind: a.Kind, Key: a.Key, Change: Modified, Changed: changed,
					Before: maps.Clone(a.Attrs), After: maps.Clone(b.Attrs), Rule: meta[a.Kind].rule, Severity: objectSeverity(a.Kind), Source: src})
			}
			i++
			j++
		}
	}
	return out
}

func diffAttrs(a, b map[string]string, volatile []string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; (!ok || w != v) && !slices.Contains(volatile, k) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && !slices.Contains(volatile, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
