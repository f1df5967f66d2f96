"""URLs the API hands out (``Location``), right under whatever path the app is served at.

API Gateway serves the app under its stage (``https://…/api/bookings``), a custom domain
under its base path, a reverse proxy under its mount point; the app itself sees only its
own routes (``/bookings``). A root-relative ``/bookings/<id>`` would leave the prefix, so a
``Location`` is a *relative reference*, which RFC 9110 (section 10.2.2) lets the field
hold and resolves against the request's target URI: ``bookings/<id>`` answers
``POST …/api/bookings`` and means ``…/api/bookings/<id>``, whatever ``…/api`` is.
"""

from __future__ import annotations


def relative_reference(base: str, target: str) -> str:
    """The relative reference that, resolved against the absolute path ``base`` (RFC 3986,
    section 5.2), gives the absolute path ``target``. Both start with ``/``."""
    directory = base.split("/")[:-1]  # "/a/bookings" -> ["", "a"]: the last segment is replaced
    parts = target.split("/")  # "/a/bookings/x" -> ["", "a", "bookings", "x"]
    common = 0
    # The target's last segment is always written out (a reference of only "../" would end
    # in a slash), so at most the segments before it are shared.
    while common < min(len(directory), len(parts) - 1) and directory[common] == parts[common]:
        common += 1
    reference = "../" * (len(directory) - common) + "/".join(parts[common:])
    # "" would mean the base itself; a first segment with a colon would read as a scheme.
    if not reference or (":" in reference.split("/")[0]):
        reference = f"./{reference}"
    return reference


def location(sent_path: str | None, route_path: str, target_path: str) -> str:
    """The ``Location`` of ``target_path`` (the app's own path, e.g. ``/bookings/<id>``) in
    the answer to a request for ``route_path`` (its concrete path, e.g. ``/bookings``).

    ``sent_path`` is the path as the request reached the app (``requestContext.path``:
    API Gateway's has the stage in front, ``chalice local``'s has no prefix). Only its
    trailing slash matters: both API Gateway and ``chalice local`` route ``/bookings/``
    to ``/bookings``, and a reference relative to ``…/bookings/`` is one segment deeper.
    The prefix in front of the route is the same in the request and in the target, so a
    relative reference never needs to know it."""
    slash = sent_path is not None and sent_path != "/" and sent_path.endswith("/")
    return relative_reference(route_path + ("/" if slash else ""), target_path)
