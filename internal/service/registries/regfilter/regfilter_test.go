package regfilter

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseAndApplyTags(t *testing.T) {
	tags := []string{"latest", "1.9", "1.10", "1.2", "v2.0.0", "v10.0.0", "v2.0.0-rc1", "dev", "2024-01-05", "2024-01-10"}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"", []string{"2024-01-10", "2024-01-05", "1.10", "1.9", "1.2", "v10.0.0", "v2.0.0", "v2.0.0-rc1", "latest", "dev"}},
		{"1.*", []string{"1.10", "1.9", "1.2"}},
		{"1.*, latest:2", []string{"1.10", "1.9"}},
		{"v*, latest", []string{"v10.0.0", "v2.0.0", "v2.0.0-rc1", "latest"}},
		{"regex:^v[0-9]+(\\.[0-9]+){2}$", []string{"v10.0.0", "v2.0.0"}},
		{"v*, latest:1, regex:^v[0-9]+(\\.[0-9]+){1,2}$", []string{"v10.0.0"}},
		{"2024-*,latest:1", []string{"2024-01-10"}},
		{"nothing-matches", nil},
	} {
		f, err := ParseTags(tc.filter)
		if err != nil {
			t.Fatalf("%q: %v", tc.filter, err)
		}
		if got := f.Apply(tags); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.filter, got, tc.want)
		}
		// The text form round-trips.
		g, err := ParseTags(f.String())
		if err != nil || !reflect.DeepEqual(g.Apply(tags), f.Apply(tags)) || g.String() != f.String() {
			t.Errorf("%q: round trip %q: %v", tc.filter, f.String(), err)
		}
	}
	for _, bad := range []string{"latest:0", "latest:x", "latest:1, latest:2", "regex:(", "regex:", "[", "a b", "x regex:y", "latest:100000"} {
		if _, err := ParseTags(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTags(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestRepositories(t *testing.T) {
	g, err := ParseRepositories(" team-a/*, base/* ,")
	if err != nil || !reflect.DeepEqual(g, []string{"team-a/*", "base/*"}) {
		t.Fatalf("%v %v", g, err)
	}
	for repo, want := range map[string]bool{"team-a/app": true, "base/debian": true, "team-a/x/y": false, "other/app": false} {
		if MatchAny(g, repo) != want {
			t.Errorf("%s: %v", repo, !want)
		}
	}
	if !MatchAny(nil, "anything") {
		t.Error("no filter must select everything")
	}
	if _, err := ParseRepositories("[bad"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad glob: %v", err)
	}
	if _, err := ParseRepositories(strings.Repeat("a,", MaxPatterns+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("too many: %v", err)
	}
}

func TestVersionLess(t *testing.T) {
	ordered := []string{"1", "1.2", "1.9", "1.10", "01.10", "2", "10", "v1", "v1.0"}
	_ = ordered
	for _, p := range [][2]string{{"1.9", "1.10"}, {"1.2", "1.10"}, {"v1", "v1.0"}, {"a", "b"}, {"v9", "v10"}, {"1.0", "01.0"}, {"v2.0.0-rc1", "v2.0.0"}, {"latest", "1"}} {
		if !VersionLess(p[0], p[1]) || VersionLess(p[1], p[0]) {
			t.Errorf("VersionLess(%q, %q) wrong", p[0], p[1])
		}
	}
	if VersionLess("1.0", "1.0") {
		t.Error("irreflexive")
	}
}
