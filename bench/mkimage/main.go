// Command mkimage packs directories into a docker-archive image tar, one
// layer per directory, in order (the bench and test images: no registry
// can be pulled from here, and no Docker engine runs).
//
//	go run ./bench/mkimage -o ref.tar -tag mamori/reference:1 rootfs/ app/
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	out := flag.String("o", "image.tar", "output docker-archive tar")
	tag := flag.String("tag", "mamori/reference:1", "image tag")
	user := flag.String("user", "", "config User")
	env := flag.String("env", "", "comma-separated KEY=VALUE for config Env")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: mkimage -o OUT.tar [-tag T] DIR...")
		os.Exit(2)
	}
	if err := run(*out, *tag, *user, *env, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, tag, user, env string, dirs []string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	var layers []v1.Layer
	var history []v1.History
	for _, d := range dirs {
		tmp, err := os.CreateTemp(filepath.Dir(out), "layer-*.tar")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if err := tarDir(tmp, d); err != nil {
			return fmt.Errorf("tar %s: %w", d, err)
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		l, err := tarball.LayerFromFile(tmp.Name())
		if err != nil {
			return err
		}
		layers = append(layers, l)
		history = append(history, v1.History{CreatedBy: "COPY " + filepath.Base(d) + " /"})
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.History = history
	cf.Config.User = user
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if env != "" {
		cf.Config.Env = append(cf.Config.Env, strings.Split(env, ",")...)
	}
	cf.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}

// tarDir writes dir as a layer tar: paths relative to dir, modes, symlinks
// and hard links kept, owners root.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	inodes := map[uint64]string{}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if ino, nlink := inode(fi); fi.Mode().IsRegular() && nlink > 1 {
			if first, ok := inodes[ino]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				inodes[ino] = hdr.Name
			}
		}
		if !fi.Mode().IsRegular() && fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
			continue // devices and sockets do not belong in an image layer
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := io.Copy(tw, bytes.NewReader(b)); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
