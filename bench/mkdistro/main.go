// Command mkdistro stages a Debian root file system from packages installed
// on this machine (files, dpkg status paragraphs and md5sums, as dpkg left
// them), for bench/distro-secrets.sh; bench/mkimage packs it as an image.
//
//	go run ./bench/mkdistro -o /tmp/distro libruby3.1 libpython3.11-stdlib perl-modules-5.36
package main

import (
	"flag"
	"fmt"
	"os"

	"mamori/internal/testimage/debfs"
)

func main() {
	out := flag.String("o", "", "directory to stage into (created)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkdistro -o DIR PACKAGE...")
		os.Exit(2)
	}
	files, err := debfs.Stage(*out, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdistro:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "staged %d files of %d packages in %s\n", len(files), flag.NArg(), *out)
}
