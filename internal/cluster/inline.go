package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"mamori/internal/api"
	"mamori/internal/image"
	"mamori/internal/model"
	"mamori/internal/scan"
)

// Inline scan defaults, each with its reason.
const (
	// DefaultScanTimeout bounds one scan (pull + walk + upload) that runs
	// on after the webhook's deadline: a first scan of a large image.
	DefaultScanTimeout = 5 * time.Minute
	// DefaultScanParallel: scans are I/O and CPU heavy; two at a time keep
	// the component's footprint small while a new deployment's images are
	// scanned side by side.
	DefaultScanParallel = 2
)

// uploadScan is the server call (client.UploadClusterScan).
type uploadScan func(ctx context.Context, res *model.Result) (api.ClusterScanOutcome, error)

// scanner scans images the server never saw: pulled from their registry
// with the pod's image pull secrets, inventoried and checked for secrets,
// malware and misconfiguration here, matched by the server.
type scanner struct {
	kube    kubernetes.Interface
	sc      *scan.Scanner
	upload  uploadScan
	opts    []image.Option
	tmp     string
	timeout time.Duration
	sem     chan struct{}
	log     *slog.Logger
	// done hears every scan's outcome (images.scanned).
	done     func(ref string, data *api.ImageScanData, err error)
	bg       context.Context
	wg       sync.WaitGroup
	mu       sync.Mutex
	inflight map[string]*flight
}

// flight is one scan in progress; waiters block on done.
type flight struct {
	done chan struct{}
	data *api.ImageScanData
	err  error
}

// ScanRequest names an image and where its pull secrets are.
type ScanRequest struct {
	Ref         string
	Namespace   string
	PullSecrets []string
}

// scan scans r.Ref once at a time (concurrent callers share a scan) and
// waits for it until ctx ends; the scan itself runs on (bounded by the
// scan timeout) so that its result serves the next request.
func (s *scanner) scan(ctx context.Context, r ScanRequest) (*api.ImageScanData, error) {
	s.mu.Lock()
	f, ok := s.inflight[r.Ref]
	if !ok {
		f = &flight{done: make(chan struct{})}
		s.inflight[r.Ref] = f
		s.wg.Add(1)
		go s.run(r, f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.data, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("scan of %s not finished within the webhook's deadline (it goes on): %w", r.Ref, ctx.Err())
	}
}

// start starts a scan of r.Ref unless one is in progress, and returns at once.
func (s *scanner) start(r ScanRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.inflight[r.Ref]; ok {
		return
	}
	f := &flight{done: make(chan struct{})}
	s.inflight[r.Ref] = f
	s.wg.Add(1)
	go s.run(r, f)
}

func (s *scanner) run(r ScanRequest, f *flight) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.bg, s.timeout)
	defer cancel()
	defer func() {
		s.mu.Lock()
		delete(s.inflight, r.Ref)
		s.mu.Unlock()
		close(f.done)
	}()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		f.err = fmt.Errorf("scan of %s: %w", r.Ref, ctx.Err())
		return
	}
	t0 := time.Now()
	f.data, f.err = s.scanOnce(ctx, r)
	if s.done != nil {
		s.done(r.Ref, f.data, f.err)
	}
	if f.err != nil {
		s.log.Warn("inline scan failed", "image", r.Ref, "err", f.err, "took", time.Since(t0).Round(time.Millisecond))
		return
	}
	s.log.Info("image scanned", "image", r.Ref, "digest", f.data.Digest, "took", time.Since(t0).Round(time.Millisecond))
}

func (s *scanner) scanOnce(ctx context.Context, r ScanRequest) (*api.ImageScanData, error) {
	kc, err := s.keychain(ctx, r.Namespace, r.PullSecrets)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("scan %s: %w", r.Ref, err)
	}
	opts := append([]image.Option{image.WithKeychain(kc), image.WithWorkDir(s.tmp)}, s.opts...)
	img, err := image.Open(ctx, string(image.SourceRegistry)+":"+r.Ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r.Ref, err)
	}
	defer img.Close()
	res, err := s.sc.ScanImage(ctx, img.Image(), scan.ImageTarget{Name: r.Ref, Digest: img.Digest(), RepoTags: img.RepoTags(), Platform: img.Platform()})
	if err != nil {
		return nil, err
	}
	out, err := s.upload(ctx, res)
	if err != nil {
		return nil, fmt.Errorf("send the scan of %s: %w", r.Ref, err)
	}
	return &out.Image, nil
}

// keychain reads the pod's image pull secrets. A secret that is missing or
// not a pull secret is skipped (the kubelet would skip it too); one the
// component may not read is an error that says so.
func (s *scanner) keychain(ctx context.Context, ns string, names []string) (*pullKeychain, error) {
	return readPullKeychain(ctx, s.kube, s.log, ns, names)
}

// readPullKeychain reads the image pull secrets names of namespace ns (see
// scanner.keychain): inline scans and signature verification use it.
func readPullKeychain(ctx context.Context, kube kubernetes.Interface, log *slog.Logger, ns string, names []string) (*pullKeychain, error) {
	kc := &pullKeychain{}
	for _, n := range names {
		sec, err := kube.CoreV1().Secrets(ns).Get(ctx, n, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("image pull secret %s/%s: the component may not read secrets (grant it, or scan the image in a registry mamori server watches): %w", ns, n, err)
		case err != nil:
			return nil, fmt.Errorf("image pull secret %s/%s: %w", ns, n, err)
		}
		es, err := parsePullSecret(sec)
		if err != nil {
			log.Warn("image pull secret skipped", "secret", ns+"/"+n, "err", err)
			continue
		}
		kc.entries = append(kc.entries, es...)
	}
	return kc, nil
}

// wait waits for the scans in progress (shutdown).
func (s *scanner) wait() { s.wg.Wait() }

var errNoScanner = errors.New("inline scanning is off")
