"""The model-family contract (`models.base`): every shipped family declares itself and matches the
protocols of the capabilities it offers; adding a family is one new file (and its card).

The new family is written into a temporary folder that is appended to the `models` package's
`__path__` (monkeypatched), so `models.tiny` imports from there and `models.base.declarations`
finds it; its card goes into a temporary checkpoints folder that a `ModelRegistry` reads, and that
registry is made the process's default one (`studio.serving.registry._default`, monkeypatched) for
the CLI's `models` listing and the page's picker. No file of the repository is touched."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import models
import models.base as base
from studio.serving import registry as registry_module
from studio.serving.registry import ModelRegistry

REPO = Path(__file__).resolve().parents[2]
CAPABILITIES = [
    base.Accompanist,
    base.BatchGenerator,
    base.StepTracer,
    base.TracePlanner,
    base.Interpolator,
    base.Explainer,
    base.LatentMapper,
    base.LikelihoodScorer,
    base.Regenerator,
]


def _methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(protocol, name))
        for name in protocol.__dict__
        if not name.startswith("_") and callable(getattr(protocol, name))
    }


def test_every_family_file_declares_itself():
    files = sorted(p.stem for p in (REPO / "models").glob("*.py") if p.stem not in ("__init__", "base", "weights"))
    assert sorted(base.declarations()) == files
    orders = [info.order for info in base.declarations().values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    for name, module in base.families().items():
        assert base.declarations()[name] == module.FAMILY  # what is read from the text is what the module holds
        assert callable(module.load)


def test_capabilities_match_the_protocols():
    """A class that offers a capability's methods offers them with the protocol's parameters, so a
    method named like a capability cannot be called wrongly by the studio."""
    offered = set()
    for name, module in base.families().items():
        if hasattr(module, "training"):
            assert isinstance(module, base.TrainableFamily), name
        classes = [c for c in vars(module).values() if inspect.isclass(c) and c.__module__ == module.__name__]
        for cls in classes:
            for protocol in CAPABILITIES:
                methods = _methods(protocol)
                if not all(hasattr(cls, m) for m in methods):
                    continue
                offered.add(protocol.__name__)
                for method, want in methods.items():
                    got = inspect.signature(getattr(cls, method))
                    assert list(got.parameters)[: len(want.parameters)] == list(want.parameters), f"{cls.__name__}.{method}{got}"
            if issubclass(cls, base.TrainingRecipe):
                assert cls.served in ("network", "ema", "generator")
    assert offered == {p.__name__ for p in CAPABILITIES}  # every protocol is some shipped family's


def test_a_family_declares_regeneration_exactly_when_it_offers_it():
    """`FamilyInfo.regenerates` (read by the page and the service without loading a model) and the
    `Regenerator` protocol agree: no family declares it without the method, or has it undeclared."""
    for name, module in base.families().items():
        offers = any(inspect.isclass(c) and c.__module__ == module.__name__ and hasattr(c, "regenerate") for c in vars(module).values())
        assert bool(module.FAMILY.regenerates) == offers, name


def test_config_round_trip():
    for name, module in base.families().items():
        for cls in vars(module).values():
            if inspect.isclass(cls) and issubclass(cls, base.ConfigMixin) and cls is not base.ConfigMixin:
                config = cls()
                assert cls.from_json(json.loads(json.dumps(config.to_json()))) == config, name


TINY = '''"""A tiny family for the contract's test: it plays the melody back an octave lower."""

from models.base import FamilyInfo

FAMILY = FamilyInfo(name="tiny", label="Tiny", heading="How the tiny model works", idea="It copies the melody.",
                    writes="accompaniment", uses_torch=False, order=9)
PARAMS = []


class Echo:
    def generate(self, melody, grid, params, seed):
        return [melody]


def load(card, weights=None, device="cpu"):
    return Echo()
'''


def test_a_new_family_is_one_file(tmp_path, monkeypatch, capsys):
    from studio.cli import main
    from studio.ui.cards import model_card_markdown, model_choices

    (tmp_path / "families").mkdir()
    (tmp_path / "families" / "tiny.py").write_text(TINY)
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    card = {
        "name": "tiny-folk",
        "family": "tiny",
        "genre": "folk",
        "description": "Copies the melody.",
        "tracks": [{"name": "Echo", "program": 0}],
        "params": [],
    }
    (checkpoints / "tiny-folk.json").write_text(json.dumps(card))
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path / "families")])
    monkeypatch.delitem(__import__("sys").modules, "models.tiny", raising=False)

    assert base.declarations()["tiny"].label == "Tiny"
    registry = ModelRegistry(checkpoints, device="cpu")
    assert registry.card("tiny-folk").disabled is None
    assert isinstance(registry.get("tiny-folk"), base.Accompanist)

    monkeypatch.setattr(registry_module, "_default", registry)
    assert main(["models"]) == 0
    assert "tiny-folk" in capsys.readouterr().out
    assert ("Tiny · folk · tiny-folk", "tiny-folk") in model_choices()
    assert "*How the tiny model works:* It copies the melody." in model_card_markdown("tiny-folk")
