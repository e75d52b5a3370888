package osrelease

import (
	"slices"

	"mamori/internal/model"
)

// Resolve chooses the operating system from the per-path results of the
// analyzer (keys are file paths such as "etc/os-release"; a leading "/" or
// "./" is tolerated; nil values are ignored). The best source in precedence
// order wins: etc/os-release, usr/lib/os-release, etc/lsb-release,
// etc/alpine-release, etc/rocky-release, etc/almalinux-release,
// etc/centos-release, etc/redhat-release, etc/system-release,
// etc/debian_version. Fields the winner lacks (VERSION_ID, codename, pretty
// name) are filled from lower-ranked sources that name the same
// distribution, so Debian testing's os-release (no VERSION_ID) keeps its
// codename and a stable point release from debian_version ("12.5") fills a
// missing VERSION_ID. Sources naming another distribution (Ubuntu's
// debian_version says "bookworm/sid") are never mixed in.
//
// Resolve returns a new value and never modifies the candidates; it returns
// nil when no candidate has an ID.
func Resolve(candidates map[string]*model.OS) *model.OS {
	byPath := make(map[string]*model.OS, len(candidates))
	for p, os := range candidates {
		if os != nil && os.ID != "" {
			byPath[model.CleanPath(p)] = os
		}
	}
	var best *model.OS
	var rest []*model.OS
	for _, p := range precedence {
		os, ok := byPath[p]
		if !ok {
			continue
		}
		if best == nil {
			c := *os
			c.IDLike = slices.Clone(os.IDLike)
			best = &c
			continue
		}
		rest = append(rest, os)
	}
	if best == nil {
		return nil
	}
	for _, os := range rest {
		if os.ID != best.ID {
			continue
		}
		if best.VersionID == "" {
			best.VersionID = os.VersionID
		}
		if best.Codename == "" {
			best.Codename = os.Codename
		}
		if best.PrettyName == "" {
			best.PrettyName = os.PrettyName
		}
	}
	return best
}
