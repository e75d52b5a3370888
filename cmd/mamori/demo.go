package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"mamori/internal/demo"
)

func newDemoCmd(g *globalOptions) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "demo-prepare",
		Short: "Write the offline demo: the bundled vulnerability database and the demo image tar",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			res, err := demo.ImportDB(cmd.Context(), filepath.Join(dir, "db"))
			if err != nil {
				return err
			}
			img := filepath.Join(dir, "demo-image.tar")
			if err := demo.WriteImage(img); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vulnerability database: %s (%d advisories)\ndemo image: %s (%s)\n",
				filepath.Join(dir, "db"), res.Records, img, demo.ImageRef)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "mamori-demo", "directory to write the demo into")
	return cmd
}
