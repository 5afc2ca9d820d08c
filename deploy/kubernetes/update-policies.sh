#!/bin/sh
# Regenerate the policies ConfigMap at the end of sidecar.yaml and gateway.yaml from policies/.
# Run from the repository root after changing policies/:  sh deploy/kubernetes/update-policies.sh
# Everything above each file's marker line is kept; everything below it is replaced. Then each file's
# `checksum/config` pod annotation is set to the sha256 of its ConfigMaps (run it after editing the
# settings too): `kubectl apply` of a changed file then rolls the pods. Needs kubectl and a Python with
# PyYAML ($PYTHON, default .venv/bin/python).
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
# checksum/config = sha256 of JSON [[name, data], ...] over the file's ConfigMaps, sorted by name, keys
# sorted, no spaces (tests/test_deploy.py computes the same).
"${PYTHON:-.venv/bin/python}" - deploy/kubernetes/sidecar.yaml deploy/kubernetes/gateway.yaml <<'EOF'
import hashlib, json, re, sys
import yaml
for path in sys.argv[1:]:
    text = open(path).read()
    maps = sorted([d["metadata"]["name"], d.get("data", {})] for d in yaml.safe_load_all(text)
                  if isinstance(d, dict) and d.get("kind") == "ConfigMap")
    digest = hashlib.sha256(json.dumps(maps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    text, n = re.subn(r'(checksum/config: )"[^"]*"', r'\g<1>"%s"' % digest, text)
    if n != 1:
        sys.exit(f"{path}: expected one checksum/config annotation, found {n}")
    open(path, "w").write(text)
    print(f"{path}: checksum/config {digest[:12]}")
EOF
