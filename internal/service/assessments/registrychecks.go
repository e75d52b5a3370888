package assessments

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"mamori/internal/compliance"
	"mamori/internal/compliance/registry"
	"mamori/internal/model"
	"mamori/internal/policy"
	"mamori/internal/sign"
	"mamori/internal/store"
)

// Registry checks, each limit with its reason.
const (
	// reprobeEvery: a registry without a schedule (synced by hand) is
	// probed at least daily: certificates expire, settings change.
	reprobeEvery = 24 * time.Hour
	// maxVerifyPerCheck bounds the signature verifications of one
	// registry check (the next check continues: verified results are
	// cached and stored).
	maxVerifyPerCheck = 2000
	// verifyTimeout bounds one image's verification.
	verifyTimeout = 30 * time.Second
)

// RegistryCheck is the outcome of one registry's check.
type RegistryCheck struct {
	Registry string
	Probed   bool
	// Verified counts the images verified (and stored), Failed those
	// whose verification failed, Errors the registry errors.
	Verified, Failed, Errors int
	Duration                 time.Duration
}

// CheckRegistries probes each configured registry whose scan finished
// since its last probe (so probes follow the registry scan's schedule), or
// that was never probed or not for a day, or all when force, and verifies
// the signatures of its stored images that a signature rule of an
// enforced policy covers, storing each result per image.
func (s *Service) CheckRegistries(ctx context.Context, force bool) ([]RegistryCheck, error) {
	if s.cfg.Registries == nil {
		return nil, nil
	}
	regs, err := s.cfg.Registries.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry checks: %w", err)
	}
	if len(regs) == 0 {
		return nil, nil
	}
	probes, err := s.st.RegistryProbes(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry checks: %w", err)
	}
	reqs, err := s.signatureRequirements(ctx)
	if err != nil {
		return nil, err
	}
	var out []RegistryCheck
	for _, r := range regs {
		p, probed := probes[r.ID]
		due := force || !probed || s.now().Sub(p.ProbedAt) >= reprobeEvery ||
			(r.LastSync.At.After(p.ProbedAt) && r.LastSync.Status != store.SyncRunning)
		if !due {
			continue
		}
		c, err := s.checkRegistry(ctx, r, reqs)
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			s.log.Warn("registry check", "registry", r.Name, "err", err)
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// signatureRequirements are the signature rules of the policies clusters
// enforce.
func (s *Service) signatureRequirements(ctx context.Context) ([]policy.SignatureRequirement, error) {
	cs, err := s.st.ListClusters(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry checks: clusters: %w", err)
	}
	seen := map[string]bool{}
	var out []policy.SignatureRequirement
	for _, c := range cs {
		if c.Policy == "" {
			continue
		}
		v, err := s.st.ClusterPolicy(ctx, c.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("registry checks: policy of %s: %w", c.Name, err)
		}
		doc, err := policy.Parse(c.Policy+".yaml", []byte(v.Document))
		if err != nil {
			continue
		}
		ev, err := policy.Compile(doc)
		if err != nil {
			continue
		}
		for _, r := range ev.SignatureRequirements() {
			if !seen[r.Trust] {
				seen[r.Trust] = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// registryImages lists the stored images of a registry host with their
// digests, by repository (the probe's repositories) and reference.
func (s *Service) registryImages(ctx context.Context, host string) (repos []string, imgs []store.ImageSummary, err error) {
	seen := map[string]bool{}
	for page := 0; ; page++ {
		p, err := s.cfg.Images.ListImages(ctx, store.ImageFilter{Query: host + "/", Page: store.Page{Limit: 500, Offset: page * 500}})
		if err != nil {
			return nil, nil, fmt.Errorf("images of %s: %w", host, err)
		}
		for _, im := range p.Images {
			if im.Type != model.TargetImage || compliance.RegistryOf(im.Name) != host {
				continue
			}
			imgs = append(imgs, im)
			repo := strings.TrimPrefix(repositoryOf(im.Name), host+"/")
			if !seen[repo] {
				seen[repo] = true
				repos = append(repos, repo)
			}
		}
		if len(p.Images) < 500 || len(imgs) >= MaxImages {
			break
		}
	}
	sort.Strings(repos)
	return repos, imgs, nil
}

// repositoryOf strips the tag and digest of a reference.
func repositoryOf(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

func (s *Service) checkRegistry(ctx context.Context, r store.Registry, reqs []policy.SignatureRequirement) (RegistryCheck, error) {
	start := time.Now()
	c := RegistryCheck{Registry: r.Name}
	host := registryHost(r.URL)
	plain := strings.HasPrefix(strings.TrimSpace(r.URL), "http://")
	repos, imgs, err := s.registryImages(ctx, host)
	if err != nil {
		return c, err
	}
	p, err := registry.Probe(ctx, registry.Target{Address: host, Repositories: repos, Roots: s.cfg.RegistryRoots,
		PlainHTTP: plain || r.Insecure}, s.now())
	if err != nil {
		return c, err
	}
	if r.Insecure && p.TLS && p.CertValid {
		// Configured to skip verification although it would verify: the
		// scans still trust nothing, which is the finding.
		p.CertValid, p.CertError = false, "the registry is configured as insecure (certificate not verified by scans)"
	}
	b, err := json.Marshal(p)
	if err != nil {
		return c, err
	}
	if err := s.st.PutRegistryProbe(ctx, r.ID, p.At, string(b)); err != nil {
		return c, err
	}
	c.Probed = true
	for _, req := range reqs {
		if err := s.verifyImages(ctx, r, host, plain, imgs, req, &c); err != nil {
			return c, err
		}
	}
	c.Duration = time.Since(start)
	s.log.Info("registry checked", "registry", r.Name, "tls", p.TLS, "certValid", p.CertValid, "anonymous", len(p.Anonymous),
		"verified", c.Verified, "failed", c.Failed, "errors", c.Errors, "duration", c.Duration)
	return c, nil
}

// verifyImages verifies the registry's images a requirement covers.
func (s *Service) verifyImages(ctx context.Context, r store.Registry, host string, plain bool, imgs []store.ImageSummary,
	req policy.SignatureRequirement, c *RegistryCheck) error {
	var covered []store.ImageSummary
	for _, im := range imgs {
		if im.Digest != "" && req.Covers(im.Name) {
			covered = append(covered, im)
		}
	}
	if len(covered) == 0 {
		return nil
	}
	v, err := s.verifier(r, plain, req)
	if err != nil {
		// A rule this server cannot verify (identities without a trusted
		// root): every covered image is recorded as not verified, with why.
		for _, im := range covered {
			if err := s.putSignature(ctx, req.Trust, im, false, "", err.Error()); err != nil {
				return err
			}
			c.Failed++
		}
		return nil
	}
	for i, im := range covered {
		if i >= maxVerifyPerCheck {
			break
		}
		vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
		res, err := v.Verify(vctx, repositoryOf(im.Name)+"@"+im.Digest)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.Errors++
			if err := s.putSignature(ctx, req.Trust, im, false, "", "registry error: "+err.Error()); err != nil {
				return err
			}
			continue
		}
		if res.Verified {
			c.Verified++
		} else {
			c.Failed++
		}
		if err := s.putSignature(ctx, req.Trust, im, res.Verified, res.Signer, res.Reason); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) putSignature(ctx context.Context, trust string, im store.ImageSummary, ok bool, signer, reason string) error {
	if len(reason) > 4096 {
		reason = reason[:4096]
	}
	return s.st.PutImageSignature(ctx, store.ImageSignature{Digest: im.Digest, Trust: trust, Image: im.Name, Verified: ok,
		Signer: signer, Reason: reason, VerifiedAt: s.now().UTC()})
}

// verifier returns the (cached) verifier of a requirement on a registry:
// the rule's keys and identities, the registry's credentials and transport.
func (s *Service) verifier(r store.Registry, plain bool, req policy.SignatureRequirement) (*sign.Verifier, error) {
	key := fmt.Sprintf("%d|%s|%d", r.ID, req.Trust, r.UpdatedAt.UnixNano())
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if v, ok := s.verifiers[key]; ok {
		return v, nil
	}
	pol := sign.Policy{TrustedRoot: s.cfg.TrustedRoot}
	for _, k := range req.Keys {
		pk, err := sign.ParsePublicKey([]byte(k))
		if err != nil {
			return nil, err
		}
		pol.Keys = append(pol.Keys, pk)
	}
	for _, id := range req.Identities {
		pol.Identities = append(pol.Identities, sign.Identity{Issuer: id.Issuer, IssuerRegexp: id.IssuerRegexp,
			Subject: id.Subject, SubjectRegexp: id.SubjectRegexp})
	}
	if len(pol.Identities) > 0 && pol.TrustedRoot == nil {
		if len(pol.Keys) == 0 {
			return nil, errors.New("keyless identities need a trusted root: the server has none (mamori server --trusted-root)")
		}
		pol.Identities = nil // the keys can still verify
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.cfg.RegistryRoots != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.cfg.RegistryRoots, MinVersion: tls.VersionTLS12}
	}
	opts := []sign.Option{sign.WithTransport(tr)}
	if r.Insecure || plain {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the registry's explicit insecure setting, as its scans use
		opts = append(opts, sign.WithPlainHTTP())
	}
	if r.Username != "" && s.cfg.OpenSecret != nil && len(r.Secret) > 0 {
		pw, err := s.cfg.OpenSecret(r.Secret)
		if err != nil {
			return nil, fmt.Errorf("registry %s: credentials: %w", r.Name, err)
		}
		opts = append(opts, sign.WithRemoteOptions(remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: r.Username, Password: string(pw)}))))
	}
	v, err := sign.New(pol, opts...)
	if err != nil {
		return nil, err
	}
	if len(s.verifiers) > 256 {
		clear(s.verifiers)
	}
	s.verifiers[key] = v
	return v, nil
}
