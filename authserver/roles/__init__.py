"""Roles and permissions: what people and clients may do, and the ceiling on what they grant.

`permissions` is the catalogue, `services` manages roles, `ceiling` decides who may give
what to whom (the privilege model of SECURITY.md).
"""
