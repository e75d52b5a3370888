package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The Docker Engine API is spoken directly over its unix socket (two GET
// endpoints) rather than through the Docker client library, which would add
// the whole moby API module graph for two requests.
//
// https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Image

// maxDaemonErrorBody caps how much of an error response is read for the
// message (the daemon sends {"message": "..."}; a few hundred bytes).
const maxDaemonErrorBody = 64 << 10

// dockerInspect is the part of GET /images/{name}/json mamori uses.
type dockerInspect struct {
	ID           string   `json:"Id"`
	RepoTags     []string `json:"RepoTags"`
	RepoDigests  []string `json:"RepoDigests"`
	Os           string   `json:"Os"`
	Architecture string   `json:"Architecture"`
	Variant      string   `json:"Variant"`
}

// dockerClient talks to a Docker Engine over a unix socket.
type dockerClient struct {
	socket string
	http   *http.Client
}

func newDockerClient(socket string) *dockerClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		// Headers should come back at once; the export body may stream
		// for minutes, so there is no overall timeout.
		ResponseHeaderTimeout: 5 * time.Minute,
		DisableCompression:    true,
	}
	return &dockerClient{socket: socket, http: &http.Client{Transport: tr}}
}

func (c *dockerClient) get(ctx context.Context, p string, q url.Values) (*http.Response, error) {
	// Host "docker" is a placeholder: the dialer ignores it.
	u := url.URL{Scheme: "http", Host: "docker", Path: p, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidReference, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: docker daemon at %s: %w", ErrUnavailable, c.socket, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxDaemonErrorBody))
	var msg struct {
		Message string `json:"message"`
	}
	text := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &msg) == nil && msg.Message != "" {
		text = msg.Message
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: docker daemon: %s", ErrNotFound, text)
	}
	return nil, fmt.Errorf("docker daemon: GET %s: %s: %s", p, resp.Status, text)
}

// inspect returns the daemon's record of the image.
func (c *dockerClient) inspect(ctx context.Context, ref string) (*dockerInspect, error) {
	resp, err := c.get(ctx, "/images/"+ref+"/json", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var di dockerInspect
	if err := json.NewDecoder(io.LimitReader(resp.Body, MaxMetadataSize)).Decode(&di); err != nil {
		return nil, fmt.Errorf("%w: docker image inspect: %w", ErrMalformed, err)
	}
	return &di, nil
}

// export streams `docker save` of ref. platform, when not empty, is passed
// as the JSON platform parameter of API 1.48+ (older daemons ignore it).
func (c *dockerClient) export(ctx context.Context, ref, platform string) (io.ReadCloser, error) {
	q := url.Values{}
	if platform != "" {
		q.Set("platform", platform)
	}
	resp, err := c.get(ctx, "/images/"+ref+"/get", q)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// openDocker asks the Docker daemon for the image: inspect first (a cheap
// existence check that also gives RepoDigests), then export it as a
// docker-archive into a temporary file of the work directory (removed on
// Close) and open that.
func openDocker(ctx context.Context, ref string, o *options) (img *Image, err error) {
	if strings.ContainsAny(ref, "?#") || strings.Contains(ref, "..") || strings.HasPrefix(ref, "/") {
		return nil, fmt.Errorf("%w: docker image %q", ErrInvalidReference, ref)
	}
	c := newDockerClient(o.dockerHost)
	di, err := c.inspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	platform := ""
	if o.platformSet {
		b, err := json.Marshal(map[string]string{"os": o.platform.OS, "architecture": o.platform.Architecture, "variant": o.platform.Variant})
		if err != nil {
			return nil, err
		}
		platform = string(b)
	}
	body, err := c.export(ctx, ref, platform)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	out := &Image{}
	defer func() {
		if err != nil {
			out.Close()
		}
	}()
	tmp, err := spool(ctx, body, o, "mamori-docker-*.tar", out)
	if err != nil {
		return nil, fmt.Errorf("docker export %s: %w", ref, err)
	}
	s, err := openTarStore(tmp)
	if err != nil {
		return nil, fmt.Errorf("docker export %s: %w", ref, err)
	}
	out.closers = append(out.closers, s.close)
	// The export of one reference holds one image; fall back to the
	// reference as a tag if a daemon ever sends more.
	ai, err := openDockerArchive(s, "")
	if err != nil {
		ai, err = openDockerArchive(s, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("docker export %s: %w", ref, err)
	}
	out.source = SourceDocker
	out.name = ref
	out.repoTags = di.RepoTags
	out.repoDigests = di.RepoDigests
	if err := out.finish(ai); err != nil {
		return nil, fmt.Errorf("docker export %s: %w", ref, err)
	}
	return out, nil
}
