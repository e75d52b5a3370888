// Package versiontest holds the checks every version scheme's tests share:
// ordered chains, equal pairs, rejected input and the fuzz properties
// (no panic, reflexivity, antisymmetry).
package versiontest

import (
	"testing"
)

// CompareFunc is a scheme's Compare.
type CompareFunc func(a, b string) (int, error)

// Ordered checks that every element of chain sorts strictly before every
// later one, in both argument orders.
func Ordered(t *testing.T, cmp CompareFunc, chain []string) {
	t.Helper()
	for i := range chain {
		for j := i + 1; j < len(chain); j++ {
			c, err := cmp(chain[i], chain[j])
			if err != nil {
				t.Errorf("Compare(%q, %q): %v", chain[i], chain[j], err)
				continue
			}
			if c != -1 {
				t.Errorf("Compare(%q, %q) = %d, want -1", chain[i], chain[j], c)
			}
			if c, _ := cmp(chain[j], chain[i]); c != 1 {
				t.Errorf("Compare(%q, %q) = %d, want 1", chain[j], chain[i], c)
			}
		}
	}
}

// Equal checks that each pair compares equal both ways.
func Equal(t *testing.T, cmp CompareFunc, pairs [][2]string) {
	t.Helper()
	for _, p := range pairs {
		for _, q := range [][2]string{p, {p[1], p[0]}} {
			c, err := cmp(q[0], q[1])
			if err != nil {
				t.Errorf("Compare(%q, %q): %v", q[0], q[1], err)
				continue
			}
			if c != 0 {
				t.Errorf("Compare(%q, %q) = %d, want 0", q[0], q[1], c)
			}
		}
	}
}

// Invalid checks that each string is rejected whichever side it is on.
func Invalid(t *testing.T, cmp CompareFunc, valid string, bad []string) {
	t.Helper()
	for _, b := range bad {
		if c, err := cmp(b, valid); err == nil {
			t.Errorf("Compare(%q, %q) = %d, want an error", b, valid, c)
		}
		if c, err := cmp(valid, b); err == nil {
			t.Errorf("Compare(%q, %q) = %d, want an error", valid, b, c)
		}
	}
}

// Properties is the body of every FuzzCompare: it must not panic, a valid
// version equals itself, and swapping the arguments negates the result.
func Properties(t *testing.T, cmp CompareFunc, a, b string) {
	c, err := cmp(a, b)
	r, rerr := cmp(b, a)
	if (err == nil) != (rerr == nil) {
		t.Fatalf("Compare(%q, %q) error %v but Compare(%q, %q) error %v", a, b, err, b, a, rerr)
	}
	if err != nil {
		return
	}
	if c < -1 || c > 1 {
		t.Fatalf("Compare(%q, %q) = %d, want -1, 0 or 1", a, b, c)
	}
	if c != -r {
		t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, c, b, a, r)
	}
	for _, s := range []string{a, b} {
		if c, err := cmp(s, s); err != nil || c != 0 {
			t.Fatalf("Compare(%q, %q) = %d, %v; want 0", s, s, c, err)
		}
	}
}

// Transitive checks a ≤ b ≤ c ⇒ a ≤ c on a triple of valid versions; fuzz
// targets call it to catch orders that are not total.
func Transitive(t *testing.T, cmp CompareFunc, a, b, c string) {
	ab, err1 := cmp(a, b)
	bc, err2 := cmp(b, c)
	ac, err3 := cmp(a, c)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	if ab <= 0 && bc <= 0 && ac > 0 {
		t.Fatalf("%q <= %q <= %q but Compare(%q, %q) = %d", a, b, c, a, c, ac)
	}
	if ab >= 0 && bc >= 0 && ac < 0 {
		t.Fatalf("%q >= %q >= %q but Compare(%q, %q) = %d", a, b, c, a, c, ac)
	}
}
