package appcontrol

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/host/hostfs"
)

// DpkgInfoDir is where dpkg keeps each package's file lists and digests.
const DpkgInfoDir = "/var/lib/dpkg/info"

const (
	// maxMD5SumsFile caps one package's md5sums file.
	maxMD5SumsFile = 64 << 20
	// maxMD5SumsLine caps one line (a digest and a path).
	maxMD5SumsLine = 4096 + 40
)

// MD5Sum is one line of a dpkg md5sums file.
type MD5Sum struct {
	MD5 [16]byte
	// Path is relative to the root, without a leading slash, as dpkg
	// writes it ("usr/bin/cat").
	Path string
}

// ParseMD5Sums reads a dpkg .md5sums file: "<32 hex> <space(s)> <path>"
// per line. Paths that are absolute, empty or climb out with ".." are
// errors naming the line.
func ParseMD5Sums(r io.Reader) ([]MD5Sum, error) {
	var out []MD5Sum
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMD5SumsLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(line) < 34 || line[32] != ' ' {
			return nil, fmt.Errorf("%w: md5sums line %d: want \"<md5>  <path>\"", ErrPackageDB, n)
		}
		var m MD5Sum
		if _, err := hex.Decode(m.MD5[:], line[:32]); err != nil {
			return nil, fmt.Errorf("%w: md5sums line %d: %v", ErrPackageDB, n, err)
		}
		p := strings.TrimLeft(string(line[33:]), " *")
		clean := path.Clean(p)
		if p == "" || strings.HasPrefix(p, "/") || clean == ".." || strings.HasPrefix(clean, "../") || strings.IndexByte(p, 0) >= 0 {
			return nil, fmt.Errorf("%w: md5sums line %d: bad path %q", ErrPackageDB, n, truncate(p))
		}
		m.Path = clean
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: md5sums line %d: %v", ErrPackageDB, n+1, err)
	}
	return out, nil
}

// LearnDpkg learns the executables, libraries and scripts of every
// installed dpkg package: dpkg records only MD5 digests
// (/var/lib/dpkg/info/<pkg>.md5sums), so each listed file that is
// executable content is hashed on disk (MD5 and SHA-256 in one read) and
// added with its package only when its MD5 matches the package's. A file
// changed since it was installed is counted as mismatched and not added.
func LearnDpkg(ctx context.Context, l *List, opt LearnOptions) (sum LearnSummary, err error) {
	opt = opt.withDefaults()
	start := time.Now()
	defer func() { sum.Duration = time.Since(start) }()
	root, err := hostfs.OpenDir(opt.Root)
	if err != nil {
		return sum, fmt.Errorf("appcontrol: dpkg: %w", err)
	}
	defer root.Close() // read-only
	info, err := hostfs.OpenDirInRoot(root, DpkgInfoDir)
	if err != nil {
		return sum, fmt.Errorf("appcontrol: dpkg: %w", err)
	}
	defer info.Close() // read-only
	names, err := info.Readdirnames(-1)
	if err != nil {
		return sum, fmt.Errorf("appcontrol: dpkg: list %s: %w", DpkgInfoDir, err)
	}
	sort.Strings(names)
	lim := hostfs.NewLimiter(opt.BytesPerSecond)
	for _, name := range names {
		pkg, ok := strings.CutSuffix(name, ".md5sums")
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		sums, err := readMD5Sums(info, name)
		if err != nil {
			sum.problem(fmt.Errorf("%s: %w", pkg, err))
			continue
		}
		for _, m := range sums {
			if err := learnDpkgFile(ctx, l, root, pkg, m, opt, lim, &sum); err != nil {
				return sum, err
			}
		}
	}
	return sum, nil
}

func readMD5Sums(dir *os.File, name string) ([]MD5Sum, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close() // read-only
	b, err := io.ReadAll(io.LimitReader(f, maxMD5SumsFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMD5SumsFile {
		return nil, fmt.Errorf("%w: %s larger than %d bytes", ErrPackageDB, name, maxMD5SumsFile)
	}
	return ParseMD5Sums(bytes.NewReader(b))
}

// learnDpkgFile returns an error only when ctx ended.
func learnDpkgFile(ctx context.Context, l *List, root *os.File, pkg string, m MD5Sum, opt LearnOptions, lim *hostfs.Limiter, sum *LearnSummary) error {
	sum.Files++
	f, st, err := hostfs.OpenInRoot(root, m.Path)
	switch {
	case errors.Is(err, unix.ENOENT):
		sum.Missing++
		return nil
	case errors.Is(err, hostfs.ErrNotRegular):
		sum.Skipped++
		return nil
	case err != nil:
		sum.problem(err)
		return nil
	}
	defer f.Close() // read-only
	kind, ok := Classify(f, st.Size, m.Path, st.Mode)
	if !ok {
		sum.Skipped++
		return nil
	}
	if st.Size > opt.MaxFileSize {
		sum.TooLarge++
		return nil
	}
	sha, md, err := digests(ctx, f, st.Size, lim, md5.New())
	sum.BytesRead += uint64(st.Size)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sum.problem(fmt.Errorf("%s: %w", m.Path, err))
		return nil
	}
	if !bytes.Equal(md, m.MD5[:]) {
		sum.mismatch("/" + m.Path + " (" + pkg + ")")
		return nil
	}
	if err := l.Add(Entry{SHA256: hex.EncodeToString(sha[:]), Path: "/" + m.Path, Kind: kind, Source: SourceDpkg, Package: pkg}); err != nil {
		sum.problem(err)
		return nil
	}
	sum.Added++
	return nil
}
