"""WSGI entry point: `gunicorn -w 2 wsgi:app`."""

from authserver import create_app

app = create_app()
