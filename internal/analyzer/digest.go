package analyzer

import (
	"bytes"
	"crypto/md5" //nolint:gosec // dpkg's md5sums are MD5: compared, not trusted for security
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
)

// fileDigests hashes f's content (in memory or spilled) in every algorithm
// a package database uses, in one read.
func fileDigests(f *file) (*Digests, error) {
	var r io.Reader
	switch {
	case f.spill != nil:
		r = io.NewSectionReader(f.spill, 0, f.size)
	default:
		r = bytes.NewReader(f.data)
	}
	m5, s1, s256, s512 := md5.New(), sha1.New(), sha256.New(), sha512.New()
	if _, err := io.Copy(io.MultiWriter(m5, s1, s256, s512), r); err != nil {
		return nil, fmt.Errorf("hash content: %w", err)
	}
	return &Digests{
		MD5:    hex.EncodeToString(m5.Sum(nil)),
		SHA1:   hex.EncodeToString(s1.Sum(nil)),
		SHA256: hex.EncodeToString(s256.Sum(nil)),
		SHA512: hex.EncodeToString(s512.Sum(nil)),
	}, nil
}
