package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"mamori/internal/runtime/container"
)

// The ports a container declared, for container.declared_ports (a
// listener in a container that declared none is suspect): the image
// config's EXPOSE and, for a Kubernetes pod, its containers' ports (CRI
// passes every containerPort to the sandbox as a port mapping, host port
// or not). Attribution does not carry them, so the agent asks the runtime
// once per container and caches the answer.

// portLookup answers the declared ports of a container.
type portLookup interface {
	ports(ctx context.Context, c *container.Info) ([]int, error)
}

// runtimePorts asks containerd (plain and CRI) and Docker.
type runtimePorts struct {
	ctrd         *grpc.ClientConn // nil: no containerd
	dockerClient *http.Client     // nil: no Docker
}

// maxBlob bounds a manifest, index or config read from containerd's
// content store (image configs are a few KiB; a hostile one is refused).
const maxBlob = 4 << 20

// portTimeout bounds one lookup: it runs on the pipeline's path the
// first time a container listens.
const portTimeout = 2 * time.Second

func newRuntimePorts(containerdAddr, dockerSocket string) (*runtimePorts, error) {
	rp := &runtimePorts{}
	if containerdAddr != "" {
		abs, err := filepath.Abs(strings.TrimPrefix(containerdAddr, "unix://"))
		if err != nil {
			return nil, fmt.Errorf("containerd address %q: %w", containerdAddr, err)
		}
		conn, err := grpc.NewClient("unix://"+abs, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("containerd at %s: %w", abs, err)
		}
		rp.ctrd = conn
	}
	if dockerSocket != "" {
		sock := strings.TrimPrefix(dockerSocket, "unix://")
		dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}
		rp.dockerClient = &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConns: 2}, Timeout: portTimeout}
	}
	return rp, nil
}

func (rp *runtimePorts) close() error {
	if rp.ctrd != nil {
		return rp.ctrd.Close()
	}
	return nil
}

func (rp *runtimePorts) ports(ctx context.Context, c *container.Info) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, portTimeout)
	defer cancel()
	switch c.Runtime {
	case container.RuntimeDocker:
		if rp.dockerClient == nil {
			return nil, errors.New("no Docker socket configured")
		}
		return rp.dockerPorts(ctx, c.ID)
	case container.RuntimeContainerd, container.RuntimeCRI:
		if rp.ctrd == nil {
			return nil, errors.New("no containerd socket configured")
		}
		return rp.containerdPorts(ctx, c)
	}
	return nil, fmt.Errorf("no port source for runtime %q", c.Runtime)
}

func (rp *runtimePorts) containerdPorts(ctx context.Context, c *container.Info) ([]int, error) {
	ns := c.RuntimeNamespace
	if ns == "" {
		ns = "k8s.io"
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "containerd-namespace", ns)
	cs := containersapi.NewContainersClient(rp.ctrd)
	got, err := cs.Get(ctx, &containersapi.GetContainerRequest{ID: c.ID})
	if err != nil {
		return nil, fmt.Errorf("containerd: container %s/%s: %w", ns, c.ID, err)
	}
	var out []int
	if img := got.GetContainer().GetImage(); img != "" {
		p, err := rp.imagePorts(ctx, img)
		if err != nil {
			return nil, err
		}
		out = append(out, p...)
	}
	if c.Runtime == container.RuntimeCRI && c.SandboxID != "" {
		sb, err := cs.Get(ctx, &containersapi.GetContainerRequest{ID: c.SandboxID})
		if err != nil {
			return nil, fmt.Errorf("containerd: sandbox %s: %w", c.SandboxID, err)
		}
		if x := sb.GetContainer().GetExtensions()[criSandboxMetadata]; x != nil {
			p, err := parseSandboxPorts(x.GetValue())
			if err != nil {
				return nil, fmt.Errorf("sandbox %s: %w", c.SandboxID, err)
			}
			out = append(out, p...)
		}
	}
	return normPorts(out), nil
}

// criSandboxMetadata is the extension under which containerd's CRI plugin
// keeps a sandbox's metadata, the PodSandboxConfig kubelet sent among it.
const criSandboxMetadata = "io.cri-containerd.sandbox.metadata"

// parseSandboxPorts reads the container ports of a CRI sandbox's metadata
// ({"Version":"v1","Metadata":{"Config":{"port_mappings":[...]}}}).
func parseSandboxPorts(b []byte) ([]int, error) {
	var md struct {
		Metadata struct {
			Config struct {
				PortMappings []struct {
					ContainerPort int `json:"container_port"`
				} `json:"port_mappings"`
			} `json:"Config"`
		} `json:"Metadata"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("CRI sandbox metadata: %w", err)
	}
	var out []int
	for _, pm := range md.Metadata.Config.PortMappings {
		out = append(out, pm.ContainerPort)
	}
	return out, nil
}

func (rp *runtimePorts) imagePorts(ctx context.Context, ref string) ([]int, error) {
	is := imagesapi.NewImagesClient(rp.ctrd)
	img, err := is.Get(ctx, &imagesapi.GetImageRequest{Name: ref})
	if err != nil {
		return nil, fmt.Errorf("containerd: image %s: %w", ref, err)
	}
	t := img.GetImage().GetTarget()
	if t == nil {
		return nil, fmt.Errorf("containerd: image %s has no target", ref)
	}
	digest, mediaType := t.GetDigest(), t.GetMediaType()
	for range 3 { // index -> manifest -> config
		b, err := rp.blob(ctx, digest)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.Contains(mediaType, "index") || strings.Contains(mediaType, "manifest.list"):
			idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("image %s: index: %w", ref, err)
			}
			m, ok := pickManifest(idx)
			if !ok {
				return nil, fmt.Errorf("image %s: no manifest for %s/%s", ref, runtime.GOOS, runtime.GOARCH)
			}
			digest, mediaType = m.Digest.String(), string(m.MediaType)
		case strings.Contains(mediaType, "manifest"):
			m, err := v1.ParseManifest(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("image %s: manifest: %w", ref, err)
			}
			digest, mediaType = m.Config.Digest.String(), "config"
		default:
			return configPorts(b)
		}
	}
	return nil, fmt.Errorf("image %s: nesting too deep", ref)
}

func pickManifest(idx *v1.IndexManifest) (v1.Descriptor, bool) {
	for _, m := range idx.Manifests {
		if m.Platform == nil || (m.Platform.OS == runtime.GOOS && m.Platform.Architecture == runtime.GOARCH) {
			return m, true
		}
	}
	return v1.Descriptor{}, false
}

// configPorts reads EXPOSE from an image config.
func configPorts(b []byte) ([]int, error) {
	cf, err := v1.ParseConfigFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return exposedPorts(cf.Config.ExposedPorts), nil
}

// exposedPorts reads "80/tcp" style keys.
func exposedPorts(m map[string]struct{}) []int {
	var out []int
	for k := range m {
		p, _, _ := strings.Cut(k, "/")
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
			out = append(out, n)
		}
	}
	return out
}

func (rp *runtimePorts) blob(ctx context.Context, digest string) ([]byte, error) {
	cs := contentapi.NewContentClient(rp.ctrd)
	st, err := cs.Read(ctx, &contentapi.ReadContentRequest{Digest: digest})
	if err != nil {
		return nil, fmt.Errorf("containerd: read %s: %w", digest, err)
	}
	var buf []byte
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("containerd: read %s: %w", digest, err)
		}
		buf = append(buf, r.GetData()...)
		if len(buf) > maxBlob {
			return nil, fmt.Errorf("containerd: %s is over %d bytes", digest, maxBlob)
		}
	}
}

func (rp *runtimePorts) dockerPorts(ctx context.Context, id string) ([]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/containers/"+id+"/json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := rp.dockerClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker: inspect %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("docker: inspect %s: %s", id, resp.Status)
	}
	var in struct {
		Config struct {
			ExposedPorts map[string]struct{}
		}
		HostConfig struct {
			PortBindings map[string]json.RawMessage
		}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBlob)).Decode(&in); err != nil {
		return nil, fmt.Errorf("docker: inspect %s: %w", id, err)
	}
	out := exposedPorts(in.Config.ExposedPorts)
	pb := map[string]struct{}{}
	for k := range in.HostConfig.PortBindings {
		pb[k] = struct{}{}
	}
	return normPorts(append(out, exposedPorts(pb)...)), nil
}

// normPorts sorts and de-duplicates; nil stays nil ("declared none").
func normPorts(p []int) []int {
	if len(p) == 0 {
		return nil
	}
	slices.Sort(p)
	return slices.Compact(p)
}

// portCache remembers each container's declared ports (bounded; a
// container's ports never change while it exists).
type portCache struct {
	mu     sync.Mutex
	lookup portLookup
	m      map[string][]int // container ID -> ports (nil entry: declared none)
	max    int
	errors uint64
}

func newPortCache(l portLookup, max int) *portCache {
	return &portCache{lookup: l, m: map[string][]int{}, max: max}
}

// get returns the container's ports, asking the runtime the first time.
// An error leaves the answer unknown (not cached): the rule reading it is
// then given the empty list, as "declared none" would.
func (pc *portCache) get(ctx context.Context, c *container.Info) []int {
	if c == nil || pc == nil || pc.lookup == nil {
		return nil
	}
	pc.mu.Lock()
	p, ok := pc.m[c.ID]
	pc.mu.Unlock()
	if ok {
		return p
	}
	p, err := pc.lookup.ports(ctx, c)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if err != nil {
		pc.errors++
		return nil
	}
	if len(pc.m) >= pc.max {
		for k := range pc.m { // forget an arbitrary one: re-asked when needed
			delete(pc.m, k)
			break
		}
	}
	pc.m[c.ID] = p
	return p
}

// known returns the cached ports without asking.
func (pc *portCache) known(id string) ([]int, bool) {
	if pc == nil {
		return nil, false
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	p, ok := pc.m[id]
	return p, ok
}

func (pc *portCache) forget(id string) {
	if pc == nil {
		return
	}
	pc.mu.Lock()
	delete(pc.m, id)
	pc.mu.Unlock()
}
