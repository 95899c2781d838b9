"""Multi-track piano-roll pictures (PNG): the image a student sees after generating.

One overlaid view: every melodic track in its own color on a shared pitch axis, the melody on top
with a dark outline, bar lines numbered from the first full bar (a pickup stays unlabelled), and
drums as short ticks at their onsets in a band of their own under the pitch axis (one row per drum
sound, named when there is room). Drums never take part in the pitch axis, so GM drum keys (35-81)
cannot stretch the range of a melodic score. Velocity is not shown: every note is drawn alike.

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
from matplotlib.legend import Legend
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from studio.roll import Roll, roll_to_notes
from studio.score import Note, Score

__all__ = ["OKABE_ITO", "PlotConfig", "plot_roll", "plot_score"]

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

_BLACK_KEYS = frozenset({1, 3, 6, 8, 10})  # pitch classes of the black keys


@dataclass(frozen=True)
class PlotConfig:
    """How a piano roll looks. The default PNG is `width * dpi` x `height * dpi` = 1400 x 500 px.

    `colors` are used in turn for the non-melody tracks (cycling when there are more tracks);
    `pitch_margin` is the number of empty semitones shown below the lowest and above the highest note.
    """

    width: float = 14.0
    height: float = 5.0
    dpi: int = 100
    colors: tuple[str, ...] = (
        OKABE_ITO["blue"],
        OKABE_ITO["bluish_green"],
        OKABE_ITO["reddish_purple"],
        OKABE_ITO["sky_blue"],
        OKABE_ITO["orange"],
        OKABE_ITO["yellow"],
        OKABE_ITO["grey"],
    )
    melody_color: str = OKABE_ITO["vermillion"]
    melody_edge_color: str = "#1A1A1A"
    accompaniment_alpha: float = 0.8
    note_height: float = 0.8  # in semitones
    pitch_margin: int = 2  # in semitones
    background: str = "#FFFFFF"
    black_key_color: str = "#F1F1F1"  # faint shading of the black-key rows
    octave_line_color: str = "#D0D0D0"  # line under every C
    bar_line_color: str = "#8C8C8C"
    beat_line_color: str = "#E2E2E2"
    font_size: float = 9.0
    empty_pitch_range: tuple[int, int] = (48, 72)  # pitch axis of a score with no melodic notes


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
) -> Path:
    """Draw `score` as one overlaid multi-track piano roll and save it as a PNG.

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
    return _save(_figure(parts, bars, melody_track, title, config or PlotConfig()), out_png)


def plot_roll(
    roll: Roll,
    out_png: str | os.PathLike,
    melody_track: int | None = 0,
    title: str | None = None,
    config: PlotConfig | None = None,
) -> Path:
    """Draw a `Roll` (tracks on the 16th-note grid) like `plot_score`, with the grid's own bars.

    Notes come from `studio.roll.roll_to_notes`; bar lines, beats and the pickup from `roll.grid`.
    Returns the PNG written.
    """
    parts, bars = _roll_input(roll)
    return _save(_figure(parts, bars, melody_track, title, config or PlotConfig()), out_png)


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


def _label(name: str, program: int, is_drum: bool, is_melody: bool) -> str:
    """Legend text: 'Bass (Acoustic Bass)', 'Drums', 'Melody: Lead (Flute)'."""
    instrument = "Drums" if is_drum else pretty_midi.program_to_instrument_name(int(program) % 128)
    name = name.strip()
    text = instrument if not name or name.lower() == instrument.lower() else f"{name} ({instrument})"
    if is_melody:
        return text if name.lower() == "melody" else f"Melody: {text}"
    return text


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


def _add(ax: Axes, patch: PathPatch) -> None:
    """Add `patch` without the per-segment data-limit update of `add_patch` (we set the limits)."""
    ax.add_artist(patch)


def _bar_px(bars: _Bars, px_per_tick: float) -> float:
    """Width in pixels of a typical (median) bar."""
    lengths = np.diff([*bars.starts, bars.end])
    return float(np.median(lengths)) * px_per_tick if lengths.size else 1e9


def _draw_bar_lines(ax: Axes, bars: _Bars, numbers: list[int], px_per_tick: float, cfg: PlotConfig) -> None:
    """Faint beat lines, thin bar lines, thicker every 4 bars (bars 1, 5, 9, ...) when there are many."""
    many = len(bars.starts) > 16
    dense = _bar_px(bars, px_per_tick) < 12  # e.g. 200 bars: plain bar lines fade to a light grid
    fours = [t for t, n in zip(bars.starts, numbers, strict=True) if many and n >= 1 and (n - 1) % 4 == 0]
    plain = sorted(set(bars.starts) - set(fours))
    ax.vlines(plain, 0, 1, transform=ax.get_xaxis_transform(), colors=cfg.bar_line_color,
              linewidths=0.5 if dense else 0.6, alpha=0.35 if dense else 1.0, zorder=1.5)
    if fours:
        ax.vlines(fours, 0, 1, transform=ax.get_xaxis_transform(), colors=cfg.bar_line_color,
                  linewidths=0.8 if dense else 1.1, zorder=1.5)
    ax.axvline(bars.end, color=cfg.bar_line_color, linewidth=1.1, zorder=1.5)
    beats: list[int] = []
    bar_ends = [*bars.starts[1:], bars.end]
    for start, stop, beat in zip(bars.starts, bar_ends, bars.beats, strict=True):
        if beat * px_per_tick >= 8:  # only where beats are far enough apart to read
            beats.extend(range(stop - beat, start, -beat))  # counted back from the bar end: fits pickups
    if beats:
        ax.vlines(beats, 0, 1, transform=ax.get_xaxis_transform(), colors=cfg.beat_line_color,
                  linewidths=0.5, zorder=1.2)


def _set_bar_ticks(ax: Axes, bars: _Bars, numbers: list[int], px_per_tick: float) -> None:
    """Label the bar lines 1, 1+N, 1+2N, ... with N (1, 2, 4, 8, ...) so labels never crowd."""
    bar_px = _bar_px(bars, px_per_tick)
    every = 1
    while every * bar_px < 28 and every < 1 << 20:
        every *= 2
    shown = [(t, n) for t, n in zip(bars.starts, numbers, strict=True) if n >= 1 and (n - 1) % every == 0]
    ax.set_xticks([t for t, _ in shown], [str(n) for _, n in shown])
    ax.set_xlabel("bar")


def _draw_pitch_axis(ax: Axes, low: int, high: int, cfg: PlotConfig) -> None:
    """Crop to `low`..`high`, shade the black keys, name every C (every white key in a narrow range)."""
    ax.set_ylim(low - 0.5, high + 0.5)
    blacks = [p for p in range(low, high + 1) if p % 12 in _BLACK_KEYS]
    if blacks:
        y = np.array(blacks, float)
        path = _rects_path(np.zeros_like(y), np.ones_like(y), y - 0.5, y + 0.5)
        _add(ax, PathPatch(path, facecolor=cfg.black_key_color, edgecolor="none",
                           transform=ax.get_yaxis_transform(), zorder=0.5))
    cs = [p for p in range(low, high + 1) if p % 12 == 0]
    if cs:
        ax.hlines([c - 0.5 for c in cs], 0, 1, transform=ax.get_yaxis_transform(),
                  colors=cfg.octave_line_color, linewidths=0.6, zorder=0.6)
    # Every C; a narrow range (an octave or so, at most one C) names every white key instead.
    ticks = cs if high - low > 15 else [p for p in range(low, high + 1) if p % 12 not in _BLACK_KEYS]
    ax.set_yticks(ticks, [pretty_midi.note_number_to_name(p) for p in ticks])
    ax.set_ylabel("pitch")


def _draw_drums(ax: Axes, drums: list[tuple[_Part, str]], band_px: float, cfg: PlotConfig) -> None:
    """Drum hits as short vertical ticks, one row per drum sound (kick at the bottom)."""
    pitches = sorted({int(p) for part, _ in drums for p in part.pitches})
    for part, color in drums:
        ys = np.searchsorted(pitches, part.pitches).astype(float)  # row of each hit's drum sound
        xs = part.starts.astype(float)
        verts = np.stack([np.stack([xs, ys - 0.35], -1), np.stack([xs, ys + 0.35], -1)], axis=1)
        codes = np.tile(np.array([MplPath.MOVETO, MplPath.LINETO], MplPath.code_type), xs.size)
        _add(ax, PathPatch(MplPath(verts.reshape(-1, 2), codes), fill=False, edgecolor=color,
                           linewidth=1.4, zorder=3))
    ax.set_ylim(-0.6, len(pitches) - 0.4)
    if band_px / len(pitches) >= 9:
        names = [pretty_midi.note_number_to_drum_name(p) or str(p) for p in pitches]
        ax.set_yticks(range(len(pitches)), [n.replace("Acoustic ", "") for n in names],
                      fontsize=cfg.font_size * 0.75)
    else:
        ax.set_yticks([])
    ax.set_ylabel("drums")


def _figure(parts: list[_Part], bars: _Bars, melody_track: int | None, title: str | None,
            cfg: PlotConfig) -> Figure:
    """The one drawing routine behind `plot_score` and `plot_roll`: a Figure on its own Agg canvas."""
    if melody_track is not None and parts and not 0 <= melody_track < len(parts):
        raise ValueError(f"melody_track={melody_track} but the score has {len(parts)} tracks")
    melody = melody_track if melody_track is not None and parts and not parts[melody_track].is_drum else None

    # Colors: the melody's own, then the palette in turn for every other track (drums included).
    colors: list[str] = []
    for i in range(len(parts)):
        others = len(colors) - (melody is not None and i > melody)  # tracks before i, melody aside
        colors.append(cfg.melody_color if i == melody else cfg.colors[others % len(cfg.colors)])

    # Drums never enter the pitch axis: they get their own band, so a kick (35) or a cymbal (81)
    # cannot stretch the pitch range of a melodic score.
    melodic = [i for i, p in enumerate(parts) if not p.is_drum and p.n_notes]
    drums = [i for i, p in enumerate(parts) if p.is_drum and p.n_notes]

    fig = Figure(figsize=(cfg.width, cfg.height), dpi=cfg.dpi, facecolor=cfg.background)  # laid out by `_layout`
    FigureCanvasAgg(fig)
    x_right = max(bars.end, max((int(p.ends.max()) for p in parts if p.n_notes), default=0))
    x_left = min(0, bars.starts[0])
    x_left -= 0.004 * (x_right - x_left)  # a hair of room so a note at tick 0 clears the axis line
    axes_px = cfg.width * cfg.dpi * 0.8  # about the plot area left beside the legend
    px_per_tick = axes_px / max(1, x_right - x_left)
    numbers = _bar_numbers(bars)

    if melodic and drums:  # the drum band grows with its rows (drum sounds), up to 45% of the roll
        band = min(0.45, 0.1 + 0.06 * len({int(p) for i in drums for p in parts[i].pitches}))
        axs = list(fig.subplots(2, 1, sharex=True, height_ratios=[1, band]))
        band_px = cfg.height * cfg.dpi * 0.8 * band / (1 + band)
    else:
        axs = [fig.subplots()]  # melodic only, drums only (the band takes the picture), or empty
        band_px = cfg.height * cfg.dpi * 0.8
    for ax in axs:
        ax.set_facecolor(cfg.background)
        ax.tick_params(labelsize=cfg.font_size)
        ax.yaxis.label.set_size(cfg.font_size)
        ax.xaxis.label.set_size(cfg.font_size)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        _draw_bar_lines(ax, bars, numbers, px_per_tick, cfg)
        ax.set_xlim(x_left, x_right)

    if melodic or not drums:
        ax = axs[0]
        if melodic:
            low = min(int(parts[i].pitches.min()) for i in melodic) - cfg.pitch_margin
            high = max(int(parts[i].pitches.max()) for i in melodic) + cfg.pitch_margin
        else:
            low, high = cfg.empty_pitch_range
        _draw_pitch_axis(ax, max(0, low), min(127, high), cfg)
        min_width = 1.0 / px_per_tick  # every note at least a pixel wide
        bar_px = _bar_px(bars, px_per_tick)
        outline = 0.9 if bar_px >= 40 else 0.5 if bar_px >= 12 else 0.25  # thinner as notes shrink
        for i in melodic:
            part = parts[i]
            x0 = part.starts.astype(float)
            path = _rects_path(x0, np.maximum(part.ends, x0 + min_width),
                               part.pitches - cfg.note_height / 2, part.pitches + cfg.note_height / 2)
            if i == melody:
                patch = PathPatch(path, facecolor=colors[i], edgecolor=cfg.melody_edge_color,
                                  linewidth=outline, zorder=4)
            else:
                patch = PathPatch(path, facecolor=colors[i], edgecolor="none",
                                  alpha=cfg.accompaniment_alpha, zorder=3)
            _add(ax, patch)
        if not melodic:  # and no drums either
            ax.text(0.5, 0.5, "no notes", transform=ax.transAxes, ha="center", va="center",
                    fontsize=cfg.font_size * 2, color="#777777")
    if drums:
        _draw_drums(axs[-1], [(parts[i], colors[i]) for i in drums], band_px, cfg)
    for ax in axs[:-1]:
        ax.tick_params(labelbottom=False, bottom=False)
    _set_bar_ticks(axs[-1], bars, numbers, px_per_tick)
    title_text = axs[0].set_title(title, fontsize=cfg.font_size * 1.3, loc="left") if title else None

    if parts:
        order = ([melody] if melody is not None else []) + [i for i in range(len(parts)) if i != melody]
        handles = [
            Patch(facecolor=colors[i], edgecolor=cfg.melody_edge_color if i == melody else "none",
                  alpha=None if i == melody or parts[i].is_drum else cfg.accompaniment_alpha,
                  label=_label(parts[i].name, parts[i].program, parts[i].is_drum, i == melody)
                  + ("" if parts[i].n_notes else " (silent)"))
            for i in order
        ]
        legend = fig.legend(handles=handles, loc="upper right", frameon=False, fontsize=cfg.font_size,
                            ncols=1 if len(handles) <= 20 else 2, borderaxespad=0.0)
    else:
        legend = None
    _layout(fig, axs, band if melodic and drums else 0.0, title_text, legend)
    return fig


_PAD_PT = 3.0  # room around the figure's edges and between its parts, as constrained layout leaves (3 pt)


def _layout(fig: Figure, axs: list[Axes], band: float, title: Text | None, legend: Legend | None) -> None:
    """Place the axes (and the legend at the top right) from the sizes of the labels around them.

    What constrained layout would do for this one arrangement (the pitch axes, optionally a drum
    band of relative height `band` under it, a left title, the legend right of the axes), without
    its cost: constrained layout draws the whole figure once to measure it before the real draw.
    Only the labels are measured here, and their metrics are cached for the draw that follows.
    """
    renderer = fig.canvas.get_renderer()
    fig_w, fig_h = fig.bbox.width, fig.bbox.height
    pt = fig.dpi / 72.0
    pad = _PAD_PT * pt

    def extents(texts) -> list[Bbox]:
        return [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]

    def tick_room(axis: str) -> float:  # tick mark and the gap to its label, in pixels
        return (rcParams[f"{axis}tick.major.size"] + rcParams[f"{axis}tick.major.pad"]) * pt

    left = 0.0
    top_label = 0.0  # half the height of a y label, which may stand out above the axes
    for ax in axs:
        labels = extents(ax.get_yticklabels())
        width = max((b.width for b in labels), default=0.0) + (tick_room("y") if labels else 0.0)
        name = extents([ax.yaxis.label])
        if name:
            width += name[0].width + ax.yaxis.labelpad * pt
        left = max(left, width)
        top_label = max(top_label, max((b.height / 2 for b in labels), default=0.0))
    bottom_ax = axs[-1]
    xlabels = extents(bottom_ax.get_xticklabels())
    bottom = max((b.height for b in xlabels), default=0.0) + (tick_room("x") if xlabels else 0.0)
    name = extents([bottom_ax.xaxis.label])
    if name:
        bottom += name[0].height + bottom_ax.xaxis.labelpad * pt
    top = top_label
    if title is not None:
        top = max(top, title.get_window_extent(renderer).height + rcParams["axes.titlepad"] * pt)
    right = max((b.width / 2 for b in xlabels), default=0.0)  # the last bar number may stand at the right edge
    if legend is not None:
        legend.set_bbox_to_anchor((1.0 - pad / fig_w, 1.0 - pad / fig_h))  # its top right corner, in figure fractions
        right = max(right, legend.get_window_extent(renderer).width + pad)

    x0, x1 = (left + pad) / fig_w, 1.0 - (right + pad) / fig_w
    y0, y1 = (bottom + pad) / fig_h, 1.0 - (top + pad) / fig_h
    if x1 - x0 < 0.1 or y1 - y0 < 0.1:  # labels too large for the picture: keep the axes visible
        x0, x1, y0, y1 = min(x0, 0.45), max(x1, 0.55), min(y0, 0.45), max(y1, 0.55)
    if len(axs) == 1:
        axs[0].set_position([x0, y0, x1 - x0, y1 - y0])
        return
    gap = 2 * pad / fig_h
    height = y1 - y0 - gap
    low = height * band / (1.0 + band)
    axs[0].set_position([x0, y0 + low + gap, x1 - x0, height - low])
    axs[1].set_position([x0, y0, x1 - x0, low])


_PNG_COMPRESS_LEVEL = 3  # zlib: 4 ms less than the default 6 for a 1400 x 500 roll, files about 20% larger (~40 KB)


def _save(fig: Figure, out_png: str | os.PathLike) -> Path:
    """Write `fig` as an RGB PNG (creating parent folders) and return its path.

    The canvas is drawn once and its pixels go straight to Pillow: the same pixels as `savefig`
    (the figure is opaque, so the alpha channel is dropped), without its machinery, at a faster
    compression level."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    Image.fromarray(pixels).save(out, format="png", compress_level=_PNG_COMPRESS_LEVEL)
    return out
