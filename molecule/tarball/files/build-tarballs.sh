#!/bin/sh
# Test fixture: build release tarballs in upstream's layout from the binaries of Debian's
# packages, for a mirror that serves DIR. For each "NAME PACKAGE BINARY..." read on stdin:
#   DIR/NAME-VERSION.linux-amd64.tar.gz holding NAME-VERSION.linux-amd64/BINARY...
# (VERSION is the package's upstream version), then DIR/sha256sums.txt as upstream publishes
# it, and DIR/releases.json: {"NAME": {"version": ..., "sha256": ...}}.
# Usage: build-tarballs.sh DIR < list
set -eu
dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dir"
cd "$work"
json="{"
while read -r name package binaries; do
  [ -n "$name" ] || continue
  apt-get download -q "$package" >/dev/null
  deb=$(ls ./"${package}"_*.deb)
  version=$(dpkg-deb -f "$deb" Version | sed -e 's/^[0-9]*://' -e 's/[+~-].*$//')
  stem="$name-$version.linux-amd64"
  dpkg-deb -x "$deb" "extract-$name"
  mkdir -p "$stem"
  for binary in $binaries; do
    source_name=${binary%%=*}
    target_name=${binary#*=}
    cp "extract-$name/usr/bin/$source_name" "$stem/$target_name"
  done
  tar --owner=0 --group=0 --sort=name --mtime=@0 -czf "$dir/$stem.tar.gz" "$stem"
  sum=$(sha256sum "$dir/$stem.tar.gz" | cut -d' ' -f1)
  json="$json\"$name\": {\"version\": \"$version\", \"sha256\": \"$sum\"},"
done
(cd "$dir" && sha256sum -- *.tar.gz > sha256sums.txt)
printf '%s}\n' "${json%,}" > "$dir/releases.json"
