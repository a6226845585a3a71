"""Admin actions shared by the console, the JSON admin API and the command line, one
module per resource: people (users), clients, signing keys; `base` holds who acts, the
audit record and the refusal every admin action raises, `revocation` the bulk revocation.

Every change records an audit event "admin.<thing>.<verb>" naming who acted and on
what; the request or CLI command that called it commits (core.uow). Callers check the
permission of the route first (`can_person` / the API's scopes); these functions enforce
the rules of the data and the privilege ceiling
(`roles.ceiling`): an actor never gives more than it holds, nor acts on a person or a
client holding more than it. Without an `actor`, the actor of the request acts
(`roles.ceiling.current_actor`), or the system outside one.
"""
