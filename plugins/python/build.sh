#!/usr/bin/env bash
# Builds a Python policy plugin into a WebAssembly component.
#
#   plugins/python/build.sh OUTPUT.wasm [POLICY.py]
#
# POLICY.py (default: reference/reference_policy.py) is a module that defines the
# exported class `Evaluator` (`Evaluator = arbiter_policy.export(MyPolicy)`); its
# folder and sdk/ are on the module path. The pinned toolchain, componentize-py 0.25.1
# from PyPI, goes into a venv in .toolchains/python the first time and is reused later.
set -euo pipefail

usage() { echo "usage: $0 OUTPUT.wasm [POLICY.py]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$1"
app="${2:-$here/reference/reference_policy.py}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
case "$app" in /*) ;; *) app="$PWD/$app" ;; esac
[ -f "$app" ] || { echo "error: no policy module at $app" >&2; exit 2; }
app_dir="$(dirname "$app")"
module="$(basename "$app" .py)"
case "$module" in
  policy|wit_world|arbiter_policy)
    echo "error: a policy module may not be named \`$module\` (clashes with generated code)" >&2
    exit 2 ;;
esac

venv="$root/.toolchains/python"
COMPONENTIZE_PY_VERSION=0.25.1

die() { echo "error: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# --- toolchain -------------------------------------------------------------------
t0=$(now)
cpy="$venv/bin/componentize-py"
# Builds run in parallel (the test suite does): one installs, the others wait for it.
mkdir -p "$root/.toolchains"
exec 9>"$root/.toolchains/python.lock"
flock 9
if [ "$("$cpy" --version 2>/dev/null || true)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
  echo "installing componentize-py==$COMPONENTIZE_PY_VERSION into $venv" >&2
  command -v python3 >/dev/null || die "python3 is needed to install componentize-py"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || die "cannot create a venv at $venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q \
      "componentize-py==$COMPONENTIZE_PY_VERSION" ||
    die "cannot install componentize-py==$COMPONENTIZE_PY_VERSION from PyPI"
  [ "$("$cpy" --version)" = "componentize-py $COMPONENTIZE_PY_VERSION" ] ||
    die "componentize-py in $venv is not $COMPONENTIZE_PY_VERSION: $("$cpy" --version)"
fi
flock -u 9
echo "toolchain ready in $(since "$t0")s" >&2

# --- build -----------------------------------------------------------------------
t1=$(now)
mkdir -p "$(dirname "$out")"
# Keep the user's venv (if any) out of the component: only the app and the SDK go in.
(cd "$app_dir" && env -u VIRTUAL_ENV "$cpy" -q -d "$root/wit" -w policy componentize \
    -p "$app_dir" -p "$here/sdk" -o "$out" "$module")
echo "built $out ($(wc -c <"$out") bytes) in $(since "$t1")s" >&2
