#!/usr/bin/env bash
# Re-fetch the vendored JavaScript from the npm registry and check it against the pinned
# tarball digests. The files are committed, so neither `make run` nor `make test` needs
# the network; this script only documents (and repeats) where they came from.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() {  # name version sha256 file-in-package destination
  local tgz="$tmp/$1-$2.tgz"
  curl -fsSL "https://registry.npmjs.org/$1/-/$1-$2.tgz" -o "$tgz"
  echo "$3  $tgz" | sha256sum -c --quiet
  tar xzf "$tgz" -C "$tmp" "package/$4"
  cp "$tmp/package/$4" "$5"
}
fetch chart.js 4.6.1 9345dacdf4bb4c5d40321f4b9aafab6fe676d37a534fc0bc2d17c4c4e29c4f00 \
  dist/chart.umd.min.js static/vendor/chart-4.6.1.umd.min.js
fetch axe-core 4.14.1 e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745 \
  axe.min.js tests/browser/vendor/axe-4.14.1.min.js
echo "vendored files match the pinned npm tarballs"
