"""What the browser tests do on the page more than once: sign in, read the held token."""

from __future__ import annotations

from typing import Any

from chalicelib.customers import DEMO_PASSWORD, DEMO_USERNAMES

#: The first demo customer, who owns loyalty account FF0001: the `page` fixture's.
CUSTOMER = DEMO_USERNAMES[0]
#: Where api.js keeps the ID token (its TOKEN_KEY).
TOKEN_KEY = "saga-air.id-token"


def sign_in(page: Any, username: str = CUSTOMER, password: str = DEMO_PASSWORD) -> None:
    """Through the page's sign-in box, as a customer would; returns once the page shows
    the customer signed in (their profile and the state machines are loaded by then)."""
    from playwright.sync_api import expect

    page.get_by_test_id("sign-in-username").fill(username)
    page.get_by_test_id("sign-in-password").fill(password)
    page.get_by_test_id("sign-in-submit").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(username)
    page.wait_for_selector("body[data-signed-in='true']")


def stored_token(page: Any) -> str | None:
    token = page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})")
    return str(token) if token is not None else None
