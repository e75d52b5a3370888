package ruledoc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"mamori/internal/cel"
)

var errTest = errors.New("test: invalid rule file")

// read runs the envelope, lists and macros of one file and returns the
// reader and the errors as "file:line:col: msg" lines.
func read(t *testing.T, files ...File) (*Reader, []string) {
	t.Helper()
	r := NewReader(errTest)
	for _, f := range files {
		root := r.Root(f, 1<<10, "lists and macros")
		if root == nil {
			continue
		}
		r.Fields(f, root, "file", map[string]func(*yaml.Node){
			"lists":  func(n *yaml.Node) { r.Seq(f, n, "lists", r.List) },
			"macros": func(n *yaml.Node) { r.Seq(f, n, "macros", r.Macro) },
		})
	}
	var out []string
	for _, e := range r.Errors() {
		if !errors.Is(e, errTest) {
			t.Errorf("%v does not wrap the reader's error", e)
		}
		out = append(out, e.Error())
	}
	return r, out
}

func TestReaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // substrings, one per error, in order
	}{
		{"empty", "", nil},
		{"not a mapping", "- a\n", []string{"a.yaml:1:1", "want a mapping with lists and macros"}},
		{"syntax", "lists:\n  - name: [\n", []string{"a.yaml:2: YAML: did not find expected node content"}},
		{"unknown field", "lists: []\nrulez: []\n", []string{"a.yaml:2:1", `unknown field "rulez" (want lists, macros)`}},
		{"twice", "lists: []\nlists: []\n", []string{"a.yaml:2:1", `field "lists" given twice`}},
		{"list not a list", "lists: {a: b}\n", []string{"lists: want a list"}},
		{"list without items", "lists: [{name: a}]\n", []string{`list "a": items is required`}},
		{"bad name", "lists: [{name: a-b, items: [x]}]\n", []string{`list "a-b": a name is letters`}},
		{"items not strings", "lists: [{name: a, items: [[x]]}]\n", []string{"list items: want a string"}},
		{"append to nothing", "lists: [{name: a, items: [x], append: true}]\n", []string{"append to a list that is not defined before"}},
		{"append not bool", "lists: [{name: a, items: [x], append: maybe}]\n", []string{"list append: want true or false"}},
		{"list twice", "lists: [{name: a, items: [x]}, {name: a, items: [y]}]\n", []string{`list "a": already defined at a.yaml:1:9`}},
		{"macro without condition", "macros: [{name: m}]\n", []string{`macro "m": condition is required`}},
		{"macro null condition", "macros: [{name: m, condition: null}]\n", []string{"macro condition: want a string"}},
		{"macro and list", "lists: [{name: a, items: [x]}]\nmacros: [{name: a, condition: 'true'}]\n", []string{`macro "a": a list of that name is defined at a.yaml:1:9`}},
		{"list and macro", "macros: [{name: a, condition: 'true'}]\nlists: [{name: a, items: [x]}]\n", []string{`list "a": a macro of that name is defined at a.yaml:1:10`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got := read(t, File{Name: "a.yaml", Data: []byte(tc.doc)})
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("errors %q, want none", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("errors %q, want one", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got[0], w) {
					t.Errorf("error %q does not contain %q", got[0], w)
				}
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	_, got := read(t, File{Name: "big.yaml", Data: []byte("lists: []\n" + strings.Repeat("#", 2000))})
	if len(got) != 1 || !strings.Contains(got[0], "more than the limit of 1024") {
		t.Fatalf("errors %q", got)
	}
}

func TestListsAppendAcrossFiles(t *testing.T) {
	r, errs := read(t,
		File{Name: "a.yaml", Data: []byte("lists: [{name: shells, items: [sh, bash]}]\nmacros: [{name: is_shell, condition: 'proc.name in shells'}]\n")},
		File{Name: "b.yaml", Data: []byte("lists: [{name: shells, items: [zsh], append: true}]\n")})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	env, err := cel.NewEnv([]cel.Var{{Name: "proc.name", Type: cel.String, MaxSize: 64}}, r.EnvOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	prg, err := env.CompileBool(cel.Source{File: "t", Expr: "is_shell"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"bash": true, "zsh": true, "python": false} {
		got, err := prg.EvalBool(context.Background(), cel.MapActivation(map[string]any{"proc.name": name}))
		if err != nil || got != want {
			t.Errorf("is_shell(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
}

func TestErrorsSorted(t *testing.T) {
	r := NewReader(errTest)
	r.Errorf(Pos{File: "b", Line: 1}, "b1")
	r.Errorf(Pos{File: "a", Line: 9, Column: 2}, "a9.2")
	r.Errorf(Pos{File: "a", Line: 9, Column: 1}, "a9.1")
	r.Errorf(Pos{File: "a", Line: 2}, "a2")
	var got []string
	for _, e := range r.Errors() {
		got = append(got, e.Msg)
	}
	if strings.Join(got, " ") != "a2 a9.1 a9.2 b1" {
		t.Fatalf("order %v", got)
	}
	if (Pos{File: "f"}).String() != "f" || (Pos{File: "f", Line: 3, Column: 4}).String() != "f:3:4" {
		t.Error("Pos.String")
	}
}

func TestCELErrorsFriendly(t *testing.T) {
	env, err := cel.NewEnv([]cel.Var{{Name: "proc.name", Type: cel.String, MaxSize: 64}})
	if err != nil {
		t.Fatal(err)
	}
	for expr, want := range map[string]string{
		"proc.nam == 'x'": "unknown field 'proc.nam'",
		"no_such_list":    "unknown list or macro 'no_such_list'",
	} {
		_, err := env.CompileBool(cel.Source{File: "t", Expr: expr})
		if err == nil {
			t.Fatalf("%s compiled", expr)
		}
		errs := CELErrors(err)
		if len(errs) == 0 || !strings.Contains(errs[0].Msg, want) {
			t.Errorf("%s: %v, want %q", expr, errs, want)
		}
	}
	if errs := CELErrors(errors.New("plain")); len(errs) != 1 || errs[0].Msg != "plain" {
		t.Errorf("plain error: %v", errs)
	}
}
