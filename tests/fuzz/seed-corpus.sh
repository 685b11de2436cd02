#!/usr/bin/env bash
# Seeds the fuzz corpora from the OASIS test cases: each file as XML, as JSON and (where it
# has no placeholders outside text fields) as TTLV. Usage: seed-corpus.sh [KSG_BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ksg=${1:-$here/../../target/debug/ksg}
cases=${KSG_TESTCASES:-$here/../../../shared/kmip-testcases}
for t in xml_decode json_decode ttlv_decode request_ttlv request_xml http_head ini_parse \
         keystore_record pkcs12_parse; do
  mkdir -p "$here/corpus/$t"
done
n=0
while IFS= read -r -d '' f; do
  base=$(basename "$f" .xml)
  cp "$f" "$here/corpus/xml_decode/$base.xml"
  "$ksg" codec --from xml --to json --now 1700000000 "$f" > "$here/corpus/json_decode/$base.json" 2>/dev/null || true
  "$ksg" codec --from xml --to ttlv --now 1700000000 "$f" > "$here/corpus/ttlv_decode/$base.ttlv" 2>/dev/null \
    || rm -f "$here/corpus/ttlv_decode/$base.ttlv"
  n=$((n + 1))
done < <(find "$cases"/v1.* "$cases"/v2.* -name '*.xml' -print0)
# Whole-request targets take the same messages; record bodies are TTLV after a kind byte.
cp "$here"/corpus/ttlv_decode/* "$here/corpus/request_ttlv/"
cp "$here"/corpus/xml_decode/* "$here/corpus/request_xml/"
for f in "$here"/corpus/ttlv_decode/*; do
  { printf '\002'; cat "$f"; } > "$here/corpus/keystore_record/$(basename "$f")"
done
cp "$here"/../../confs/*.conf "$here/corpus/ini_parse/"
printf 'POST /kmip HTTP/1.1\r\nHost: a\r\nContent-Type: text/xml\r\nContent-Length: 10\r\n\r\n' \
  > "$here/corpus/http_head/post"
echo "seeded from $n test-case files"
