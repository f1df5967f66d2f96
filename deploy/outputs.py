"""The deployed stack's outputs as the environment variables chalicelib reads, e.g.
to seed the deployed tables (and, where the stage has them, the demo customers in its
user pool):

    eval "$(python -m deploy.outputs --stack booking-saga-dev)"
    python -m ops.seed --demo
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from chalicelib.schema import TABLES
from deploy.resources import EXPORTED_OUTPUTS, STATE_MACHINES


def environment(outputs: dict[str, str]) -> dict[str, str]:
    """``{"FLIGHTS_TABLE": <name>, ..., "BOOKING_STATE_MACHINE_ARN": <arn>, ...,
    "USER_POOL_ID": <id>, "USER_POOL_CLIENT_ID": <id>, "DEMO_USERS": "true"|"false"}`` from
    ``{OutputKey: OutputValue}`` (the Outputs deploy/resources.py adds)."""
    variables = {table.env_var: outputs[table.logical_id] for table in TABLES}
    variables.update({env_var: outputs[f"{logical_id}Arn"] for logical_id, env_var in STATE_MACHINES.values()})
    variables.update({env_var: outputs[output] for output, (env_var, _) in EXPORTED_OUTPUTS.items()})
    return variables


def stack_outputs(stack_name: str, cloudformation: Any = None) -> dict[str, str]:
    if cloudformation is None:
        import boto3

        cloudformation = boto3.client("cloudformation")
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="the CloudFormation stack name")
    args = parser.parse_args(argv)
    outputs = stack_outputs(args.stack)
    for name, value in environment(outputs).items():
        print(f"export {name}={shlex.quote(value)}")
    if "EndpointURL" in outputs:
        print(f"export API_URL={shlex.quote(outputs['EndpointURL'])}")


if __name__ == "__main__":
    main()
