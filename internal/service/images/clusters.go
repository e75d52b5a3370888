package images

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/store"
)

// The images of Kubernetes clusters: what the cluster component's webhook
// needs to decide (the scan data of the images a pod names) and the scans
// it takes inline (inventory and findings, matched here: components take
// inventory, the server holds the vulnerability database).

// ScanData is what the server knows of one image reference.
type ScanData struct {
	Ref   string
	Found bool
	Image store.ImageSummary
	// ScanID is the latest scan's ID; Result its target, time,
	// vulnerabilities and findings (no inventory).
	ScanID string
	Result *model.Result
}

// maxRefLen bounds an image reference (Kubernetes allows 4096 bytes in a
// container's image field; real ones are under 300).
const maxRefLen = 4096

// LookupForCluster returns what is known of each reference, in order, and
// the vulnerability database the stored findings were matched against. refs
// are image references as pods write them; a reference with a digest
// names that image only.
func (s *Service) LookupForCluster(ctx context.Context, refs []string) ([]ScanData, time.Time, error) {
	if _, err := clusterCaller(ctx); err != nil {
		return nil, time.Time{}, err
	}
	out := make([]ScanData, 0, len(refs))
	cache := map[string]ScanData{}
	for _, ref := range refs {
		if len(ref) == 0 || len(ref) > maxRefLen || strings.ContainsAny(ref, "\x00\n\r\t ") {
			return nil, time.Time{}, service.Invalid("image reference %q: 1 to %d bytes, no white space", truncate(ref), maxRefLen)
		}
		if d, ok := cache[ref]; ok {
			out = append(out, d)
			continue
		}
		digest, names := refCandidates(ref)
		d := ScanData{Ref: ref}
		im, scanID, err := s.st.FindImage(ctx, digest, names)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, time.Time{}, fmt.Errorf("image %s: %w", truncate(ref), err)
		default:
			res, err := s.slimResult(ctx, im, scanID)
			if err != nil {
				return nil, time.Time{}, err
			}
			d.Found, d.Image, d.ScanID, d.Result = true, im, scanID, res
		}
		cache[ref] = d
		out = append(out, d)
	}
	return out, s.MatchedDB(ctx), nil
}

// MatchedDB is the built-at of the vulnerability database the stored
// findings were last re-matched against (zero before the first re-match).
func (s *Service) MatchedDB(ctx context.Context) time.Time {
	if v, err := s.st.GetMeta(ctx, store.MetaVulnDBBuiltAt); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	return time.Time{}
}

// ScanDataByDigest is LookupForCluster for the server's own use
// (continuous compliance): the image with manifest digest digest.
func (s *Service) ScanDataByDigest(ctx context.Context, digest string) (ScanData, error) {
	d := ScanData{Ref: digest}
	im, scanID, err := s.st.FindImage(ctx, digest, nil)
	if errors.Is(err, store.ErrNotFound) {
		return d, nil
	}
	if err != nil {
		return d, fmt.Errorf("image %s: %w", digest, err)
	}
	res, err := s.slimResult(ctx, im, scanID)
	if err != nil {
		return d, err
	}
	d.Found, d.Image, d.ScanID, d.Result = true, im, scanID, res
	return d, nil
}

func (s *Service) slimResult(ctx context.Context, im store.ImageSummary, scanID string) (*model.Result, error) {
	vulns, err := s.st.ListImageVulnerabilities(ctx, im.ID)
	if err != nil {
		return nil, fmt.Errorf("image %d vulnerabilities: %w", im.ID, err)
	}
	fs, err := s.st.ListFindings(ctx, im.ID, "")
	if err != nil {
		return nil, fmt.Errorf("image %d findings: %w", im.ID, err)
	}
	if vulns == nil {
		vulns = []model.Vulnerability{}
	}
	if fs == nil {
		fs = []model.Finding{}
	}
	return &model.Result{SchemaVersion: model.SchemaVersion, ScanID: scanID, CreatedAt: im.LastScannedAt,
		Target:          model.Target{Name: im.Name, Type: im.Type, Digest: im.Digest, ImageID: im.ConfigDigest, RepoTags: im.RepoTags},
		Vulnerabilities: vulns, Findings: fs, Inventory: model.Inventory{Packages: []model.Package{}}}, nil
}

// refCandidates returns the digest a reference pins (when it does) or the
// names a stored image may carry for it: as written and in its normalized
// forms ("nginx" is also "docker.io/library/nginx:latest").
func refCandidates(ref string) (digest string, names []string) {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		if d := ref[i+1:]; strings.HasPrefix(d, "sha256:") && len(d) == 71 {
			return d, nil
		}
	}
	names = []string{ref}
	add := func(n string) {
		for _, x := range names {
			if x == n {
				return
			}
		}
		names = append(names, n)
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", names
	}
	repo := r.Context()
	id := r.Identifier()
	for _, reg := range []string{repo.RegistryStr(), "docker.io"} {
		if reg == name.DefaultRegistry || reg == "docker.io" {
			add("docker.io/" + repo.RepositoryStr() + ":" + id)
			add(strings.TrimPrefix(repo.RepositoryStr(), "library/") + ":" + id)
			add(repo.RepositoryStr() + ":" + id)
			break
		}
		add(reg + "/" + repo.RepositoryStr() + ":" + id)
	}
	return "", names
}

// IngestClusterScan stores an image scanned inline by the calling cluster
// component: its inventory is matched first by match (vulnmatch's
// MatchResult: the component sends inventory and findings, never
// vulnerabilities, and any it sends are dropped), then ingested as any scan.
func (s *Service) IngestClusterScan(ctx context.Context, res *model.Result, match func(context.Context, *model.Result) error) (store.IngestOutcome, ScanData, error) {
	p, err := clusterCaller(ctx)
	if err != nil {
		return store.IngestOutcome{}, ScanData{}, err
	}
	if res.Target.Type != model.TargetImage || res.Target.Digest == "" {
		return store.IngestOutcome{}, ScanData{}, service.Invalid("a cluster scan is of an image with its manifest digest")
	}
	res.Vulnerabilities = []model.Vulnerability{}
	kept := res.Findings[:0]
	for _, f := range res.Findings {
		if f.Engine != model.EngineOSV { // OSV MAL-* findings come from matching
			kept = append(kept, f)
		}
	}
	res.Findings = kept
	if err := match(ctx, res); err != nil {
		return store.IngestOutcome{}, ScanData{}, err
	}
	out, err := s.Ingest(ctx, res)
	if err != nil {
		return store.IngestOutcome{}, ScanData{}, err
	}
	s.log.Info("cluster image scan", "cluster", p.Cluster, "image", res.Target.Name, "digest", res.Target.Digest, "status", out.Status)
	d, err := s.ScanDataByDigest(ctx, res.Target.Digest)
	if err != nil {
		return out, ScanData{}, err
	}
	d.Ref = res.Target.Name
	return out, d, nil
}

func clusterCaller(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.PrincipalFromContext(ctx)
	if !ok || p.Role != auth.RoleCluster {
		return nil, fmt.Errorf("%w: only a cluster token may do this", auth.ErrForbidden)
	}
	return p, nil
}
