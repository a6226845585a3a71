"""Forms for the hosted account pages; each carries a CSRF token (Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .services import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    """E-mail and password sign-in."""

    email = StringField("E-mail", validators=[DataRequired(), Length(max=MAX_EMAIL_LENGTH)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    next = HiddenField()


class LogoutForm(FlaskForm):
    """Sign-out confirmation: only the CSRF token."""
