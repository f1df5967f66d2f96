#!/usr/bin/env bash
# Offline deploy validation, no AWS account needed (make validate-deploy):
#   a. statemachine.json / cancellation.json through asl-validator and statelint
#   b. cfn-lint on build/<stage>/sam.json (chalice package + merge template)
#   c. the SAM transform run offline (aws-sam-translator), cfn-lint on the result
#   d. tests/deploy: wiring checks and the deploy rehearsal in moto's CloudFormation
# Expects `make package` to have built build/<stage>/ for each stage in $STAGES,
# and node_modules from `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
STAGES=${STAGES:-dev prod}
step() { printf '\n== %s\n' "$*"; }

step "a. state machine definitions (asl-validator, statelint)"
if [ ! -x node_modules/.bin/statelint ] || [ ! -x node_modules/.bin/asl-validator ]; then
  echo "node_modules is missing the linters: run npm ci" >&2
  exit 1
fi
"$BIN/python" -m deploy.definitions build/asl >/dev/null
for name in booking cancellation; do
  # statelint wants a URI in every Resource: the placeholders are filled with dummy ARNs.
  node_modules/.bin/asl-validator --json-path "build/asl/$name.json"
  node_modules/.bin/statelint "build/asl/$name.json"
  echo "statelint: build/asl/$name.json is valid"
done

for stage in $STAGES; do
  sam="build/$stage/sam.json"
  if [ ! -f "$sam" ]; then
    echo "$sam is missing: run make package STAGE=$stage" >&2
    exit 1
  fi
  step "b. cfn-lint $sam"
  "$BIN/cfn-lint" "$sam"
  step "c. SAM transform offline, cfn-lint build/$stage/cfn.json"
  "$BIN/python" -m deploy.translate "$sam" "build/$stage/cfn.json"
  "$BIN/cfn-lint" "build/$stage/cfn.json"
done

# `make test` runs tests/deploy within its own pytest run (DEPLOY_TESTS=0 here).
if [ "${DEPLOY_TESTS:-1}" = 1 ]; then
  step "d. tests/deploy (wiring, deploy rehearsal in moto)"
  REQUIRE_DEPLOY_REHEARSAL=1 "$BIN/pytest" -q tests/deploy
fi
