package integrity

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"time"
)

// Baseline is the recorded state the host is compared with.
type Baseline struct {
	Created time.Time
	// Host is the host name at build time (informational).
	Host string
	// Root is the directory scanned ("/" on a host).
	Root string
	// Rules are the rule names File.Rule indexes, with their severities.
	Rules []RuleRef
	// Files are sorted by Path.
	Files []File
	// Objects are sorted by Kind then Key.
	Objects []Object
	// Key is the secret for keyed digests (collector Env.Key): random per
	// baseline, kept so that rebuilt states compare equal.
	Key []byte
	// Stats of the scan that built it (not saved).
	Stats Stats
}

// RuleRef names a rule of the set a baseline was built with.
type RuleRef struct {
	Name     string
	Severity Severity
}

// Build scans the rule set's paths and runs the collectors. A collector
// that fails is logged and recorded as failed (its objects are absent);
// the build goes on. key may be nil for a new random key.
func Build(ctx context.Context, rs *RuleSet, key []byte, opts ...Option) (*Baseline, error) {
	s, err := NewScanner(rs, opts...)
	if err != nil {
		return nil, err
	}
	return s.Build(ctx, nil, key)
}

// Build is Build with this scanner's options; prev (may be nil) lends
// hashes of unchanged files as in Scan.
func (s *Scanner) Build(ctx context.Context, prev *Baseline, key []byte) (*Baseline, error) {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("integrity: baseline key: %w", err)
		}
	}
	var prevFiles []File
	if prev != nil {
		prevFiles = prev.Files
	}
	files, st, err := s.Scan(ctx, prevFiles)
	if err != nil {
		return nil, err
	}
	objs, err := s.Collect(ctx, key)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	b := &Baseline{
		Created: time.Now().UTC(), Host: host, Root: s.o.root, Files: files, Objects: objs, Key: key, Stats: st,
	}
	for _, r := range s.rs.Rules {
		b.Rules = append(b.Rules, RuleRef{Name: r.Name, Severity: r.Severity})
	}
	return b, nil
}

// Collect runs the scanner's collectors and returns their objects sorted.
// A failing collector is logged and skipped; only a cancelled ctx fails.
func (s *Scanner) Collect(ctx context.Context, key []byte) ([]Object, error) {
	env := Env{Root: s.o.root, Proc: s.o.procDir, Key: key, Log: s.o.log}
	var out []Object
	for _, c := range s.o.colls {
		objs, err := c.Collect(ctx, env)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			s.o.log.Warn("integrity collector failed", "collector", c.Name(), "err", err)
			continue
		}
		out = append(out, objs...)
	}
	sortObjects(out)
	return out, nil
}

// collectOne runs one collector (the Monitor's re-collection).
func (s *Scanner) collectOne(ctx context.Context, c Collector, key []byte) ([]Object, error) {
	objs, err := c.Collect(ctx, Env{Root: s.o.root, Proc: s.o.procDir, Key: key, Log: s.o.log})
	if err != nil {
		return nil, err
	}
	sortObjects(objs)
	return objs, nil
}

// kindOrder ranks kinds for sorting and reports.
func kindOrder(k Kind) int {
	switch k {
	case KindFile:
		return 0
	case KindPackage:
		return 1
	case KindUser:
		return 2
	case KindGroup:
		return 3
	case KindSudoers:
		return 4
	case KindService:
		return 5
	case KindPort:
		return 6
	case KindModule:
		return 7
	}
	return 8
}

func compareObjects(a, b *Object) int {
	if c := cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

func sortObjects(os []Object) {
	slices.SortStableFunc(os, func(a, b Object) int { return compareObjects(&a, &b) })
}
