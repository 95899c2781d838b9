"""How the tracks of a piano roll are told apart: their colours and their legend words, the same in
the PNG (`studio.audio.plot`) and in the page's live roll (`studio.audio.roll_view`).

Colours are Okabe & Ito's (2008) colour-blind-safe qualitative palette: vermillion for the melody,
the others in turn for every other track (drums included).
"""

from __future__ import annotations

from collections.abc import Sequence

from pretty_midi.constants import INSTRUMENT_MAP

__all__ = ["ACCOMPANIMENT_COLOURS", "MELODY_COLOUR", "OKABE_ITO", "legend_label", "track_colours"]

# Okabe & Ito (2008), the colorblind-safe qualitative palette; vermillion is kept for the melody.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}
MELODY_COLOUR = OKABE_ITO["vermillion"]
ACCOMPANIMENT_COLOURS: tuple[str, ...] = (
    OKABE_ITO["blue"],
    OKABE_ITO["bluish_green"],
    OKABE_ITO["reddish_purple"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["orange"],
    OKABE_ITO["yellow"],
    OKABE_ITO["grey"],
)


def track_colours(
    n_tracks: int, melody: int | None, colours: Sequence[str] = ACCOMPANIMENT_COLOURS, melody_colour: str = MELODY_COLOUR
) -> list[str]:
    """The colour of each of `n_tracks` tracks: `melody_colour` for track `melody` (None: no melody),
    `colours` in turn (cycling) for the others, in track order."""
    out: list[str] = []
    for i in range(n_tracks):
        others = len(out) - (melody is not None and i > melody)  # tracks before i, melody aside
        out.append(melody_colour if i == melody else colours[others % len(colours)])
    return out


def legend_label(name: str, program: int, is_drum: bool, is_melody: bool) -> str:
    """Legend text: 'Bass (Acoustic Bass)', 'Drums', 'Melody: Lead (Flute)'."""
    instrument = "Drums" if is_drum else INSTRUMENT_MAP[int(program) % 128]
    name = name.strip()
    text = instrument if not name or name.lower() == instrument.lower() else f"{name} ({instrument})"
    if is_melody:
        return text if name.lower() == "melody" else f"Melody: {text}"
    return text
