package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// SignatureRequirement is a signature rule as the evaluating component
// needs it to verify: the images it covers and who may sign them. Trust
// identifies the keys and identities (the key of ImageScan.Signatures and
// of stored verification results).
type SignatureRequirement struct {
	Rule       string
	Trust      string
	Registries []string
	// Keys are the PEM public keys; KeyIDs their IDs ("sha256:" and the
	// hex SHA-256 of the DER SubjectPublicKeyInfo, as internal/sign names
	// keys).
	Keys       []string
	KeyIDs     []string
	Identities []SignerIdentity
	covers     registryMatcher
}

// Covers reports whether the requirement applies to an image reference.
func (r *SignatureRequirement) Covers(ref string) bool { return r.covers.match(parseImageRef(ref)) }

// registryMatcher matches images by registry host (globs) or repository
// (globs with a slash), as the registries criterion does; "*" matches all.
type registryMatcher struct {
	all   bool
	hosts []string
	repos globs
}

func newRegistryMatcher(entries []string) registryMatcher {
	var m registryMatcher
	for _, e := range entries {
		switch {
		case e == "*":
			m.all = true
		case strings.Contains(e, "/"):
			m.repos = append(m.repos, newGlob(strings.ToLower(strings.TrimSuffix(e, "/")+suffixStar(e))))
		default:
			m.hosts = append(m.hosts, normalizeRegistry(e))
		}
	}
	return m
}

// suffixStar: "ghcr.io/acme/" means everything below it.
func suffixStar(e string) string {
	if strings.HasSuffix(e, "/") {
		return "/*"
	}
	return ""
}

func (m registryMatcher) match(r imageRef) bool {
	return m.all || hostMatch(m.hosts, r.registry) || m.repos.any(strings.ToLower(r.name()))
}

// RegistryCovers reports whether an image reference is covered by
// registry entries written as in the signatures and registries criteria.
func RegistryCovers(entries []string, ref string) bool {
	return newRegistryMatcher(entries).match(parseImageRef(ref))
}

// KeyID returns the ID of a PEM public key ("sha256:<hex of the DER
// SubjectPublicKeyInfo>"), or an error for anything else.
func KeyID(pemText string) (string, error) {
	if len(pemText) > 64<<10 {
		return "", fmt.Errorf("key of %d bytes", len(pemText))
	}
	b, rest := pem.Decode([]byte(strings.TrimSpace(pemText)))
	if b == nil {
		return "", errors.New("not a PEM block")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return "", errors.New("more than one PEM block: give each key as its own entry")
	}
	if b.Type != "PUBLIC KEY" {
		return "", fmt.Errorf("PEM block %q: want PUBLIC KEY", b.Type)
	}
	if _, err := x509.ParsePKIXPublicKey(b.Bytes); err != nil {
		return "", fmt.Errorf("parse public key: %w", err)
	}
	sum := sha256.Sum256(b.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// KeyName is KeyID for display, or "invalid key" (Parse refuses those).
func KeyName(pemText string) string {
	id, err := KeyID(pemText)
	if err != nil {
		return "invalid key"
	}
	return "key:" + id
}

// trustOf identifies a set of keys and identities: the SHA-256 of the
// sorted key IDs and identities.
func trustOf(keyIDs []string, ids []SignerIdentity) string {
	h := sha256.New()
	ks := slices.Clone(keyIDs)
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(h, "k %s\n", k)
	}
	is := make([]string, len(ids))
	for i, id := range ids {
		is[i] = strconv.Quote(id.Issuer) + " " + strconv.Quote(id.IssuerRegexp) + " " + strconv.Quote(id.Subject) + " " + strconv.Quote(id.SubjectRegexp)
	}
	sort.Strings(is)
	for _, i := range is {
		fmt.Fprintf(h, "i %s\n", i)
	}
	return "trust:" + hex.EncodeToString(h.Sum(nil))[:32]
}

// newSignatureRequirement compiles a signatures criterion (validated).
func newSignatureRequirement(rule string, c *Signatures) *SignatureRequirement {
	r := &SignatureRequirement{Rule: rule, Registries: slices.Clone(c.Registries), Keys: slices.Clone(c.Keys),
		Identities: slices.Clone(c.Identities), covers: newRegistryMatcher(c.Registries)}
	for _, k := range c.Keys {
		if id, err := KeyID(k); err == nil {
			r.KeyIDs = append(r.KeyIDs, id)
		}
	}
	r.Trust = trustOf(r.KeyIDs, r.Identities)
	return r
}

// image is the check: a covered image must have a verified signature
// under the rule's trust.
func (r *SignatureRequirement) image(s *state, im *imageInfo) {
	if !r.covers.match(im.ref) {
		return
	}
	who := signersText(r)
	res, ok := im.scan.Signatures[r.Trust]
	switch {
	case !ok:
		s.failImage(CtlSignatures, im, "image "+strconv.Quote(im.ref.raw)+" must be signed by "+who+": its signature was not verified")
	case !res.Verified:
		reason := res.Reason
		if reason == "" {
			reason = "no valid signature"
		}
		s.failImage(CtlSignatures, im, "image "+strconv.Quote(im.ref.raw)+" must be signed by "+who+": "+reason)
	}
}

func signersText(r *SignatureRequirement) string {
	var parts []string
	for _, k := range r.KeyIDs {
		if len(k) > 19 {
			k = k[:19] + "…"
		}
		parts = append(parts, "key "+k)
	}
	for _, id := range r.Identities {
		parts = append(parts, id.String())
	}
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("%d more", len(parts)-3))
	}
	return "one of " + strings.Join(parts, ", ")
}

// checkSignatures validates a signatures criterion.
func checkSignatures(c *Signatures, crit func(string, ...any)) {
	if len(c.Registries) == 0 {
		crit("registries is empty: name the registries whose images must be signed (\"*\" for all)", "registries")
	}
	for j, x := range c.Registries {
		if strings.TrimSpace(x) == "" {
			crit("empty entry", "registries", j)
		}
	}
	if len(c.Keys) == 0 && len(c.Identities) == 0 {
		crit("give keys and/or identities: who may sign")
	}
	for j, k := range c.Keys {
		if _, err := KeyID(k); err != nil {
			crit("key: "+err.Error(), "keys", j)
		}
	}
	for j, id := range c.Identities {
		if id.Issuer == "" && id.IssuerRegexp == "" {
			crit("an identity needs issuer or issuerRegexp", "identities", j)
		}
		if id.Subject == "" && id.SubjectRegexp == "" {
			crit("an identity needs subject or subjectRegexp", "identities", j)
		}
		for _, re := range []struct{ f, v string }{{"issuerRegexp", id.IssuerRegexp}, {"subjectRegexp", id.SubjectRegexp}} {
			if re.v == "" {
				continue
			}
			if _, err := regexp.Compile(re.v); err != nil {
				crit(fmt.Sprintf("%s: %v", re.f, err), "identities", j, re.f)
			}
		}
	}
}

// SignatureRequirements lists the policy's signature rules (admission and
// compliance), for the component that verifies.
func (e *Evaluator) SignatureRequirements() []SignatureRequirement {
	var out []SignatureRequirement
	for _, rs := range [][]*rule{e.admission, e.compliance} {
		for _, r := range rs {
			if r.signatures != nil {
				out = append(out, *r.signatures)
			}
		}
	}
	return out
}
