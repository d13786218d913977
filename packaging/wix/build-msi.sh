#!/bin/bash
# Builds the Windows installer cms-VERSION-x64.msi with wixl (msitools).
#
#   packaging/wix/build-msi.sh [--no-build] [--version X.Y.Z] [--out DIR]
#
# 1. cargo build --release --bins --target x86_64-pc-windows-gnu (unless --no-build),
#    with mingw-w64 as linker and C compiler (rusqlite bundles SQLite's C source);
# 2. stages cms.exe, cms-linksim.exe, the default configuration (packaging/cms.toml with
#    data_dir = "data", i.e. C:\ProgramData\cms\data, and its site_key_file = "site.key",
#    i.e. C:\ProgramData\cms\site.key, which the MSI creates; CRLF line ends),
#    docs/install.md and cms.wxs in target/packaging/msi-stage/;
# 3. wixl -a x64, then msibuild to set what wixl ignores: the Permanent and
#    NeverOverwrite component attributes (wixl 0.101 drops them), so that an uninstall
#    or a major upgrade keeps the admin's cms.toml and the data and log directories;
# 4. prints the path of the .msi on the last line.
# --version defaults to the crate version (an MSI version is numeric: X.Y.Z, X,Y <= 255).
# Needs: wixl and msibuild (msitools), gcc-mingw-w64-x86-64, rustup target
# x86_64-pc-windows-gnu. The bcryptprimitives stub in packaging/ci/ is NOT shipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=1
version=$(sed -n 's/^version = "\([0-9]*\.[0-9]*\.[0-9]*\).*"/\1/p' Cargo.toml | head -1)
out=target/packaging
while [ $# -gt 0 ]; do
    case "$1" in
    --no-build) build=0 ;;
    --version) version="$2"; shift ;;
    --out) out="$2"; shift ;;
    *) echo "build-msi.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || {
    echo "build-msi.sh: version '$version' is not X.Y.Z" >&2
    exit 2
}
triple=x86_64-pc-windows-gnu
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER:-x86_64-w64-mingw32-gcc}
export CC_x86_64_pc_windows_gnu=${CC_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-gcc}
export AR_x86_64_pc_windows_gnu=${AR_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-ar}
[ "$build" = 1 ] && cargo build --release --bins --locked --target "$triple"
bin="${CARGO_TARGET_DIR:-target}/$triple/release"

stage=target/packaging/msi-stage
rm -rf "$stage"
mkdir -p "$stage" "$out"
cp packaging/wix/cms.wxs "$stage/"
for exe in cms.exe cms-linksim.exe; do
    # Strip the line tables kept by profile.release (debug = 1); the MSI does not need them.
    x86_64-w64-mingw32-strip -o "$stage/$exe" "$bin/$exe"
done
grep -q '^data_dir = "/var/lib/cms"$' packaging/cms.toml || {
    echo "build-msi.sh: packaging/cms.toml no longer has the line data_dir = \"/var/lib/cms\"" >&2
    exit 1
}
# The MSI creates the key the default configuration names (cms.wxs, CreateSiteKey).
grep -q '^site_key_file = "site.key"$' packaging/cms.toml || {
    echo "build-msi.sh: packaging/cms.toml no longer has the line site_key_file = \"site.key\"" >&2
    exit 1
}
sed -e 's|^data_dir = "/var/lib/cms"$|data_dir = "data"|' \
    -e 's|^# /etc/cms/cms.toml: |# C:\\ProgramData\\cms\\cms.toml: |' \
    -e 's/$/\r/' packaging/cms.toml >"$stage/cms.toml"
sed 's/$/\r/' docs/install.md >"$stage/install.md"

msi="$out/cms-$version-x64.msi"
rm -f "$msi"
(cd "$stage" && wixl -a x64 -D Version="$version" -o cms.msi cms.wxs 2>wixl.log) || {
    cat "$stage/wixl.log" >&2
    exit 1
}
# 256 = 64-bit component; +16 Permanent; +128 NeverOverwrite.
msibuild "$stage/cms.msi" -q "UPDATE Component SET Attributes = 400 WHERE Component = 'DefaultConfig'"
msibuild "$stage/cms.msi" -q "UPDATE Component SET Attributes = 272 WHERE Component = 'DataDir'"
msibuild "$stage/cms.msi" -q "UPDATE Component SET Attributes = 272 WHERE Component = 'LogDir'"
components=$(msiinfo export "$stage/cms.msi" Component)
grep -q "^DefaultConfig.*	400	" <<<"$components" || {
    echo "build-msi.sh: could not mark the configuration component permanent" >&2
    exit 1
}
# 3090 = 18 (an installed .exe) + 1024 (deferred) + 2048 (not impersonated: SYSTEM).
msiinfo export "$stage/cms.msi" CustomAction | grep -q "^CreateSiteKey	3090	CmsExeFile	" || {
    echo "build-msi.sh: the MSI lacks the deferred CreateSiteKey action running cms.exe" >&2
    exit 1
}
mv "$stage/cms.msi" "$msi"
echo "$msi"
