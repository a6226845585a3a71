"""An administrator's day in the console: a client, its secret, a person disabled, the log."""

from __future__ import annotations

import json
from pathlib import Path

from tests.browser.flows import sign_in
from tests.browser.pages import Tour
from tests.browser.servers import LiveServer

ADMIN = "root@example.com"


def _client_credentials(live: LiveServer, client_id: str, secret: str) -> int:
    """RFC 6749 section 4.4: the status the token endpoint answers for this secret."""
    response = live.http.post(
        f"{live.url}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    )
    return response.status_code


def test_an_admin_registers_a_client_and_rotates_its_secret(live: LiveServer, tour: Tour) -> None:
    live.make_user(ADMIN, roles=["admin"])
    page = tour.page

    tour.goto("/admin", "sign-in")
    sign_in(tour, ADMIN)
    assert page.get_by_role("heading", name="Administration").is_visible()
    tour.click(page.get_by_role("navigation", name="Administration").get_by_text("Clients"))
    tour.click(page.get_by_role("link", name="Register a client"), "register")
    page.get_by_label("Name").fill("Nightly reports")
    page.get_by_label("authorization_code").uncheck()
    page.get_by_label("refresh_token").uncheck()
    page.get_by_label("client_credentials").check()
    page.get_by_label("Scopes").fill("reports")
    tour.submit("Register client", "registered")

    assert page.get_by_role("heading", name="Nightly reports is registered").is_visible()
    client_id = page.locator("#client-id").inner_text()
    first_secret = page.locator("#client-secret").inner_text()
    assert _client_credentials(live, client_id, first_secret) == 200

    tour.click(page.get_by_role("link", name="Done"), "client")
    assert first_secret not in page.content()  # shown once only
    tour.submit("Rotate secret", "rotated")
    assert page.get_by_role("heading", name="New secret for Nightly reports").is_visible()
    second_secret = page.locator("#client-secret").inner_text()
    assert second_secret != first_secret
    assert _client_credentials(live, client_id, first_secret) == 401
    assert _client_credentials(live, client_id, second_secret) == 200


def test_an_admin_disables_a_person_and_reads_the_audit_log(live: LiveServer, tour: Tour) -> None:
    live.make_user(ADMIN, roles=["admin"])
    bob_sub = live.make_user("bob@example.com", name="Bob Builder")
    live.make_user("carol@example.com", name="Carol")
    page = tour.page

    tour.goto("/admin/users", "sign-in")
    sign_in(tour, ADMIN)
    page.get_by_label("Search by e-mail or name").fill("builder")
    tour.submit("Search", "search")
    rows = page.locator("#users-table tbody tr")
    assert rows.count() == 1 and "bob@example.com" in rows.inner_text()

    tour.click(page.get_by_role("link", name="bob@example.com"), "bob")
    tour.submit("Disable user", "disabled")
    assert page.get_by_role("status").inner_text() == "bob@example.com is disabled."
    assert page.locator(".badge.disabled").is_visible()

    tour.click(page.get_by_role("link", name="Audit log"), "audit")
    page.get_by_label("Event (prefix, e.g. admin. or signin)").fill("admin.user")
    page.get_by_label("Subject").fill(bob_sub)
    tour.submit("Filter", "audit-filtered")
    table = page.locator("#audit-table")
    assert "admin.user.disabled" in table.inner_text()

    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON lines").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    exported = [json.loads(line) for line in lines]
    assert [event["event"] for event in exported] == ["admin.user.disabled"]
