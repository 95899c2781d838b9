"""A family's network and its safetensors weights: rebuilt from the model card when the registry
loads a model, exported for the checkpoint when training ends. The same steps serve every family."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["exported", "loaded", "parameter_count", "rebuild"]


def rebuild(card: Mapping[str, Any], weights: Any, config_type: Any, network_type: Callable[[Any], Any]) -> tuple[Any, Any]:
    """(config, network): the card's ``config`` read by `config_type.from_json`, the network built
    from it and filled strictly from the safetensors file `weights` (on the CPU; the caller moves it)."""
    from safetensors.torch import load_file  # loads torch: only when a model is first used

    if weights is None:
        raise FileNotFoundError("no .safetensors weights beside the card")
    config = config_type.from_json(card.get("config", {}))
    network = network_type(config)
    network.load_state_dict(load_file(str(weights), device="cpu"), strict=True)
    return config, network


def loaded(
    card: Mapping[str, Any],
    weights: Any,
    device: str,
    config_type: Any,
    network_type: Callable[[Any], Any],
    serving_type: Callable[[Any, Any, str], Any],
) -> Any:
    """A weights family's `load`, the registry's door: the card's ``config`` rebuilds the network,
    safetensors fills it, and `serving_type(config, network on device, device)` serves it."""
    config, network = rebuild(card, weights, config_type, network_type)
    return serving_type(config, network.to(device), device)


def exported(module: Any) -> dict[str, Any]:
    """A module's weights as detached, contiguous CPU tensors: what safetensors writes."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def parameter_count(module: Any) -> int:
    """How many numbers a module learns (for the model card)."""
    return sum(p.numel() for p in module.parameters())
