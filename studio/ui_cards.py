"""What the page says about a model: the picker's grouped choices, the card in plain words, the
controls built from the card's `params`, and the views of how the model learned."""

from __future__ import annotations

import gradio as gr

from studio.errors import InputError
from studio.learning import loss_curves_png, snapshot_pngs
from studio.registry import ModelCard, default_registry

__all__ = ["FAMILY_IDEAS", "learning_views", "model_card_markdown", "model_choices", "param_control"]

FAMILY_ORDER = ("rules", "gan", "arcnn", "transformer", "vae", "diffusion")
FAMILY_NAMES = {"rules": "Rules", "gan": "GAN", "arcnn": "AR-CNN", "transformer": "Transformer", "vae": "VAE", "diffusion": "Diffusion"}
FAMILY_IDEAS = {
    "rules": "No learning: music theory written as rules (find the key, choose a chord for each half bar, voice it).",
    "gan": "A generator and a discriminator compete: the generator writes accompaniments for real melodies, "
    "the discriminator (critic) tries to tell them from the real ones, and each gets better by beating the other.",
    "arcnn": "Rewrites notes step by step: it looks at the whole piano roll, removes notes it doubts and adds notes it likes, again and again.",
    "transformer": "Attends to what came before: it reads the melody so far and predicts the next note, one at a time.",
    "vae": "A latent space of variations: melodies become points in a space, and nearby points are similar melodies.",
    "diffusion": "Removes noise step by step: it starts from random notes and cleans them into music that fits the melody.",
}

_METRIC_WORDS = {
    "in_key_rate": "notes in the melody's key",
    "consonance": "consonant with the melody",
    "qualified_note_rate": "notes a dotted eighth or longer",
    "used_pitch_classes": "different notes per bar",
}


def _family_rank(card: ModelCard) -> tuple:
    return (FAMILY_ORDER.index(card.family) if card.family in FAMILY_ORDER else 99, card.genre, card.name)


def model_choices() -> list[tuple[str, str]]:
    """Every usable model as (label, name), grouped by family (in the order the studio teaches them), then genre."""
    cards = sorted((c for c in default_registry().cards() if not c.disabled), key=_family_rank)
    return [(f"{FAMILY_NAMES.get(c.family, c.family)} · {c.genre} · {c.name}", c.name) for c in cards]


def param_control(param) -> gr.components.Component:
    """A control for one of a model's parameters (its card's type, range, default and help)."""
    label = param.name.replace("_", " ")
    if param.type == "choice":
        return gr.Dropdown(choices=list(param.choices), value=param.default, label=label, info=param.help, elem_id=f"param-{param.name}")
    step = 1 if param.type == "int" else 0.05
    return gr.Slider(minimum=param.min, maximum=param.max, value=param.default, step=step, label=label, info=param.help, elem_id=f"param-{param.name}")


def model_card_markdown(name: str) -> str:
    """The card in plain words: how the family works, what it learned from, how it scores on music it never saw."""
    try:
        card = default_registry().card(name)
    except InputError:
        return ""
    lines = [f"**{card.name}**: {card.description}"]
    if card.family in FAMILY_IDEAS:
        lines.append(f"*How a {FAMILY_NAMES[card.family]} works:* {FAMILY_IDEAS[card.family]}")
    training = card.training or {}
    if training.get("steps"):
        lines.append(
            f"Trained on {training.get('train_pieces', '?')} pieces of {training.get('data', '?')} for {training['steps']} steps, "
            f"{training.get('wall_time_minutes', '?')} minutes on {training.get('hardware', '?')}."
        )
    held = (card.metrics or {}).get("held_out")
    if held and "perplexity" in held:  # a melody model: how well it predicts tunes, how it continues them
        base = held.get("baselines", {})
        lines.append(
            f"On {held.get('tunes', '?')} tunes it never saw in training it is {held['perplexity']:.1f}-ways unsure of the next event "
            f"(perplexity; guessing from note frequencies alone: {base.get('unigram', float('nan')):.1f}, from the previous event: "
            f"{base.get('bigram', float('nan')):.1f})."
        )
        unseen = card.metrics.get("unseen") or {}
        if unseen.get("tunes"):
            lines.append(
                f"Continuing {unseen['tunes']} unseen folk tunes by 8 bars: {unseen['in_key_mean']:.0%} of the new notes in the tune's key, "
                f"your bars kept in {unseen['prompt_kept']} of {unseen['tunes']}, and no run of 16 notes copied from a training tune in "
                f"{unseen['tunes'] - unseen.get('tunes_with_copied_runs', 0)} of {unseen['tunes']}."
            )
    elif held and "note_accuracy" in held:  # the VAE: how well it remembers tunes, how far its variations go
        lines.append(
            f"On {held.get('tunes', '?')} tunes it never saw in training it gives back {held['step_accuracy']:.1%} of the 16th notes "
            f"and {held['note_accuracy']:.1%} of the notes exactly from their codes."
        )
        levels = (card.metrics.get("unseen") or {}).get("by_how_far") or {}
        if levels:
            lines.append("Its variations of 100 folk tunes it never saw: " + "; ".join(
                f"how far {h}: {row['notes_changed']:.0%} of the notes changed, {row['in_key_rate']:.0%} in the key" for h, row in levels.items()
                if h in ("1", "2", "3")) + ".")
    elif held and "pieces" in held:
        rows = [
            f"| {_METRIC_WORDS[m]} | {held['generated'][m]:.2f} | {held['real'][m]:.2f} |"
            for m in _METRIC_WORDS
            if m in held.get("generated", {})
        ]
        lines.append(
            f"On {held['pieces']} {card.genre} pieces it never saw in training (seed {card.metrics.get('seed', 0)}):\n\n"
            "| | this model | the real music |\n|---|---|---|\n" + "\n".join(rows)
        )
    return "\n\n".join(lines)


def learning_views(name: str) -> tuple[str | None, list[tuple[str, str]], str]:
    """Loss curves and sample rolls along training of `name`, and a note (models that never trained have none)."""
    curves = loss_curves_png(name) if name else None
    snaps = [(str(p), caption) for p, caption in snapshot_pngs(name)] if name else []
    note = "" if curves else "This model was not trained (it follows rules), so there is nothing to watch here."
    return (str(curves) if curves else None), snaps, note
