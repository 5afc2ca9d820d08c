#!/bin/sh
# Regenerate the policies ConfigMap at the end of sidecar.yaml and gateway.yaml from policies/.
# Run from the repository root after changing policies/:  sh deploy/kubernetes/update-policies.sh
# Everything above each file's marker line is kept; everything below it is replaced.
set -eu
marker='# ---- generated below: do not edit by hand'
for entry in sidecar.yaml:legacy-backend-redaction-policies gateway.yaml:redaction-gateway-policies; do
  file="deploy/kubernetes/${entry%%:*}"
  name="${entry#*:}"
  grep -qxF "$marker" "$file" || { echo "$file: marker line missing" >&2; exit 1; }
  tmp=$(mktemp)
  awk -v m="$marker" '{ print } $0 == m { exit }' "$file" > "$tmp"
  kubectl create configmap "$name" --from-file=policies/ --dry-run=client -o yaml >> "$tmp"
  cat "$tmp" > "$file"
  rm -f "$tmp"
  echo "updated $file"
done
