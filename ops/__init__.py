"""Command-line tools an operator runs against a stack's tables, the embedded one or
a deployed one (with credentials and the names from ``python -m deploy.outputs``):
``python -m ops.seed`` loads flights and loyalty accounts, ``python -m ops.invariants``
reports every violation of what the saga promises.

Outside chalicelib/ because no Lambda runs them; the deployed ``operator`` Lambda
calls chalicelib.invariants directly.
"""
