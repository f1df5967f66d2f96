"""chalicelib.links: the Location the API hands out, checked against RFC 3986's resolution
(urllib.parse.urljoin) under several path prefixes."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest

from chalicelib.links import location, relative_reference

ORIGIN = "https://example.test"
PREFIXES = ("", "/api", "/a/b/c")
BOOKING = "/bookings/3f0c2a8e-1b2c-4d5e-8f90-123456789abc"


@pytest.mark.parametrize(("base", "target"), [
    pytest.param("/bookings", BOOKING, id="created"),
    pytest.param("/bookings/", BOOKING, id="created-trailing-slash"),
    pytest.param(f"{BOOKING}/cancel", BOOKING, id="cancel"),
    pytest.param(f"{BOOKING}/cancel/", BOOKING, id="cancel-trailing-slash"),
    pytest.param("/", "/", id="root-to-root"),
    pytest.param("/flights", "/", id="up-to-root"),
    pytest.param("/api", "/api/", id="add-a-trailing-slash"),
    pytest.param("/x/y/z", "/p/q", id="no-common-segment"),
    pytest.param("/x", "/a:b", id="colon-in-first-segment"),
])
def test_the_reference_resolves_to_the_target_under_every_prefix(base: str, target: str) -> None:
    """GIVEN a request path and a target path of the app
    THEN the relative reference, resolved against the request's URL under any prefix,
    is the target under the same prefix; it never starts with a slash or a scheme."""
    reference = relative_reference(base, target)
    assert not reference.startswith("/")
    for prefix in PREFIXES:
        assert urljoin(f"{ORIGIN}{prefix}{base}", reference) == f"{ORIGIN}{prefix}{target}", (prefix, reference)


@pytest.mark.parametrize(("sent", "route", "expected"), [
    pytest.param("/bookings", "/bookings", "bookings/X", id="chalice-local"),
    pytest.param("/api/bookings", "/bookings", "bookings/X", id="api-gateway-stage"),
    pytest.param("/api/bookings/", "/bookings", "X", id="api-gateway-trailing-slash"),
    pytest.param("/api/bookings/X/cancel", "/bookings/X/cancel", "../X", id="cancel"),
    pytest.param(None, "/bookings", "bookings/X", id="no-request-context-path"),
])
def test_a_location_follows_the_path_the_request_was_sent_to(sent: str | None, route: str, expected: str) -> None:
    """GIVEN the path as the request reached the app (requestContext.path), its route
    THEN the Location of /bookings/X is relative to it, one segment deeper after a slash."""
    assert location(sent, route, "/bookings/X") == expected
