package node

import (
	"context"
	"fmt"
	"log/slog"

	"mamori/internal/model"
	"mamori/internal/scan"
)

// DefaultSkipDirs are the directories of a node's root that hold the
// containers' files, volumes and volatile data rather than the host's own
// software: their packages are the images', which the image scans cover.
var DefaultSkipDirs = []string{"proc", "sys", "dev", "run", "tmp", "var/tmp", "var/log", "var/cache",
	"var/lib/containerd", "var/lib/docker", "var/lib/containers", "var/lib/kubelet/pods", "var/lib/rancher",
	"home", "root", "mnt", "media"}

// HostInventory takes a node's host inventory with the catalogers of
// `mamori rootfs` (OS packages with the kernel's, and the binaries that
// carry their versions: containerd, runc, the kubelet): the tree at root
// but skipDirs (relative to it; nil: DefaultSkipDirs), and each of
// extraDirs (runtime binaries installed outside the packaged locations),
// merged. The server matches it (client.ReportNodePosture).
func HostInventory(ctx context.Context, root string, skipDirs, extraDirs []string, tempDir string, log *slog.Logger) (*model.Inventory, error) {
	if skipDirs == nil {
		skipDirs = DefaultSkipDirs
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	take := func(dir string, skip []string) (*model.Result, error) {
		s, cleanup, _, err := scan.Build(ctx, scan.BuildOptions{Kind: model.TargetRootFS, SkipDirs: skip, Quiet: true,
			TempDir: tempDir, Logger: log, Version: "node-posture"})
		if err != nil {
			return nil, fmt.Errorf("host inventory: %w", err)
		}
		defer cleanup()
		res, err := s.ScanDir(ctx, dir, model.TargetRootFS)
		if err != nil {
			return nil, fmt.Errorf("host inventory of %s: %w", dir, err)
		}
		return res, nil
	}
	res, err := take(root, skipDirs)
	if err != nil {
		return nil, err
	}
	inv := res.Inventory
	seen := map[string]bool{}
	for _, p := range inv.Packages {
		seen[p.Key()] = true
	}
	for _, d := range extraDirs {
		r, err := take(d, nil)
		if err != nil {
			return nil, err
		}
		for _, p := range r.Inventory.Packages {
			if !seen[p.Key()] {
				seen[p.Key()] = true
				inv.Packages = append(inv.Packages, p)
			}
		}
	}
	model.SortPackages(inv.Packages)
	if err := inv.Validate(); err != nil {
		return nil, fmt.Errorf("host inventory: %w", err)
	}
	return &inv, nil
}
