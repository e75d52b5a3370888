package misconfig

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"mamori/internal/analyzer"
)

func TestFileModeAnalyzer(t *testing.T) {
	a := NewFileModeAnalyzer()
	for _, tc := range []struct {
		mode fs.FileMode
		need analyzer.Need
		ids  []string
	}{
		{0o755, analyzer.Skip, nil},
		{0o755 | fs.ModeSetuid, analyzer.Metadata, []string{ImgSetuid}},
		{0o2755&0o777 | fs.ModeSetgid, analyzer.Metadata, []string{ImgSetuid}},
		{0o666, analyzer.Metadata, []string{ImgWorldWritable}},
		{0o777 | fs.ModeSetuid, analyzer.Metadata, []string{ImgSetuid, ImgWorldWritable}},
		{0o777 | fs.ModeSymlink, analyzer.Skip, nil},
		{0o777 | fs.ModeDir | fs.ModeSticky, analyzer.Skip, nil},
	} {
		if got := a.Required("usr/bin/x", fi{tc.mode}); got != tc.need {
			t.Errorf("Required(%v) = %v, want %v", tc.mode, got, tc.need)
		}
		res, err := a.Analyze(context.Background(), analyzer.Input{Path: "usr/bin/x", Info: fi{tc.mode}, Layer: "sha256:l"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		if res != nil {
			for _, f := range res.Findings {
				ids = append(ids, f.ID)
				if f.Location.Path != "usr/bin/x" {
					t.Errorf("path %q", f.Location.Path)
				}
			}
		}
		if strings.Join(ids, ",") != strings.Join(tc.ids, ",") {
			t.Errorf("mode %v: ids %v, want %v", tc.mode, ids, tc.ids)
		}
	}
}
