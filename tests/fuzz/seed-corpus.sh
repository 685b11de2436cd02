#!/usr/bin/env bash
# Seeds the fuzz corpora from the OASIS test cases: each file as XML, as JSON and (where it
# has no placeholders outside text fields) as TTLV. Usage: seed-corpus.sh [KSG_BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ksg=${1:-$here/../../target/debug/ksg}
cases=${KSG_TESTCASES:-$here/../../../shared/kmip-testcases}
mkdir -p "$here/corpus/xml_decode" "$here/corpus/json_decode" "$here/corpus/ttlv_decode"
n=0
while IFS= read -r -d '' f; do
  base=$(basename "$f" .xml)
  cp "$f" "$here/corpus/xml_decode/$base.xml"
  "$ksg" codec --from xml --to json --now 1700000000 "$f" > "$here/corpus/json_decode/$base.json" 2>/dev/null || true
  "$ksg" codec --from xml --to ttlv --now 1700000000 "$f" > "$here/corpus/ttlv_decode/$base.ttlv" 2>/dev/null \
    || rm -f "$here/corpus/ttlv_decode/$base.ttlv"
  n=$((n + 1))
done < <(find "$cases"/v1.* "$cases"/v2.* -name '*.xml' -print0)
echo "seeded from $n test-case files"
