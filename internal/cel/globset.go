package cel

import (
	"fmt"
	"strings"
)

// GlobSet matches names against a fixed list of glob patterns (the syntax of Glob), prepared
// once: patterns without meta characters are one hash lookup, the others are split into
// segments once and indexed by their first path element, so a name is compared only with the
// patterns that can match it. A rule's list of 30 credential globs costs an unrelated path
// (/etc/hostname) two map lookups instead of 30 pattern scans.
type GlobSet struct {
	exact  map[string]struct{}
	byHead map[string][]compiledGlob
	rest   []compiledGlob // patterns whose first element has meta characters
	n      int
}

type compiledGlob struct {
	pattern string
	prefix  string // literal prefix every matching name has (globPrefix)
	segs    []string
	dbl     uint64
}

// CompileGlobs prepares patterns for matching; a malformed pattern (ValidateGlob) is an error
// naming it.
func CompileGlobs(patterns []string) (*GlobSet, error) {
	s := &GlobSet{exact: map[string]struct{}{}, byHead: map[string][]compiledGlob{}, n: len(patterns)}
	for _, p := range patterns {
		meta := globMeta(p)
		if meta < 0 {
			s.exact[p] = struct{}{}
			continue
		}
		if strings.Count(p, "/")+1 > maxGlobSegments {
			return nil, fmt.Errorf("%w: %q: more than %d segments", ErrBadGlob, p, maxGlobSegments)
		}
		if err := ValidateGlob(p); err != nil {
			return nil, err
		}
		g := compiledGlob{pattern: p, prefix: globPrefix(p, meta)}
		g.segs, g.dbl = splitGlob(p, nil)
		if h := pathHead(p); globMeta(h) < 0 {
			s.byHead[h] = append(s.byHead[h], g)
		} else {
			s.rest = append(s.rest, g)
		}
	}
	return s, nil
}

// Len is the number of patterns.
func (s *GlobSet) Len() int { return s.n }

// Match reports whether name matches any of the patterns.
func (s *GlobSet) Match(name string) bool {
	if _, ok := s.exact[name]; ok {
		return true
	}
	if len(s.byHead) > 0 {
		if s.matchAny(s.byHead[pathHead(name)], name) {
			return true
		}
	}
	return s.matchAny(s.rest, name)
}

func (s *GlobSet) matchAny(gs []compiledGlob, name string) bool {
	for i := range gs {
		g := &gs[i]
		if !strings.HasPrefix(name, g.prefix) {
			continue
		}
		// every segment was checked by CompileGlobs: no error is possible
		if ok, _ := matchSegments(g.pattern, g.segs, g.dbl, name); ok {
			return true
		}
	}
	return false
}

// pathHead is the first element of a slash-separated path, with its leading slash when the path
// is absolute ("/etc" for "/etc/hostname" and for "/etc", "a" for "a/b", "/" for "/"). A pattern
// whose head has no meta character matches only names with the same head: the head covers
// segments the pattern compares literally.
func pathHead(p string) string {
	from := 0
	if strings.HasPrefix(p, "/") {
		from = 1
	}
	if i := strings.IndexByte(p[from:], '/'); i >= 0 {
		return p[:from+i]
	}
	return p
}
