"""A database server that goes away and comes back: a TCP relay the test can cut and mend.

:class:`Relay` listens on a free port of 127.0.0.1 and passes every connection on to a real
server (PostgreSQL, MariaDB).  :meth:`Relay.cut` closes the listening socket and every
connection through it: to a client the server is down (connection refused, connections
lost), as when it stops.  :meth:`Relay.mend` listens on the same port again.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Relay:
    """Connections to ``127.0.0.1:port`` passed on to ``target``, until cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._guard = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.mend()

    def url_of(self, url: str) -> str:
        """``url`` (a SQLAlchemy URL to the target) with the relay's port in place of its own."""
        return url.replace(f"{self.target[0]}:{self.target[1]}", f"127.0.0.1:{self.port}")

    def mend(self) -> None:
        """Listen (again): new connections reach the server."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """The server is down: refuse new connections and drop every open one."""
        with self._guard:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, []
        for sock in ([listener] if listener is not None else []) + sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._guard:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    server.close()
                    return
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(one: socket.socket, other: socket.socket) -> None:
        ends = {one: other, other: one}
        try:
            while True:
                ready, _, _ = select.select(list(ends), [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in ends:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
