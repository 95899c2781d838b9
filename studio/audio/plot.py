"""Multi-track piano-roll pictures (PNG): the image a student sees after generating.

One overlaid view: every melodic track in its own color on a shared pitch axis, the melody on top
with a dark outline, bar lines numbered from the first full bar (a pickup stays unlabelled), and
drums as short ticks at their onsets in a band of their own under the pitch axis (one row per drum
sound, named when there is room). Drums never take part in the pitch axis, so GM drum keys (35-81)
cannot stretch the range of a melodic score. Velocity is not shown: every note is drawn alike.

Made to be read on the page (shown about 740 px wide) and on a phone: a long piece wraps into rows
of bars ("systems", as in a score: four bars a row, more when it would need over eight rows) on one
time scale and one pitch range, every row numbering its bars; text is sized for the displayed
width; every C is named with its octave over a light line; the title and legend stand above the
rows from the left (the page's image buttons cover the top right). Where a model added bars after
the student's (`given_until_tick`), a line and labels mark the end of the student's melody and the
added bars are shaded.

We draw with matplotlib directly rather than with pypianoroll's plotting: pypianoroll 1.0.4's
blended multi-track mode is broken with numpy 2.4, and its other modes draw each track in its own
subplot, while we need one overlaid view with the melody on top. We never touch `pyplot` (global
state, not thread-safe): each call builds its own `matplotlib.figure.Figure` with an Agg canvas,
so the server can plot from several threads at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from PIL import Image

from studio.audio.legend import ACCOMPANIMENT_COLOURS, MELODY_COLOUR, OKABE_ITO, legend_label, track_colours
from studio.core.files import atomic_file
from studio.core.roll import Roll, roll_to_notes
from studio.core.score import Note, Score

__all__ = ["OKABE_ITO", "PlotConfig", "plot_roll", "plot_score"]

_BLACK_KEYS = frozenset({1, 3, 6, 8, 10})  # pitch classes of the black keys


@dataclass(frozen=True)
class PlotConfig:
    """How a piano roll looks. The PNG is `width * dpi` px wide (1200 by default); its height grows
    with the rows ("systems", as in a score) a long piece is wrapped into.

    `colors` are used in turn for the non-melody tracks (cycling when there are more tracks);
    `pitch_margin` is the number of empty semitones shown below the lowest and above the highest note.
    Text is drawn at least `text_px` pixels tall as seen when the picture is shown `display_px`
    wide (the page shows it about 740 px wide), whatever `width` and `dpi` are.
    """

    width: float = 12.0  # inches
    height: float = 3.6  # inches: the most one row's pitch roll takes (a narrow range takes less)
    dpi: int = 100
    colors: tuple[str, ...] = ACCOMPANIMENT_COLOURS  # studio.audio.legend: the page's live roll uses the same
    melody_color: str = MELODY_COLOUR
    melody_edge_color: str = "#1A1A1A"
    accompaniment_alpha: float = 0.8
    note_height: float = 0.8  # in semitones
    pitch_margin: int = 2  # in semitones
    background: str = "#FFFFFF"
    black_key_color: str = "#F1F1F1"  # faint shading of the black-key rows
    octave_line_color: str = "#C8C8C8"  # line under every C
    bar_line_color: str = "#8C8C8C"
    beat_line_color: str = "#E2E2E2"
    added_color: str = "#F6DFA8"  # shading of the bars a model added after the student's (`given_until_tick`)
    added_alpha: float = 0.45
    boundary_color: str = "#1A1A1A"  # the line where the student's bars end
    text_px: float = 12.0  # smallest text, in pixels when the picture is shown `display_px` wide
    display_px: float = 740.0
    bars_per_row: int = 4  # bars in a row of a long piece (more when it would need over `max_rows` rows)
    max_rows: int = 4  # a long take stays about one screen tall on the page
    one_row_bars: int = 6  # a piece of at most this many bars stays one row
    px_per_semitone: float = 9.0  # row height per semitone of the pitch range, up to `height`
    min_row_px: float = 150.0  # least height of a row's pitch roll, in pixels
    legend_entries: int = 16  # a take with more tracks names the first 15 and counts the others
    toolbar_px: float = 120.0  # kept clear at the top right (the page's image buttons), when shown `display_px` wide
    empty_pitch_range: tuple[int, int] = (48, 72)  # pitch axis of a score with no melodic notes

    @property
    def font_size(self) -> float:
        """Font size in points that shows `text_px` tall at `display_px` wide."""
        return self.text_px * (self.width * self.dpi / self.display_px) * 72.0 / self.dpi

    @property
    def scale(self) -> float:
        """Picture pixels per displayed pixel."""
        return self.width * self.dpi / self.display_px


@dataclass(frozen=True)
class _Part:
    """One track reduced to what we draw: note starts/ends in ticks and pitches, shape=(N,) each."""

    name: str
    program: int
    is_drum: bool
    starts: np.ndarray
    ends: np.ndarray
    pitches: np.ndarray

    @classmethod
    def from_notes(cls, name: str, program: int, is_drum: bool, notes: Sequence[Note]) -> _Part:
        arr = np.array([(n.start, n.end, n.pitch) for n in notes], dtype=np.int64).reshape(-1, 3)
        return cls(name, program, is_drum, arr[:, 0], arr[:, 1], arr[:, 2])

    @property
    def n_notes(self) -> int:
        return int(self.starts.size)


@dataclass(frozen=True)
class _Bars:
    """Bar lines in ticks: `starts` of every bar, `end` of the last one, a beat length per bar."""

    starts: list[int]
    end: int
    beats: list[int]
    pickup: bool


def plot_score(
    score: Score,
    out_png: str | os.PathLike,
    bar_ticks: Sequence[int] | None = None,
    melody_track: int | None = 0,
    title: str | None = None,
    config: PlotConfig | None = None,
    *,
    given_until_tick: int | None = None,
) -> Path:
    """Draw `score` as an overlaid multi-track piano roll, wrapped into rows of bars, as a PNG.

    Parameters
    ----------
    score : Score
        The song; times in ticks.
    out_png : str or os.PathLike
        Where to write the PNG (parent folders are created).
    bar_ticks : sequence of int, optional
        Tick of every bar line; default `score.bar_starts()`. A first bar at tick 0 that is shorter
        than the next one is a pickup: it stays unlabelled and bar 1 is the first full bar.
    melody_track : int or None
        Index in `score.tracks` of the melody, drawn on top with an outline; None for no melody
        (a drum track given here is drawn as drums, not highlighted).
    title : str, optional
        Title above the roll.
    config : PlotConfig, optional
        Size and colors; default `PlotConfig()`.
    given_until_tick : int, optional
        Where the student's music ends and a model's added bars begin (a continuation): a line
        there, "your melody" before it, and the added bars shaded. None (default): no marker.

    Returns
    -------
    Path
        The PNG written.

    Raises
    ------
    ValueError
        `melody_track` is not an index of `score.tracks` (ignored when the score has no tracks).
    """
    parts, bars = _score_input(score, bar_ticks)
    fig = _figure(parts, bars, melody_track, title, config or PlotConfig(), given_until_tick)
    return _save(fig, out_png)


def plot_roll(
    roll: Roll,
    out_png: str | os.PathLike,
    melody_track: int | None = 0,
    title: str | None = None,
    config: PlotConfig | None = None,
    *,
    given_until_tick: int | None = None,
) -> Path:
    """Draw a `Roll` (tracks on the 16th-note grid) like `plot_score`, with the grid's own bars.

    Notes come from `studio.core.roll.roll_to_notes`; bar lines, beats and the pickup from `roll.grid`.
    Returns the PNG written.
    """
    parts, bars = _roll_input(roll)
    fig = _figure(parts, bars, melody_track, title, config or PlotConfig(), given_until_tick)
    return _save(fig, out_png)


# ---------------------------------------------------------------------------------------------- helpers


def _score_input(score: Score, bar_ticks: Sequence[int] | None) -> tuple[list[_Part], _Bars]:
    """What `_figure` draws for a `Score`: its tracks, and bars from `bar_ticks` or the meter map."""
    tpb = score.ticks_per_beat
    starts = sorted({int(t) for t in (score.bar_starts() if bar_ticks is None else bar_ticks)}) or [0]
    sigs = [score.time_signature_at(s) for s in starts]
    beats = [_beat_ticks(sig.numerator, sig.denominator, tpb) for sig in sigs]
    end = max(score.end_tick, starts[-1] + sigs[-1].bar_ticks(tpb))
    parts = [_Part.from_notes(t.name, t.program, t.is_drum, t.notes) for t in score.tracks]
    return parts, _Bars(starts, end, beats, _is_pickup(starts, end))


def _roll_input(roll: Roll) -> tuple[list[_Part], _Bars]:
    """What `_figure` draws for a `Roll`: notes via `roll_to_notes`, bars and pickup from its grid."""
    grid = roll.grid
    parts = [_Part.from_notes(t.name, t.program, t.is_drum, roll_to_notes(t, grid)) for t in roll.tracks]
    starts = [grid.step_to_tick(b.start) for b in grid.bars]
    beats = [grid.step_to_tick(b.beat_steps) for b in grid.bars]
    end = grid.step_to_tick(max(grid.n_steps, grid.bars[-1].end))
    return parts, _Bars(starts, end, beats, grid.pickup_steps > 0 and grid.bars[0].start == 0)


def _beat_ticks(numerator: int, denominator: int, ticks_per_beat: int) -> int:
    """Ticks per felt beat: a dotted quarter in 6/8, 9/8, 12/8, else one denominator unit (as `Bar`)."""
    unit = max(1, round(ticks_per_beat * 4 / denominator))
    if denominator >= 8 and numerator % 3 == 0 and numerator > 3:
        return 3 * unit
    return unit


def _is_pickup(starts: Sequence[int], end: int) -> bool:
    """A pickup: the first bar starts at tick 0 and is shorter than the bar after it."""
    if len(starts) < 2 or starts[0] != 0:
        return False
    following = (starts[2] if len(starts) > 2 else end) - starts[1]
    return starts[1] - starts[0] < following


def _bar_numbers(bars: _Bars) -> list[int]:
    """Number of each bar: 1 for the first full bar, 0 for a pickup."""
    first = 0 if bars.pickup else 1
    return [first + i for i in range(len(bars.starts))]


def _rects_path(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> MplPath:
    """All the rectangles [x0, x1] x [y0, y1] (arrays of shape=(N,)) as one compound path.

    One path per track, drawn by one `PathPatch`, is the fastest way through Agg: 20,000 notes
    cost a few milliseconds instead of one Python `Path` object per note (as a PatchCollection,
    PolyCollection or `broken_barh` would build).
    """
    verts = np.empty((x0.size, 5, 2))
    verts[:, 0, 0], verts[:, 0, 1] = x0, y0
    verts[:, 1, 0], verts[:, 1, 1] = x1, y0
    verts[:, 2, 0], verts[:, 2, 1] = x1, y1
    verts[:, 3, 0], verts[:, 3, 1] = x0, y1
    verts[:, 4] = verts[:, 0]
    codes = np.full((x0.size, 5), MplPath.LINETO, dtype=MplPath.code_type)
    codes[:, 0], codes[:, 4] = MplPath.MOVETO, MplPath.CLOSEPOLY
    return MplPath(verts.reshape(-1, 2), codes.ravel())


def _vlines(ax: Axes, xs: Sequence[float], color: str, linewidth: float, zorder: float) -> None:
    """Vertical lines at `xs` (data) across the axes, as one path (see `_rects_path`): `Axes.vlines`
    builds a `Path` per line, 0.4 s for the 10,000 bar lines of 10,000 one-step bars of 1/128."""
    if not len(xs):
        return
    x = np.asarray(xs, float)
    verts = np.stack([np.column_stack([x, np.zeros_like(x)]), np.column_stack([x, np.ones_like(x)])], axis=1)
    codes = np.tile(np.array([MplPath.MOVETO, MplPath.LINETO], dtype=MplPath.code_type), len(x))
    path = MplPath(verts.reshape(-1, 2), codes)
    _add(ax, PathPatch(path, fill=False, edgecolor=color, linewidth=linewidth, transform=ax.get_xaxis_transform(), zorder=zorder))


def _add(ax: Axes, patch: PathPatch) -> None:
    """Add `patch` without the per-segment data-limit update of `add_patch` (we set the limits)."""
    ax.add_artist(patch)


def _bar_px(bars: _Bars, px_per_tick: float) -> float:
    """Width in pixels of a typical (median) bar."""
    lengths = np.diff([*bars.starts, bars.end])
    return float(np.median(lengths)) * px_per_tick if lengths.size else 1e9


def _rows(bars: _Bars, numbers: list[int], cfg: PlotConfig) -> list[list[int]]:
    """Bar indices of each row: one row for a short piece, else `bars_per_row` bars a row (more when
    that would need over `max_rows` rows). A pickup joins the first row."""
    full = [i for i, n in enumerate(numbers) if n >= 1]
    if len(full) <= cfg.one_row_bars:
        return [list(range(len(numbers)))]
    per_row = max(cfg.bars_per_row, -(-len(full) // cfg.max_rows))
    rows = [list(range(len(numbers)))[k : k + per_row] for k in range(0, len(numbers), per_row)]
    if numbers[0] == 0:  # the pickup rides with bars 1..per_row
        rows = [[0, *full[k : k + per_row]] if k == 0 else full[k : k + per_row] for k in range(0, len(full), per_row)]
    return rows


_DRUM_NAMES = {
    35: "Kick",
    36: "Kick",
    37: "Side stick",
    38: "Snare",
    39: "Clap",
    40: "Snare",
    41: "Low tom",
    42: "Hi-hat",
    43: "Low tom",
    44: "Pedal hi-hat",
    45: "Mid tom",
    46: "Open hi-hat",
    47: "Mid tom",
    48: "High tom",
    49: "Crash",
    50: "High tom",
    51: "Ride",
    52: "China",
    53: "Ride bell",
    54: "Tambourine",
    55: "Splash",
    56: "Cowbell",
    57: "Crash",
    59: "Ride",
}


def _drum_name(pitch: int) -> str:
    """A short name of a GM drum sound ('Kick', 'Hi-hat'), else pretty_midi's, else the number."""
    return _DRUM_NAMES.get(pitch) or pretty_midi.note_number_to_drum_name(pitch) or str(pitch)


def _text_size(renderer, text: str, size: float) -> tuple[float, float]:
    """Width and height in pixels of `text` at font `size` (points)."""
    w, h, _d = renderer.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return w, h


def _draw_grid(ax: Axes, bars: _Bars, numbers: list[int], lo: float, hi: float, px_per_tick: float, cfg: PlotConfig) -> None:
    """Beat lines (where far enough apart), bar lines, and the end line, between ticks `lo` and `hi`."""
    inside = np.array([t for t in [*bars.starts, bars.end] if lo <= t <= hi], float)
    # one line per half pixel: bars closer than that (10,000 one-step bars of 1/128) are one band
    # either way, and Agg strokes every line it is given (0.25 s for 10,000)
    _, first = np.unique(np.round(inside * px_per_tick * 2.0), return_index=True)
    _vlines(ax, inside[np.sort(first)], cfg.bar_line_color, 1.0, 1.5)
    beats: list[int] = []
    bar_ends = [*bars.starts[1:], bars.end]
    for start, stop, beat in zip(bars.starts, bar_ends, bars.beats, strict=True):
        if lo <= start < hi and beat * px_per_tick >= 8:  # only where beats are far enough apart to read
            beats.extend(range(stop - beat, start, -beat))  # counted back from the bar end: fits pickups
    _vlines(ax, beats, cfg.beat_line_color, 0.7, 1.2)


def _set_bar_ticks(ax: Axes, bars: _Bars, numbers: list[int], row: list[int], px_per_tick: float, label_px: float) -> None:
    """Number the row's bars 1, 1+N, ... with N (1, 2, 4, ...) so labels never crowd; the row's
    first label reads 'bar N'."""
    bar_px = _bar_px(bars, px_per_tick)
    every = 1
    while every * bar_px < label_px and every < 1 << 20:
        every *= 2
    shown = [(bars.starts[i], numbers[i]) for i in row if numbers[i] >= 1 and (numbers[i] - 1) % every == 0]
    if not shown and any(numbers[i] >= 1 for i in row):  # a row always names its first bar
        shown = [next((bars.starts[i], numbers[i]) for i in row if numbers[i] >= 1)]
    labels = [f"bar {n}" if k == 0 else str(n) for k, (_t, n) in enumerate(shown)]
    ax.set_xticks([t for t, _ in shown], labels)


def _draw_pitch_axis(ax: Axes, low: int, high: int, cfg: PlotConfig) -> None:
    """Crop to `low`..`high`, shade the black keys, a line under every C, name every C with its
    octave (every white key in a narrow range)."""
    ax.set_ylim(low - 0.5, high + 0.5)
    blacks = [p for p in range(low, high + 1) if p % 12 in _BLACK_KEYS]
    if blacks:
        y = np.array(blacks, float)
        path = _rects_path(np.zeros_like(y), np.ones_like(y), y - 0.5, y + 0.5)
        _add(ax, PathPatch(path, facecolor=cfg.black_key_color, edgecolor="none", transform=ax.get_yaxis_transform(), zorder=0.5))
    cs = [p for p in range(low, high + 1) if p % 12 == 0]
    if cs:
        ax.hlines([c - 0.5 for c in cs], 0, 1, transform=ax.get_yaxis_transform(), colors=cfg.octave_line_color, linewidths=1.0, zorder=0.6)
    # Every C; a narrow range (an octave or so, at most one C) names every white key instead.
    ticks = cs if high - low > 15 else [p for p in range(low, high + 1) if p % 12 not in _BLACK_KEYS]
    ax.set_yticks(ticks, [pretty_midi.note_number_to_name(p) for p in ticks])


def _draw_notes(
    ax: Axes,
    parts: list[_Part],
    melodic: list[int],
    melody: int | None,
    colors: list[str],
    lo: float,
    hi: float,
    px_per_tick: float,
    outline: float,
    cfg: PlotConfig,
) -> None:
    """The notes of the melodic tracks that sound between ticks `lo` and `hi`, one path per track."""
    min_width = 1.0 / px_per_tick  # every note at least a pixel wide
    for i in melodic:
        part = parts[i]
        keep = (part.ends > lo) & (part.starts < hi)
        if not keep.any():
            continue
        x0 = part.starts[keep].astype(float)
        pitches = part.pitches[keep]
        path = _rects_path(x0, np.maximum(part.ends[keep], x0 + min_width), pitches - cfg.note_height / 2, pitches + cfg.note_height / 2)
        if i == melody:
            patch = PathPatch(path, facecolor=colors[i], edgecolor=cfg.melody_edge_color, linewidth=outline, zorder=4)
        else:
            patch = PathPatch(path, facecolor=colors[i], edgecolor="none", alpha=cfg.accompaniment_alpha, zorder=3)
        _add(ax, patch)


def _draw_drums(ax: Axes, drums: list[tuple[_Part, str]], pitches: list[int], lo: float, hi: float, named: bool) -> None:
    """Drum hits between ticks `lo` and `hi` as short vertical ticks, one row per drum sound in
    `pitches` (kick at the bottom), named when `named`."""
    for part, color in drums:
        keep = (part.starts >= lo) & (part.starts < hi)
        ys = np.searchsorted(pitches, part.pitches[keep]).astype(float)  # row of each hit's drum sound
        xs = part.starts[keep].astype(float)
        verts = np.stack([np.stack([xs, ys - 0.35], -1), np.stack([xs, ys + 0.35], -1)], axis=1)
        codes = np.tile(np.array([MplPath.MOVETO, MplPath.LINETO], MplPath.code_type), xs.size)
        _add(ax, PathPatch(MplPath(verts.reshape(-1, 2), codes), fill=False, edgecolor=color, linewidth=2.5, zorder=3))
    ax.set_ylim(-0.6, len(pitches) - 0.4)
    if named:
        ax.set_yticks(range(len(pitches)), [_drum_name(p) for p in pitches])
    else:
        ax.set_yticks([])


_PAD_PT = 4.0  # room around the figure's edges and between its parts, in points


def _figure(
    parts: list[_Part], bars: _Bars, melody_track: int | None, title: str | None, cfg: PlotConfig, given_until: int | None = None
) -> Figure:
    """The one drawing routine behind `plot_score` and `plot_roll`: a Figure on its own Agg canvas.

    Rows of bars one under the other, each a pitch roll (and a drum band under it when there are
    drums), all on one time scale and one pitch range; a title and the legend above the first row,
    from the left (the page's image buttons sit at the top right). Placed by hand from measured
    text sizes: constrained layout would draw the whole figure once more to measure it.
    """
    if melody_track is not None and parts and not 0 <= melody_track < len(parts):
        raise ValueError(f"melody_track={melody_track} but the score has {len(parts)} tracks")
    melody = melody_track if melody_track is not None and parts and not parts[melody_track].is_drum else None

    # 1. Colors: the melody's own, then the palette in turn for every other track (drums included).
    colors = track_colours(len(parts), melody, cfg.colors, cfg.melody_color)

    # 2. What is drawn: drums never enter the pitch axis (they get a band of their own, so a kick
    # (35) or a cymbal (81) cannot stretch the pitch range), rows of bars, one time scale.
    melodic = [i for i, p in enumerate(parts) if not p.is_drum and p.n_notes]
    drums = [i for i, p in enumerate(parts) if p.is_drum and p.n_notes]
    drum_pitches = sorted({int(p) for i in drums for p in parts[i].pitches})
    numbers = _bar_numbers(bars)
    x_right = max(bars.end, max((int(p.ends.max()) for p in parts if p.n_notes), default=0))
    rows = _rows(bars, numbers, cfg)
    spans = [
        (bars.starts[r[0]] if k else min(0, bars.starts[0]), bars.starts[rows[k + 1][0]] if k + 1 < len(rows) else x_right)
        for k, r in enumerate(rows)
    ]
    longest = max(b - a for a, b in spans) or 1
    if melodic:
        low = max(0, min(int(parts[i].pitches.min()) for i in melodic) - cfg.pitch_margin)
        high = min(127, max(int(parts[i].pitches.max()) for i in melodic) + cfg.pitch_margin)
    else:
        low, high = cfg.empty_pitch_range
    has_pitch = bool(melodic) or not drums

    # 3. Sizes in pixels, from the text they hold.
    fig = Figure(figsize=(cfg.width, cfg.height), dpi=cfg.dpi, facecolor=cfg.background)
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    fs = cfg.font_size
    fig_w = cfg.width * cfg.dpi
    pt = cfg.dpi / 72.0
    pad = _PAD_PT * pt * cfg.scale
    _, line_h = _text_size(renderer, "C4 bar 8", fs)
    tick_room = (rcParams["ytick.major.size"] + rcParams["ytick.major.pad"]) * pt
    y_labels = [pretty_midi.note_number_to_name(p) for p in range(low, high + 1)] if has_pitch else []
    drum_row_px = 1.5 * line_h
    band_px = 0.0
    named = False
    if drums:
        band_px = len(drum_pitches) * drum_row_px if has_pitch else max(cfg.min_row_px, len(drum_pitches) * drum_row_px)
        if has_pitch and band_px > 0.6 * cfg.height * cfg.dpi:  # many sounds: thinner rows, unnamed
            band_px = 0.6 * cfg.height * cfg.dpi
        named = band_px / len(drum_pitches) >= line_h
        if named:
            y_labels += [_drum_name(p) for p in drum_pitches]
    left = pad + max((_text_size(renderer, t, fs)[0] for t in y_labels), default=0.0) + tick_room
    right = pad + _text_size(renderer, "888", fs)[0] / 2
    plot_w = max(0.3 * fig_w, fig_w - left - right)
    px_per_tick = plot_w / longest
    pitch_px = 0.0
    if has_pitch:
        pitch_px = min(cfg.height * cfg.dpi, max(cfg.min_row_px, (high - low + 1) * cfg.px_per_semitone))
    gap = 0.6 * line_h
    below = tick_room + line_h + 1.6 * gap  # bar numbers under a row, and room to the next row

    # 4. Header: title, then the legend in as many columns as fit left of the image buttons.
    title_h = (_text_size(renderer, title, 1.15 * fs)[1] + gap) if title else 0.0
    legend = None
    if parts:
        order = ([melody] if melody is not None else []) + [i for i in range(len(parts)) if i != melody]
        handles = [
            Patch(
                facecolor=colors[i],
                edgecolor=cfg.melody_edge_color if i == melody else "none",
                alpha=None if i == melody or parts[i].is_drum else cfg.accompaniment_alpha,
                label=legend_label(parts[i].name, parts[i].program, parts[i].is_drum, i == melody)
                + ("" if parts[i].n_notes else " (silent)"),
            )
            for i in order[: cfg.legend_entries if len(order) > cfg.legend_entries else None]
        ]
        if len(order) > cfg.legend_entries:  # the rest in one line: a legend of 65 tracks filled the header and took 0.6 s to draw
            handles[-1] = Patch(facecolor="none", edgecolor="none", label=f"and {len(order) - cfg.legend_entries + 1} more tracks")
        if given_until is not None:
            handles.append(Patch(facecolor=cfg.added_color, edgecolor=cfg.boundary_color, linewidth=0.8, label="added by the model"))
        room = fig_w - 2 * pad - cfg.toolbar_px * cfg.scale

        def laid_out(ncols: int) -> Legend:  # a legend lays out once: each try is a new one
            return fig.legend(
                handles=handles,
                loc="upper left",
                frameon=False,
                fontsize=fs,
                ncols=ncols,
                borderaxespad=0.0,
                borderpad=0.0,
                columnspacing=1.2,
                handlelength=1.2,
            )

        def width(ncols: int) -> float:
            tried = laid_out(ncols)
            measured = tried.get_window_extent(renderer).width
            tried.remove()
            return measured

        # The most columns that fit, by bisection: fewer columns make a narrower legend (a song of 65
        # tracks took 64 layouts of 65 entries, 2 s, trying one column fewer at a time).
        fits, too_wide = 1, len(handles) + 1
        while too_wide - fits > 1:
            middle = (fits + too_wide) // 2
            fits, too_wide = (middle, too_wide) if width(middle) <= room else (fits, middle)
        legend = laid_out(fits)
    legend_h = legend.get_window_extent(renderer).height + gap if legend is not None else 0.0

    # 5. Rows, top down: the boundary's labels above its row, the pitch roll, the drum band, bar numbers.
    marker_row = None
    if given_until is not None:
        marker_row = next((k for k, (a, b) in enumerate(spans) if a <= given_until < b), len(spans) - 1)
    row_h = [
        (line_h + 0.3 * gap if k == marker_row else 0.0) + pitch_px + (band_px + (gap if has_pitch else 0.0) if drums else 0.0) + below
        for k in range(len(rows))
    ]
    fig_h = pad + title_h + legend_h + sum(row_h) + pad
    fig.set_size_inches(cfg.width, fig_h / cfg.dpi)
    if title:
        fig.text(pad / fig_w, 1 - pad / fig_h, title, ha="left", va="top", fontsize=1.15 * fs)
    if legend is not None:
        legend.set_bbox_to_anchor((pad / fig_w, 1 - (pad + title_h) / fig_h), transform=fig.transFigure)

    outline = 0.9 if _bar_px(bars, px_per_tick) >= 40 else 0.5  # thinner as notes shrink
    top = pad + title_h + legend_h  # pixels from the top
    for k, (row, (a, b)) in enumerate(zip(rows, spans, strict=True)):
        top += line_h + 0.3 * gap if k == marker_row else 0.0
        width = plot_w * (b - a) / longest
        axs = []
        if has_pitch:
            axs.append(fig.add_axes((left / fig_w, 1 - (top + pitch_px) / fig_h, width / fig_w, pitch_px / fig_h)))
            top += pitch_px + (gap if drums else 0.0)
        if drums:
            axs.append(fig.add_axes((left / fig_w, 1 - (top + band_px) / fig_h, width / fig_w, band_px / fig_h)))
            top += band_px
        top += below
        lo = a - 0.004 * longest if k == 0 else a  # a hair of room so a note at tick 0 clears the axis line
        for ax in axs:
            ax.set_facecolor(cfg.background)
            ax.tick_params(labelsize=fs, labelbottom=False, bottom=False)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
            ax.set_xlim(lo, b)
            _draw_grid(ax, bars, numbers, a, b, px_per_tick, cfg)
            if given_until is not None and given_until < b:
                ax.axvspan(max(a, given_until), b, facecolor=cfg.added_color, alpha=cfg.added_alpha, edgecolor="none", zorder=0.7)
            if k == marker_row:
                ax.axvline(given_until, color=cfg.boundary_color, linewidth=2.5, zorder=5)
        if has_pitch:
            _draw_pitch_axis(axs[0], low, high, cfg)
            _draw_notes(axs[0], parts, melodic, melody, colors, a, b, px_per_tick, outline, cfg)
            if not melodic and not drums:
                axs[0].text(0.5, 0.5, "no notes", transform=axs[0].transAxes, ha="center", va="center", fontsize=fs * 1.5, color="#777777")
        if drums:
            _draw_drums(axs[-1], [(parts[i], colors[i]) for i in drums], drum_pitches, a, b, named)
        axs[-1].tick_params(labelbottom=True, bottom=True)
        _set_bar_ticks(axs[-1], bars, numbers, row, px_per_tick, _text_size(renderer, "188", fs)[0] + 2 * gap)
        if k == marker_row:
            _label_boundary(axs[0], given_until, a, b, px_per_tick, renderer, fs, cfg)
    return fig


def _label_boundary(ax: Axes, tick: int, lo: int, hi: int, px_per_tick: float, renderer, fs: float, cfg: PlotConfig) -> None:
    """'<- your melody' left of the boundary line and 'added by the model ->' right of it, above the
    row (each only where it fits inside the row)."""
    mine, added = "\u2190 your melody ", " added by the model \u2192"
    where = ax.get_xaxis_transform()
    if (tick - lo) * px_per_tick >= _text_size(renderer, mine, fs)[0]:
        ax.text(tick, 1.0, mine, transform=where, ha="right", va="bottom", fontsize=fs, color=cfg.boundary_color)
    if (hi - tick) * px_per_tick >= _text_size(renderer, added, fs)[0]:
        ax.text(tick, 1.0, added, transform=where, ha="left", va="bottom", fontsize=fs, color=cfg.boundary_color)


_PNG_COMPRESS_LEVEL = 3  # zlib: a few ms less than the default 6, files about 20% larger


def _save(fig: Figure, out_png: str | os.PathLike) -> Path:
    """Write `fig` as an RGB PNG (creating parent folders) and return its path.

    The canvas is drawn once and its pixels go straight to Pillow: the same pixels as `savefig`
    (the figure is opaque, so the alpha channel is dropped), without its machinery, at a faster
    compression level."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    with atomic_file(out) as f:  # a failed write leaves no half picture
        Image.fromarray(pixels).save(f, format="png", compress_level=_PNG_COMPRESS_LEVEL)
    return out
