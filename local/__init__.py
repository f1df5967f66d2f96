"""Embedded AWS for `chalice local` and the tests: moto in process, the saga's Lambda
functions dispatched to their in-process handlers, the stack's tables and state
machines (embedded.py), the moto patches that make that work (hooks.py), and
`chalice local` as a subprocess for the HTTP-level tests and benchmarks (server.py).

Outside chalicelib/ on purpose: Chalice packages chalicelib/ whole into the Lambda
zip, and none of this runs in Lambda (moto is not in requirements.txt). app.py
imports it only on the local stage.
"""
