#!/bin/sh
# Print the SKIP lines the tests logged into DIR (tests/common::skip and
# the tests/go scripts write one line per skip there; cargo's capture hides
# them otherwise) and their count. `make test` runs this at its end, pass
# or fail.
# Usage: scripts/report-skips.sh DIR
set -eu
dir=${1:?usage: scripts/report-skips.sh DIR}
n=0
if [ -d "$dir" ]; then
    n=$(cat "$dir"/*.txt 2>/dev/null | wc -l)
fi
if [ "$n" -eq 0 ]; then
    echo "skipped: none"
    exit 0
fi
echo "skipped ($n):"
sort "$dir"/*.txt | sed 's/^/  SKIP /'
if [ "$n" -eq 1 ]; then
    echo "$n test or part of a test skipped (reason above)"
else
    echo "$n tests or parts of tests skipped (reasons above)"
fi
