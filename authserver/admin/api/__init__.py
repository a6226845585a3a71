"""The JSON admin API at /admin/api/v1: people, clients, roles, signing keys, the audit log.

One blueprint (`base.bp`), one module of endpoints per resource. Views parse
(api_schemas.py), call admin.services, roles.services or audit.services, and render
(serializers.py). The OpenAPI 3.1 document describing all of it is served at
/admin/api/openapi.json (`base.docs_bp`).
"""

from . import audit, clients, keys, roles, users
from .base import bp, docs_bp

__all__ = ["audit", "bp", "clients", "docs_bp", "keys", "roles", "users"]
