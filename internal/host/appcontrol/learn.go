package appcontrol

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"io"
	"time"

	"mamori/internal/host/hostfs"
)

const (
	// DefaultLearnRate bounds the read rate of learning (inventory, package
	// verification): a node's workloads keep most of its disk bandwidth.
	DefaultLearnRate = 64 << 20
	// DefaultMaxFileSize caps a file hashed while learning or deciding:
	// larger executables are counted and left out.
	DefaultMaxFileSize = 1 << 30
	// maxReported bounds the paths a summary lists.
	maxReported = 100
	hashBuf     = 256 << 10
)

// LearnOptions tune the learners.
type LearnOptions struct {
	// Root is the root the learned paths are in ("/" when empty).
	Root string
	// BytesPerSecond bounds the read rate (DefaultLearnRate when 0; < 0
	// for no limit).
	BytesPerSecond int64
	// MaxFileSize caps a file hashed (DefaultMaxFileSize when 0).
	MaxFileSize int64
}

func (o LearnOptions) withDefaults() LearnOptions {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.BytesPerSecond == 0 {
		o.BytesPerSecond = DefaultLearnRate
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	return o
}

// LearnSummary says what a learner did.
type LearnSummary struct {
	Duration time.Duration `json:"duration"`
	// Files is the files looked at; Added the entries added.
	Files uint64 `json:"files"`
	Added uint64 `json:"added"`
	// Skipped: not executable content. TooLarge: over the size cap.
	Skipped  uint64 `json:"skipped"`
	TooLarge uint64 `json:"too_large"`
	// Missing: listed by a package but not on disk. Mismatched: on disk
	// with another digest than the package database says (changed since
	// installed: not added).
	Missing    uint64   `json:"missing"`
	Mismatched uint64   `json:"mismatched"`
	Errors     uint64   `json:"errors"`
	BytesRead  uint64   `json:"bytes_read"`
	Mismatches []string `json:"mismatches,omitempty"`
	Problems   []string `json:"problems,omitempty"`
}

func (s *LearnSummary) mismatch(p string) {
	s.Mismatched++
	if len(s.Mismatches) < maxReported {
		s.Mismatches = append(s.Mismatches, p)
	}
}

func (s *LearnSummary) problem(err error) {
	s.Errors++
	if len(s.Problems) < maxReported {
		s.Problems = append(s.Problems, err.Error())
	}
}

// digests hashes r (size bytes) with SHA-256 and, when extra is not nil,
// with it too, reading through lim.
func digests(ctx context.Context, r io.ReaderAt, size int64, lim *hostfs.Limiter, extra hash.Hash) ([32]byte, []byte, error) {
	var sum [32]byte
	h := sha256.New()
	w := io.Writer(h)
	if extra != nil {
		w = io.MultiWriter(h, extra)
	}
	// One read for a small file; at most hashBuf at a time for a large one.
	bufSize := int64(hashBuf)
	if size < bufSize {
		bufSize = max(size, 1)
	}
	buf := make([]byte, bufSize)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return sum, nil, err
		}
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if err := lim.Wait(ctx, int(n)); err != nil {
			return sum, nil, err
		}
		m, err := r.ReadAt(buf[:n], off)
		if m > 0 {
			_, _ = w.Write(buf[:m]) // hash writers never fail
			off += int64(m)
		}
		if err == io.EOF && off >= size {
			break
		}
		if err != nil {
			return sum, nil, fmt.Errorf("read at %d: %w", off, err)
		}
	}
	h.Sum(sum[:0])
	var x []byte
	if extra != nil {
		x = extra.Sum(nil)
	}
	return sum, x, nil
}

// hashFor returns a hash of an rpm digest algorithm (PGPHASHALGO_*).
func hashFor(algo int) hash.Hash {
	switch algo {
	case 1:
		return md5.New()
	case 2:
		return sha1.New()
	case 8:
		return sha256.New()
	case 9:
		return sha512.New384()
	case 10:
		return sha512.New()
	}
	return nil
}
