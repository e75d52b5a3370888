package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mamori/internal/misconfig"
	"mamori/internal/model"
	"mamori/internal/report"
	"mamori/internal/scan"
)

func newConfigCmd(g *globalOptions) *cobra.Command {
	var format, output, failOn string
	var severities []string
	var exitCode int
	cmd := &cobra.Command{
		Use:   "config PATH",
		Short: "Check Dockerfiles and Kubernetes manifests (Pod Security Standards, CIS)",
		Example: `  mamori config ./deploy
  mamori config Dockerfile --fail-on high`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return err
			}
			fs, err := misconfig.ScanPath(cmd.Context(), args[0])
			if fs == nil && err != nil {
				return err
			}
			res := &model.Result{
				SchemaVersion: model.SchemaVersion, Tool: model.Tool{Name: "mamori", Version: version},
				CreatedAt: time.Now().UTC().Truncate(time.Second), Target: model.Target{Name: args[0], Type: model.TargetConfig},
				Scanners: []string{scan.ScannerMisconfig}, Findings: fs,
			}
			res.ScanID = fmt.Sprintf("%x", time.Now().UnixNano())
			if err != nil {
				res.Warnings = append(res.Warnings, err.Error())
			}
			model.SortFindings(res.Findings)
			o := &scanOptions{format: format, output: output, failOn: failOn, severities: severities, exitCode: exitCode}
			return finish(cmd.Context(), g, o, f, res, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&format, "format", "f", "table", "output format: table, json, sarif, junit")
	fl.StringVarP(&output, "output", "o", "", "write the report to this file")
	fl.StringVar(&failOn, "fail-on", "", "fail when a finding of this severity or worse is found")
	fl.StringSliceVar(&severities, "severity", nil, "report only these severities")
	fl.IntVar(&exitCode, "exit-code", 0, "exit code when the gate fails (default 1 with --fail-on)")
	return cmd
}
