package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"mamori/internal/agent"
	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/model"
	"mamori/internal/testctr"
)

var ctrd testctr.Shared

func TestMain(m *testing.M) { os.Exit(ctrd.Main(m)) }

// The OSV records of testdata/osv: every tar and every zlib of Debian 12
// is affected (no fix in bookworm).
const (
	tarVuln  = "DEBIAN-CVE-2005-2541"
	zlibVuln = "DEBIAN-CVE-2023-45853"
)

// TestInUseE2E (issue 15, must show): in real containerd containers of
// images built from the machine's own Debian 12 packages (tar with its
// libraries, and zlib's library that nothing links), watched by the node
// agent with the eBPF sensor and reported to a real mamori server that
// matched the images against real OSV records:
//
//   - the container that runs the vulnerable binary (tar) gets tar's
//     finding marked in use, with the container and the time, within a
//     minute (measured);
//   - zlib's finding, whose library no container loads, is marked "not
//     loaded" in both watched images and never in use; the image no
//     container runs has no mark at all (absent, not false);
//   - the in-use filter of the API keeps tar's vulnerability only;
//   - running tar later in the second container marks that image too (a
//     re-mark on new loads, measured); a re-match keeps the marks;
//   - a container that was running tar before the agent started is marked
//     from the agent's start-up sweep of /proc (the kernel never reports
//     its exec);
//   - the agent sends the loads of the test's containers only (no host
//     process), and the volume is reported.
func TestInUseE2E(t *testing.T) {
	d := ctrd.Get(t) // skips without MAMORI_TEST_RUNTIME=1
	for _, tool := range []string{"dpkg-query", "ldd"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: the test image is built from the machine's Debian packages: %v", tool, err)
		}
	}
	ctx := context.Background()
	begin := time.Now()
	bin := t.TempDir()
	mamori := goBuild(t, "./cmd/mamori", filepath.Join(bin, "mamori"))
	t.Logf("built mamori in %v", time.Since(begin).Round(time.Millisecond))
	osv, err := filepath.Abs("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	srvDir, cliDB, cache := t.TempDir(), t.TempDir(), t.TempDir()
	runCmd(t, mamori, "--db-dir", filepath.Join(srvDir, "db"), "db", "import", osv)
	runCmd(t, mamori, "--db-dir", cliDB, "db", "import", osv)
	srv := startServer(t, mamori, srvDir)
	admin := srv.client(t, srv.admin)
	operator := srv.token(t, "inuse-scanner", "operator")
	agentToken := srv.token(t, "inuse-agent", "agent")

	// Three images of the same packages: A's container runs tar, B's runs
	// only busybox's sleep, C is never run.
	files := debianFiles(t)
	type testImage struct {
		name string
		img  testctr.Image
		id   int64
	}
	var imgs []*testImage
	for _, name := range []string{"a", "b", "c", "d"} {
		spec := testctr.ImageSpec{Repo: "docker.io/mamori-test/inuse-" + name, Files: map[string]testctr.File{
			"etc/mamori-inuse-image": {Data: []byte(name + "\n")}}}
		for p, f := range files {
			spec.Files[p] = f
		}
		img, err := testctr.BuildImage(spec)
		if err != nil {
			t.Fatal(err)
		}
		ref := spec.Repo + ":" + testctr.RandomTag()
		ti := &testImage{name: name}
		if name == "c" {
			dg, _ := img.Digest()
			ti.img = testctr.Image{Ref: ref, Digest: dg.String(), Image: img}
		} else if ti.img, err = d.Import(ctx, d.Namespace, img, ref); err != nil {
			t.Fatal(err)
		}
		scanAndUpload(t, mamori, img, ref, cliDB, cache, srv.url(), operator)
		imgs = append(imgs, ti)
	}
	for _, ti := range imgs {
		ti.id = srv.imageID(t, ti.img.Digest)
		use := srv.use(t, ti.id)
		for _, v := range []string{tarVuln, zlibVuln} {
			u, ok := use[v]
			if !ok {
				t.Fatalf("image %s: no finding %s (the scan found %v): testdata/osv no longer matches this machine's packages", ti.name, v, keys(use))
			}
			if u != nil {
				t.Fatalf("image %s: %s marked %+v before any agent ran", ti.name, v, u)
			}
		}
	}
	a, b, c, dd := imgs[0], imgs[1], imgs[2], imgs[3]
	t.Logf("setup (build, four images scanned and uploaded) took %v", time.Since(begin).Round(time.Millisecond))

	// D's container starts before the agent: tar runs and stays (it waits
	// for a writer on a FIFO), so the kernel never reports its exec; the
	// agent's start-up sweep reads what it mapped.
	cdd := d.Run(t, testctr.RunSpec{Image: dd.img, Args: []string{"/bin/sh", "-c", "mkfifo /tmp/f && exec /usr/bin/tar -xf /tmp/f"}})
	waitFor(t, 10*time.Second, "tar to run in D", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cdd.PID))
		return strings.TrimSpace(string(b)) == "tar"
	})
	time.Sleep(200 * time.Millisecond) // its libraries are mapped before main opens the FIFO

	// The agent, with the eBPF sensor, reporting to the server through a
	// client that records the load reports.
	cl, err := client.New(srv.url(), agentToken)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Client: cl}
	dir := t.TempDir()
	cfg := agent.Defaults()
	cfg.Node = "inuse-" + testctr.RandomTag()
	cfg.Server.URL = srv.url()
	cfg.Spool.Dir = filepath.Join(dir, "spool")
	cfg.Events.File = filepath.Join(dir, "events.jsonl")
	cfg.StatsListen = ""
	cfg.Modules.Runtime.Containerd = d.Address
	cfg.Modules.Runtime.Docker = "none"
	cfg.Modules.Runtime.Sensor = "ebpf"
	logs := &syncBuffer{}
	ag, err := agent.New(cfg, agent.WithServer(rec), agent.WithLogger(slog.New(slog.NewTextHandler(logs, nil))), agent.WithVersion("e2e"))
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ag.Run(actx) }()
	stopped := false
	stopAgent := func() {
		if !stopped {
			stopped = true
			stop()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		}
	}
	t.Cleanup(func() {
		stopAgent()
		if t.Failed() {
			t.Logf("agent log:\n%s", tail(logs.String(), 80))
			t.Logf("server log:\n%s", tail(srv.log.String(), 80))
		}
	})
	waitFor(t, 30*time.Second, "the sensor to start", func() bool { return ag.Runtime().Mode() != "" })
	if m := ag.Runtime().Mode(); m != "ebpf" {
		t.Fatalf("sensor mode %s, want ebpf", m)
	}
	rs := ag.Runtime().RuntimeStats()
	if !slices.Contains(rs.Kinds, "load") {
		t.Fatalf("the sensor was not asked for loads: %v", rs.Kinds)
	}
	agentStart := time.Now()
	sensor0 := rs.Sensor

	// D (older than the agent) is marked from the sweep.
	var markD time.Duration
	waitFor(t, time.Minute, "image D's tar finding marked from the start-up sweep", func() bool {
		u := srv.use(t, dd.id)[tarVuln]
		if u != nil && u.Loaded {
			markD = time.Since(agentStart)
			return true
		}
		return false
	})
	t.Logf("image D (container older than the agent): %s marked in use %v after the sensor started", tarVuln, markD.Round(time.Millisecond))
	if u := srv.use(t, dd.id)[zlibVuln]; u == nil || u.Loaded {
		t.Errorf("image D's zlib: %+v, want not loaded", u)
	}

	// A runs tar (the vulnerable binary) and keeps running; B only sleeps.
	startA := time.Now()
	ca := d.Run(t, testctr.RunSpec{Image: a.img, Args: []string{"/bin/sh", "-c", "/usr/bin/tar --version > /tmp/tar-version && exec sleep 1000000"}})
	cb := d.Run(t, testctr.RunSpec{Image: b.img, Args: []string{"sleep", "1000000"}})
	var markA time.Duration
	waitFor(t, time.Minute, "tar's finding in image A marked in use within a minute", func() bool {
		u := srv.use(t, a.id)[tarVuln]
		if u != nil && u.Loaded {
			markA = time.Since(startA)
			return true
		}
		return false
	})
	t.Logf("image A: %s marked in use %v after the container started", tarVuln, markA.Round(time.Millisecond))
	out, err := ca.Exec(ctx, "cat", "/tmp/tar-version")
	if err != nil || !strings.Contains(out, "GNU tar") {
		t.Fatalf("the container did not run tar: %q %v", out, err)
	}
	ua := srv.use(t, a.id)
	tarUse := ua[tarVuln]
	if tarUse.Count != 1 || len(tarUse.Containers) != 1 || tarUse.Containers[0].ID != ca.ID || tarUse.Containers[0].Path != "usr/bin/tar" ||
		tarUse.LastSeen.Before(startA.Add(-time.Second)) || tarUse.LastSeen.After(time.Now()) {
		t.Errorf("image A's tar use: %+v, want container %s loading usr/bin/tar after %v", tarUse, ca.ID, startA)
	}
	// B is watched (its busybox ran), nothing of its packages loaded.
	waitFor(t, 30*time.Second, "image B marked (watched, nothing loaded)", func() bool {
		return srv.use(t, b.id)[zlibVuln] != nil
	})
	// A few more rounds of agent reports and server marks: nothing else
	// may turn to "in use".
	time.Sleep(6 * time.Second)
	ua, ub, uc := srv.use(t, a.id), srv.use(t, b.id), srv.use(t, c.id)
	for name, u := range map[string]*model.InUse{"A " + zlibVuln: ua[zlibVuln], "B " + zlibVuln: ub[zlibVuln], "B " + tarVuln: ub[tarVuln]} {
		if u == nil || u.Loaded {
			t.Errorf("image %s: %+v, want not loaded (watched, never loaded)", name, u)
		}
	}
	for v, u := range uc {
		if u != nil {
			t.Errorf("image C (never run): %s marked %+v, want absent", v, u)
		}
	}
	// The in-use filter: tar's vulnerability, not zlib's.
	p, err := admin.ListVulnerabilities(ctx, url.Values{"inUse": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	var inUse []string
	for _, v := range p.Vulnerabilities {
		inUse = append(inUse, v.ID)
	}
	if !slices.Contains(inUse, tarVuln) || slices.Contains(inUse, zlibVuln) {
		t.Errorf("inUse=true lists %v, want %s and not %s", inUse, tarVuln, zlibVuln)
	}

	// The runtime vulnerability view (issue 11 item 7) of this bare host
	// (the agent's token belongs to no cluster): the node's containers the
	// agent reports make their images' vulnerabilities "running", each
	// container listed with its node, image, digest and last seen; the
	// image no container runs (C) is not listed.
	hostContainers := func() []api.HostContainer {
		v, err := admin.GetVulnerability(ctx, tarVuln)
		if err != nil {
			t.Fatal(err)
		}
		return v.HostContainers
	}
	waitFor(t, 30*time.Second, "the runtime vulnerability view to list containers A, B and D", func() bool {
		n := 0
		for _, h := range hostContainers() {
			if h.ID == ca.ID || h.ID == cb.ID || h.ID == cdd.ID {
				n++
			}
		}
		return n == 3
	})
	for _, h := range hostContainers() {
		if h.ImageDigest == c.img.Digest {
			t.Errorf("image C (never run) listed as running: %+v", h)
		}
		if h.ID != ca.ID {
			continue
		}
		if h.Node != cfg.Node || h.Cluster != "" || h.Image != a.img.Ref || h.ImageDigest != a.img.Digest || h.ImageID != a.id ||
			h.Runtime != "containerd" || time.Since(h.LastSeen) > time.Minute || h.FirstSeen.After(h.LastSeen) {
			t.Errorf("container A in the runtime view: %+v, want node %s, image %s (%s), seen within a minute", h, cfg.Node, a.img.Ref, a.img.Digest)
		}
		t.Logf("runtime view: container %s of %s on bare host %s, last seen %v", h.ID[:12], h.Image, h.Node, h.LastSeen.Format(time.RFC3339))
	}
	rp, err := admin.ListVulnerabilities(ctx, url.Values{"running": {"true"}, "limit": {"500"}})
	if err != nil {
		t.Fatal(err)
	}
	var running []string
	for _, v := range rp.Vulnerabilities {
		running = append(running, v.ID)
	}
	if !slices.Contains(running, tarVuln) || !slices.Contains(running, zlibVuln) {
		t.Errorf("running=true lists %v, want %s and %s (images of the bare host's containers)", running, tarVuln, zlibVuln)
	}

	// B runs tar now: its image is re-marked.
	startB := time.Now()
	if out, err := cb.Exec(ctx, "/usr/bin/tar", "--version"); err != nil || !strings.Contains(out, "GNU tar") {
		t.Fatalf("tar in B: %q %v", out, err)
	}
	var markB time.Duration
	waitFor(t, time.Minute, "image B's tar finding marked after tar ran in it", func() bool {
		u := srv.use(t, b.id)[tarVuln]
		if u != nil && u.Loaded {
			markB = time.Since(startB)
			return true
		}
		return false
	})
	t.Logf("image B: %s marked in use %v after tar was executed in the running container", tarVuln, markB.Round(time.Millisecond))
	if u := srv.use(t, b.id)[zlibVuln]; u == nil || u.Loaded {
		t.Errorf("image B's zlib after tar ran: %+v, want not loaded", u)
	}

	// A re-match of every stored inventory keeps the marks.
	rematchFrom := time.Now().Add(-time.Second)
	if err := admin.Rematch(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the re-match to finish", func() bool {
		info, err := admin.DBInfo(ctx)
		return err == nil && !info.Rematch.Running && info.Rematch.StartedAt.After(rematchFrom) && info.Rematch.Images >= 3
	})
	if u := srv.use(t, a.id)[tarVuln]; u == nil || !u.Loaded {
		t.Errorf("after the re-match: image A's tar %+v", u)
	}

	// B goes away: the agent's running list ends it on the server.
	if err := cb.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the server to end container B", func() bool { return rec.ended() >= 1 })
	waitFor(t, 30*time.Second, "the runtime view to drop container B", func() bool {
		for _, h := range hostContainers() {
			if h.ID == cb.ID {
				return false
			}
		}
		return true
	})

	// The volume, and that only the test's containers were reported.
	elapsed := time.Since(agentStart)
	st := ag.Runtime().RuntimeStats()
	ls := st.Loads
	if ls == nil {
		t.Fatal("no load stats")
	}
	stopAgent()
	reports, perContainer := rec.summary()
	for id := range perContainer {
		if id != ca.ID && id != cb.ID && id != cdd.ID {
			t.Errorf("loads of container %s reported: not one of the test's", id)
		}
	}
	var sensorLoads uint64
	if st.Sensor.EmittedByKind != nil {
		sensorLoads = st.Sensor.EmittedByKind["load"] - sensor0.EmittedByKind["load"]
	}
	t.Logf("volume over %v: the sensor emitted %d load events (%.0f/s: host and containers, each file once per cgroup), "+
		"the agent saw %d of containers and %d of host processes (not sent), skipped %d pseudo-file paths; "+
		"read %d from /proc of the container older than the agent; "+
		"sent %d paths in %d reports, %d bytes of JSON (%.0f B/s); per container %v; lost in the kernel %d, dropped %d",
		elapsed.Round(time.Second), sensorLoads, float64(sensorLoads)/elapsed.Seconds(), ls.Observed, ls.Host, ls.Skipped, ls.Swept,
		ls.Sent, ls.Reports, ls.Bytes, float64(ls.Bytes)/elapsed.Seconds(), perContainer, st.Sensor.LostByKind["load"], ls.Dropped)
	if ls.Swept == 0 {
		t.Error("nothing swept")
	}
	t.Logf("load reports: %d; container A's paths: %v; D's (swept): %v", reports, rec.paths(ca.ID), rec.paths(cdd.ID))
	if ls.Dropped != 0 || ls.Rejected != 0 || ls.Capped != 0 {
		t.Errorf("loads dropped %d, rejected %d, capped %d", ls.Dropped, ls.Rejected, ls.Capped)
	}
	if perContainer[ca.ID] == 0 || perContainer[ca.ID] > 50 {
		t.Errorf("container A: %d paths sent, want a handful (tar, its libraries, busybox)", perContainer[ca.ID])
	}
}

// recorder is the agent's client, recording load reports and answers.
type recorder struct {
	*client.Client
	mu      sync.Mutex
	reports []api.LoadReport
	results []api.LoadReportResult
}

func (r *recorder) ReportLoads(ctx context.Context, rep api.LoadReport) (api.LoadReportResult, error) {
	res, err := r.Client.ReportLoads(ctx, rep)
	if err == nil {
		r.mu.Lock()
		r.reports = append(r.reports, rep)
		r.results = append(r.results, res)
		r.mu.Unlock()
	}
	return res, err
}

func (r *recorder) ended() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, res := range r.results {
		n += res.Ended
	}
	return n
}

func (r *recorder) paths(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rep := range r.reports {
		for _, c := range rep.Containers {
			if c.ID == id {
				for _, l := range c.Loads {
					out = append(out, l.Path)
				}
			}
		}
	}
	return out
}

func (r *recorder) summary() (int, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, rep := range r.reports {
		for _, c := range rep.Containers {
			out[c.ID] += len(c.Loads)
		}
	}
	return len(r.reports), out
}

// debianFiles are the files of the test images beside busybox: the
// machine's tar with the shared libraries it links (at their merged-/usr
// place, as in a Debian 12 image), zlib's library (which nothing links),
// the os-release, and a dpkg database of those packages: their status
// stanzas and file lists as the machine's dpkg has them (dpkg lists
// "bin/tar" and "lib/x86_64-linux-gnu/libc.so.6": the kernel will report
// "/usr/bin/tar").
func debianFiles(t *testing.T) map[string]testctr.File {
	t.Helper()
	files := map[string]testctr.File{}
	read := func(p string) []byte {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// add puts the real file behind host path p into usr/lib/<multiarch>
	// or usr/bin, with a link by p's own name when it is a symlink.
	const libDir = "usr/lib/x86_64-linux-gnu/"
	addLib := func(p string) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			t.Fatal(err)
		}
		files[libDir+filepath.Base(real)] = testctr.File{Data: read(real), Exec: true}
		if filepath.Base(p) != filepath.Base(real) {
			files[libDir+filepath.Base(p)] = testctr.File{Link: filepath.Base(real)}
		}
	}
	tarPath, err := filepath.EvalSymlinks("/usr/bin/tar")
	if err != nil {
		t.Fatal(err)
	}
	files["usr/bin/tar"] = testctr.File{Data: read(tarPath), Exec: true}
	out, err := exec.Command("ldd", tarPath).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", tarPath, err)
	}
	libRE := regexp.MustCompile(`(?m)^\s*(\S+)(?: => (\S+))? \(0x`)
	for _, m := range libRE.FindAllStringSubmatch(string(out), -1) {
		switch {
		case m[2] != "":
			addLib(m[2])
		case strings.HasPrefix(m[1], "/"): // the dynamic loader
			addLib(m[1])
			real, _ := filepath.EvalSymlinks(m[1])
			files[strings.TrimPrefix(m[1], "/")] = testctr.File{Link: "/" + libDir + filepath.Base(real)}
		}
	}
	addLib("/usr/lib/x86_64-linux-gnu/libz.so.1")
	files["etc/os-release"] = testctr.File{Data: read("/etc/os-release")}

	pkgs := []string{"tar", "libc6", "libacl1", "libselinux1", "libpcre2-8-0", "zlib1g"}
	status, err := exec.Command("dpkg-query", append([]string{"-s"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("dpkg-query -s %v: %v", pkgs, err)
	}
	files["var/lib/dpkg/status"] = testctr.File{Data: status}
	for _, p := range pkgs {
		for _, name := range []string{p + ".md5sums", p + ":amd64.md5sums"} {
			if b, err := os.ReadFile("/var/lib/dpkg/info/" + name); err == nil {
				files["var/lib/dpkg/info/"+name] = testctr.File{Data: b}
			}
		}
	}
	return files
}

// scanAndUpload scans img with the mamori CLI (from an OCI layout, so the
// manifest digest is the one containerd runs) against the test's database
// and uploads the result to the server.
func scanAndUpload(t *testing.T, mamori string, img v1.Image, ref, dbDir, cache, serverURL, token string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
	res := filepath.Join(t.TempDir(), "result.json")
	cmd := exec.Command(mamori, "--db-dir", dbDir, "--cache-dir", cache, "image", "--input", dir, "--offline", "--scanners", "vuln",
		"--format", "json", "--output", res, "--server", serverURL)
	cmd.Env = append(os.Environ(), client.EnvToken+"="+token)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mamori image: %v\n%s", err, b)
	}
}

// testServer is a real `mamori server` on loopback.
type testServer struct {
	addr, admin string
	cmd         *exec.Cmd
	log         *syncBuffer
}

func startServer(t *testing.T, bin, dir string) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &testServer{addr: addr, admin: "mamori_admin_" + testctr.RandomTag() + testctr.RandomTag(), log: &syncBuffer{}}
	s.cmd = exec.Command(bin, "server", "--insecure-http", "--listen", addr, "--data-dir", dir, "--db-dir", filepath.Join(dir, "db"),
		"--auth-failures-per-minute", "0")
	s.cmd.Env = append(os.Environ(), "MAMORI_BOOTSTRAP_TOKEN="+s.admin)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		s.cmd.Wait()
	})
	waitFor(t, time.Minute, "mamori server to start", func() bool {
		resp, err := http.Get(s.url() + api.PathHealth)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

func (s *testServer) url() string { return "http://" + s.addr }

func (s *testServer) client(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.New(s.url(), token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *testServer) do(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url()+path, body)
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

func (s *testServer) token(t *testing.T, name, role string) string {
	t.Helper()
	var tc api.TokenCreated
	s.do(t, http.MethodPost, api.PathTokens, api.TokenRequest{Name: name, Role: role}, &tc)
	return tc.Token
}

func (s *testServer) imageID(t *testing.T, digest string) int64 {
	t.Helper()
	var p api.ImagePage
	s.do(t, http.MethodGet, api.PathImages+"?limit=1000", nil, &p)
	for _, im := range p.Images {
		if im.Digest == digest {
			return im.ID
		}
	}
	t.Fatalf("no image %s on the server", digest)
	return 0
}

// use maps an image's vulnerability IDs to their in-use mark.
func (s *testServer) use(t *testing.T, id int64) map[string]*model.InUse {
	t.Helper()
	var iv api.ImageVulnerabilities
	s.do(t, http.MethodGet, fmt.Sprintf("%s/%d/vulnerabilities", api.PathImages, id), nil, &iv)
	out := map[string]*model.InUse{}
	for _, v := range iv.Vulnerabilities {
		out[v.ID] = v.InUse
	}
	return out
}

// goBuild builds a package of this module (static, stripped).
func goBuild(t *testing.T, pkg, out string) string {
	t.Helper()
	wd, _ := os.Getwd()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = filepath.Join(wd, "..", "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func runCmd(t *testing.T, bin string, args ...string) {
	t.Helper()
	if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, b)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func keys(m map[string]*model.InUse) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
