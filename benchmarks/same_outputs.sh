#!/usr/bin/env bash
# Behaviour-unchanged check for refactors (issue 23): run the same three commands before and after
# a change and compare their CSVs byte for byte.
#   benchmarks/same_outputs.sh run before     # on the old code  -> /tmp/rd-before-*
#   benchmarks/same_outputs.sh run after      # on the new code  -> /tmp/rd-after-*
#   benchmarks/same_outputs.sh compare        # RESULT line; exit 1 when any CSV differs
# Single-threaded (--threads 1, OMP_NUM_THREADS=1) so the floating-point order is the same.
# Run "before" and "after" from the same folder: they must share runs/cache (the supernets).
# A supernet trained from scratch is not bit-reproducible across processes (it is built, with
# torch's per-process random seed, before train_supernet seeds torch), so only the first run
# trains and the second reuses the cached checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1
PREFIX=${RD_PREFIX:-/tmp/rd}
case "${1:-}" in
  run)
    tag=${2:?before or after}
    rm -rf "$PREFIX-$tag-qs" "$PREFIX-$tag-cd" "$PREFIX-$tag-cost.csv"
    jaqmoo run problems/quickstart.yaml --out "$PREFIX-$tag-qs" --threads 1 --quiet
    jaqmoo run problems/compare-digits.yaml --out "$PREFIX-$tag-cd" --threads 1 --quiet
    jaqmoo cost --model mobilenet_v2 --accelerator eyeriss --csv "$PREFIX-$tag-cost.csv" --quiet
    ;;
  compare)
    same=0; differ=0
    for f in qs/front.csv qs/evaluations.csv cd/front.csv cd/evaluations.csv cost.csv; do
      a="$PREFIX-before-$f"; b="$PREFIX-after-$f"
      if cmp -s "$a" "$b"; then echo "same    $f"; same=$((same+1));
      else echo "DIFFERS $f"; differ=$((differ+1)); fi
    done
    echo "RESULT same_csvs=$same differing_csvs=$differ"
    [ "$differ" -eq 0 ]
    ;;
  *) echo "usage: $0 run before|after | compare" >&2; exit 2 ;;
esac
