// Command mamori is the container security platform's one binary: image,
// file-system and manifest scanning, the vulnerability database, and the
// server. It is a thin layer over internal/...: flags in, packages called,
// output out.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"mamori/internal/inflate"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a process exit code through cobra (the CI gate's
// --exit-code) without printing anything more.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// globalOptions are the flags every command shares.
type globalOptions struct {
	quiet    bool
	debug    bool
	cacheDir string
	dbDir    string
	logger   *slog.Logger
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	// MAMORI_CPUPROFILE=FILE writes a CPU profile of the run (for go tool pprof).
	if path := os.Getenv("MAMORI_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "mamori:", err)
		return 1
	}
}

func newRootCmd() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "mamori",
		Short: "Container security: scan images, file systems and manifests; serve the console",
		Long: `mamori (守り, "protection") protects containers across their life: it finds
vulnerabilities, malware, secrets and misconfigurations in images, file systems
and manifests, and gates pipelines by policy.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version + " (gzip: " + inflate.Backend() + ")",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelWarn
			if g.debug {
				level = slog.LevelDebug
			}
			if g.quiet {
				level = slog.LevelError
			}
			g.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "no progress and no warnings on stderr")
	pf.BoolVar(&g.debug, "debug", false, "debug logging")
	pf.StringVar(&g.cacheDir, "cache-dir", "", "layer cache directory (default: the user cache dir, e.g. ~/.cache/mamori)")
	pf.StringVar(&g.dbDir, "db-dir", "", "vulnerability database directory (default: <cache-dir>/db)")

	// The command list: explicit, in the order help shows it.
	root.AddCommand(
		newImageCmd(g),
		newRootFSCmd(g),
		newFSCmd(g),
		newSBOMCmd(g),
		newConfigCmd(g),
		newPolicyCmd(g),
		newComplianceCmd(g),
		newDBCmd(g),
		newDemoCmd(g),
		newServerCmd(g),
		newClusterCmd(g),
		newAgentCmd(g),
	)
	return root
}
