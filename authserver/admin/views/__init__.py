"""The admin console at /admin: people, clients, roles, signing keys and the audit log.

One blueprint (`base.bp`), one module of pages per resource. Views parse the form, call
admin.services or roles.services with the signed-in person as the actor, and render.
The services refuse a change above the person's ceiling (roles.ceiling): the form shows
why (422), or a 403 page does. Forms offer only the roles and permissions the person
may give.
"""

from . import audit, clients, keys, roles, users
from .base import bp

__all__ = ["audit", "bp", "clients", "keys", "roles", "users"]
