"""What `chalice deploy` answers here: a refusal that points at the supported path.

`chalice deploy` would create the Lambda functions and the REST API, but none of what
deploy/resources.py merges into the packaged template (the tables, the state machines,
the user pool, one role per function): it would use the placeholder role of
.chalice/config.json and leave a stack that cannot take a booking. app.py calls this
when a chalice command imports it (AWS_CHALICE_CLI_MODE), never inside a Lambda.
"""

from __future__ import annotations

from collections.abc import Sequence

REFUSED_COMMANDS = {"deploy"}
MESSAGE = """\
`chalice deploy` is not how this app deploys: it would create the functions without their
tables, state machines, user pool and roles (they come from the merge template of
deploy/resources.py). Deploy the packaged template instead (docs/deploy.md):

  make package STAGE=dev
  sam deploy --config-env dev        # or: aws cloudformation package + deploy, docs/deploy.md

`chalice local` (make run) and `chalice package` (make package) work as usual."""


def command_of(argv: Sequence[str]) -> str | None:
    """The chalice subcommand in ``argv`` (the first word that is not an option or its value)."""
    words = list(argv[1:])
    while words:
        word = words.pop(0)
        if word in ("--project-dir", "--profile"):  # chalice's global options that take a value
            if words:
                words.pop(0)
            continue
        if not word.startswith("-"):
            return word
    return None


def refuse_unsupported(argv: Sequence[str]) -> None:
    """Exit with the message when ``argv`` is a chalice command this app does not support."""
    if command_of(argv) in REFUSED_COMMANDS:
        raise SystemExit(MESSAGE)
