package image

import (
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// normalizeVariant fills the default variant of an architecture, the way
// containerd's platforms package does: arm64 means arm64/v8 and amd64 has no
// variant worth naming, so "linux/arm64" matches an index entry
// "linux/arm64/v8" and the other way round.
func normalizeVariant(arch, variant string) string {
	switch arch {
	case "arm64":
		if variant == "" {
			return "v8"
		}
	case "amd64":
		if variant == "v1" {
			return ""
		}
	}
	return variant
}

// platformMatches reports whether have (from an index entry) serves want.
// OS and architecture must be equal; a variant is compared after
// normalisation, and an empty wanted variant accepts any.
func platformMatches(want, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	wv := normalizeVariant(want.Architecture, want.Variant)
	hv := normalizeVariant(have.Architecture, have.Variant)
	if want.Variant != "" && wv != hv {
		return false
	}
	if want.OSVersion != "" && want.OSVersion != have.OSVersion {
		return false
	}
	return true
}

// isAttestation reports index entries that are not runnable images: BuildKit
// attestation manifests carry platform unknown/unknown.
func isAttestation(d v1.Descriptor) bool {
	if d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown" {
		return true
	}
	_, ok := d.Annotations["vnd.docker.reference.type"]
	return ok
}

// selectManifest picks the index entry for want. An index entry without a
// platform is taken only when it is the sole candidate (an OCI layout
// index.json naming one image). When nothing matches, the error names the
// platforms the index offers.
func selectManifest(idx *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	var candidates []v1.Descriptor
	for _, d := range idx.Manifests {
		if !isAttestation(d) {
			candidates = append(candidates, d)
		}
	}
	if len(candidates) == 0 {
		return v1.Descriptor{}, fmt.Errorf("%w: index lists no images", ErrNotFound)
	}
	var best *v1.Descriptor
	for i, d := range candidates {
		if d.Platform == nil {
			continue
		}
		if platformMatches(want, *d.Platform) {
			// Prefer an exact variant match when several entries match.
			if best == nil || (want.Variant == "" &&
				normalizeVariant(d.Platform.Architecture, d.Platform.Variant) == normalizeVariant(want.Architecture, "")) {
				best = &candidates[i]
			}
		}
	}
	if best != nil {
		return *best, nil
	}
	if len(candidates) == 1 && candidates[0].Platform == nil {
		return candidates[0], nil
	}
	return v1.Descriptor{}, fmt.Errorf("%w: want %s; index offers %s", ErrNoPlatform, platformString(want), strings.Join(availablePlatforms(candidates), ", "))
}

func availablePlatforms(ds []v1.Descriptor) []string {
	var out []string
	for _, d := range ds {
		s := "(unspecified)"
		if d.Platform != nil {
			s = platformString(*d.Platform)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// configPlatform renders the platform an image config declares.
func configPlatform(cf *v1.ConfigFile) string {
	if cf == nil || cf.OS == "" {
		return ""
	}
	return platformString(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant})
}
