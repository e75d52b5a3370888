package appcontrol

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/host/hostfs"
)

// DefaultInventoryDirs are the PATH and library directories of a Linux
// host. Symbolic links among them (merged /usr: /bin -> usr/bin) are
// resolved, and each directory is walked once.
var DefaultInventoryDirs = []string{
	"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
	"/usr/local/lib", "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/libexec", "/opt",
}

// InventoryOptions tune Inventory.
type InventoryOptions struct {
	LearnOptions
	// Dirs are walked (DefaultInventoryDirs when empty), inside Root.
	Dirs []string
}

// Inventory learns the executables, libraries and scripts under the
// directories (the install-time inventory of a host). It reads at most
// BytesPerSecond, hashes each file (by identity) once, skips files over
// MaxFileSize (counted), and never follows a symbolic link below a
// directory or enters a pseudo file system.
func Inventory(ctx context.Context, l *List, opt InventoryOptions) (sum LearnSummary, err error) {
	lo := opt.LearnOptions.withDefaults()
	dirs := opt.Dirs
	if len(dirs) == 0 {
		dirs = DefaultInventoryDirs
	}
	start := time.Now()
	defer func() { sum.Duration = time.Since(start) }()
	lim := hostfs.NewLimiter(lo.BytesPerSecond)
	seenDirs := map[hostfs.FileID]bool{}
	seenFiles := map[hostfs.FileID]bool{}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		real, err := resolveIn(lo.Root, d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			sum.problem(err)
			continue
		}
		dir, err := hostfs.OpenDir(real)
		if err != nil {
			sum.problem(err)
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(dir.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			_ = dir.Close() // read-only
			continue
		}
		id, _ := hostfs.IdentityOf(&st)
		if seenDirs[id] {
			_ = dir.Close() // read-only
			continue
		}
		seenDirs[id] = true
		label := strings.TrimPrefix(real, strings.TrimSuffix(lo.Root, "/"))
		_, werr := hostfs.Walk(ctx, dir, hostfs.WalkOptions{CrossDevices: true}, func(ctx context.Context, rel string, f *os.File, st *unix.Stat_t) error {
			fid, _ := hostfs.IdentityOf(st)
			if seenFiles[fid] {
				return nil
			}
			seenFiles[fid] = true
			return learnFile(ctx, l, f, st, filepath.Join(label, rel), lo, lim, &sum)
		})
		_ = dir.Close() // read-only
		if werr != nil {
			return sum, werr
		}
	}
	return sum, nil
}

// resolveIn resolves dir (absolute, inside root) to a real path, refusing
// one whose links lead out of root.
func resolveIn(root, dir string) (string, error) {
	real, err := filepath.EvalSymlinks(filepath.Join(root, dir))
	if err != nil {
		return "", err
	}
	r := filepath.Clean(root)
	if r != "/" && real != r && !strings.HasPrefix(real, r+"/") {
		return "", fmt.Errorf("appcontrol: %s resolves to %s, outside %s", dir, real, root)
	}
	return real, nil
}

// learnFile classifies and hashes one file; it returns an error only when
// ctx ended.
func learnFile(ctx context.Context, l *List, f *os.File, st *unix.Stat_t, p string, opt LearnOptions, lim *hostfs.Limiter, sum *LearnSummary) error {
	sum.Files++
	kind, ok := Classify(f, st.Size, p, st.Mode)
	if !ok {
		sum.Skipped++
		return nil
	}
	if st.Size > opt.MaxFileSize {
		sum.TooLarge++
		return nil
	}
	sha, _, err := digests(ctx, f, st.Size, lim, nil)
	sum.BytesRead += uint64(st.Size)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sum.problem(fmt.Errorf("%s: %w", p, err))
		return nil
	}
	if err := l.Add(Entry{SHA256: hex.EncodeToString(sha[:]), Path: p, Kind: kind, Source: SourceInventory}); err != nil {
		sum.problem(err)
		return nil
	}
	sum.Added++
	return nil
}
