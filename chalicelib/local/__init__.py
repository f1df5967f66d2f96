"""Embedded AWS for `chalice local` and the tests: moto in process, the saga's Lambda
functions dispatched to their in-process handlers, tables and demo data.

Never imported inside a real Lambda (moto is not in requirements.txt).
"""
