"""studio.serving.fairness: one client's burst does not delay anyone else's request by more than a
bound, measured in order of service (who starts before whom), not in seconds; limits on queued
work refuse a request at once with one line. The seconds are `bench.burst`'s."""

from __future__ import annotations

import threading
import time

import pytest

from studio.serving.fairness import Busy, Client, FairnessConfig, FairQueue, FairScheduler

A, B, C = Client("10.0.0.1", "a"), Client("10.0.0.2", "b"), Client("10.0.0.3", "c")


def _serve_all(queue: FairQueue) -> list[Client]:
    """Whose requests start, in order, when each runs alone and ends before the next starts."""
    order = []
    while (ticket := queue.next()) is not None:
        order.append(ticket.client)
        queue.finish(ticket)
    return order


def test_a_burst_from_one_session_does_not_delay_another_request_beyond_one_turn():
    """One slot: A sends 20 requests, then B one, then C one. B and C start after at most the one A
    request whose turn it is, not after A's 20; then A's go on."""
    queue = FairQueue(FairnessConfig(slots=1, per_session=50))
    for _ in range(20):
        queue.admit(A)
    first = queue.next()  # A's first is running when the others arrive
    queue.admit(B)
    queue.admit(C)
    queue.finish(first)
    order = [A, *_serve_all(queue)]
    assert order[:4] == [A, B, C, A], order  # served longest ago first: the newcomers, then A again
    assert order.count(A) == 20 and len(order) == 22


def test_a_burst_leaves_a_slot_for_the_others():
    """Two slots: a session runs at most one request at a time, so another session's request starts
    at once while the burst has one running and 19 waiting."""
    queue = FairQueue(FairnessConfig(slots=2, per_session=50))
    for _ in range(20):
        queue.admit(A)
    running = queue.next()
    assert running.client == A and queue.next() is None  # A's second waits though a slot is free
    queue.admit(B)
    assert queue.next().client == B  # B starts before A's first has ended
    queue.finish(running)
    assert queue.next().client == A


def test_sessions_of_one_address_take_turns_and_addresses_take_turns():
    """Round robin over addresses, then over the sessions of each: a client that opens many sessions
    from one address gets one turn per round among the addresses, like anyone else."""
    queue = FairQueue(FairnessConfig(slots=1, per_session=5, per_host=50))
    crowd = [Client("10.0.0.9", f"s{i}") for i in range(10)]  # one machine, ten invented sessions
    for session in crowd:
        for _ in range(3):
            queue.admit(session)
    queue.admit(B)
    queue.admit(C)
    order = _serve_all(queue)
    assert order[:12] == [crowd[0], B, C, *crowd[1:]], order  # B and C wait for one turn of the crowd's address, not ten
    assert order[12:] == crowd * 2  # then the crowd's sessions take turns


@pytest.mark.parametrize(
    ("config", "client", "message"),
    [
        (FairnessConfig(per_session=3), Client("10.0.0.1", "a"), "busy: you have 3 requests waiting or running"),
        (FairnessConfig(per_session=3, per_host=3), Client("10.0.0.1", "another"), "busy: 3 requests from your network address"),
        (FairnessConfig(per_session=3, max_admitted=3), Client("10.0.0.7", "z"), "busy: the studio has 3 requests waiting or running"),
    ],
)
def test_over_a_limit_a_request_is_refused_at_once_in_one_line(config, client, message):
    queue = FairQueue(config)
    tickets = [queue.admit(A) for _ in range(3)]
    with pytest.raises(Busy, match=message) as info:
        queue.admit(client)
    assert "\n" not in str(info.value)
    queue.withdraw(tickets[-1])  # one fewer waiting: the next is taken
    assert queue.admit(client).client == client


def test_the_scheduler_serves_threads_in_the_policys_order_and_frees_every_slot():
    """Threads: A's burst holds the only slot; B, arriving after 10 of A's requests wait, is the next
    to start. Every slot is given back (nothing waits or runs at the end)."""
    scheduler = FairScheduler(FairnessConfig(slots=1, per_session=20))
    hold = threading.Event()
    entered = threading.Event()

    def request(client: Client, first: bool = False) -> None:
        with scheduler.turn(client):
            if first:
                entered.set()
                hold.wait(10)

    threads = [threading.Thread(target=request, args=(A, True))]
    threads[0].start()
    assert entered.wait(10)
    for _ in range(10):
        threads.append(threading.Thread(target=request, args=(A,)))
        threads[-1].start()
    while scheduler.waiting < 10:
        time.sleep(0.001)
    threads.append(threading.Thread(target=request, args=(B,)))
    threads[-1].start()
    while scheduler.waiting < 11:
        time.sleep(0.001)
    hold.set()
    for t in threads:
        t.join(10)
    assert scheduler.served[:2] == [A, B] and scheduler.served.count(A) == 11
    assert scheduler.waiting == 0 and scheduler._queue.running == 0


def test_a_request_that_waits_too_long_is_refused_and_leaves_the_queue():
    scheduler = FairScheduler(FairnessConfig(slots=1, max_wait_s=0.05))
    with scheduler.turn(A):
        with pytest.raises(Busy, match=r"busy: your request waited 0\.05 s for its turn"), scheduler.turn(B):
            pass
        assert scheduler.waiting == 0
    with scheduler.turn(B):  # the slot came back
        pass
