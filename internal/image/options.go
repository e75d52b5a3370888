package image

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Defaults, each with the reason it is what it is.
const (
	// DefaultPlatform is the platform picked from a multi-platform index when
	// none is asked for: the platform most scanners and CI runners target,
	// and the one Trivy and Syft default to.
	DefaultPlatform = "linux/amd64"

	// DefaultDockerHost is the Docker Engine API socket of a stock dockerd.
	DefaultDockerHost = "/var/run/docker.sock"

	// DefaultContainerdAddress is the gRPC socket of a stock containerd.
	DefaultContainerdAddress = "/run/containerd/containerd.sock"

	// MaxMetadataSize caps every JSON document read into memory: a docker
	// manifest.json, an OCI index.json, a manifest and an image config. Real
	// ones are a few KiB (configs with long histories reach a few hundred
	// KiB); 8 MiB leaves ample room and keeps hostile input from exhausting
	// memory.
	MaxMetadataSize = 8 << 20

	// MaxArchiveEntries caps the number of entries indexed in an archive. A
	// docker-archive or OCI layout tar holds a few entries per layer; a
	// million tiny entries is an attack on the index's memory, not an image.
	MaxArchiveEntries = 100_000

	// MaxIndexDepth caps how deeply image indexes may nest (an index naming
	// an index ...). Real images nest at most twice (OCI layout index.json
	// naming a multi-platform index); a cycle must not loop forever.
	MaxIndexDepth = 4

	// DefaultMaxExportSize caps how much a Docker daemon export may write to
	// the work directory. The largest real images are tens of GiB; the cap
	// keeps a misbehaving daemon from filling the disk.
	DefaultMaxExportSize int64 = 64 << 30
)

// DefaultContainerdNamespaces are tried in order when no namespace is set:
// "default" is what ctr and nerdctl use, "k8s.io" is where the CRI plugin
// (kubelet) keeps images, "moby" is Docker's containerd image store.
var defaultContainerdNamespaces = []string{"default", "k8s.io", "moby"}

// Environment variables carrying registry credentials. They are applied to
// the one registry being opened, before ~/.docker/config.json, the same
// convention as TRIVY_USERNAME/TRIVY_PASSWORD. A token (GitHub PAT, GitLab
// deploy token, cloud access token) goes in the password.
const (
	EnvUsername = "MAMORI_USERNAME"
	EnvPassword = "MAMORI_PASSWORD"
)

// Source is where an image is read from.
type Source string

// The sources Open knows. SourceAuto tries them in the order documented on
// Open.
const (
	SourceAuto          Source = ""
	SourceDockerArchive Source = "docker-archive"
	SourceOCIArchive    Source = "oci-archive"
	SourceOCIDir        Source = "oci-dir"
	SourceRegistry      Source = "registry"
	SourceDocker        Source = "docker"
	SourceContainerd    Source = "containerd"
)

// Option configures Open and OpenFile.
type Option func(*options) error

type options struct {
	platform            v1.Platform
	platformSet         bool
	insecure            map[string]bool
	plainHTTP           bool
	keychain            authn.Keychain
	transport           http.RoundTripper
	dockerHost          string
	containerdAddress   string
	containerdNamespace []string
	source              Source
	tag                 string
	workDir             string
	maxExportSize       int64
	env                 func(string) string
}

func makeOptions(opts ...Option) (*options, error) {
	p, err := parsePlatform(DefaultPlatform)
	if err != nil {
		return nil, err
	}
	o := &options{
		platform:            *p,
		insecure:            map[string]bool{},
		transport:           http.DefaultTransport,
		dockerHost:          DefaultDockerHost,
		containerdAddress:   DefaultContainerdAddress,
		containerdNamespace: defaultContainerdNamespaces,
		maxExportSize:       DefaultMaxExportSize,
		env:                 os.Getenv,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.keychain == nil {
		o.keychain = authn.NewMultiKeychain(envKeychain{getenv: o.env}, authn.DefaultKeychain)
	}
	return o, nil
}

// WithPlatform selects the platform ("os/arch[/variant]", e.g. "linux/amd64",
// "linux/arm64/v8") taken from a multi-platform index. Default
// DefaultPlatform. It is also passed to a Docker daemon when set explicitly.
func WithPlatform(platform string) Option {
	return func(o *options) error {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		o.platform = *p
		o.platformSet = true
		return nil
	}
}

// WithInsecureRegistries lets the named registries ("host:port") be reached
// over plain HTTP or HTTPS with an unverified certificate. Loopback
// registries (127.0.0.1, localhost) are reached over HTTP without it.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			h = strings.TrimSpace(h)
			if h == "" {
				return fmt.Errorf("%w: empty insecure registry name", ErrInvalidOption)
			}
			o.insecure[h] = true
		}
		return nil
	}
}

// WithPlainHTTP makes every registry reference insecure (plain HTTP allowed).
// Meant for tests and air-gapped mirrors.
func WithPlainHTTP() Option {
	return func(o *options) error {
		o.plainHTTP = true
		return nil
	}
}

// WithKeychain replaces the default credentials (MAMORI_USERNAME and
// MAMORI_PASSWORD, then ~/.docker/config.json or $DOCKER_CONFIG/config.json
// and its credential helpers).
func WithKeychain(kc authn.Keychain) Option {
	return func(o *options) error {
		if kc == nil {
			return fmt.Errorf("%w: nil keychain", ErrInvalidOption)
		}
		o.keychain = kc
		return nil
	}
}

// WithTransport sets the HTTP transport used for registries.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return fmt.Errorf("%w: nil transport", ErrInvalidOption)
		}
		o.transport = rt
		return nil
	}
}

// WithDockerHost sets the Docker Engine API socket: a path or "unix://path".
// Default DefaultDockerHost; $DOCKER_HOST is not read here so that behaviour
// is explicit (the CLI may pass it through).
func WithDockerHost(socket string) Option {
	return func(o *options) error {
		s := strings.TrimPrefix(socket, "unix://")
		if s == "" || strings.Contains(s, "://") {
			return fmt.Errorf("%w: docker host %q: only unix sockets are supported", ErrInvalidOption, socket)
		}
		o.dockerHost = s
		return nil
	}
}

// WithContainerdAddress sets containerd's gRPC socket: a path or
// "unix://path". Default DefaultContainerdAddress.
func WithContainerdAddress(socket string) Option {
	return func(o *options) error {
		s := strings.TrimPrefix(socket, "unix://")
		if s == "" || strings.Contains(s, "://") {
			return fmt.Errorf("%w: containerd address %q: only unix sockets are supported", ErrInvalidOption, socket)
		}
		o.containerdAddress = s
		return nil
	}
}

// WithContainerdNamespace sets the containerd namespace to read from.
// Default: "default", then "k8s.io", then "moby", the first holding the image.
func WithContainerdNamespace(ns string) Option {
	return func(o *options) error {
		if ns == "" {
			return fmt.Errorf("%w: empty containerd namespace", ErrInvalidOption)
		}
		o.containerdNamespace = []string{ns}
		return nil
	}
}

// WithSource forces the source a bare reference is read from, as a prefix
// ("docker:alpine") would.
func WithSource(kind Source) Option {
	return func(o *options) error {
		switch kind {
		case SourceAuto, SourceDockerArchive, SourceOCIArchive, SourceOCIDir,
			SourceRegistry, SourceDocker, SourceContainerd:
			o.source = kind
			return nil
		}
		return fmt.Errorf("%w: unknown source %q", ErrInvalidOption, kind)
	}
}

// WithTag picks one image of an archive holding several: a RepoTag of a
// docker archive ("alpine:3.20", compared after normalisation) or the
// org.opencontainers.image.ref.name annotation of an OCI layout.
func WithTag(tag string) Option {
	return func(o *options) error {
		o.tag = tag
		return nil
	}
}

// WithWorkDir sets the directory for temporary files (a Docker daemon
// export). Default os.TempDir(). Files are removed by Image.Close.
func WithWorkDir(dir string) Option {
	return func(o *options) error {
		o.workDir = dir
		return nil
	}
}

// WithMaxExportSize caps the bytes a Docker daemon export may write to the
// work directory. Default DefaultMaxExportSize.
func WithMaxExportSize(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("%w: max export size %d", ErrInvalidOption, n)
		}
		o.maxExportSize = n
		return nil
	}
}

// envKeychain serves MAMORI_USERNAME/MAMORI_PASSWORD to whichever registry is
// being opened.
type envKeychain struct {
	getenv func(string) string
}

func (k envKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	u, p := k.getenv(EnvUsername), k.getenv(EnvPassword)
	if u == "" && p == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: u, Password: p}), nil
}

func parsePlatform(s string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("%w: platform %q: want os/arch[/variant]", ErrInvalidOption, s)
	}
	return p, nil
}
