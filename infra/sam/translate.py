"""Expands a template with the SAM translator, offline: prints the CloudFormation template
CloudFormation would deploy (the generated roles, event source mappings, permissions).

Its input is template.yaml as the AWS::LanguageExtensions transform leaves it (CloudFormation
runs that transform before SAM's): `cargo run -q -- template` prints it.

Usage: python translate.py extended.json > expanded.json
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicyLookup:
    """The translator names AWS managed policies by ARN itself; nothing to look up offline."""

    def load(self):
        return {}


def main(path):
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    # AWS::LanguageExtensions ran already (loops expanded); what else it resolves on AWS
    # (DeletionPolicy following a condition) is left as written.
    template["Transform"] = "AWS::Serverless-2016-10-31"
    # What `sam package` does: the code of each function is an upload in S3 by then.
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://packaged-code/{logical_id}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    expanded = transform(template, {}, NoManagedPolicyLookup())
    json.dump(expanded, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
