"""The state machine definitions with every ``${XArn}`` replaced by a well-formed
dummy Lambda ARN, for linters that insist on a URI in ``Resource`` (statelint).

    python -m deploy.definitions build/asl   # writes build/asl/booking.json, ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy import asl

DUMMY_ARN = "arn:aws:lambda:us-east-1:123456789012:function:booking-saga-lint-{name}"


def filled(name: str) -> str:
    text = asl.text(name)
    values = {placeholder: DUMMY_ARN.format(name=placeholder.removesuffix("Arn"))
              for placeholder in asl.placeholders(text)}
    return asl.substitute(text, values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    for name in asl.DEFINITION_FILES:
        path = args.directory / f"{name}.json"
        path.write_text(filled(name))
        print(path)


if __name__ == "__main__":
    main()
