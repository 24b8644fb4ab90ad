#!/usr/bin/env bash
# Validates the SAM template offline: `sam validate --lint`, then cfn-lint on the template after the SAM
# transform (cfn-lint alone does not check property values inside AWS::Serverless::* resources).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python3 -m pip install -q --disable-pip-version-check aws-sam-cli cfn-lint 2>&1 | grep -v "running pip as the 'root' user" || true
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
sam validate --lint --template "$here/template.yaml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 "$here/transform.py" "$here/template.yaml" > "$work/transformed.json"
cfn-lint --non-zero-exit-code error "$work/transformed.json"
echo "deploy/template.yaml: sam validate --lint and cfn-lint on the transformed template passed"
