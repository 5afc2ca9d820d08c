#!/bin/sh
# Policy case files are named by the changelog version they encode, spelled as a version: 409_x.yaml
# becomes v4.0.9_x.yaml and neg_409_x.yaml neg_v4.0.9_x.yaml, so `409_` cannot be read as an HTTP
# status. Idempotent: run it again after merging branches that add NNN_*.yaml cases. Other names
# (spec21_*, pi_*, activities_*) are left as they are; the runner accepts any name.
set -eu
cd "$(dirname "$0")/../policy_cases"
for old in *.yaml; do
    new=$(printf '%s\n' "$old" | sed -E 's/^(neg_)?([0-9])([0-9])([0-9])_/\1v\2.\3.\4_/')
    [ "$new" = "$old" ] || git mv "$old" "$new"
done
