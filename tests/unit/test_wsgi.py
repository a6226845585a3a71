"""wsgi.py: what a serving worker loads, in a real interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
import wsgi
print(json.dumps({
    "loaded": sorted(m for m in ("alembic", "flask_migrate", "segno") if m in sys.modules),
    "migrate": "migrate" in wsgi.app.extensions,
    "views": len(wsgi.app.view_functions),
}))
"""


def test_a_worker_leaves_out_the_migration_tooling_and_the_qr_code_writer(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(
        AUTHSERVER_DATABASE_URL=f"sqlite:///{tmp_path / 'wsgi.db'}",
        AUTHSERVER_INSTANCE_PATH=str(tmp_path / "instance"),
        AUTHSERVER_SECRET_KEY="wsgi-test-secret-" + "z" * 40,
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["loaded"] == []
    assert probe["migrate"] is False
    # Every route is still there: only tooling was left out.
    assert probe["views"] > 50
