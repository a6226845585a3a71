"""Forms of the admin console; every form that changes something carries a CSRF token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    Field,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ..accounts.forms import password_policy, valid_email
from ..accounts.services import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH
from ..clients.metadata import MAX_REFRESH_TOKEN_GRACE_PERIOD
from ..core.capabilities import CLIENT_AUTH_METHODS, GRANT_TYPES, SUBJECT_TYPES
from ..roles.permissions import PERMISSIONS
from ..security.limits import MAX_ROW_ID

MAX_URI_LIST_LENGTH = 20_000
KEY_ALGS = (("", "All algorithms"), ("RS256", "RS256"), ("ES256", "ES256"))


def lines(text: str | None) -> list[str]:
    """The non-empty lines of a textarea, trimmed (one URI or origin a line)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def optional_password(_form: FlaskForm, field: Field) -> None:
    """WTForms validator: an empty password is fine (a reset link sets it), else the policy."""
    if field.data:
        password_policy(_form, field)


class ConfirmForm(FlaskForm):
    """A button with nothing but the CSRF token."""


class ActiveForm(FlaskForm):
    """Enable (1) or disable (0) a person or a client."""

    active = SelectField(
        choices=[SelectChoice("1", "Enabled"), SelectChoice("0", "Disabled")], validate_choice=True
    )


class SearchForm(FlaskForm):
    """The user search box and page number (GET, so no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField("Search by e-mail or name", validators=[Optional(), Length(max=320)])
    page = IntegerField(validators=[Optional(), NumberRange(min=1, max=100_000)], default=1)


class CreateUserForm(FlaskForm):
    """A new person: e-mail, name, an optional password, roles, and whether to send a reset link."""

    email = StringField(
        "E-mail",
        validators=[
            DataRequired("Enter the e-mail address."),
            Length(max=MAX_EMAIL_LENGTH),
            valid_email,
        ],
    )
    name = StringField("Name", validators=[Length(max=200)])
    password = PasswordField(
        "Password (optional)", validators=[Length(max=MAX_PASSWORD_LENGTH), optional_password]
    )
    roles = SelectMultipleField("Roles", choices=[], validate_choice=True)

    def offer_roles(self, names: list[str]) -> None:
        """The roles that exist, as the choices."""
        self.roles.choices = [SelectChoice(name, name) for name in names]

    send_reset = BooleanField("E-mail a link to set the password")


class UserRolesForm(FlaskForm):
    """The roles a person holds (checkboxes)."""

    roles = SelectMultipleField("Roles", choices=[], validate_choice=True)

    def offer_roles(self, names: list[str]) -> None:
        """The roles that exist, as the choices."""
        self.roles.choices = [SelectChoice(name, name) for name in names]


class ClientForm(FlaskForm):
    """Client metadata (RFC 7591 names); the textareas take one value a line."""

    name = StringField("Name", validators=[DataRequired("Enter a name."), Length(max=200)])
    redirect_uris = TextAreaField("Redirect URIs", [Length(max=MAX_URI_LIST_LENGTH)])
    post_logout_redirect_uris = TextAreaField(
        "Post-logout redirect URIs", [Length(max=MAX_URI_LIST_LENGTH)]
    )
    grant_types = SelectMultipleField(
        "Grant types", choices=[SelectChoice(g, g) for g in GRANT_TYPES], validate_choice=True
    )
    scope = StringField("Scopes (space separated)", validators=[Length(max=2000)])
    web_origins = TextAreaField("Web origins (CORS)", [Length(max=MAX_URI_LIST_LENGTH)])
    resources = TextAreaField("Resources (RFC 8707 audiences)", [Length(max=MAX_URI_LIST_LENGTH)])
    skip_consent = BooleanField("First-party: skip the consent page")
    # RFC 7662 section 4: may introspect access tokens issued to other clients.
    is_resource_server = BooleanField("Resource server: may introspect other clients' tokens")
    # OIDC Core 5.4 puts scope claims at userinfo; this puts them in the id_token too.
    claims_in_id_token = BooleanField("Profile and e-mail claims in the id_token too")
    # oauth/grants/refresh_token.py; the service refuses values above the cap.
    refresh_token_grace_period_seconds = IntegerField(
        "Refresh token grace period (seconds)",
        validators=[Optional(), NumberRange(min=0, max=MAX_REFRESH_TOKEN_GRACE_PERIOD)],
        default=0,
    )
    # OpenID Connect Back-Channel and Front-Channel Logout 1.0 section 2.
    backchannel_logout_uri = StringField("Back-channel logout URI", [Length(max=2000)])
    backchannel_logout_session_required = BooleanField("Back-channel logout needs sid")
    frontchannel_logout_uri = StringField("Front-channel logout URI", [Length(max=2000)])
    frontchannel_logout_session_required = BooleanField("Front-channel logout needs iss and sid")
    # What the client's own tokens may do at the admin API, like a person's roles.
    roles = SelectMultipleField("Roles", choices=[], validate_choice=True)
    # OIDC Core section 8; "" keeps the client's type (a new client: the server default).
    subject_type = SelectField(
        "Subject type",
        choices=[SelectChoice("", "server default")] + [SelectChoice(t, t) for t in SUBJECT_TYPES],
        default="",
        validate_choice=True,
    )
    sector_identifier_uri = StringField("Sector identifier URI", [Length(max=2000)])

    def offer_roles(self, names: list[str]) -> None:
        """The roles that exist, as the choices (the service decides which may be given)."""
        self.roles.choices = [SelectChoice(name, name) for name in names]


class CreateClientForm(ClientForm):
    """Client metadata plus the token endpoint authentication method, fixed at registration."""

    token_endpoint_auth_method = SelectField(
        "Token endpoint authentication",
        choices=[SelectChoice(m, m) for m in CLIENT_AUTH_METHODS],
        default="client_secret_basic",
        validate_choice=True,
    )


class RoleForm(FlaskForm):
    """A custom role: name (fixed once made), description, permissions from the catalogue."""

    name = StringField("Name", validators=[DataRequired("Enter a name."), Length(max=64)])
    description = StringField("Description", validators=[Length(max=255)])
    permissions = SelectMultipleField(
        "Permissions",
        choices=[SelectChoice(p, p) for p in PERMISSIONS],
        validate_choice=True,
    )


class RotateKeysForm(FlaskForm):
    """Which algorithm's signing key to rotate; empty = all of them."""

    alg = SelectField(
        "Algorithm",
        choices=[SelectChoice(a, label) for a, label in KEY_ALGS],
        validate_choice=True,
    )


class AuditFilterForm(FlaskForm):
    """Filters of the audit log (GET, so no CSRF token); times are UTC."""

    class Meta:
        csrf = False

    event = StringField("Event (prefix)", validators=[Optional(), Length(max=64)])
    actor = StringField("Actor", validators=[Optional(), Length(max=320)])
    subject = StringField("Subject", validators=[Optional(), Length(max=320)])
    client_id = StringField("Client", validators=[Optional(), Length(max=64)])
    since = DateTimeLocalField("From (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    until = DateTimeLocalField("Until (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    # Keyset paging: events older than this id (the last one of the previous page).
    before = IntegerField(validators=[Optional(), NumberRange(min=1, max=MAX_ROW_ID)])

    def validate_until(self, field: Field) -> None:
        """The end of the range must not come before its start."""
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("The end must not be before the start.")

    def filters(self) -> dict[str, Any]:
        """The filled-in filters, with times as tz-aware UTC."""
        values: dict[str, Any] = {}
        for name in ("event", "actor", "subject", "client_id"):
            text = (getattr(self, name).data or "").strip()
            if text:
                values[name] = text
        for name in ("since", "until"):
            moment = getattr(self, name).data
            if isinstance(moment, datetime):
                values[name] = moment.replace(tzinfo=UTC)
        return values

    def query_args(self) -> dict[str, str]:
        """The filters as they came in the query string (for paging and export links)."""
        names = ("event", "actor", "subject", "client_id", "since", "until")
        return {
            name: self[name].raw_data[0]
            for name in names
            if self[name].raw_data and self[name].raw_data[0]
        }
