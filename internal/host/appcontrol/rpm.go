package appcontrol

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/host/hostfs"
)

// ErrNoRPM: the rpm command is not installed.
var ErrNoRPM = errors.New("appcontrol: rpm not installed")

// rpmQueryFormat prints one line per file of every package: the package's
// NEVRA and digest algorithm (repeated with %{=...}), the file's digest,
// mode and name.
const rpmQueryFormat = `[%{=NEVRA}\t%{=FILEDIGESTALGO}\t%{FILEDIGESTS}\t%{FILEMODES}\t%{FILENAMES}\n]`

// maxRPMLine caps one line of rpm's output.
const maxRPMLine = 8192

// RPMOptions say which rpm database to read.
type RPMOptions struct {
	// Binary is the rpm command ("rpm" from PATH when empty).
	Binary string
	// DBPath is the database directory inside the root (rpm's default when
	// empty).
	DBPath string
}

// RPMFile is one file of an installed rpm package.
type RPMFile struct {
	Package string
	// Algo is the package's digest algorithm (PGPHASHALGO: 1 MD5, 2 SHA-1,
	// 8 SHA-256, 9 SHA-384, 10 SHA-512; 1 when the package does not say).
	Algo   int
	Digest string
	Mode   uint32
	Path   string
}

// ParseRPMFiles reads the output of rpm -qa --qf rpmQueryFormat, calling
// fn for each file line. Malformed lines are errors naming the line.
func ParseRPMFiles(r io.Reader, fn func(RPMFile) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxRPMLine)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, "\t", 5)
		if len(parts) != 5 {
			return fmt.Errorf("%w: rpm output line %d: want 5 tab-separated fields", ErrPackageDB, n)
		}
		f := RPMFile{Package: parts[0], Digest: strings.ToLower(parts[2]), Path: parts[4], Algo: 1}
		if parts[1] != "(none)" && parts[1] != "" {
			a, err := strconv.Atoi(parts[1])
			if err != nil || a < 0 {
				return fmt.Errorf("%w: rpm output line %d: digest algorithm %q", ErrPackageDB, n, truncate(parts[1]))
			}
			f.Algo = a
		}
		mode, err := strconv.ParseUint(parts[3], 10, 32)
		if err != nil {
			return fmt.Errorf("%w: rpm output line %d: mode %q", ErrPackageDB, n, truncate(parts[3]))
		}
		f.Mode = uint32(mode)
		if f.Digest != "" {
			if _, err := hex.DecodeString(f.Digest); err != nil {
				return fmt.Errorf("%w: rpm output line %d: digest %q", ErrPackageDB, n, truncate(f.Digest))
			}
		}
		clean := path.Clean(f.Path)
		if !strings.HasPrefix(f.Path, "/") || clean != f.Path || strings.IndexByte(f.Path, 0) >= 0 {
			return fmt.Errorf("%w: rpm output line %d: path %q", ErrPackageDB, n, truncate(f.Path))
		}
		if len(f.Package) > maxPackageLen {
			return fmt.Errorf("%w: rpm output line %d: package name longer than %d", ErrPackageDB, n, maxPackageLen)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: rpm output line %d: %v", ErrPackageDB, n+1, err)
	}
	return nil
}

// LearnRPM learns the executables, libraries and scripts of every
// installed rpm package. rpm records SHA-256 digests (algorithm 8, the
// default since rpm 4.6 on most distributions): those are added without
// reading the file. Files of packages with another algorithm are hashed
// on disk, verified against the recorded digest and added only when they
// match. Executable content is recognised from the recorded mode (an
// execute bit) and the name (a shared object, a script extension), since
// the file is not read.
func LearnRPM(ctx context.Context, l *List, opt LearnOptions, ro RPMOptions) (sum LearnSummary, err error) {
	opt = opt.withDefaults()
	start := time.Now()
	defer func() { sum.Duration = time.Since(start) }()
	bin := ro.Binary
	if bin == "" {
		bin = "rpm"
	}
	bin, err = exec.LookPath(bin)
	if err != nil {
		return sum, fmt.Errorf("%w: %v", ErrNoRPM, err)
	}
	args := []string{"--root", opt.Root}
	if ro.DBPath != "" {
		args = append(args, "--dbpath", ro.DBPath)
	}
	args = append(args, "-qa", "--qf", rpmQueryFormat)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return sum, fmt.Errorf("appcontrol: rpm: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return sum, fmt.Errorf("appcontrol: rpm: %w", err)
	}
	root, err := hostfs.OpenDir(opt.Root)
	if err != nil {
		_ = cmd.Process.Kill() // the root error is reported
		_ = cmd.Wait()         // reaped
		return sum, fmt.Errorf("appcontrol: rpm: %w", err)
	}
	defer root.Close() // read-only
	lim := hostfs.NewLimiter(opt.BytesPerSecond)
	perr := ParseRPMFiles(out, func(f RPMFile) error { return learnRPMFile(ctx, l, root, f, opt, lim, &sum) })
	if perr != nil {
		_ = cmd.Process.Kill() // stop producing output nobody reads
	}
	werr := cmd.Wait()
	switch {
	case perr != nil:
		return sum, perr
	case werr != nil:
		return sum, fmt.Errorf("appcontrol: rpm -qa: %w: %s", werr, truncate(strings.TrimSpace(stderr.String())))
	}
	return sum, nil
}

func rpmKind(f RPMFile) (Kind, bool) {
	if f.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", false
	}
	base := path.Base(f.Path)
	switch {
	case strings.HasSuffix(base, ".so") || strings.Contains(base, ".so."):
		return KindLibrary, true
	case scriptExtensions[strings.ToLower(path.Ext(base))]:
		return KindScript, true
	case f.Mode&0o111 != 0:
		return KindExecutable, true
	}
	return "", false
}

// learnRPMFile returns an error only when ctx ended.
func learnRPMFile(ctx context.Context, l *List, root *os.File, f RPMFile, opt LearnOptions, lim *hostfs.Limiter, sum *LearnSummary) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	kind, ok := rpmKind(f)
	if !ok {
		return nil
	}
	sum.Files++
	if f.Digest == "" {
		sum.Skipped++ // ghost files and the like carry no digest
		return nil
	}
	if f.Algo == 8 && len(f.Digest) == 64 {
		if err := l.Add(Entry{SHA256: f.Digest, Path: f.Path, Kind: kind, Source: SourceRPM, Package: f.Package}); err != nil {
			sum.problem(err)
			return nil
		}
		sum.Added++
		return nil
	}
	h := hashFor(f.Algo)
	if h == nil {
		sum.problem(fmt.Errorf("%s: unknown digest algorithm %d", f.Path, f.Algo))
		return nil
	}
	file, st, err := hostfs.OpenInRoot(root, f.Path)
	switch {
	case errors.Is(err, unix.ENOENT):
		sum.Missing++
		return nil
	case err != nil:
		sum.problem(err)
		return nil
	}
	defer file.Close() // read-only
	if st.Size > opt.MaxFileSize {
		sum.TooLarge++
		return nil
	}
	sha, other, err := digests(ctx, file, st.Size, lim, h)
	sum.BytesRead += uint64(st.Size)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sum.problem(fmt.Errorf("%s: %w", f.Path, err))
		return nil
	}
	if hex.EncodeToString(other) != f.Digest {
		sum.mismatch(f.Path + " (" + f.Package + ")")
		return nil
	}
	if err := l.Add(Entry{SHA256: hex.EncodeToString(sha[:]), Path: f.Path, Kind: kind, Source: SourceRPM, Package: f.Package}); err != nil {
		sum.problem(err)
		return nil
	}
	sum.Added++
	return nil
}
