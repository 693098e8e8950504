#!/usr/bin/env bash
# Builds a JavaScript policy plugin into a WebAssembly component.
#
#   plugins/js/build.sh OUTPUT.wasm [ENTRY.js]     (ENTRY defaults to reference/policy.js)
#   JS_ENGINE=starlingmonkey plugins/js/build.sh OUTPUT.wasm [ENTRY.js]
#   plugins/js/build.sh --regen-types              (sdk/types/ from wit/, with jco)
#
# JS_ENGINE picks the JavaScript engine embedded in the component:
#   quickjs         (default) componentize-qjs 0.4.5: ~1.6 MB, flat memory
#   starlingmonkey  componentize-js 0.23.0 (SpiderMonkey): ~12 MB, memory grows per call
# README.md says why QuickJS is the default, with measurements.
#
# The pinned npm packages (toolchain/ENGINE/package-lock.json) are installed with
# `npm ci` into .toolchains/js/ENGINE at the repository root (git-ignored) the first
# time and reused while the lockfile is unchanged. A failed install is an error.
#
# ENTRY's folder is staged beside the SDK as `policy/` and `sdk/`, so a plugin imports
# the SDK as `../sdk/index.js` wherever its folder lives. A `sdk/` folder next to
# ENTRY's folder is used when present, else this repository's plugins/js/sdk.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
engine="${JS_ENGINE:-quickjs}"

die() { echo "error: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node.js 18 or later is needed)"
command -v npm >/dev/null || die "npm is not installed"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old: Node.js 18 or later is needed"

# Installs toolchain/$1 into .toolchains/js/$1 unless that install matches the lockfile;
# prints the install folder.
toolchain() {
  local name="$1" src="$here/toolchain/$1" dir="$root/.toolchains/js/$1"
  [ -f "$src/package-lock.json" ] || die "no toolchain \`$name\` (known: quickjs, starlingmonkey)"
  # Builds run in parallel (the test suite does): one installs, the others wait for it.
  # The lock is released when the subshell running this function exits.
  mkdir -p "$root/.toolchains/js"
  exec 9>"$root/.toolchains/js/$name.lock"
  flock 9
  if [ -d "$dir/node_modules" ] && cmp -s "$src/package-lock.json" "$dir/installed.lock"; then
    echo "$dir"
    return
  fi
  echo "installing the $name toolchain into $dir (npm ci)..." >&2
  local start=$SECONDS
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2; then
    rm -rf "$dir/node_modules"
    die "npm ci for the $name toolchain failed (see above); nothing was built"
  fi
  cp "$src/package-lock.json" "$dir/installed.lock"
  echo "installed the $name toolchain in $((SECONDS - start))s" >&2
  echo "$dir"
}

if [ "${1:-}" = "--regen-types" ]; then
  tc="$(toolchain starlingmonkey)"
  rm -rf "$here/sdk/types"
  "$tc/node_modules/.bin/jco" types "$root/wit" \
    --world-name policy --out-dir "$here/sdk/types" --quiet
  echo "regenerated $here/sdk/types from $root/wit"
  exit 0
fi

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 OUTPUT.wasm [ENTRY.js]   (JS_ENGINE=quickjs|starlingmonkey)"
out="$1"
entry="${2:-$here/reference/policy.js}"
[ -f "$entry" ] || die "no such entry file \`$entry\`"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
entry_dir="$(cd "$(dirname "$entry")" && pwd)"
sdk="$here/sdk"
[ -f "$entry_dir/../sdk/index.js" ] && sdk="$(cd "$entry_dir/../sdk" && pwd)"

tc="$(toolchain "$engine")"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$entry_dir" "$stage/policy"
rm -rf "$stage/sdk"
cp -R "$sdk" "$stage/sdk"
js="policy/$(basename "$entry")"

start=$SECONDS
cd "$stage"
case "$engine" in
  quickjs)
    # --sync: the default async ABI needs component-model async, which the host does not
    # enable.
    "$tc/node_modules/.bin/componentize-qjs" --sync \
      --wit "$root/wit" --world policy --js "$js" --module-root "$stage" -o "$out" >/dev/null
    ;;
  starlingmonkey)
    # Without `http` and `fetch-event` the component imports wasi:http, which the host
    # does not provide (disabling `http` alone still imports wasi:http/types).
    "$tc/node_modules/.bin/componentize-js" "$js" \
      --wit "$root/wit" --world-name policy --disable http fetch-event -o "$out"
    ;;
  *)
    die "unknown JS_ENGINE \`$engine\` (known: quickjs, starlingmonkey)"
    ;;
esac
[ -s "$out" ] || die "the $engine build wrote no component"
echo "built $out ($engine, $(( $(stat -c %s "$out") / 1024 )) KiB) in $((SECONDS - start))s"
