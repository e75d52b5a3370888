package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	imagesapi "github.com/containerd/containerd/api/services/images/v1"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// containerd is read through its gRPC API (the images and content services
// of github.com/containerd/containerd/api, the generated protobuf stubs
// only) rather than the containerd client module, whose go.mod pulls in
// some 150 modules (CRI, otel, snapshotters...) for the two read-only calls
// used here. The API is the stable, versioned contract: the same services
// answer from containerd 1.6 to 2.x.

// containerdNamespaceHeader is the gRPC metadata key naming the namespace
// (github.com/containerd/containerd/v2/pkg/namespaces.GRPCHeader).
const containerdNamespaceHeader = "containerd-namespace"

// maxGRPCMessage caps one gRPC message; content reads arrive in chunks of
// about 1 MiB, image records are small.
const maxGRPCMessage = 16 << 20

func dialContainerd(address string) (*grpc.ClientConn, error) {
	abs, err := filepath.Abs(address)
	if err != nil {
		return nil, fmt.Errorf("%w: containerd address %q: %w", ErrInvalidOption, address, err)
	}
	conn, err := grpc.NewClient("unix://"+abs,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxGRPCMessage)))
	if err != nil {
		return nil, fmt.Errorf("%w: containerd at %s: %w", ErrUnavailable, address, err)
	}
	return conn, nil
}

// containerdNames lists the names containerd may store ref under: as given,
// and normalised the way ctr/nerdctl/CRI store pulls
// ("alpine" -> "docker.io/library/alpine:latest").
func containerdNames(ref string) []string {
	names := []string{ref}
	r, err := name.ParseReference(ref)
	if err != nil {
		return names
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	full := reg + "/" + r.Context().RepositoryStr()
	switch t := r.(type) {
	case name.Tag:
		full += ":" + t.TagStr()
	case name.Digest:
		full += "@" + t.DigestStr()
	}
	if full != ref {
		names = append(names, full)
	}
	return names
}

// openContainerd reads the image from containerd's content store: the image
// record names the root descriptor, which is resolved (index -> platform)
// like an OCI layout. Namespaces are tried in the order of the options.
func openContainerd(ctx context.Context, ref string, o *options) (img *Image, err error) {
	conn, err := dialContainerd(o.containerdAddress)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	images := imagesapi.NewImagesClient(conn)
	var tried []string
	for _, ns := range o.containerdNamespace {
		nctx := metadata.AppendToOutgoingContext(ctx, containerdNamespaceHeader, ns)
		for _, n := range containerdNames(ref) {
			resp, err := images.Get(nctx, &imagesapi.GetImageRequest{Name: n})
			if status.Code(err) == codes.NotFound {
				tried = append(tried, ns+"/"+n)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("%w: containerd at %s: %w", ErrUnavailable, o.containerdAddress, err)
			}
			t := resp.GetImage().GetTarget()
			if t == nil {
				return nil, fmt.Errorf("%w: containerd image %s has no target", ErrMalformed, n)
			}
			h, err := v1.NewHash(t.GetDigest())
			if err != nil {
				return nil, fmt.Errorf("%w: containerd image %s: %w", ErrMalformed, n, err)
			}
			root := v1.Descriptor{MediaType: types.MediaType(t.GetMediaType()), Digest: h, Size: t.GetSize()}
			bs := &containerdBlobs{content: contentapi.NewContentClient(conn)}
			oi, err := resolveImage(nctx, bs, root, o.platform)
			if err != nil {
				return nil, fmt.Errorf("containerd image %s (namespace %s): %w", n, ns, err)
			}
			v, err := toV1(oi)
			if err != nil {
				return nil, err
			}
			out := &Image{
				name:     ref,
				digest:   oi.desc.Digest.String(),
				repoTags: []string{n},
				source:   SourceContainerd,
				closers:  []func() error{conn.Close},
			}
			if err := out.finish(v); err != nil {
				return nil, fmt.Errorf("containerd image %s: %w", n, err)
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: containerd has no image %s (tried %s)", ErrNotFound, ref, strings.Join(tried, ", "))
}

// containerdBlobs serves blobs from containerd's content service.
type containerdBlobs struct {
	content contentapi.ContentClient
}

func (c *containerdBlobs) blob(ctx context.Context, h v1.Hash) (io.ReadCloser, int64, error) {
	if err := validHash(h); err != nil {
		return nil, 0, err
	}
	info, err := c.content.Info(ctx, &contentapi.InfoRequest{Digest: h.String()})
	if status.Code(err) == codes.NotFound {
		return nil, 0, fmt.Errorf("%w: blob %s not in containerd content store", ErrNotFound, h)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("containerd content info %s: %w", h, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	stream, err := c.content.Read(rctx, &contentapi.ReadContentRequest{Digest: h.String()})
	if err != nil {
		cancel()
		return nil, 0, fmt.Errorf("containerd content read %s: %w", h, err)
	}
	return &contentReader{stream: stream, cancel: cancel}, info.GetInfo().GetSize(), nil
}

// contentReader adapts a content Read stream to io.ReadCloser.
type contentReader struct {
	stream contentapi.Content_ReadClient
	cancel context.CancelFunc
	buf    []byte
	err    error
}

func (r *contentReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		resp, err := r.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.err = io.EOF
			} else {
				r.err = fmt.Errorf("containerd content read: %w", err)
			}
			continue
		}
		r.buf = resp.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *contentReader) Close() error {
	r.cancel()
	return nil
}
