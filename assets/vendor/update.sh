#!/usr/bin/env bash
# Refreshes the third-party browser files Switchyard serves from its binary (GraphiQL at `/`,
# graphql-ws for the dashboard at `/dashboard`). Nothing is built: each file is the package's
# own minified UMD build, taken from the npm registry at the pinned version, checked against
# the SHA-512 pinned below, with its source-map comment removed (the maps are not shipped).
# Run from anywhere: `bash assets/vendor/update.sh`; then commit the changed files.
set -euo pipefail
cd "$(dirname "$0")"

# The tarballs' SHA-512 (npm's `dist.integrity`), pinned here when the versions were chosen:
# a registry that answered something else is refused, not trusted.
declare -A INTEGRITY=(
  [react@18.3.1]="sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
  [react-dom@18.3.1]="sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
  [graphiql@3.9.0]="sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
  [graphql-ws@5.16.0]="sha512-Ju2RCU2dQMgSKtArPbEtsK5gNLnsQyTNIo/T7cZNp96niC1x0KdJNZV0TIoilceBPQwfb5itrGl8pkFeOUMl4A=="
)

# package@version  file-in-package  name-here
FILES=(
  "react@18.3.1 umd/react.production.min.js react.production.min.js"
  "react-dom@18.3.1 umd/react-dom.production.min.js react-dom.production.min.js"
  "graphiql@3.9.0 graphiql.min.js graphiql.min.js"
  "graphiql@3.9.0 graphiql.min.css graphiql.min.css"
  "graphql-ws@5.16.0 umd/graphql-ws.min.js graphql-ws.min.js"
)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
licenses="$work/LICENSES.txt"
: > "$licenses"
for entry in "${FILES[@]}"; do
  read -r package file name <<<"$entry"
  dir="$work/${package//[@\/]/_}"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    tarball="$(cd "$work" && npm pack "$package" --silent)"
    expected="${INTEGRITY[$package]:?no pinned integrity for $package: add it above}"
    actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
    [ "$expected" = "$actual" ] || { echo "$package: integrity $actual, pinned $expected" >&2; exit 1; }
    tar xzf "$work/$tarball" -C "$dir"
    { echo "== $package =="; cat "$dir/package/LICENSE"* 2>/dev/null; echo; } >> "$licenses"
  fi
  sed -e 's|//# sourceMappingURL=[^ ]*$||' -e 's|/\*# sourceMappingURL=[^ ]* \*/||' "$dir/package/$file" > "$work/$name"
done
# Only once every package passed its check are the files here replaced.
for entry in "${FILES[@]}"; do
  read -r package file name <<<"$entry"
  mv "$work/$name" "$name"
  echo "$package $file -> $name ($(wc -c < "$name") bytes)"
done
mv "$licenses" LICENSES.txt
