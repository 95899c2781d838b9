"""Fair turns for the served studio: one client's burst of requests cannot starve the others.

Gradio's queue serves the events of a concurrency group first come, first served, and bounds only
the queue's total size, so 40 requests sent at once by one client made everyone after them wait for
all 40 (issue 23). Gradio offers no per-session order or limit, so the order is kept here; Gradio
still does what it does well (its concurrency group bounds the requests let in, `gr.Request` says
whose each one is: `studio.ui.actions.client_of`).

Policy (`FairQueue`, pure bookkeeping; `FairScheduler` adds the waiting threads):

1. **Limits on queued work.** A session (a page, or one `gradio_client` client) may have at most
   `per_session` requests waiting or running, one network address `per_host` (a classroom behind
   one router shares an address, so it is generous: it stops a client that invents new sessions),
   and the studio `max_admitted` in all. A request over a limit is refused at once with one line
   (`Busy`: "busy: you have 3 requests waiting or running ...") rather than left waiting.
2. **Round robin.** When a slot frees (there are `slots` of them: requests served at once), the
   next request is taken from the address served longest ago, and within that address from the
   session served longest ago (a newcomer counts as never served): a session that sent 40 requests
   gets one turn per round, like a session that sent one.
3. **One at a time per session.** A session's requests run one after another
   (`running_per_session`), so a burst of long requests holds one slot whatever its size, the other
   slots stay free for everyone else, and a short request from anyone else starts at once instead of
   waiting for a long one to end.

Order of service is what this module promises (tested); what it means in seconds under a real
burst is measured by `bench.burst`.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from studio.core.errors import InputError, StudioError

__all__ = ["Busy", "Client", "FairQueue", "FairScheduler", "FairnessConfig", "Ticket", "default_scheduler", "generation_slots"]


class Busy(StudioError):
    """A request over its session's, its address's or the studio's limit on queued work (one line)."""


@dataclass(frozen=True)
class Client:
    """Whose request it is: the network address it came from and its session (Gradio's session hash)."""

    host: str
    session: str


def generation_slots() -> int:
    """How many generations the server runs at once: `STUDIO_WORKERS`, else one per CPU core."""
    raw = os.environ.get("STUDIO_WORKERS", "").strip()
    if not raw:
        return max(1, os.cpu_count() or 2)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise InputError(f"STUDIO_WORKERS must be a whole number from 1 to 64, got {raw!r}: fix or unset it")
    return value


@dataclass(frozen=True)
class FairnessConfig:
    """How many requests run at once, and how many each session, address and the studio may queue."""

    slots: int = 2  # requests served at once (`STUDIO_WORKERS`; default one per core)
    per_session: int = 3  # waiting or running, per session (a page: a take, its step-by-step view, a remix)
    per_host: int = 48  # waiting or running, per network address (a classroom behind one router)
    max_admitted: int = 64  # waiting or running in all (each waiting request holds one of Gradio's threads)
    max_wait_s: float = 600.0  # a request that waited this long for its turn is refused as busy
    running_per_session: int = 1  # a session's requests run one after another: a burst holds one slot, whatever its size

    @staticmethod
    def from_env() -> FairnessConfig:
        """The defaults with `slots` from `STUDIO_WORKERS` (see `generation_slots`)."""
        return FairnessConfig(slots=generation_slots())


@dataclass(eq=False)
class Ticket:
    """One admitted request: whose it is, its place in arrival order, and an event set when its turn comes."""

    client: Client
    number: int
    granted: threading.Event = field(default_factory=threading.Event)
    running: bool = False


class FairQueue:
    """The policy's bookkeeping (see the module docstring), without threads: `admit` a request (or
    refuse it), `next` gives the request whose turn it is when a slot is free, `finish` frees its
    slot, `withdraw` takes back a request that stopped waiting. Not thread-safe: `FairScheduler`
    holds a lock around it.

    The round robin: the address served longest ago goes first (one with nothing admitted before
    counts as never served), and within it the session served longest ago; ties go by arrival."""

    def __init__(self, config: FairnessConfig) -> None:
        self.config = config
        self._waiting: dict[str, dict[str, deque[Ticket]]] = {}  # by address, then session, in arrival order
        self._admitted: Counter[Client] = Counter()  # waiting or running, per session
        self._per_host: Counter[str] = Counter()
        self._running: Counter[Client] = Counter()
        self._host_turn: dict[str, int] = {}  # when each address with admitted requests was last served
        self._session_turn: dict[Client, int] = {}
        self._turns = itertools.count()
        self._numbers = itertools.count()
        self.running = 0

    @property
    def admitted(self) -> int:
        """Requests waiting or running."""
        return sum(self._per_host.values())

    def admit(self, client: Client) -> Ticket:
        """A ticket for one more request of `client`, waiting for its turn; `Busy` when over a limit."""
        c = self.config
        mine = self._admitted[client]
        if mine >= c.per_session:
            raise Busy(
                f"busy: you have {_requests(mine)} waiting or running, the most one session may have; wait for one to finish, then try again"
            )
        if self._per_host[client.host] >= c.per_host:
            raise Busy(
                f"busy: {_requests(self._per_host[client.host])} from your network address are waiting or running, "
                "the most one address may have; try again in a minute"
            )
        if self.admitted >= c.max_admitted:
            raise Busy(f"busy: the studio has {_requests(self.admitted)} waiting or running, all it takes at once; try again in a minute")
        ticket = Ticket(client, next(self._numbers))
        self._waiting.setdefault(client.host, {}).setdefault(client.session, deque()).append(ticket)
        self._admitted[client] += 1
        self._per_host[client.host] += 1
        return ticket

    def next(self) -> Ticket | None:
        """The waiting request whose turn it is, marked running, when a slot is free; else None."""
        if self.running >= self.config.slots:
            return None
        for host in sorted(self._waiting, key=lambda h: self._host_turn.get(h, -1)):  # sorted() is stable: ties by arrival
            sessions = self._waiting[host]
            for session in sorted(sessions, key=lambda s: self._session_turn.get(Client(host, s), -1)):
                client = Client(host, session)
                if self._running[client] >= self.config.running_per_session:
                    continue
                ticket = sessions[session].popleft()
                self._drop_empty(client)
                turn = next(self._turns)
                self._host_turn[host] = self._session_turn[client] = turn
                ticket.running = True
                self._running[client] += 1
                self.running += 1
                return ticket
        return None

    def finish(self, ticket: Ticket) -> None:
        """A running request ended: its slot is free."""
        if not ticket.running:
            raise ValueError("finish() is for a running request; use withdraw() for a waiting one")
        ticket.running = False
        self._running[ticket.client] -= 1
        self.running -= 1
        self._forget(ticket.client)

    def withdraw(self, ticket: Ticket) -> None:
        """A waiting request gave up (it waited too long): it leaves the queue."""
        tickets = self._waiting.get(ticket.client.host, {}).get(ticket.client.session)
        if tickets is None or ticket not in tickets:
            raise ValueError("withdraw() is for a waiting request")
        tickets.remove(ticket)
        self._drop_empty(ticket.client)
        self._forget(ticket.client)

    def _drop_empty(self, client: Client) -> None:
        sessions = self._waiting[client.host]
        if not sessions[client.session]:
            del sessions[client.session]
            if not sessions:
                del self._waiting[client.host]

    def _forget(self, client: Client) -> None:
        """One request of `client` fewer; a session or address with none left is forgotten (its next
        request counts as never served)."""
        self._admitted[client] -= 1
        self._per_host[client.host] -= 1
        if self._running[client] <= 0:
            del self._running[client]
        if self._admitted[client] <= 0:
            del self._admitted[client]
            self._session_turn.pop(client, None)
        if self._per_host[client.host] <= 0:
            del self._per_host[client.host]
            self._host_turn.pop(client.host, None)


def _requests(n: int) -> str:
    return f"{n} request{'' if n == 1 else 's'}"


class FairScheduler:
    """`FairQueue` for threads: `turn(client)` waits for the request's turn (or raises `Busy`),
    runs the block, and gives the slot to the next request whose turn it is."""

    def __init__(self, config: FairnessConfig | None = None) -> None:
        self.config = config or FairnessConfig()
        self._queue = FairQueue(self.config)
        self._lock = threading.Lock()
        self.served: list[Client] = []  # who started, in order (tests read it)

    @contextmanager
    def turn(self, client: Client) -> Iterator[Ticket]:
        """Wait for `client`'s turn, then run the block in a slot; `Busy` when the client, its address
        or the studio is over its limit, or when the turn has not come within `max_wait_s`."""
        with self._lock:
            ticket = self._queue.admit(client)
            self._dispatch()
        if not ticket.granted.wait(self.config.max_wait_s):
            with self._lock:
                if not ticket.granted.is_set():
                    self._queue.withdraw(ticket)
                    raise Busy(f"busy: your request waited {self.config.max_wait_s:g} s for its turn; try again in a minute")
        try:
            yield ticket
        finally:
            with self._lock:
                self._queue.finish(ticket)
                self._dispatch()

    def _dispatch(self) -> None:
        """Give every free slot to the request whose turn it is (the lock is held)."""
        while (ticket := self._queue.next()) is not None:
            self.served.append(ticket.client)
            del self.served[:-1000]  # the latest only
            ticket.granted.set()

    @property
    def waiting(self) -> int:
        """Requests admitted and not yet running."""
        with self._lock:
            return self._queue.admitted - self._queue.running


_default: FairScheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> FairScheduler:
    """The process-wide scheduler that the page's and the API's generating actions share
    (`FairnessConfig.from_env()`, created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FairScheduler(FairnessConfig.from_env())
        return _default
