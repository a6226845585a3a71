"""audit.actor: who acts is said by the web layer; the audit log only reads it."""

from __future__ import annotations

from flask import Flask

from authserver.audit import Actor, act_as, record
from authserver.audit.actor import clear_actor, register_actor_source, request_actor

SERVICE = Actor("client", "svc-1", frozenset({"users:read"}))


def test_an_actor_passed_in_is_recorded_as_is(app: Flask) -> None:
    row = record("admin.user.updated", actor=SERVICE, subject="sub-1")
    assert (row.actor_type, row.actor) == ("client", "svc-1")


def test_a_declared_actor_is_the_requests_actor(app: Flask) -> None:
    with app.test_request_context("/"):
        act_as(SERVICE)
        assert request_actor() == SERVICE
        row = record("admin.user.updated", subject="sub-1")
        assert (row.actor_type, row.actor) == ("client", "svc-1")
        clear_actor()
        assert request_actor() is None  # nobody signed in


def test_without_a_declaration_the_registered_source_answers(app: Flask) -> None:
    register_actor_source(app, lambda: Actor("user", "sub-9"))
    with app.test_request_context("/"):
        row = record("session.revoked")
    assert (row.actor_type, row.actor) == ("user", "sub-9")


def test_outside_a_request_nobody_is_asked(app: Flask) -> None:
    register_actor_source(app, lambda: Actor("user", "sub-9"))
    assert request_actor() is None
    assert record("keys.rotated").actor_type == "system"
