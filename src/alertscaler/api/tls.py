"""TLS on the listener (``server.tls``): one ``ssl.SSLContext`` the server keeps for its whole life, whose
certificate and key are re-read from their files on ``SIGHUP`` (``reload``). Used by ``service.serve``.

Reloading loads the files into the live context (``load_cert_chain``): connections made after it get the new
certificate, connections already open keep theirs, nothing restarts. The pair is first tried on a scratch
context, so a half-written or mismatched pair is refused (logged) and the current certificate stays in use.
"""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)


def server_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A server context (TLS 1.2 or newer) holding this certificate chain and key. Raises ``OSError`` (a file
    cannot be read) or ``ssl.SSLError`` (not PEM, or the key does not match the certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file), _no_password)
    return context


def _no_password() -> bytes:
    return b""  # an encrypted key fails (OpenSSL would otherwise prompt on the terminal)


class TlsListener:
    """The listener's TLS context and how to refresh it from ``cert_file`` and ``key_file``."""

    def __init__(self, cert_file: str | Path, key_file: str | Path) -> None:
        self.cert_file = str(cert_file)
        self.key_file = str(key_file)
        self.context = server_context(self.cert_file, self.key_file)
        self.reloads = 0
        self._lock = threading.Lock()

    def reload(self) -> bool:
        """Re-read the certificate and key into the live context. False (and the current pair kept) when the
        files cannot be loaded; the error is logged with the files' paths, never their content."""
        with self._lock:
            try:
                server_context(self.cert_file, self.key_file)
                self.context.load_cert_chain(self.cert_file, self.key_file, _no_password)
            except (OSError, ssl.SSLError) as exc:
                log.error("TLS reload from %s and %s failed, the current certificate stays in use: %s",
                          self.cert_file, self.key_file, exc)
                return False
            self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert_file)
        return True

    def reload_on_sighup(self) -> Any:
        """Install a SIGHUP handler that reloads (main thread only); returns the handler it replaced."""

        def on_sighup(signum: int, frame: FrameType | None) -> None:
            self.reload()

        return signal.signal(signal.SIGHUP, on_sighup)
