"""Roles and permissions: what people and clients may do, and the ceiling on what they grant.

`permissions` is the catalogue, `services` manages roles, `ceiling` decides who may give
what to whom (the privilege model of SECURITY.md) and names the actor of a request.
"""

from .ceiling import init_app as init_app

__all__ = ["init_app"]
