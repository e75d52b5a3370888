package analyzer

import (
	"reflect"
	"sort"
	"testing"

	"mamori/internal/model"
)

func pkgRes(name, version, layer string) *Result {
	return &Result{Packages: []model.Package{{Name: name, Version: version, Type: "deb",
		Locations: []model.PackageLocation{{Path: "x", LayerDiffID: layer}}}}}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name   string
		layers []*LayerResult
		want   map[string]string // path -> layer of first package
	}{
		{
			name: "upper file replaces lower",
			layers: []*LayerResult{
				{DiffID: "l1", Files: map[string]*Result{"a": pkgRes("p", "1", "l1")}},
				{DiffID: "l2", Files: map[string]*Result{"a": pkgRes("p", "2", "l2")}},
			},
			want: map[string]string{"a": "l2"},
		},
		{
			name: "unchanged package keeps the layer that installed it",
			layers: []*LayerResult{
				{DiffID: "l1", Files: map[string]*Result{"var/lib/dpkg/status": pkgRes("p", "1", "l1")}},
				{DiffID: "l2", Files: map[string]*Result{"var/lib/dpkg/status": pkgRes("p", "1", "l2")}},
			},
			want: map[string]string{"var/lib/dpkg/status": "l1"},
		},
		{
			name: "whiteout removes file and directory contents",
			layers: []*LayerResult{
				{DiffID: "l1", Files: map[string]*Result{"a/b": pkgRes("p", "1", "l1"), "a/c/d": pkgRes("q", "1", "l1"), "ab": pkgRes("r", "1", "l1")}},
				{DiffID: "l2", Whiteouts: []string{"a/b", "a/c"}},
			},
			want: map[string]string{"ab": "l1"},
		},
		{
			name: "opaque dir hides lower content but keeps its own layer's",
			layers: []*LayerResult{
				{DiffID: "l1", Files: map[string]*Result{"opt/x": pkgRes("p", "1", "l1"), "optx": pkgRes("q", "1", "l1")}},
				{DiffID: "l2", OpaqueDirs: []string{"opt"}, Files: map[string]*Result{"opt/y": pkgRes("r", "1", "l2")}},
			},
			want: map[string]string{"opt/y": "l2", "optx": "l1"},
		},
		{
			name: "whiteout then re-add in a later layer",
			layers: []*LayerResult{
				{DiffID: "l1", Files: map[string]*Result{"a": pkgRes("p", "1", "l1")}},
				{DiffID: "l2", Whiteouts: []string{"a"}},
				{DiffID: "l3", Files: map[string]*Result{"a": pkgRes("p", "1", "l3")}},
			},
			want: map[string]string{"a": "l3"},
		},
		{
			name: "opaque root",
			layers: []*LayerResult{
				{DiffID: "l1", Files: map[string]*Result{"a": pkgRes("p", "1", "l1")}},
				{DiffID: "l2", OpaqueDirs: []string{""}},
			},
			want: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Merge(tt.layers)
			got := map[string]string{}
			for p, r := range m.Files {
				got[p] = r.Packages[0].Locations[0].LayerDiffID
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMergeDoesNotMutateInput(t *testing.T) {
	l1 := &LayerResult{DiffID: "l1", Files: map[string]*Result{"s": pkgRes("p", "1", "l1")}}
	l2 := &LayerResult{DiffID: "l2", Files: map[string]*Result{"s": pkgRes("p", "1", "l2")}}
	Merge([]*LayerResult{l1, l2})
	if l2.Files["s"].Packages[0].Locations[0].LayerDiffID != "l2" {
		t.Error("Merge changed its input")
	}
	keys := []string{}
	for k := range l1.Files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 1 {
		t.Error("Merge changed its input")
	}
}
