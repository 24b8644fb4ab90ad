"""Prints the CloudFormation that SAM's translator makes of a SAM template, offline.

The translator looks managed policies up in IAM; the few this template's policy templates need are
given here instead, so no AWS call is made.
"""

import json
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PARTITION_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}


class StaticPolicies(ManagedPolicyLoader):
    def __init__(self):
        pass

    def load(self):
        return PARTITION_POLICIES


def main(path):
    with open(path) as f:
        template = yaml_parse(f.read())
    # As `sam package` would: the local package becomes an S3 object.
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and not str(properties.get("CodeUri", "")).startswith("s3://"):
            properties["CodeUri"] = "s3://facegate-artifacts/facegate-x86_64.zip"
    try:
        output = transform(template, {}, StaticPolicies())
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(cause.message, file=sys.stderr)
        sys.exit(1)
    json.dump(output, sys.stdout, indent=2, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
