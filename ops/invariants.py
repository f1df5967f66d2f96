"""``python -m ops.invariants``: the invariant checker (chalicelib.invariants) against
the tables the environment names, the report as JSON on stdout; exit status 1 when
there is a violation, so a script or a CI job can act on it.

The check itself stays in chalicelib: the deployed ``operator`` Lambda and the local
``GET /admin/invariants`` route run it too.
"""

from __future__ import annotations

import json
import sys

from chalicelib import invariants


def main() -> int:
    result = invariants.report()
    json.dump(result, sys.stdout, indent=2)
    print()
    return 1 if result["count"] else 0


if __name__ == "__main__":
    sys.exit(main())
