"""Cancellation reaches the model loop (`models.base.check_cancelled`): each shipped family that
samples step by step stops at the next iteration once its call's token is cancelled, instead of
running its loop to the end. The network's forward passes are counted with a hook that cancels the
token after a few of them."""

from __future__ import annotations

import time

import pytest

from models.base import Cancelled, CancelToken, cancellable, check_cancelled
from studio.serving.registry import default_registry
from studio.serving.service import AccompanyRequest, read_melody


def _module(model, family: str):
    """The module whose forward pass is one iteration of the family's loop."""
    return model.network.decoder if family == "vae" else model.network


@pytest.mark.parametrize(
    ("name", "params", "cancel_after", "loop_length"),
    [
        ("arcnn-chorale", {"iterations": 64}, 3, 64),  # Gibbs iterations
        ("arcnn-chorale", {"iterations": 8, "mode": "enhance", "max_added": 64}, 10, 20),  # 8 Gibbs passes, then the melody's spans
        ("diffusion-chorale", {"steps": 50}, 3, 50),  # DDIM steps
        ("transformer-folk", {"bars": 8}, 3, 40),  # one event at a time
        ("vae-folk", {}, 3, 32),  # one 16th at a time
    ],
)
def test_a_cancelled_call_stops_within_an_iteration(name, params, cancel_after, loop_length, tune_paths):
    registry = default_registry()
    card = registry.card(name)
    model = registry.get(name)
    melody = read_melody(AccompanyRequest(midi=tune_paths["four_four.mid"], model=name))
    token = CancelToken()
    passes = []

    def count(*_args) -> None:
        passes.append(1)
        if len(passes) == cancel_after:
            token.cancel()

    hook = _module(model, card.family).register_forward_hook(count)
    try:
        with cancellable(token), pytest.raises(Cancelled):
            model.generate(melody.roll, melody.grid, card.resolve_params(params), 0)
    finally:
        hook.remove()
    assert len(passes) == cancel_after, f"{name} ran {len(passes) - cancel_after} more passes after its token was cancelled"
    assert len(passes) < loop_length  # the loop did not run to its end


def test_a_token_past_its_deadline_stops_the_loop_and_outside_a_call_nothing_is_checked():
    check_cancelled()  # no call: training and evaluation loops run as before
    with cancellable(CancelToken(deadline=time.monotonic() - 1)), pytest.raises(Cancelled):
        check_cancelled()
    with cancellable(CancelToken(deadline=time.monotonic() + 60)):
        check_cancelled()
    check_cancelled()  # the token is the call's only
