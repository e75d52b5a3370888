package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"mamori/internal/model"
)

// searchAlphabet is what generated search text is made of: ASCII, the
// characters that are syntax in LIKE patterns or FTS5 queries, and Unicode
// with unusual case mappings (Kelvin sign, dotted and dotless I, sharp s,
// final sigma) or outside the BMP.
var searchAlphabet = []rune("abcxyzAXZ019-_.:/%\\\"'*^()[]{}+ ~\téÉßẞİıKΣσς中😀")

func randText(r *rand.Rand, minLen, maxLen int) string {
	n := minLen + r.IntN(maxLen-minLen+1)
	var b strings.Builder
	for range n {
		b.WriteRune(searchAlphabet[r.IntN(len(searchAlphabet))])
	}
	return b.String()
}

// searchWorld is a generated store content and what substring search must
// find in it, computed in Go.
type searchWorld struct {
	r *rand.Rand
	// aliases of every vulnerability ID.
	aliases map[string][]string
	// stored are the IDs of the vulnerabilities table, which keeps IDs that
	// no image has any more.
	stored map[string]bool
	// rows are the live images' latest vulnerability rows, by image name.
	rows map[string][]model.Vulnerability
	// images are the live images' search texts, by name.
	images map[string]string
	ids    []string // IDs to draw rows from
	pkgs   []string // package names to draw rows from
	n      int      // scans ingested, for unique scan IDs and times
}

// newSearchWorld fills s with images whose IDs, aliases, package and image
// names are drawn from searchAlphabet, then rescans and deletes some so that
// the indexes go through inserts, updates and deletes.
func newSearchWorld(t *testing.T, s *sqlStore) *searchWorld {
	t.Helper()
	w := &searchWorld{r: rand.New(rand.NewPCG(42, 7)), aliases: map[string][]string{}, stored: map[string]bool{},
		rows: map[string][]model.Vulnerability{}, images: map[string]string{}}
	fixedIDs := []string{"CVE-2024-0001", `DSA-"quoted"`, "NEAR(a b)", `100%_done\`, "GHSA-xxxx-yyyy-zzzz"}
	for len(w.ids) < 80 {
		id := fixedIDs[len(w.ids)%len(fixedIDs)]
		if len(w.ids) >= len(fixedIDs) {
			id = []string{"CVE-2024-", "GHSA-", "DEBIAN-CVE-", "x "}[w.r.IntN(4)] + randText(w.r, 2, 8)
		}
		if _, dup := w.aliases[id]; dup {
			continue
		}
		var al []string
		for range w.r.IntN(3) {
			al = append(al, randText(w.r, 3, 10))
		}
		w.aliases[id] = al
		w.ids = append(w.ids, id)
	}
	w.pkgs = []string{"libxml2", "openssl", "lib_foo", "lib%bar", `lib\baz`, `"quoted"`, "ÉCOLE", "straße", "a\nb"}
	for len(w.pkgs) < 40 {
		w.pkgs = append(w.pkgs, randText(w.r, 1, 8))
	}
	var names []string
	for i := range 10 {
		name := fmt.Sprintf("reg.example/%s:%d", randText(w.r, 1, 6), i)
		names = append(names, name)
		w.ingest(t, s, name, i)
	}
	// Rescans: rows come and go, package summaries change.
	w.ingest(t, s, names[0], 0)
	w.ingest(t, s, names[1], 1)
	ctx := context.Background()
	p, err := s.ListImages(ctx, ImageFilter{Sort: ImageSortName, Page: Page{Limit: MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range p.Images {
		if im.Name == names[2] {
			if err := s.DeleteImage(ctx, im.ID); err != nil {
				t.Fatal(err)
			}
			delete(w.rows, im.Name)
			delete(w.images, im.Name)
		}
	}
	return w
}

// ingest stores a new scan of image name (number i) with 12 random rows.
func (w *searchWorld) ingest(t *testing.T, s *sqlStore, name string, i int) {
	t.Helper()
	seen := map[[2]string]bool{}
	var vulns []model.Vulnerability
	for len(vulns) < 12 {
		id, p := w.ids[w.r.IntN(len(w.ids))], w.pkgs[w.r.IntN(len(w.pkgs))]
		if seen[[2]string{id, p}] {
			continue
		}
		seen[[2]string{id, p}] = true
		vulns = append(vulns, vuln(id, p, model.SeverityHigh, 7, "", w.aliases[id]...))
	}
	w.n++
	digest := fmt.Sprintf("sha256:%064x", i)
	res := result(name, digest, fmt.Sprintf("s%d", w.n), t0.Add(time.Duration(w.n)*time.Minute), vulns)
	mustIngest(t, s, res)
	w.rows[name] = vulns
	for _, v := range vulns {
		w.stored[v.ID] = true
	}
	tg := &res.Target
	w.images[name] = strings.ToLower(strings.Join(append([]string{tg.Name, tg.Digest, tg.ImageID}, tg.RepoTags...), "\n"))
}

// vulnTexts returns the search texts of the affecting vulnerabilities, as
// the store builds them: "\n"-delimited ID and aliases, and package names.
func (w *searchWorld) vulnTexts() (search, packages map[string]string) {
	names := map[string][]string{}
	for _, rows := range w.rows {
		for _, v := range rows {
			if !slices.Contains(names[v.ID], v.Package.Name) {
				names[v.ID] = append(names[v.ID], v.Package.Name)
			}
		}
	}
	search, packages = map[string]string{}, map[string]string{}
	for id, ns := range names {
		search[id] = w.searchOf(id)
		slices.Sort(ns)
		packages[id] = strings.ToLower(strings.Join(ns, "\n"))
	}
	return search, packages
}

func (w *searchWorld) searchOf(id string) string {
	return "\n" + strings.ToLower(strings.Join(append([]string{id}, w.aliases[id]...), "\n")) + "\n"
}

// wantVulns is what ListVulnerabilities must list for f (sorted IDs).
func (w *searchWorld) wantVulns(f VulnerabilityFilter) []string {
	search, packages := w.vulnTexts()
	out := []string{}
	for id := range search {
		if q := strings.TrimSpace(f.Query); q != "" {
			t := searchText(q)
			if !strings.Contains(search[id], t) && !strings.Contains(packages[id], t) {
				continue
			}
		}
		if q := strings.TrimSpace(f.Package); q != "" && !strings.Contains(packages[id], searchText(q)) {
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// wantImages is what ListImages must list for query (sorted names).
func (w *searchWorld) wantImages(query string) []string {
	out := []string{}
	for name, text := range w.images {
		if strings.TrimSpace(query) == "" || strings.Contains(text, searchText(query)) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// aliasCandidates are the IDs GetVulnerability may answer for id when id is
// not an ID itself: those with id as a whole ID or alias.
func (w *searchWorld) aliasCandidates(id string) []string {
	var out []string
	for v := range w.stored {
		if strings.Contains(w.searchOf(v), tokenText(id)) {
			out = append(out, v)
		}
	}
	return out
}

// hostileQueries are search texts aimed at LIKE escaping and FTS5 syntax.
func hostileQueries(engine string) []string {
	q := []string{
		`"`, `""`, `"""`, `"lib"`, `lib"`, `"lib`, `" OR "`, `NEAR(`, `NEAR(lib xml)`, `NEAR(a b)`, `lib AND xml`,
		`lib OR xml`, `NOT lib`, `lib NOT xml`, `lib*`, `*`, `***`, `^lib`, `search: lib`, `search:lib`,
		`{search package_search}: lib`, `package_search : "lib"`, `-lib`, `+lib`, `(lib)`, `lib)`, `(`,
		`%`, `%%%`, `_`, `___`, `lib_foo`, `lib%bar`, `b%b`, `\`, `\\\`, `\%`, `\_`, `%_\`, `lib\baz`, `100%_done\`,
		`'`, `''`, `'; DROP TABLE vulnerabilities; --`, `"); DROP TABLE vuln_search; --`,
		"lib\nxml", "a\nb", "a b", " lib ", "\tlib\t", "  ", "é", "É", "ÉCOLE", "école", "ß", "STRASSE", "straße",
		"ẞ", "İ", "i̇", "ı", "K", "k", "Σ", "ς", "σσσ", "中", "中中中", "😀", "😀😀😀", "x 😀", "CVE-2024-0001",
		"cve-2024-0001", "dsa-\"quoted\"", "near(a b)", "GHSA-xxxx-yyyy-zzzz", "xxxx-yyyy",
		strings.Repeat("a", 10000), strings.Repeat(`"`, 5000), strings.Repeat("%_", 3000), strings.Repeat("NEAR(", 1000),
		strings.Repeat("中", 3000),
	}
	if engine == EngineSQLite {
		// Text no column can hold: PostgreSQL refuses it as a parameter
		// (as it always has); SQLite takes the LIKE scan.
		q = append(q, "a\x00b", "lib\x00xml", "\xff\xfe", "abc\xffdef", "\xef\xbf\xbd")
	}
	return q
}

// queries returns hostile queries plus substrings of the stored text, in
// any case, and random text.
func (w *searchWorld) queries(engine string) []string {
	q := hostileQueries(engine)
	sub := func(s string) {
		rs := []rune(s)
		for range 3 {
			i := w.r.IntN(len(rs))
			j := i + 1 + w.r.IntN(min(len(rs)-i, 12))
			x := string(rs[i:j])
			switch w.r.IntN(3) {
			case 0:
				x = strings.ToUpper(x)
			case 1:
				x = " " + x + "\t"
			}
			q = append(q, x)
		}
	}
	for _, id := range w.ids {
		sub(id)
		for _, a := range w.aliases[id] {
			sub(a)
		}
	}
	for _, p := range w.pkgs {
		sub(p)
	}
	names := slices.Sorted(maps.Keys(w.images))
	for _, name := range names {
		sub(name)
	}
	for range 100 {
		q = append(q, randText(w.r, 1, 5))
	}
	return q
}

func listVulnIDs(t *testing.T, s *sqlStore, f VulnerabilityFilter) []string {
	t.Helper()
	f.Sort, f.Page = VulnSortID, Page{Limit: MaxLimit}
	p, err := s.ListVulnerabilities(context.Background(), f)
	if err != nil {
		t.Fatalf("%+q: %v", f.Query+f.Package, err)
	}
	out := []string{}
	for _, v := range p.Vulnerabilities {
		out = append(out, v.ID)
	}
	if p.Total != len(out) {
		t.Errorf("%+q: total %d, listed %d", f.Query+f.Package, p.Total, len(out))
	}
	slices.Sort(out)
	return out
}

func listImageNames(t *testing.T, s *sqlStore, query string) []string {
	t.Helper()
	p, err := s.ListImages(context.Background(), ImageFilter{Query: query, Page: Page{Limit: MaxLimit}})
	if err != nil {
		t.Fatalf("%+q: %v", query, err)
	}
	out := []string{}
	for _, im := range p.Images {
		out = append(out, im.Name)
	}
	slices.Sort(out)
	return out
}

// aliasLookup returns GetVulnerability's ID for id, "" when not found.
func aliasLookup(t *testing.T, s *sqlStore, id string) string {
	t.Helper()
	d, err := s.GetVulnerability(context.Background(), id, Page{Limit: 1})
	if errors.Is(err, ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("get %+q: %v", id, err)
	}
	return d.ID
}

// checkSearch compares every search of queries with what w says, and on
// SQLite with the LIKE scan too.
func checkSearch(t *testing.T, s *sqlStore, w *searchWorld, queries []string) {
	t.Helper()
	failures := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if failures++; failures <= 20 {
			t.Errorf(format, args...)
		}
	}
	short := func(q string) string {
		if len(q) > 40 {
			return fmt.Sprintf("%+q... (%d bytes)", q[:40], len(q))
		}
		return fmt.Sprintf("%+q", q)
	}
	scan := func(fn func()) {
		s.scanSearch = true
		defer func() { s.scanSearch = false }()
		fn()
	}
	for _, q := range queries {
		for _, f := range []VulnerabilityFilter{{Query: q}, {Package: q}} {
			got := listVulnIDs(t, s, f)
			if want := w.wantVulns(f); utf8.ValidString(q) && !strings.Contains(q, "\x00") && !slices.Equal(got, want) {
				fail("vulnerabilities query %s package %v: got %q, want %q", short(q), f.Package != "", got, want)
			}
			if s.engine == EngineSQLite {
				var ref []string
				scan(func() { ref = listVulnIDs(t, s, f) })
				if !slices.Equal(got, ref) {
					fail("vulnerabilities query %s package %v: index %q, LIKE scan %q", short(q), f.Package != "", got, ref)
				}
				// A small page of many matches walks the sort order (walkSortOrder).
				f.Page = Page{Limit: 3, Offset: 1}
				var page, refPage VulnerabilityPage
				page, err := s.ListVulnerabilities(context.Background(), f)
				if err != nil {
					t.Fatal(err)
				}
				scan(func() { refPage, err = s.ListVulnerabilities(context.Background(), f) })
				if err != nil {
					t.Fatal(err)
				}
				if a, b := summaryIDs(page), summaryIDs(refPage); !slices.Equal(a, b) || page.Total != refPage.Total {
					fail("vulnerabilities query %s package %v, page 2 of 3: index %q, LIKE scan %q", short(q), f.Package != "", a, b)
				}
			}
		}
		got := listImageNames(t, s, q)
		if want := w.wantImages(q); utf8.ValidString(q) && !strings.Contains(q, "\x00") && !slices.Equal(got, want) {
			fail("images %s: got %q, want %q", short(q), got, want)
		}
		id := aliasLookup(t, s, q)
		if !w.stored[q] && utf8.ValidString(q) && !strings.Contains(q, "\x00") {
			if c := w.aliasCandidates(q); (id == "") != (len(c) == 0) || id != "" && !slices.Contains(c, id) {
				fail("alias lookup %s: got %q, want one of %q", short(q), id, c)
			}
		}
		if s.engine == EngineSQLite {
			var refImages []string
			var refID string
			scan(func() { refImages, refID = listImageNames(t, s, q), aliasLookup(t, s, q) })
			if !slices.Equal(got, refImages) || id != refID {
				fail("%s: index found images %q and alias %q, LIKE scan %q and %q", short(q), got, id, refImages, refID)
			}
		}
	}
	if failures > 20 {
		t.Errorf("... %d failures in all", failures)
	}
}

// checkSearchIndexes checks that the search indexes agree with the tables:
// on SQLite FTS5's integrity check (rank 1 compares the index with the
// content tables), on PostgreSQL the copy in vuln_search.
func checkSearchIndexes(t *testing.T, s *sqlStore) {
	t.Helper()
	ctx := context.Background()
	if s.engine == EnginePostgres {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM vulnerabilities v FULL JOIN vuln_search st ON st.id = v.id
			WHERE v.id IS NULL OR st.id IS NULL OR st.search <> v.search OR st.package_search <> v.package_search`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("vuln_search differs from vulnerabilities in %d rows", n)
		}
		return
	}
	for _, ix := range []string{vulnSearchIndex.fts, imageSearchIndex.fts} {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO `+ix+` (`+ix+`, rank) VALUES ('integrity-check', 1)`); err != nil {
			t.Errorf("%s: %v", ix, err)
		}
	}
}

// TestSearchMatchesScan: substring search answered from the indexes finds
// exactly what the LIKE scan finds and what a substring test in Go finds,
// for stored text and queries full of LIKE and FTS5 syntax and Unicode.
func TestSearchMatchesScan(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		w := newSearchWorld(t, s)
		checkSearch(t, s, w, w.queries(s.engine))
		checkSearchIndexes(t, s)
	})
}

// TestSearchUsesIndex: searches of 3 characters or more are planned on the
// trigram indexes, shorter ones are LIKE scans.
func TestSearchUsesIndex(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		seedVulns(t, s)
		plan := func(query string, args ...any) string {
			t.Helper()
			prefix := "EXPLAIN QUERY PLAN "
			if s.engine == EnginePostgres {
				prefix = "EXPLAIN "
			}
			var out []string
			err := s.read(ctx, func(tx *tx) error {
				if s.engine == EnginePostgres {
					// Tiny tables: show that the trigram index can serve the
					// query (the other ways to it cost more).
					for _, off := range []string{"enable_seqscan", "enable_indexscan"} {
						if _, err := tx.exec(ctx, `SET LOCAL `+off+` = off`); err != nil {
							return err
						}
					}
				}
				rows, err := tx.query(ctx, prefix+query, args...)
				if err != nil {
					return err
				}
				defer rows.Close()
				cols, err := rows.Columns()
				if err != nil {
					return err
				}
				for rows.Next() {
					vals := make([]any, len(cols))
					for i := range vals {
						vals[i] = new(any)
					}
					if err := rows.Scan(vals...); err != nil {
						return err
					}
					out = append(out, fmt.Sprint(*vals[len(vals)-1].(*any)))
				}
				return rows.Err()
			})
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			return strings.Join(out, "\n")
		}
		for _, c := range []struct {
			cols    []string
			term    string
			indexes []string // SQLite table or PostgreSQL indexes; none: a scan
		}{
			{vulnSearchIndex.cols, "openssl", []string{"vuln_search", "vuln_search_search_trgm", "vuln_search_package_search_trgm"}},
			{vulnSearchIndex.cols, "SSL", []string{"vuln_search", "vuln_search_search_trgm", "vuln_search_package_search_trgm"}},
			{[]string{"package_search"}, "zlib", []string{"vuln_search", "vuln_search_package_search_trgm"}},
			{vulnSearchIndex.cols, "ss", nil},
		} {
			if c.indexes == nil && s.engine == EnginePostgres {
				continue // PostgreSQL's planner decides (and scans are off here)
			}
			cond, args := s.contains(vulnSearchIndex, c.cols, searchText(c.term), false)
			p := plan(`SELECT COUNT(*) FROM vulnerabilities v WHERE `+cond, args...)
			for _, ix := range c.indexes {
				if strings.Contains(ix, "_trgm") == (s.engine == EnginePostgres) && !strings.Contains(p, ix) {
					t.Errorf("%q in %v: plan does not use %s:\n%s", c.term, c.cols, ix, p)
				}
			}
			if c.indexes == nil && strings.Contains(p, "vuln_search") {
				t.Errorf("%q: plan uses the index for a short term:\n%s", c.term, p)
			}
		}
		c, args := s.contains(imageSearchIndex, imageSearchIndex.cols, searchText("alpha"), false)
		p := plan(`SELECT COUNT(*) FROM images i WHERE `+c, args...)
		if want := map[string]string{EngineSQLite: "image_search", EnginePostgres: "images_search_trgm"}[s.engine]; !strings.Contains(p, want) {
			t.Errorf("image search plan does not use %s:\n%s", want, p)
		}
	})
}

// openAtVersion opens the store at dsn migrated only up to version.
func openAtVersion(t *testing.T, dsn string, version int64) *sqlStore {
	t.Helper()
	o := &options{logger: slog.New(slog.DiscardHandler)}
	var s *sqlStore
	var err error
	if strings.HasPrefix(dsn, "postgres://") {
		s, err = openPostgres(dsn, o)
	} else {
		s, err = openSQLite(dsn, o)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.provider()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSearchIndexUpgrade: a database of schema version 1, without search
// indexes, is indexed when this binary opens it and searches as before.
// The data is written at the latest version and the schema taken down to
// version 1 (its Down migrations), since this binary's ingest writes the
// columns later versions add.
func TestSearchIndexUpgrade(t *testing.T) {
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			dsn := testDSN(t, engine)
			old := openAtVersion(t, dsn, LatestSchemaVersion())
			w := newSearchWorld(t, old)
			p, err := old.provider()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.DownTo(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			s := openDSN(t, dsn)
			if v, err := s.SchemaVersion(context.Background()); err != nil || v != LatestSchemaVersion() {
				t.Fatalf("schema version %d, %v; want %d", v, err, LatestSchemaVersion())
			}
			checkSearch(t, s, w, w.queries(engine))
			checkSearchIndexes(t, s)
			if engine == EnginePostgres {
				if n := countTrigramIndexes(t, s.db.QueryRowContext); n != len(pgTrigramIndexes) {
					t.Errorf("%d trigram indexes, want %d", n, len(pgTrigramIndexes))
				}
			}
			// And the index follows writes made after the upgrade.
			w.ingest(t, s, "after-upgrade/"+randText(w.r, 3, 6), 99)
			checkSearch(t, s, w, w.queries(engine)[:200])
			checkSearchIndexes(t, s)
		})
	}
}

// TestSearchIndexSurvivesVacuum: SQLite's vulnerabilities index is keyed by
// the table's implicit rowid, which VACUUM may renumber where rows were
// deleted (https://sqlite.org/lang_vacuum.html); the bundled SQLite keeps
// them. If a future one does not, this test fails.
func TestSearchIndexSurvivesVacuum(t *testing.T) {
	s := openTest(t, EngineSQLite)
	ctx := context.Background()
	w := newSearchWorld(t, s)
	// mamori keeps vulnerabilities no image has any more; delete them here
	// to leave gaps in the rowids.
	var gone []string
	err := s.read(ctx, func(t *tx) error {
		var err error
		gone, err = readStrings(ctx, t, `SELECT id FROM vulnerabilities v WHERE affected_images = 0
			AND NOT EXISTS (SELECT 1 FROM image_vulnerabilities iv WHERE iv.vuln_id = v.id)
			AND NOT EXISTS (SELECT 1 FROM vuln_packages vp WHERE vp.vuln_id = v.id)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) == 0 {
		t.Fatal("no unreferenced vulnerabilities to delete: the fixture changed")
	}
	for _, id := range gone {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM vulnerabilities WHERE id = ?`, id); err != nil {
			t.Fatal(err)
		}
		delete(w.stored, id)
	}
	if _, err := s.db.ExecContext(ctx, `VACUUM`); err != nil {
		t.Fatal(err)
	}
	checkSearchIndexes(t, s)
	queries := w.queries(s.engine)
	checkSearch(t, s, w, queries)
	w.ingest(t, s, "after-vacuum", 98)
	checkSearchIndexes(t, s)
	checkSearch(t, s, w, queries[:200])
}

func countTrigramIndexes(t *testing.T, queryRow func(context.Context, string, ...any) *sql.Row) int {
	t.Helper()
	var n int
	if err := queryRow(context.Background(), `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()
		AND indexname LIKE '%\_trgm'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTrigramIndexesWithoutPrivilege: on PostgreSQL, a role that may not
// create the pg_trgm extension still opens the store (search unindexed, a
// warning logged), and gets the indexes at the next open once an
// administrator has created the extension.
func TestTrigramIndexesWithoutPrivilege(t *testing.T) {
	adminDSN := testDSN(t, EnginePostgres)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	u, err := url.Parse(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	role := "app_" + strings.TrimPrefix(u.Path, "/")
	// No CREATE on the database, so no CREATE EXTENSION (pg_trgm is a
	// trusted extension: a role with CREATE on the database could); tables
	// in schema public.
	for _, q := range []string{`CREATE ROLE ` + role + ` LOGIN`, `GRANT CREATE ON SCHEMA public TO ` + role} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	u.User = url.User(role)
	open := func() (*sqlStore, string) {
		t.Helper()
		var logs bytes.Buffer
		st, err := Open(ctx, u.String(), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if err != nil {
			t.Fatalf("open as %s: %v", role, err)
		}
		return st.(*sqlStore), logs.String()
	}

	s, logs := open()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "substring search is not indexed") ||
		!strings.Contains(logs, "permission denied") {
		t.Errorf("logs = %s", logs)
	}
	if n := countTrigramIndexes(t, s.db.QueryRowContext); n != 0 {
		t.Errorf("%d trigram indexes without the extension", n)
	}
	seedVulns(t, s)
	if got := listVulnIDs(t, s, VulnerabilityFilter{Query: "openssl"}); !slices.Equal(got, []string{"CVE-2024-1000"}) {
		t.Errorf("unindexed search = %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if _, err := admin.Exec(ctx, `CREATE EXTENSION pg_trgm`); err != nil {
		t.Fatal(err)
	}
	s, logs = open()
	defer s.Close()
	if strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "created trigram indexes") {
		t.Errorf("logs = %s", logs)
	}
	if n := countTrigramIndexes(t, s.db.QueryRowContext); n != len(pgTrigramIndexes) {
		t.Errorf("%d trigram indexes, want %d", n, len(pgTrigramIndexes))
	}
	if got := listVulnIDs(t, s, VulnerabilityFilter{Query: "openssl"}); !slices.Equal(got, []string{"CVE-2024-1000"}) {
		t.Errorf("indexed search = %q", got)
	}
}
