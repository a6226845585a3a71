"""Forms for the hosted account pages; each carries a CSRF token (Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, ValidationError

from .services import (
    MAX_EMAIL_LENGTH,
    MAX_PASSWORD_LENGTH,
    AccountError,
    check_password_policy,
    is_valid_email,
    normalize_email,
)


class LoginForm(FlaskForm):
    """E-mail and password sign-in."""

    email = StringField("E-mail", validators=[DataRequired(), Length(max=MAX_EMAIL_LENGTH)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    next = HiddenField()


def valid_email(_form: FlaskForm, field: Field) -> None:
    """WTForms validator: a plausible e-mail address (the mailed link is the real proof)."""
    if not is_valid_email(normalize_email(field.data or "")):
        raise ValidationError("Enter a valid e-mail address, like name@example.com.")


def password_policy(_form: FlaskForm, field: Field) -> None:
    """WTForms validator: the password policy of accounts.services, as a sentence."""
    try:
        check_password_policy(field.data or "")
    except AccountError as error:
        message = str(error)
        raise ValidationError(message[:1].upper() + message[1:].rstrip(".") + ".") from None


def _email_field(label: str) -> StringField:
    return StringField(
        label,
        validators=[
            DataRequired("Enter your e-mail address."),
            Length(max=MAX_EMAIL_LENGTH, message="This e-mail address is too long."),
            valid_email,
        ],
    )


def _new_password_fields() -> tuple[PasswordField, PasswordField]:
    """A new password and its confirmation."""
    password = PasswordField(
        "Password", validators=[InputRequired("Choose a password."), password_policy]
    )
    confirm = PasswordField(
        "Password again",
        validators=[
            InputRequired("Type the password again."),
            EqualTo("password", message="The two passwords do not match."),
        ],
    )
    return password, confirm


class SignupForm(FlaskForm):
    """Create an account: name, e-mail and a password typed twice."""

    name = StringField(
        "Name", validators=[Length(max=200, message="The name can have at most 200 characters.")]
    )
    email = _email_field("E-mail")
    password, confirm_password = _new_password_fields()
    next = HiddenField()


class ForgotPasswordForm(FlaskForm):
    """The address to send a reset link to."""

    email = _email_field("E-mail")


class ResetPasswordForm(FlaskForm):
    """A new password typed twice."""

    password, confirm_password = _new_password_fields()


class ConfirmForm(FlaskForm):
    """A button with nothing but the CSRF token."""
