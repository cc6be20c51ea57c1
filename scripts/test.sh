#!/usr/bin/env bash
# Sets up and builds, then runs every test: lit (dialect, passes, importer,
# tools, end-to-end numerics) and the gtest unit tests, through one lit run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

start=$(date +%s)
status=0
/usr/bin/python3 /usr/lib/llvm-19/build/utils/lit/lit.py -sv \
  "$LONGCTX_BUILD/test" "$LONGCTX_BUILD/test/unit" | tee "$LONGCTX_BUILD/test-results.txt" || status=$?
elapsed=$(( $(date +%s) - start ))

summary=$(grep -E '^\s+(Passed|Failed|Skipped|Unsupported|Unresolved|Expectedly Failed|Timed Out)' \
  "$LONGCTX_BUILD/test-results.txt" | tr -s ' ' | tr '\n' ',' | sed 's/,$//; s/^ //')
if [[ $status -eq 0 ]]; then
  echo "longctx tests: PASSED ($summary; ${elapsed}s)"
else
  echo "longctx tests: FAILED ($summary; ${elapsed}s)"
fi
exit $status
