package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mamori/internal/model"
	"mamori/internal/progress"
	"mamori/internal/vulndb"
)

// defaultEcosystems are downloaded by `db update` when neither the flag,
// an existing database nor earlier scans name any: every ecosystem mamori
// inventories.
var defaultEcosystems = []string{"Debian", "Ubuntu", "Alpine", "AlmaLinux", "Rocky Linux", "Red Hat", "SUSE",
	"npm", "PyPI", "Go", "Maven", "RubyGems", "crates.io", "Packagist", "NuGet"}

// seenFile records the OSV ecosystems scans met, so `db update` fetches
// what this machine needs.
const seenFile = "seen-ecosystems.json"

func newDBCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Manage the OSV vulnerability database"}
	var ecosystems []string
	var baseURL, kevURL, epssURL string
	update := &cobra.Command{
		Use:   "update",
		Short: "Download OSV dumps, CISA's KEV catalogue and FIRST's EPSS scores and rebuild the database atomically",
		Long: `Downloads the per-ecosystem OSV dumps (<base>/<Ecosystem>/all.zip), CISA's Known Exploited
Vulnerabilities catalogue (JSON feed) and FIRST's EPSS scores (daily CSV, gzip) with conditional
requests and rebuilds the database beside the old one, swapping it in only when everything was
fetched and checked: a failed download or a malformed feed keeps the old database. Ecosystems:
--ecosystems, else those already in the database plus those earlier scans met, else every
ecosystem mamori inventories. --kev-url= and --epss-url= (empty) leave a feed out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := dbDir(g)
			ecos := ecosystems
			if len(ecos) == 0 {
				ecos = knownEcosystems(dir)
			}
			opts := []vulndb.Option{vulndb.WithEcosystems(ecos...), vulndb.WithLogger(g.logger),
				vulndb.WithKEVURL(kevURL), vulndb.WithEPSSURL(epssURL)}
			if baseURL != "" {
				opts = append(opts, vulndb.WithBaseURL(baseURL))
			}
			if !g.quiet {
				fmt.Fprintf(os.Stderr, "updating %s from %d ecosystems: %s\n", dir, len(ecos), strings.Join(ecos, ", "))
			}
			res, err := vulndb.Update(cmd.Context(), dir, opts...)
			if err != nil {
				return err
			}
			if !res.Updated {
				fmt.Fprintln(cmd.OutOrStdout(), "vulnerability database is up to date")
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vulnerability database updated: %d advisories (%d files read, %d skipped)%s\n",
				res.Records, res.Files, res.Skipped, feedSummary(res.KEV, res.EPSS))
			return nil
		},
	}
	update.Flags().StringSliceVar(&ecosystems, "ecosystems", nil, "OSV ecosystems to download (Debian, Alpine, npm, PyPI, Go …)")
	update.Flags().StringVar(&baseURL, "base-url", "", "mirror base URL (default https://osv-vulnerabilities.storage.googleapis.com)")
	update.Flags().StringVar(&kevURL, "kev-url", vulndb.DefaultKEVURL, "CISA Known Exploited Vulnerabilities catalogue (JSON feed); empty: none")
	update.Flags().StringVar(&epssURL, "epss-url", vulndb.DefaultEPSSURL, "FIRST EPSS scores (CSV, gzip or plain); empty: none")

	var kevFile, epssFile string

	imp := &cobra.Command{
		Use:   "import PATH",
		Short: "Build the database from a directory or zip of OSV JSON files, with local KEV and EPSS copies (air-gapped sites)",
		Long: `Builds the database from the OSV records at PATH (a directory of JSON records and/or
<Ecosystem>/all.zip dumps, one zip, or one record) and swaps it in. Known exploited
vulnerabilities and EPSS scores come from --kev and --epss, or, when PATH is a directory, from the
files there by the names CISA and FIRST publish them under: known_exploited_vulnerabilities.json
and epss_scores-*.csv[.gz], at the top or in kev/ and epss/.`,
		Example: `  mamori db import ./osv --kev known_exploited_vulnerabilities.json --epss epss_scores-2026-01-02.csv.gz`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := []vulndb.Option{vulndb.WithLogger(g.logger)}
			if kevFile != "" {
				opts = append(opts, vulndb.WithKEVFile(kevFile))
			}
			if epssFile != "" {
				opts = append(opts, vulndb.WithEPSSFile(epssFile))
			}
			res, err := vulndb.Import(cmd.Context(), dbDir(g), args[0], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d advisories from %s (%d files read, %d skipped)%s\n", res.Records, args[0], res.Files, res.Skipped,
				feedSummary(res.KEV, res.EPSS))
			for _, r := range res.SkipReasons {
				g.logger.Warn("skipped", "reason", r)
			}
			return nil
		},
	}
	imp.Flags().StringVar(&kevFile, "kev", "", "local copy of CISA's KEV catalogue (known_exploited_vulnerabilities.json)")
	imp.Flags().StringVar(&epssFile, "epss", "", "local copy of FIRST's EPSS scores (epss_scores-YYYY-MM-DD.csv.gz or .csv)")
	var asJSON bool
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the database's sources, record counts per ecosystem and build time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			md, err := vulndb.Info(dbDir(g))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(md)
			}
			fmt.Fprintf(out, "database:   %s\nbuilt at:   %s (%s ago)\nadvisories: %d\n", dbDir(g), md.BuiltAt.Format(time.RFC3339),
				time.Since(md.BuiltAt).Round(time.Minute), md.Records)
			ecos := make([]string, 0, len(md.Ecosystems))
			for e := range md.Ecosystems {
				ecos = append(ecos, e)
			}
			sort.Strings(ecos)
			for _, e := range ecos {
				fmt.Fprintf(out, "  %-14s %d\n", e, md.Ecosystems[e])
			}
			for _, s := range md.Sources {
				fmt.Fprintf(out, "source:     %s\n", sourceLine(s))
			}
			if k := md.KEV; k != nil {
				fmt.Fprintf(out, "KEV:        %d known exploited CVEs, catalog %s (released %s); %s\n", k.Entries, k.Version, k.Date, sourceLine(k.Source))
			} else {
				fmt.Fprintln(out, "KEV:        none (mamori db update fetches it)")
			}
			if e := md.EPSS; e != nil {
				fmt.Fprintf(out, "EPSS:       %d scores of %s (model %s); %s\n", e.Entries, e.Date, e.Version, sourceLine(e.Source))
			} else {
				fmt.Fprintln(out, "EPSS:       none (mamori db update fetches it)")
			}
			return nil
		},
	}
	info.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(update, imp, info)
	return cmd
}

// feedSummary says what exploit intelligence a build holds.
func feedSummary(kev, epss *vulndb.FeedInfo) string {
	s := ""
	if kev != nil {
		s += fmt.Sprintf("; KEV catalog %s: %d known exploited CVEs", kev.Version, kev.Entries)
	}
	if epss != nil {
		s += fmt.Sprintf("; EPSS %s: %d scores", epss.Date, epss.Entries)
	}
	return s
}

func sourceLine(s vulndb.Source) string {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Sprint(s)
	}
	return string(b)
}

// knownEcosystems: those in the existing DB and those scans met, else the defaults.
func knownEcosystems(dir string) []string {
	set := map[string]bool{}
	if md, err := vulndb.Info(dir); err == nil {
		for e := range md.Ecosystems {
			set[e] = true
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, seenFile)); err == nil {
		var seen []string
		if json.Unmarshal(b, &seen) == nil {
			for _, e := range seen {
				set[e] = true
			}
		}
	}
	if len(set) == 0 {
		return defaultEcosystems
	}
	out := make([]string, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	sort.Strings(out)
	return out
}

// recordEcosystems adds the ecosystems of a scan's packages to the seen
// file. Failures are not worth failing a scan for.
func recordEcosystems(dir string, res *model.Result) {
	if dir == "" {
		return
	}
	set := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, seenFile)); err == nil {
		var seen []string
		if json.Unmarshal(b, &seen) == nil {
			for _, e := range seen {
				set[e] = true
			}
		}
	}
	n := len(set)
	for _, p := range res.Inventory.Packages {
		if p.Ecosystem != "" {
			set[p.Ecosystem] = true
		}
	}
	if len(set) == n {
		return
	}
	out := make([]string, 0, len(set))
	for e := range set {
		out = append(out, e)
	}
	sort.Strings(out)
	b, err := json.Marshal(out)
	if err != nil || os.MkdirAll(dir, 0o700) != nil {
		return
	}
	_ = os.WriteFile(filepath.Join(dir, seenFile), b, 0o600)
}

// firstRunFetch is how a scan gets a vulnerability database when there is
// none yet (a new user's first command, as trivy and grype do it): after
// the inventory, the OSV dumps of exactly the ecosystems found are
// downloaded and built atomically (vulndb.Update), with progress on a
// terminal and one line saying what was fetched and how old the data is.
// It is nil (no download; the missing database stays an error) with
// --offline or --skip-db-update.
func firstRunFetch(g *globalOptions, o *scanOptions) func(ctx context.Context, ecosystems []string) error {
	if o.offline || o.skipDBUpdate {
		return nil
	}
	return func(ctx context.Context, ecos []string) error {
		dir := dbDir(g)
		if dir == "" {
			return errors.New("no cache directory for the vulnerability database: use --db-dir")
		}
		if !g.quiet {
			fmt.Fprintf(os.Stderr, "no vulnerability database in %s: downloading %s (--offline or --skip-db-update to never download)\n",
				dir, strings.Join(ecos, ", "))
		}
		bar := progress.New("downloading vulnerability database", g.quiet)
		opts := []vulndb.Option{vulndb.WithEcosystems(ecos...), vulndb.WithLogger(g.logger), vulndb.WithProgress(bar.Add)}
		if o.dbURL != "" {
			opts = append(opts, vulndb.WithBaseURL(o.dbURL))
		}
		res, err := vulndb.Update(ctx, dir, opts...)
		bar.Done()
		if err != nil {
			return err
		}
		if !g.quiet {
			md, err := vulndb.Info(dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "fetched the vulnerability database: %d advisories for %s; %s\n",
				res.Records, strings.Join(ecos, ", "), dataAge(md, time.Now()))
		}
		return nil
	}
}

// dataAge says how old the downloaded data is: the oldest Last-Modified of
// the dumps (what the mirror said), else the build time.
func dataAge(md *vulndb.Metadata, now time.Time) string {
	var oldest time.Time
	for _, s := range md.Sources {
		if t, err := http.ParseTime(s.LastModified); err == nil && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return "built " + md.BuiltAt.Format(time.RFC3339)
	}
	return fmt.Sprintf("data as of %s (%s old)", oldest.UTC().Format(time.RFC3339), now.Sub(oldest).Round(time.Minute))
}
