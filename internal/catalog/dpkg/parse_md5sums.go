package dpkg

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// Paths of the per-package file lists with digests.
const (
	// InfoDirPath holds <package>[:<arch>].md5sums, one per installed package.
	InfoDirPath = "var/lib/dpkg/info"
	// md5sumsSuffix names the file lists; distroless status.d/ has them too.
	md5sumsSuffix = ".md5sums"
	// maxMD5sumsSize caps one md5sums file: the largest Debian packages
	// (linux-image, texlive) list tens of thousands of files, a few MiB.
	maxMD5sumsSize = 32 << 20
)

// isMD5sumsFile reports whether p is a package's md5sums file.
func isMD5sumsFile(p string) bool {
	dir, base := path.Split(p)
	if !strings.HasSuffix(base, md5sumsSuffix) || len(base) == len(md5sumsSuffix) || base[0] == '.' {
		return false
	}
	return dir == InfoDirPath+"/" || dir == StatusDirPath+"/"
}

// ParseMD5sums reads a dpkg md5sums file ("<32 hex>  <path>" per line, the
// path relative to the root: the format of dh_md5sums and
// dpkg-deb's DEBIAN/md5sums) of the package named by file (its base name
// without ".md5sums": "bash" or "libc6:amd64"). Lines that are not a
// digest and a path are counted in skipped, never fatal; paths with ".."
// are refused like tar entries.
func ParseMD5sums(ctx context.Context, r io.Reader, file string) (owned []analyzer.OwnedFile, skipped int, err error) {
	pkg, arch, _ := strings.Cut(strings.TrimSuffix(path.Base(file), md5sumsSuffix), ":")
	sc := bufio.NewScanner(io.LimitReader(r, maxMD5sumsSize+1))
	sc.Buffer(make([]byte, 0, 64<<10), maxLineSize)
	var n int64
	for sc.Scan() {
		line := sc.Text()
		n += int64(len(line)) + 1
		if n > maxMD5sumsSize {
			return nil, 0, ErrTooLarge
		}
		if len(owned)%4096 == 0 && ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		sum, p, ok := strings.Cut(line, " ")
		p = strings.TrimLeft(p, " *") // "  path" (text mode) or " *path" (binary mode)
		if !ok || len(sum) != 32 || p == "" {
			if strings.TrimSpace(line) != "" {
				skipped++
			}
			continue
		}
		if _, err := hex.DecodeString(sum); err != nil {
			skipped++
			continue
		}
		clean, err := analyzer.CleanTarPath(p)
		if err != nil || clean == "" {
			skipped++
			continue
		}
		owned = append(owned, analyzer.OwnedFile{Path: clean, Package: pkg, Arch: arch, Type: model.TypeDeb,
			Algo: "md5", Digest: strings.ToLower(sum)})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, 0, fmt.Errorf("%w: a line over %d bytes", ErrMalformed, maxLineSize)
		}
		return nil, 0, err
	}
	return owned, skipped, nil
}
