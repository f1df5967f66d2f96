"""Turn `chalice package`'s SAM template into plain CloudFormation, offline.

``CodeUri`` is first rewritten to an ``s3://`` URI, as `aws cloudformation package`
does after uploading deployment.zip; the SAM transform then runs locally
(aws-sam-translator, the library CloudFormation's transform runs), so the result
is what CloudFormation would create.

    python -m deploy.translate build/dev/sam.json build/dev/cfn.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_BUCKET = "deploy-rehearsal"
DEFAULT_KEY = "deployment.zip"


class NoManagedPolicies:
    """The template names no managed policies (every role is explicit), so nothing is
    looked up; asking would need IAM credentials."""

    def load(self) -> dict[str, str]:
        return {}


def with_s3_code(template: dict[str, Any], bucket: str, key: str) -> dict[str, Any]:
    rewritten = copy.deepcopy(template)
    for resource in rewritten["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = f"s3://{bucket}/{key}"
    return rewritten


def translate(template: dict[str, Any], bucket: str = DEFAULT_BUCKET, key: str = DEFAULT_KEY) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    # The transform asks boto3 for a region (only to pick the partition, "aws").
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(with_s3_code(template, bucket, key), {}, NoManagedPolicies())  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sam_template", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--bucket", default=DEFAULT_BUCKET)
    parser.add_argument("--key", default=DEFAULT_KEY)
    args = parser.parse_args(argv)
    template = json.loads(args.sam_template.read_text())
    args.output.write_text(json.dumps(translate(template, args.bucket, args.key), indent=2) + "\n")


if __name__ == "__main__":
    main()
