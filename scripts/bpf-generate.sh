#!/usr/bin/env bash
# Regenerates the runtime sensor's BPF objects (internal/runtime/sensor):
# compiles bpf/sensor.bpf.c with clang through bpf2go (cilium/ebpf, the
# version in go.mod) into bpf_x86_bpfel.{go,o}, which are committed so that
# `go build` needs no clang.
#
#   scripts/bpf-generate.sh            regenerate the objects
#   scripts/bpf-generate.sh --check    regenerate into a temporary copy and
#                                      fail when it differs from the committed
#                                      files (CI); skipped, with a message, when
#                                      clang is missing or not the pinned major
#                                      version (another clang emits other bytes)
#   scripts/bpf-generate.sh --vmlinux  also refresh bpf/vmlinux.h from this
#                                      machine's kernel BTF (CO-RE makes the
#                                      objects portable; refresh only to use new
#                                      kernel types)
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_MAJOR=14 # Debian 12's clang; the committed objects were built with it
PKG=internal/runtime/sensor
mode=generate
case "${1:-}" in
--check) mode=check ;;
--vmlinux) mode=vmlinux ;;
"") ;;
*) echo "usage: $0 [--check|--vmlinux]" >&2; exit 2 ;;
esac

if ! command -v clang >/dev/null 2>&1; then
	if [ "$mode" = check ]; then
		echo "bpf-generate: clang not installed, objects not checked"
		exit 0
	fi
	echo "bpf-generate: clang is needed (apt-get install clang llvm libbpf-dev bpftool)" >&2
	exit 1
fi
major=$(clang -dumpversion | cut -d. -f1)
if [ "$major" != "$CLANG_MAJOR" ]; then
	if [ "$mode" = check ]; then
		echo "bpf-generate: clang $major is not the pinned $CLANG_MAJOR, objects not checked"
		exit 0
	fi
	echo "bpf-generate: warning: clang $major, the committed objects come from clang $CLANG_MAJOR" >&2
fi

if [ "$mode" = vmlinux ]; then
	bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$PKG/bpf/vmlinux.h"
fi

generate() { # $1: directory holding a copy of the package
	(cd "$1" && GOPACKAGE=sensor go tool bpf2go \
		-cc clang -strip llvm-strip -target amd64 \
		-cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -ffile-prefix-map=$PWD/$1=." \
		-type rec_hdr -type sect -type sockinfo -type sensor_config -type stat_counters \
		bpf bpf/sensor.bpf.c)
}

if [ "$mode" = check ]; then
	# bpf2go runs inside the module (go tool): generate into a scratch copy
	# of the package's C sources, then compare.
	gen="$PKG/.bpfcheck"
	rm -rf "$gen" && mkdir -p "$gen" && cp -r "$PKG/bpf" "$gen/"
	trap 'rm -rf "$gen"' EXIT
	generate "$gen"
	fail=0
	for f in bpf_x86_bpfel.go bpf_x86_bpfel.o; do
		if ! cmp -s "$gen/$f" "$PKG/$f"; then
			echo "bpf-generate: $PKG/$f differs from what bpf/sensor.bpf.c compiles to: run scripts/bpf-generate.sh and commit" >&2
			fail=1
		fi
	done
	[ $fail = 0 ] && echo "bpf-generate: committed objects match bpf/sensor.bpf.c"
	exit $fail
fi
generate "$PKG"
echo "bpf-generate: wrote $PKG/bpf_x86_bpfel.go and bpf_x86_bpfel.o"
