"""What accounts tells the layers above it, without importing them (blinker signals).

`accounts` sits below `oauth`: it cannot revoke a person's grants itself. It says what
happened; oauth subscribes in its `init_app` and does its part in the same transaction.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Every session of a person ended (a new password, a disabled account, "sign out
# everywhere"): everything the person handed out must end too. Sent with the User as
# sender, before the caller commits. oauth revokes the person's grants.
signed_out_everywhere = _signals.signal("signed-out-everywhere")
