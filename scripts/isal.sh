#!/usr/bin/env bash
# Prints 1 when the -tags isal build (ISA-L gzip inflater, internal/inflate)
# can be made here, else 0. On Debian as root it installs libisal-dev (and
# with it the libisal2 runtime) first; MAMORI_NO_APT=1 skips that.
h=/usr/include/isa-l/igzip_lib.h
if [ ! -f "$h" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "${MAMORI_NO_APT:-}" != 1 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends libisal-dev >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends libisal-dev >/dev/null 2>&1; }
fi
if [ -f "$h" ] && command -v "${CC:-gcc}" >/dev/null; then echo 1; else echo 0; fi
