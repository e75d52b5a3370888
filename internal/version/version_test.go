package version

import (
	"errors"
	"testing"
)

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		eco, scheme string
		a, b        string
		want        int
	}{
		{"Debian:12", "deb", "1.0~rc1", "1.0", -1},
		{"Ubuntu:22.04:LTS", "deb", "1:1.0", "2.0", 1},
		{"Ubuntu:Pro:18.04:LTS", "deb", "1.0-1ubuntu1", "1.0-1", 1},
		{"Alpine:v3.18", "apk", "1.0_rc1-r0", "1.0-r0", -1},
		{"Wolfi", "apk", "1.0-r1", "1.0-r0", 1},
		{"Chainguard", "apk", "1.0", "1.0", 0},
		{"AlmaLinux:9", "rpm", "1.0^git1", "1.0", 1},
		{"Rocky Linux:8", "rpm", "1.0~rc1", "1.0", -1},
		{"Red Hat", "rpm", "1:1.0", "2.0", 1},
		{"SUSE:SLES:15", "rpm", "1.0", "1.0.1", -1},
		{"openSUSE:Tumbleweed", "rpm", "2.0", "1.9", 1},
		{"npm", "semver", "1.0.0-rc.1", "1.0.0", -1},
		{"Go", "semver", "v1.2.3", "1.2.3", 0},
		{"crates.io", "semver", "0.10.0", "0.9.0", 1},
		{"PyPI", "pep440", "1.0.dev1", "1.0a1", -1},
		{"Maven", "maven", "1.0-SNAPSHOT", "1.0", -1},
		{"RubyGems", "gem", "1.0.a", "1.0", -1},
		{"NuGet", "nuget", "1.0.0-BETA", "1.0.0-beta", 0},
		{"Packagist", "composer", "1.0.0-RC1", "1.0.0", -1},
	} {
		c, err := For(tc.eco)
		if err != nil {
			t.Errorf("For(%q): %v", tc.eco, err)
			continue
		}
		if s := c.(*Scheme); s.Name() != tc.scheme {
			t.Errorf("For(%q) = %s, want %s", tc.eco, s.Name(), tc.scheme)
		}
		got, err := Compare(tc.eco, tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("Compare(%q, %q, %q) = %d, %v; want %d", tc.eco, tc.a, tc.b, got, err, tc.want)
		}
	}
}

func TestUnknownEcosystem(t *testing.T) {
	for _, eco := range []string{"", "Linux", "OSS-Fuzz", "nope:1"} {
		if _, err := For(eco); !errors.Is(err, ErrUnknownEcosystem) {
			t.Errorf("For(%q) error %v, want ErrUnknownEcosystem", eco, err)
		}
		if _, err := Compare(eco, "1", "2"); !errors.Is(err, ErrUnknownEcosystem) {
			t.Errorf("Compare(%q) error %v, want ErrUnknownEcosystem", eco, err)
		}
	}
}

func TestInvalidWrapped(t *testing.T) {
	_, err := Compare("Debian", "1.0-", "1.0")
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %v does not wrap ErrInvalid", err)
	}
	s, _ := SchemeFor("Alpine")
	if _, err := s.Parse("1.0bc"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Parse error %v does not wrap ErrInvalid", err)
	}
}

func TestParsed(t *testing.T) {
	s, err := SchemeFor("Debian:11")
	if err != nil {
		t.Fatal(err)
	}
	installed, err := s.Parse("2.31-13+deb11u5")
	if err != nil {
		t.Fatal(err)
	}
	if installed.String() != "2.31-13+deb11u5" {
		t.Errorf("String() = %q", installed.String())
	}
	for fixed, want := range map[string]int{"2.31-13+deb11u6": -1, "2.31-13": 1, "2.31-13+deb11u5": 0} {
		f, err := s.Parse(fixed)
		if err != nil {
			t.Fatal(err)
		}
		got, err := installed.Compare(f)
		if err != nil || got != want {
			t.Errorf("Compare(%s) = %d, %v; want %d", fixed, got, err, want)
		}
	}
	r, _ := SchemeFor("Red Hat")
	rv, err := r.Parse("2.31-13")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := installed.Compare(rv); !errors.Is(err, ErrMixedSchemes) {
		t.Errorf("mixed compare error %v, want ErrMixedSchemes", err)
	}
	if _, err := (Version{}).Compare(Version{}); !errors.Is(err, ErrMixedSchemes) {
		t.Errorf("zero compare error %v, want ErrMixedSchemes", err)
	}
}

func BenchmarkCompare(b *testing.B) {
	for _, bc := range []struct{ eco, a, b string }{
		{"Debian", "1:2.36.1-8+deb11u1", "1:2.36.1-8+deb11u2"},
		{"Alpine", "7.83.1_rc1-r0", "7.83.1-r3"},
		{"Red Hat", "1:2.36.1-8.el9_2", "1:2.36.1-10.el9"},
		{"npm", "4.17.20", "4.17.21-beta.1"},
		{"PyPI", "2.31.0", "2.32.0rc1"},
		{"Maven", "2.14.1", "2.15.0-rc1"},
		{"RubyGems", "7.0.8.1", "7.1.0.rc1"},
		{"NuGet", "13.0.1", "13.0.2-beta1"},
		{"Packagist", "v5.4.21", "5.4.22-RC1"},
	} {
		s, err := SchemeFor(bc.eco)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(s.Name()+"/strings", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Compare(bc.a, bc.b); err != nil {
					b.Fatal(err)
				}
			}
		})
		x, _ := s.Parse(bc.a)
		y, _ := s.Parse(bc.b)
		b.Run(s.Name()+"/parsed", func(b *testing.B) {
			for b.Loop() {
				if _, err := x.Compare(y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
