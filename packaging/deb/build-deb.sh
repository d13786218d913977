#!/bin/bash
# Builds the Debian package with cargo-deb.
#
#   packaging/deb/build-deb.sh [--no-build] [--deb-version VERSION] [--out DIR]
#
# 1. cargo build --release --bins (unless --no-build: reuse target/release);
# 2. generates the manual pages cms(1), cms-linksim(1) and cms-asterisk(1) from the binaries' --help
#    with help2man (so they cannot drift from the CLI), every subcommand's --help
#    included in cms(1), into target/packaging/man/;
# 3. cargo deb --no-build; prints the path of the .deb on the last line.
# Needs: cargo-deb, help2man, gzip.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=1
version=()
out=target/packaging
while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) build=0 ;;
    --deb-version) version=(--deb-version "$2"); shift ;;
    --out) out="$2"; shift ;;
    *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "${CARGO_TARGET_DIR:-}" ] && [ "$CARGO_TARGET_DIR" != target ] && [ "$CARGO_TARGET_DIR" != "$PWD/target" ]; then
    echo "build-deb.sh: CARGO_TARGET_DIR must be unset or ./target (the package's assets name target/)" >&2
    exit 2
fi
[ "$build" = 1 ] && cargo build --release --bins --locked

man=target/packaging/man
mkdir -p "$man" "$out"
bin=target/release

# cms(1): the top-level --help, plus a COMMANDS section with each subcommand's --help.
inc=$(mktemp)
trap 'rm -f "$inc"' EXIT
cat packaging/deb/cms.h2m >"$inc"
{
    echo "[COMMANDS]"
    "$bin/cms" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR>1 && $1 != "help" && NF {print $1}' |
        while read -r sub; do
            echo ".SS \"cms $sub\""
            echo ".nf"
            "$bin/cms" "$sub" --help | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
            echo ".fi"
        done
} >>"$inc"
help2man --no-info --section 1 --name "dual-server call-data collector" \
    --include "$inc" --output "$man/cms.1" "$bin/cms"
help2man --no-info --section 1 --name "simulated ACD phone switch for tests" \
    --include packaging/deb/cms-linksim.h2m --output "$man/cms-linksim.1" "$bin/cms-linksim"
help2man --no-info --section 1 --name "Asterisk queue log as an ACD link switch" \
    --include packaging/deb/cms-asterisk.h2m --output "$man/cms-asterisk.1" "$bin/cms-asterisk"
gzip -9nf "$man/cms.1" "$man/cms-linksim.1" "$man/cms-asterisk.1"

# --strip: release builds keep line tables (profile.release debug = 1); the package does not.
deb=$(cargo deb --no-build --strip "${version[@]}" --output "$out/" 2>"$out/cargo-deb.log") || {
    cat "$out/cargo-deb.log" >&2
    exit 1
}
echo "$deb" | tail -1
