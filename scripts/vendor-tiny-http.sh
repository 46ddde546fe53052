#!/usr/bin/env bash
# vendor/tiny_http is tiny_http as published on crates.io plus the patches
# in vendor/tiny_http-patches, applied in order (see the README there).
#
# Usage: scripts/vendor-tiny-http.sh apply|check
#   apply  rebuild vendor/tiny_http from a fresh copy of the published crate
#          and the patches
#   check  build the same into a temporary directory and fail, showing the
#          difference, when it is not what vendor/tiny_http holds
#
# The published crate is fetched by cargo (into its registry cache, from
# crates.io unless already there). Patches are applied with `git apply`, so
# only cargo and git are needed. TINY_HTTP_VERSION overrides the version
# (for an upgrade).
set -euo pipefail

VERSION="${TINY_HTTP_VERSION:-0.12.0}"
# What the published crate ships that the vendored copy leaves out.
LEAVE_OUT=(tests benches examples .github .cargo-ok .cargo_vcs_info.json
    .gitattributes .gitignore Cargo.lock Cargo.toml.orig)

cd "$(dirname "$0")/.."
ROOT="$PWD"
VENDORED="$ROOT/vendor/tiny_http"
PATCHES="$ROOT/vendor/tiny_http-patches"

usage() {
    echo "usage: $0 apply|check" >&2
    exit 2
}

# The directory cargo unpacked tiny_http $VERSION into.
pristine_dir() {
    local scratch="$1/fetch"
    mkdir -p "$scratch/src"
    cat >"$scratch/Cargo.toml" <<EOF
[package]
name = "vendor-tiny-http-fetch"
version = "0.0.0"
edition = "2018"

[dependencies]
tiny_http = "=$VERSION"

[workspace]
EOF
    : >"$scratch/src/lib.rs"
    local metadata
    metadata=$(cargo metadata --quiet --format-version 1 --manifest-path "$scratch/Cargo.toml" 2>/dev/null) ||
        metadata=$(cargo metadata --quiet --offline --format-version 1 --manifest-path "$scratch/Cargo.toml") || {
        echo "cargo could not fetch tiny_http $VERSION" >&2
        return 1
    }
    # The manifest path of the tiny_http package, without a JSON parser.
    local manifest
    manifest=$(printf '%s' "$metadata" | tr ',' '\n' |
        grep -o "\"manifest_path\":\"[^\"]*/tiny_http-$VERSION/Cargo.toml\"" | head -n 1 |
        sed -e 's/^"manifest_path":"//' -e 's/"$//')
    if [ -z "$manifest" ] || [ ! -f "$manifest" ]; then
        echo "tiny_http $VERSION not found in cargo's metadata" >&2
        return 1
    fi
    dirname "$manifest"
}

# Builds the vendored tree into $2 (which must not exist); $1 is scratch.
build() {
    local scratch="$1" out="$2" crate patch
    crate=$(pristine_dir "$scratch")
    mkdir -p "$out"
    cp -R "$crate/." "$out/"
    for entry in "${LEAVE_OUT[@]}"; do
        rm -rf "${out:?}/$entry"
    done
    # Keep git from taking a repository around $out for the one to patch.
    export GIT_CEILING_DIRECTORIES
    GIT_CEILING_DIRECTORIES="$(dirname "$out")"
    for patch in "$PATCHES"/[0-9][0-9][0-9][0-9]-*.patch; do
        [ -e "$patch" ] || continue
        if ! (cd "$out" && git apply --whitespace=nowarn "$patch"); then
            echo "$(basename "$patch") does not apply to tiny_http $VERSION" >&2
            echo "(the tree with the patches before it: $out)" >&2
            KEEP_SCRATCH=1
            return 1
        fi
    done
}

[ $# -eq 1 ] || usage
KEEP_SCRATCH=0
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/vendor-tiny-http.XXXXXX")
cleanup() {
    if [ "$KEEP_SCRATCH" = 0 ]; then
        rm -rf "$SCRATCH"
    fi
}
trap cleanup EXIT

case "$1" in
apply)
    build "$SCRATCH" "$SCRATCH/tiny_http"
    rm -rf "$VENDORED"
    cp -R "$SCRATCH/tiny_http" "$VENDORED"
    echo "vendor/tiny_http rebuilt: tiny_http $VERSION and $(find "$PATCHES" -name '[0-9][0-9][0-9][0-9]-*.patch' | wc -l) patches"
    ;;
check)
    build "$SCRATCH" "$SCRATCH/tiny_http"
    # What building the crate on its own leaves (a target directory, a
    # Cargo.lock, which cargo ignores in a dependency) is not compared.
    if ! diff -ru --exclude=target --exclude=Cargo.lock "$SCRATCH/tiny_http" "$VENDORED"; then
        echo "vendor/tiny_http is not tiny_http $VERSION with vendor/tiny_http-patches applied" >&2
        echo "(scripts/vendor-tiny-http.sh apply rebuilds it; changes belong in a patch)" >&2
        exit 1
    fi
    echo "vendor/tiny_http is tiny_http $VERSION with the patches applied"
    ;;
*)
    usage
    ;;
esac
