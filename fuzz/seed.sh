#!/usr/bin/env bash
# Seeds the fuzz corpus from the fixtures.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/intake
find ../fixtures -name '*.eml' -exec cp {} corpus/intake/ \;
echo "seeded $(ls corpus/intake | wc -l) inputs"
