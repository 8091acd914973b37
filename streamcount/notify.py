"""systemd's notify protocol: READY, STATUS, WATCHDOG, STOPPING, RELOADING.

One datagram per message on the unix socket named by $NOTIFY_SOCKET (a
leading "@" means the abstract namespace). With the variable unset every
call does nothing, so the daemon runs the same outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if address else None
        usec, pid = environ.get("WATCHDOG_USEC"), environ.get("WATCHDOG_PID")
        ours = not pid or pid == str(os.getpid())
        # systemd's advice: ping at half the timeout.
        self.watchdog_interval = int(usec) / 2e6 if usec and ours else None

    def send(self, *fields: str) -> None:
        """Send `KEY=value` fields as one message; failures are logged, not raised."""
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.debug("notify socket %r: %s", self._address, exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
