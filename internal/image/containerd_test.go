package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	leasesapi "github.com/containerd/containerd/api/services/leases/v1"
	ctrtypes "github.com/containerd/containerd/api/types"
	"google.golang.org/grpc/metadata"
)

// TestContainerdReal starts containerd (Debian package containerd) with its
// root, state and socket in a temp dir, imports a multi-platform image
// through containerd's content and images services, and opens it. It needs
// root and MAMORI_TEST_CONTAINERD=1.
func TestContainerdReal(t *testing.T) {
	if os.Getenv("MAMORI_TEST_CONTAINERD") != "1" {
		t.Skip("set MAMORI_TEST_CONTAINERD=1 (root, apt-get install containerd) to test against a real containerd")
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		t.Fatal("MAMORI_TEST_CONTAINERD=1 but no containerd binary: apt-get install containerd")
	}
	if os.Geteuid() != 0 {
		t.Fatal("MAMORI_TEST_CONTAINERD=1 needs root to run containerd")
	}
	dir, err := os.MkdirTemp("", "mctr") // short: unix socket paths are capped at 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "containerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(cmd) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitFor(t, ctx, logPath, func() bool { return socketExists(sock) })
	conn, err := dialContainerd(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Import: a lease protects the blobs from garbage collection while the
	// test runs; then each blob is written and the image record created,
	// which is what the containerd client's Import does.
	nctx := metadata.AppendToOutgoingContext(ctx, containerdNamespaceHeader, "default")
	lease, err := leasesapi.NewLeasesClient(conn).Create(nctx, &leasesapi.CreateRequest{ID: "mamori-test"})
	if err != nil {
		t.Fatalf("create lease: %v", err)
	}
	lctx := metadata.AppendToOutgoingContext(nctx, "containerd-lease", lease.GetLease().GetID())
	idx := testIndex(t, "linux/amd64", "linux/arm64/v8")
	cs := contentapi.NewContentClient(conn)
	ims, _ := idx.IndexManifest()
	for _, d := range ims.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		for _, l := range ls {
			rc, _ := l.Compressed()
			b, _ := io.ReadAll(rc)
			rc.Close()
			writeContent(t, lctx, cs, b)
		}
		cfg, _ := img.RawConfigFile()
		writeContent(t, lctx, cs, cfg)
		man, _ := img.RawManifest()
		writeContent(t, lctx, cs, man)
	}
	rawIdx, _ := idx.RawManifest()
	writeContent(t, lctx, cs, rawIdx)
	idxDigest, _ := idx.Digest()
	_, err = imagesapi.NewImagesClient(conn).Create(lctx, &imagesapi.CreateImageRequest{Image: &imagesapi.Image{
		Name:   "docker.io/library/mamori-test:1",
		Target: &ctrtypes.Descriptor{MediaType: string(ims.MediaType), Digest: idxDigest.String(), Size: int64(len(rawIdx))},
	}})
	if err != nil {
		t.Fatalf("create image: %v", err)
	}

	for _, tc := range []struct{ ref, platform, want string }{
		{"containerd:docker.io/library/mamori-test:1", "", "linux/amd64"},
		{"containerd:mamori-test:1", "linux/arm64", "linux/arm64/v8"},
	} {
		opts := []Option{WithContainerdAddress(sock)}
		if tc.platform != "" {
			opts = append(opts, WithPlatform(tc.platform))
		}
		img, err := Open(ctx, tc.ref, opts...)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if img.Source() != SourceContainerd || img.Platform() != tc.want {
			t.Errorf("%s: source %s platform %s", tc.ref, img.Source(), img.Platform())
		}
		if got := readLayerFiles(t, img.Image())["etc/platform"]; got != tc.want {
			t.Errorf("%s: content %q", tc.ref, got)
		}
		info, err := LayerInfo(img.Image())
		if err != nil || len(info) != 1 || info[0].Size <= 0 {
			t.Errorf("%s: LayerInfo %+v %v", tc.ref, info, err)
		}
		if err := img.Close(); err != nil {
			t.Error(err)
		}
	}
	// Auto mode finds it in containerd when there is no Docker socket.
	img, err := Open(ctx, "mamori-test:1", WithContainerdAddress(sock), WithDockerHost(filepath.Join(dir, "none.sock")))
	if err != nil {
		t.Fatal(err)
	}
	if img.Source() != SourceContainerd {
		t.Errorf("auto source %s", img.Source())
	}
	img.Close()

	_, err = Open(ctx, "containerd:mamori-test:1", WithContainerdAddress(sock), WithPlatform("linux/s390x"))
	wantErr(t, err, ErrNoPlatform, "linux/amd64, linux/arm64/v8")
	_, err = Open(ctx, "containerd:absent:1", WithContainerdAddress(sock))
	wantErr(t, err, ErrNotFound, "default/docker.io/library/absent:1")
}

// writeContent writes one blob through containerd's content Write stream
// (STAT to open the ref, WRITE, COMMIT with the expected digest).
func writeContent(t *testing.T, ctx context.Context, cs contentapi.ContentClient, b []byte) {
	t.Helper()
	d := sha(b)
	stream, err := cs.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(req *contentapi.WriteContentRequest) {
		if err := stream.Send(req); err != nil {
			t.Fatalf("content write %s: %v", d, err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("content write %s: %v", d, err)
		}
	}
	ref := "mamori-test-" + d.Hex
	send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_STAT, Ref: ref, Total: int64(len(b)), Expected: d.String()})
	send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_WRITE, Ref: ref, Offset: 0, Data: b})
	send(&contentapi.WriteContentRequest{Action: contentapi.WriteAction_COMMIT, Ref: ref, Total: int64(len(b)), Offset: int64(len(b)), Expected: d.String()})
	stream.CloseSend()
}
