"""The HTTP server the test doubles of Tabbycat and SendGrid run on."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that takes a client hanging up mid-request in its stride: the
    fault tests make tabmail give up on slow answers, and socketserver would print each reset
    as a traceback in the test run's output. Any other error is printed as before."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionResetError | BrokenPipeError):
            return
        super().handle_error(request, client_address)
