"""What the page says about a model: the picker's grouped choices, the card in plain words, the
controls built from the card's `params`, and the views of how the model learned."""

from __future__ import annotations

import html
import re

import gradio as gr

from studio.audio.learning_plot import loss_curves_png, snapshot_pngs
from studio.core.errors import InputError
from studio.serving.registry import ModelCard, default_registry, family_info

__all__ = [
    "key_words",
    "learning_views",
    "model_card_markdown",
    "model_choices",
    "param_control",
    "plain_text",
    "training_words",
]

GENRE_PIECES = {
    "chorale": "Bach chorales",
    "quartet": "string-quartet movements",
    "renaissance": "Renaissance masses and chansons",
    "folk": "folk tunes",
}
HELD_OUT_WORDS = "Held out means set aside before training: the model never learned from these pieces."
_METRIC_WORDS = {
    "in_key_rate": "notes in the melody's key",
    "consonance": "consonant with the melody",
    "qualified_note_rate": "notes a dotted eighth or longer",
    "used_pitch_classes": "different notes per bar",
}


def _family_rank(card: ModelCard) -> tuple:
    info = family_info(card.family)
    return (info.order if info is not None else 99, card.genre, card.name)


def _family_label(family: str) -> str:
    info = family_info(family)
    return info.label if info is not None else family


def model_choices() -> list[tuple[str, str]]:
    """Every usable model as (label, name), grouped by family (in the order the studio teaches them), then genre."""
    cards = sorted((c for c in default_registry().cards() if not c.disabled), key=_family_rank)
    return [(f"{_family_label(c.family)} · {c.genre} · {c.name}", c.name) for c in cards]


def param_control(param, model: str) -> gr.components.Component:
    """A control for one of `model`'s parameters (its card's type, range, default and help), usable
    on the page (`interactive=True`: controls made after the page is built are otherwise read-only).
    Its element id is `param-<model>-<name>`: every model keeps its own controls on the page."""
    label = param.name.replace("_", " ")
    elem_id = f"param-{model}-{param.name}"
    if param.type == "choice":
        return gr.Dropdown(
            choices=list(param.choices), value=param.default, label=label, info=param.help, elem_id=elem_id, interactive=True
        )
    step = 1 if param.type == "int" else 0.05
    return gr.Slider(
        minimum=param.min,
        maximum=param.max,
        value=param.default,
        step=step,
        label=label,
        info=param.help,
        elem_id=elem_id,
        interactive=True,
    )


def plain_text(text: str) -> str:
    """`text` (which may come from a user's file: track names, error messages quoting them) made safe to
    show in Markdown: HTML escaped and Markdown's punctuation backslashed, so it shows as written."""
    escaped = html.escape(str(text), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~>-])", r"\\\1", escaped)


def key_words(key: str) -> str:
    """A key as a musician writes it: 'B- major' (music21) or 'Bb major' (the studio) -> 'B♭ major'."""
    name, _, mode = str(key).partition(" ")
    if len(name) == 2 and name[1] in "-b":
        name = name[0] + "♭"
    elif len(name) == 2 and name[1] == "#":
        name = name[0] + "♯"
    return f"{name} {mode}".strip()


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def training_words(card: ModelCard) -> str:
    """How the model was trained, in a sentence a class can read ('' for a model that never trained)."""
    training = card.training or {}
    if not training.get("steps"):
        return ""
    pieces = training.get("train_pieces") or training.get("pieces")
    what = GENRE_PIECES.get(card.genre, f"{card.genre} pieces")
    source = "music21's corpus" if str(training.get("data", "")).startswith("corpus:") else "a folder of MIDI files"
    hardware = str(training.get("hardware", ""))
    threads = re.search(r"(\d+) threads?", hardware)
    if re.search(r"cuda|gpu", hardware, re.IGNORECASE):
        machine = "a graphics processor (GPU)"
    elif threads:
        machine = f"a computer's processor ({_count(int(threads.group(1)), 'core', 'cores')})"
    else:
        machine = "a computer's processor"
    minutes = training.get("wall_time_minutes")
    took = f" in {minutes:g} minutes" if isinstance(minutes, (int, float)) else ""
    learned = f"{_count(int(pieces), 'piece', 'pieces')} ({what} from {source})" if pieces else f"{what} from {source}"
    return f"Learned from {learned}: {training['steps']:,} training steps{took} on {machine}."


def model_card_markdown(name: str) -> str:
    """The card in plain words: how the family works, what it learned from, how it scores on music it never saw."""
    try:
        card = default_registry().card(name)
    except InputError:
        return ""
    lines = [f"**{card.name}**: {card.description}"]
    if info := family_info(card.family):
        lines.append(f"*{info.heading}:* {info.idea}")
    if trained := training_words(card):
        lines.append(trained)
    held = (card.metrics or {}).get("held_out")
    if held:
        lines.append(HELD_OUT_WORDS)
    if held and "perplexity" in held:  # a melody model: how well it predicts tunes, how it continues them
        base = held.get("baselines", {})
        lines.append(
            f"On {held.get('tunes', '?'):,} held-out tunes, guessing the next event it hesitates as much as between "
            f"{held['perplexity']:.1f} equally likely choices (its perplexity; from note frequencies alone: "
            f"{base.get('unigram', float('nan')):.1f}, from the previous event alone: {base.get('bigram', float('nan')):.1f}; lower is surer)."
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
            f"On {held.get('tunes', '?'):,} held-out tunes it gives back {held['step_accuracy']:.1%} of the 16th notes "
            f"and {held['note_accuracy']:.1%} of the notes exactly from their codes."
        )
        levels = (card.metrics.get("unseen") or {}).get("by_how_far") or {}
        how_far = next((p for p in card.params if p.name == "how_far"), None)
        shown = {"1"} | {f"{v:g}" for v in ((how_far.default, how_far.max) if how_far else ()) if v is not None}  # 1, the default, the most
        if levels:
            lines.append(
                "Its variations of 100 folk tunes it never saw: "
                + "; ".join(
                    f"how far {h}: {row['notes_changed']:.0%} of the notes changed, {row['in_key_rate']:.0%} in the key"
                    for h, row in levels.items()
                    if h in shown
                )
                + "."
            )
    elif held and "pieces" in held:
        rows = [
            f"| {_METRIC_WORDS[m]} | {held['generated'][m]:.2f} | {held['real'][m]:.2f} |"
            for m in _METRIC_WORDS
            if m in held.get("generated", {})
        ]
        lines.append(
            f"On {held['pieces']} held-out {card.genre} pieces (seed {card.metrics.get('seed', 0)}):\n\n"
            "| | this model | the real music |\n|---|---|---|\n" + "\n".join(rows)
        )
    return "\n\n".join(lines)


def learning_views(name: str) -> tuple[dict, dict, str]:
    """Loss curves and sample rolls along training of `name` (hidden when there are none), and a note
    that always says something: what the pictures show, or why there are none."""
    curves = loss_curves_png(name) if name else None
    snaps = [(str(p), caption) for p, caption in snapshot_pngs(name)] if name else []
    if curves or snaps:
        note = "How its losses fell as it trained (left), and what it wrote for a held-out melody as training went on (right, from step 0)."
    elif name:
        note = "This model was not trained (it follows rules), so there is nothing to watch here."
    else:
        note = "Choose a generator to see how it learned."
    return (gr.update(value=str(curves) if curves else None, visible=bool(curves)), gr.update(value=snaps, visible=bool(snaps)), note)
