package regfilter

import "testing"

func FuzzParseTags(f *testing.F) {
	for _, s := range []string{"", "v*, latest:5", "regex:^v[0-9]+(\\.[0-9]+){1,2}$", "1.*,latest:2,regex:a,b", "[", "latest:0"} {
		f.Add(s, "v1.2.3")
	}
	f.Fuzz(func(t *testing.T, filter, tag string) {
		tf, err := ParseTags(filter)
		if err != nil {
			return
		}
		out := tf.Apply([]string{tag, "latest", "v1", "1.10", tag + "0"})
		if tf.Latest > 0 && len(out) > tf.Latest {
			t.Fatalf("latest:%d gave %d tags", tf.Latest, len(out))
		}
		again, err := ParseTags(tf.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", filter, tf.String(), err)
		}
		if again.String() != tf.String() {
			t.Fatalf("round trip %q != %q", again.String(), tf.String())
		}
		_ = VersionLess(tag, filter)
	})
}

func FuzzParseRepositories(f *testing.F) {
	for _, s := range []string{"team/*, base/*", "", "[", "a,,b"} {
		f.Add(s, "team/app")
	}
	f.Fuzz(func(t *testing.T, filter, repo string) {
		g, err := ParseRepositories(filter)
		if err != nil {
			return
		}
		_ = MatchAny(g, repo)
		if _, err := ParseRepositories(FormatRepositories(g)); err != nil {
			t.Fatalf("round trip of %q: %v", filter, err)
		}
	})
}
