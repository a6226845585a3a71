"""RFC 8628: a device polls the token endpoint while the person approves in a browser."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.browser.flows import sign_in
from tests.browser.pages import Tour
from tests.browser.servers import LiveServer

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
POLL_INTERVAL = 1
POLL_DEADLINE = 30.0


@dataclass
class Device:
    """The device: starts the flow, then polls in its own thread as section 3.4 says."""

    live: LiveServer
    client_id: str
    authorization: dict[str, Any] = field(default_factory=dict)
    answers: list[dict[str, Any]] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self, scope: str) -> dict[str, Any]:
        """Section 3.1: the device authorization request."""
        response = self.live.http.post(
            f"{self.live.url}/oauth2/device_authorization",
            data={"client_id": self.client_id, "scope": scope},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        self.authorization = response.json()
        return self.authorization

    def poll_once(self) -> dict[str, Any]:
        """Section 3.4: the device access token request."""
        response = self.live.http.post(
            f"{self.live.url}/oauth2/token",
            data={
                "grant_type": DEVICE_CODE_GRANT,
                "device_code": self.authorization["device_code"],
                "client_id": self.client_id,
            },
            timeout=10,
        )
        answer: dict[str, Any] = {"status": response.status_code, **response.json()}
        self.answers.append(answer)
        return answer

    def keep_polling(self) -> None:
        """Poll every `interval` seconds until a final answer (section 3.5)."""

        def loop() -> None:
            deadline = time.monotonic() + POLL_DEADLINE
            interval = self.authorization["interval"]
            while time.monotonic() < deadline:
                time.sleep(interval)
                answer = self.poll_once()
                if answer.get("error") == "slow_down":
                    interval += 5
                elif answer.get("error") != "authorization_pending":
                    return

        self.thread = threading.Thread(target=loop, name="device-poller", daemon=True)
        self.thread.start()

    def final_answer(self) -> dict[str, Any]:
        assert self.thread is not None
        self.thread.join(timeout=POLL_DEADLINE + 5)
        assert not self.thread.is_alive(), "the device never got a final answer"
        return self.answers[-1]


@pytest.fixture
def device(live: LiveServer) -> Device:
    live.make_user()
    client_id, _ = live.make_client(
        (),
        name="Living-room TV",
        grant_types=(DEVICE_CODE_GRANT, "refresh_token"),
        scope="openid profile offline_access",
        auth_method="none",
    )
    return Device(live, client_id)


@pytest.mark.server(device_poll_interval=POLL_INTERVAL)
def test_device_approved_in_the_browser_gets_tokens(
    live: LiveServer, tour: Tour, device: Device
) -> None:
    started = device.start("openid profile offline_access")
    assert started["verification_uri"] == f"{live.url}/device"
    assert started["interval"] == POLL_INTERVAL
    assert device.poll_once()["error"] == "authorization_pending"
    device.keep_polling()

    page = tour.page
    tour.goto(started["verification_uri"], "sign-in")
    sign_in(tour)
    page.get_by_label("Code").fill(started["user_code"].lower().replace("-", " "))
    tour.submit("Continue", "confirm")
    assert page.get_by_role("heading", name="Connect Living-room TV?").is_visible()
    assert started["user_code"] in page.locator(".user-code").inner_text()
    tour.submit("Allow", "approved")
    assert page.get_by_role("heading", name="Device connected").is_visible()

    answer = device.final_answer()
    assert answer["status"] == 200, answer
    assert answer["token_type"].lower() == "bearer"
    assert answer["access_token"] and answer["id_token"] and answer["refresh_token"]
    assert {a.get("error") for a in device.answers[:-1]} == {"authorization_pending"}


@pytest.mark.server(device_poll_interval=POLL_INTERVAL)
def test_device_denied_from_the_complete_link_gets_access_denied(
    live: LiveServer, tour: Tour, device: Device
) -> None:
    started = device.start("openid")
    device.keep_polling()

    page = tour.page
    # verification_uri_complete carries the code: after sign-in the field is pre-filled.
    tour.goto(started["verification_uri_complete"], "sign-in")
    sign_in(tour)
    assert page.get_by_label("Code").input_value() == started["user_code"]
    tour.submit("Continue", "confirm")
    tour.submit("Deny", "denied")
    assert page.get_by_role("heading", name="Device not connected").is_visible()

    answer = device.final_answer()
    assert answer["status"] == 400
    assert answer["error"] == "access_denied"
