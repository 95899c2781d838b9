"""Each shipped card's held-out figures still come out of `evaluate`: for a few named pieces of its
pinned held-out list, `evaluate --pieces` (the pieces read alone, seconds) must give the figures the
card records for them (``metrics.held_out.per_piece``, written by a whole evaluation).

A card whose model, sampling, defaults, metrics or data reading changed without a new evaluation
fails here. `rules` is not trained and holds nothing out (its figures are from `bench.rules_floor`).
The pieces are the shortest of each held-out list (a Ryan's Mammoth tune for the folk models: one
file each, where an Essen tune parses its whole collection).
"""

from __future__ import annotations

import json

import pytest

from studio.core.config import REPO_ROOT
from studio.core.errors import InputError
from studio.training.evaluate import EvaluationConfig, evaluate

CHECKED = {
    "arcnn-chorale": ("chorale/bwv255", "chorale/bwv6.6"),
    "diffusion-chorale": ("chorale/bwv255", "chorale/bwv6.6"),
    "gan-chorale": ("chorale/bwv255", "chorale/bwv6.6", "chorale/bwv310"),
    "gan-quartet": ("quartet/mozart/k156/movement2", "quartet/haydn/opus1no1/movement2"),
    "gan-renaissance": ("renaissance/palestrina/Credo_55_d", "renaissance/palestrina/Gloria_69_c"),
    "transformer-folk": ("chorale/bwv255", "folk/ryansMammoth/42dHighlandRegimentStrathspey/0000"),
    "vae-folk": ("chorale/bwv255", "folk/ryansMammoth/42dHighlandRegimentStrathspey/0000"),
}
CARDS = REPO_ROOT / "models" / "checkpoints"


def _card(name: str) -> dict:
    return json.loads((CARDS / f"{name}.json").read_text())


def test_every_trained_card_is_checked():
    trained = {p.stem for p in CARDS.glob("*.json")} - {"rules"}
    assert trained == set(CHECKED), "a shipped card without a check of its held-out figures (or a check of no card)"


@pytest.mark.parametrize("name", sorted(CHECKED))
def test_evaluate_gives_the_figures_the_card_records_for_its_held_out_pieces(name):
    recorded = _card(name)["metrics"]["held_out"]["per_piece"]
    report = evaluate(name, EvaluationConfig(pieces=CHECKED[name], unseen=0, copy_check=False), progress=False)
    got = report["held_out"]["per_piece"]
    assert list(got) == list(CHECKED[name])
    for piece in CHECKED[name]:
        assert got[piece] == recorded[piece], (
            f"{name} on the held-out {piece}: evaluate gives {got[piece]}, the card says {recorded[piece]}"
        )


@pytest.mark.parametrize(
    ("name", "piece"),
    [("gan-chorale", "chorale/bwv112.5"), ("vae-folk", "folk/essenFolksong/altdeu20/0019"), ("transformer-folk", "chorale/bwv101.7")],
)
def test_a_piece_off_the_held_out_list_is_refused(name, piece):
    """A validation or training piece is no test of a card: one clear line, before anything is read."""
    with pytest.raises(InputError, match=f"'{piece}' is not a held-out"):
        evaluate(name, EvaluationConfig(pieces=(piece,), unseen=0, copy_check=False), progress=False)


def test_the_cli_names_the_pieces_it_evaluated(capsys):
    from studio.cli import main

    assert main(["evaluate", "--model", "gan-chorale", "--pieces", "chorale/bwv255"]) == 0
    out = capsys.readouterr().out
    assert "chorale/bwv255 (9 bars)" in out and "1 held-out chorale pieces" in out
    assert main(["evaluate", "--model", "gan-chorale", "--pieces", "chorale/nowhere"]) == 2
    assert capsys.readouterr().err.count("error:") == 1
