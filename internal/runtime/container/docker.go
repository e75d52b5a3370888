package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultDockerHost is a stock dockerd's API socket.
const DefaultDockerHost = "/var/run/docker.sock"

// dockerAPI is the Engine API version asked for: 1.41 is Docker 20.10's,
// and every later Docker still serves it.
const dockerAPI = "/v1.41"

// Limits of the Docker client.
const (
	maxDockerJSON  = 4 << 20 // one inspect answer
	maxDockerEvent = 64 << 10
	dockerTimeout  = 10 * time.Second // one request (the event stream has none)
)

// Docker is the Docker Source: the Engine API over its unix socket.
type Docker struct {
	socket string
	client *http.Client // requests with a timeout
	stream *http.Client // the event stream: no timeout

	mu      sync.Mutex
	digests map[string]cachedDigest // image ID -> repo digest
}

var _ Source = (*Docker)(nil)

// NewDocker returns a client of the dockerd API at socket (a path or
// unix://path); it connects on first use.
func NewDocker(socket string) (*Docker, error) {
	if socket == "" {
		socket = DefaultDockerHost
	}
	s := strings.TrimPrefix(socket, "unix://")
	if strings.Contains(s, "://") {
		return nil, fmt.Errorf("docker host %q: only unix sockets are supported", socket)
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", s)
	}
	return &Docker{
		socket:  s,
		client:  &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConns: 4}, Timeout: dockerTimeout},
		stream:  &http.Client{Transport: &http.Transport{DialContext: dial}},
		digests: map[string]cachedDigest{},
	}, nil
}

// Name implements Source.
func (d *Docker) Name() string { return RuntimeDocker }

// Owns implements Source.
func (d *Docker) Owns(ref CgroupRef) bool { return ref.Runtime == RuntimeDocker }

// Close implements Source.
func (d *Docker) Close() error {
	d.client.CloseIdleConnections()
	d.stream.CloseIdleConnections()
	return nil
}

func (d *Docker) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+dockerAPI+path, nil)
	if err != nil {
		return fmt.Errorf("docker %s: %w", path, err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("docker %s: %w", d.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDockerJSON+1))
	if err != nil {
		return fmt.Errorf("docker %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: docker %s", ErrNotFound, path)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker %s: %s: %.200s", path, resp.Status, body)
	}
	if len(body) > maxDockerJSON {
		return fmt.Errorf("docker %s: answer over %d bytes", path, maxDockerJSON)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("docker %s: %w", path, err)
	}
	return nil
}

// dockerInspect is the part of GET /containers/{id}/json read here.
type dockerInspect struct {
	ID      string `json:"Id"`
	Name    string
	Created string
	Image   string // image ID (sha256:<config>)
	State   struct {
		Running bool
		Pid     int
	}
	Config struct {
		Image  string // the reference as given
		Labels map[string]string
	}
}

// List implements Source.
func (d *Docker) List(ctx context.Context) ([]Info, error) {
	var list []struct {
		ID string `json:"Id"`
	}
	if err := d.getJSON(ctx, "/containers/json?all=1", &list); err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(list))
	for _, c := range list {
		inf, err := d.inspect(ctx, c.ID)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, inf)
	}
	return out, nil
}

// Get implements Source.
func (d *Docker) Get(ctx context.Context, ref CgroupRef) (Info, error) {
	if !isHex64(ref.ID) {
		return Info{}, fmt.Errorf("%w: docker id %q", ErrNotFound, ref.ID)
	}
	return d.inspect(ctx, ref.ID)
}

func (d *Docker) inspect(ctx context.Context, id string) (Info, error) {
	var ci dockerInspect
	if err := d.getJSON(ctx, "/containers/"+url.PathEscape(id)+"/json", &ci); err != nil {
		return Info{}, err
	}
	var inf Info
	inf.ID = ci.ID
	inf.Name = strings.TrimPrefix(ci.Name, "/")
	inf.Runtime = RuntimeDocker
	inf.Image = ci.Config.Image
	inf.ImageID = ci.Image
	if len(ci.Config.Labels) > 0 {
		inf.Labels = ci.Config.Labels
	}
	// cri-dockerd (Kubernetes on Docker) labels its containers as kubelet's.
	if p := ci.Config.Labels[labelPodName]; p != "" {
		inf.Pod = p
		inf.Namespace = ci.Config.Labels[labelPodNamespace]
		inf.PodUID = ci.Config.Labels[labelPodUID]
		if n := ci.Config.Labels[labelContainerName]; n != "" {
			inf.Name = n
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, ci.Created); err == nil {
		inf.Created = t
	}
	if ci.State.Running && ci.State.Pid > 0 {
		inf.PID = ci.State.Pid
	}
	inf.ImageDigest = d.repoDigest(ctx, ci.Image, ci.Config.Image)
	return inf, nil
}

// repoDigest returns the manifest digest Docker recorded for an image
// (RepoDigests, set by a pull or push), preferring the repository of ref;
// the image ID when it has none (a loaded or built image).
func (d *Docker) repoDigest(ctx context.Context, imageID, ref string) string {
	if imageID == "" {
		return ""
	}
	k := imageID + "\x00" + ref
	d.mu.Lock()
	c, ok := d.digests[k]
	d.mu.Unlock()
	if ok && time.Since(c.at) < digestTTL {
		return c.digest
	}
	var ii struct {
		RepoDigests []string
	}
	if err := d.getJSON(ctx, "/images/"+url.PathEscape(imageID)+"/json", &ii); err != nil {
		return imageID
	}
	dg := pickRepoDigest(ii.RepoDigests, ref)
	if dg == "" {
		dg = imageID
	}
	d.mu.Lock()
	if len(d.digests) >= maxMetaCache {
		clear(d.digests)
	}
	d.digests[k] = cachedDigest{digest: dg, at: time.Now()}
	d.mu.Unlock()
	return dg
}

// pickRepoDigest picks the digest of the RepoDigests entry
// ("repo@sha256:...") whose repository is ref's; else the first.
func pickRepoDigest(repoDigests []string, ref string) string {
	repo := ref
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	first := ""
	for _, rd := range repoDigests {
		r, dg, ok := strings.Cut(rd, "@")
		if !ok || !strings.HasPrefix(dg, "sha256:") {
			continue
		}
		if r == repo {
			return dg
		}
		if first == "" {
			first = dg
		}
	}
	return first
}

// dockerEvent is one message of GET /events.
type dockerEvent struct {
	Type     string
	Action   string
	Actor    struct{ ID string }
	TimeNano int64 `json:"timeNano"`
}

// Watch implements Source.
func (d *Docker) Watch(ctx context.Context, ready func(), fn func(Change)) error {
	filters := url.QueryEscape(`{"type":["container"]}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+dockerAPI+"/events?filters="+filters, nil)
	if err != nil {
		return fmt.Errorf("docker events: %w", err)
	}
	resp, err := d.stream.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("docker %s: events: %w", d.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker events: %s", resp.Status)
	}
	ready()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxDockerEvent)
	for sc.Scan() {
		var ev dockerEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Type != "container" || !isHex64(ev.Actor.ID) {
			continue // a malformed or foreign message: the next one may be fine
		}
		at := time.Unix(0, ev.TimeNano)
		key := Info{}
		key.ID, key.Runtime = ev.Actor.ID, RuntimeDocker
		switch ev.Action {
		case "create", "start", "rename", "update", "unpause", "restart":
			inf, err := d.inspect(ctx, ev.Actor.ID)
			if err != nil {
				if errors.Is(err, ErrNotFound) {
					continue
				}
				inf = key
				inf.Partial = true
			}
			if ev.Action == "start" && inf.PID > 0 {
				inf.Started = at
			}
			fn(Change{Op: OpUpsert, Info: inf, At: at})
		case "die", "kill", "oom":
			if ev.Action == "die" {
				fn(Change{Op: OpExited, Info: key, At: at})
			}
		case "destroy":
			fn(Change{Op: OpDeleted, Info: key, At: at})
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("docker events: %w", err)
	}
	return errors.New("docker events: stream ended")
}
