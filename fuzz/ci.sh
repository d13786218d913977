#!/usr/bin/env bash
# The fuzz stage of CI (issue #17, docs/fuzzing.md): builds every fuzz target and runs
# each for a bounded time on one core, from the seed corpus in fuzz/corpus/<target>/.
# Fails on any crash, panic, hang (-timeout), out-of-memory (-rss_limit_mb) or single
# allocation over the limit (-malloc_limit_mb).
#
# Stable toolchain only: cargo-fuzz needs -Zsanitizer, which RUSTC_BOOTSTRAP=1 allows on
# stable (rustup cannot install nightly on the CI machines).
#
#   fuzz/ci.sh                      every target, FUZZ_SECONDS (default 40) each
#   FUZZ_SECONDS=3600 fuzz/ci.sh    a soak: one hour per target
#   fuzz/ci.sh frame session        only these targets
#   fuzz/ci.sh --setup              only install cargo-fuzz (.ci/prefetch.sh, in the background)
#   fuzz/ci.sh --build-only         only build the targets (.ci/run, niced, during the tests)
#
# The corpus grown during the run goes to a scratch directory (FUZZ_WORK, default a
# temporary one), never into the repository: new seeds are added by hand (docs/fuzzing.md).
# A crash leaves its input in fuzz/artifacts/<target>/ and the script prints how to
# reproduce it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export RUSTC_BOOTSTRAP=1

seconds="${FUZZ_SECONDS:-40}"
all=(frame session archive restore config peer_msg)
build_only=0
if [ "${1:-}" = --build-only ]; then
    build_only=1
    shift
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all[@]}")
fi

# cargo-fuzz: installed once, then reused (cache ~/.cargo/bin and fuzz/target in CI).
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
echo "fuzz: $(cargo fuzz --version), $(rustc --version)"
if [ "${1:-}" = --setup ]; then exit 0; fi

# Per-target limits. -max_len: the longest input worth trying (a session stream is long,
# a frame is at most 4100 bytes, a config a few KiB). -malloc_limit_mb: the largest
# single allocation a target may make; the archive reader may legitimately allocate up
# to MAX_MANIFEST_RAW (256 MiB) for a manifest the header announces, nothing larger.
# -timeout: seconds one input may take (every target finishes an input in milliseconds).
# One libFuzzer process without -jobs/-workers is one thread on one core (-jobs=1 would
# fork a child and send its output to fuzz-0.log instead of the log read below).
# peer_msg: a DAY message of 200 intervals is about 8 KB, a DIGEST of many days longer;
# one DATA message may be 256 KiB, and MAX_MESSAGE_LEN (1 MiB) bounds any allocation.
declare -A max_len=([frame]=8192 [session]=65536 [archive]=65536 [restore]=65536 [config]=4096 [peer_msg]=65536)
declare -A malloc_mb=([frame]=16 [session]=256 [archive]=300 [restore]=300 [config]=64 [peer_msg]=16)

work="${FUZZ_WORK:-$(mktemp -d)}"
echo "fuzz: building ${targets[*]}"
for t in "${targets[@]}"; do
    cargo fuzz build -O "$t"
done
if [ "$build_only" = 1 ]; then
    echo "fuzz: built ${targets[*]}"
    exit 0
fi

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "artifacts/$t"
    echo "fuzz: running $t for ${seconds}s"
    log="$work/$t.log"
    # A dictionary of the target's keywords and edge values, where one helps.
    dict=()
    if [ -f "$t.dict" ]; then
        dict=("-dict=$t.dict")
    fi
    if cargo fuzz run -O "$t" "$work/$t" "corpus/$t" -- "${dict[@]}" \
        -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb="${malloc_mb[$t]}" \
        -max_len="${max_len[$t]}" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
        # The last status line: inputs executed, coverage (cov) and features (ft).
        grep -E '^#[0-9]+' "$log" | tail -1 || true
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
    else
        echo "fuzz: $t FAILED; the end of its log:"
        tail -40 "$log"
        echo "fuzz: reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run -O $t fuzz/artifacts/$t/<file>"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: all targets clean (${targets[*]})"
