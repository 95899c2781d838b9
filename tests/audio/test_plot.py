"""Tests of `studio.audio.plot`: the piano-roll PNG a student sees after generating."""

from __future__ import annotations

import importlib
import itertools
import threading
import time
from types import ModuleType

import numpy as np
import pytest

from studio.core.roll import make_grid, score_to_roll
from studio.core.score import Note, Score, TimeSignature, Track

TPB = 480
BEAT = TPB
BAR = 3 * BEAT  # 3/4


@pytest.fixture(autouse=True)
def plot(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """`studio.audio.plot`, imported with matplotlib's config/cache folder in a temporary directory."""
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mplconfig")))
    return importlib.import_module("studio.audio.plot")


def waltz(bars: int = 8, pickup_in_meter_map: bool = True) -> Score:
    """A 3/4 tune with a one-beat pickup: melody, bass, chords and drums."""
    melody = [Note(0, BEAT, 67)]
    line = [72, 71, 69, 67, 69, 71, 72, 74, 76, 74, 72, 71]
    for i in range(bars * 3 - 1):  # quarter notes, the last bar one beat short (it completes the pickup)
        start = BEAT + i * BEAT
        melody.append(Note(start, start + BEAT, line[i % len(line)], 100))
    roots = [48, 43, 45, 41]
    bass = [Note(BEAT + b * BAR, BEAT + b * BAR + 2 * BEAT, roots[b % 4], 80) for b in range(bars)]
    chords = [
        Note(BEAT + b * BAR + k * BEAT, BEAT + b * BAR + (k + 1) * BEAT, roots[b % 4] + 12 + iv, 70)
        for b in range(bars)
        for k in (1, 2)
        for iv in (0, 4, 7)
    ]
    drums = [Note(0, 60, 42)]
    for b in range(bars):
        s = BEAT + b * BAR
        drums += [Note(s + k * BEAT, s + k * BEAT + 60, pitch) for k, pitch in enumerate((36, 38, 81))]
    meter = [TimeSignature(0, 3, 4)]
    if pickup_in_meter_map:  # a 1/4 bar, then 3/4: the pickup written into the meter map
        meter = [TimeSignature(0, 1, 4), TimeSignature(BEAT, 3, 4)]
    return Score(
        TPB,
        [
            Track("Melody", 73, notes=melody),
            Track("Bass", 32, channel=1, notes=bass),
            Track("Chords", 0, channel=2, notes=chords),
            Track("Drums", 0, is_drum=True, channel=9, notes=drums),
        ],
        time_signatures=meter,
    )


def read_rgb(path) -> np.ndarray:
    """The PNG as uint8 RGB, shape=(H, W, 3)."""
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    if img.dtype != np.uint8:
        img = np.round(img * 255).astype(np.uint8)
    return img[..., :3]


def hex_rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=int)


def count_near(img: np.ndarray, rgb: np.ndarray, tol: int = 3) -> int:
    return int(np.all(np.abs(img.astype(int) - rgb) <= tol, axis=-1).sum())


def bar_labels(fig) -> dict[float, str]:
    """Labelled x ticks of every row: tick position -> text."""
    return {
        float(t): lab.get_text()
        for ax in fig.axes
        if ax.xaxis.get_tick_params()["labelbottom"]
        for t, lab in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)
    }


def pitch_axes(fig) -> list:
    """The pitch roll of each row, top down (the axes with named pitches)."""
    return [ax for ax in fig.axes if any(t.get_text()[:1] == "C" for t in ax.get_yticklabels())]


def test_plot_score_writes_a_colorful_png_of_the_expected_size(plot, tmp_path):
    cfg = plot.PlotConfig()
    out = plot.plot_score(waltz(), tmp_path / "sub" / "waltz.png", title="Waltz")
    assert out == tmp_path / "sub" / "waltz.png" and out.is_file()
    img = read_rgb(out)
    assert img.shape[1] == round(cfg.width * cfg.dpi) == 1200
    assert 500 < img.shape[0] < 1200  # 8 bars: two rows of four
    assert count_near(img, hex_rgb(cfg.melody_color)) > 500  # the melody, opaque, in its own color
    # Accompaniment is drawn at `accompaniment_alpha` over the white background.
    a = cfg.accompaniment_alpha
    for color in cfg.colors[:2]:  # bass, chords
        blended = np.round(a * hex_rgb(color) + (1 - a) * 255)
        assert count_near(img, blended, tol=4) > 200, color
    _, counts = np.unique(img.reshape(-1, 3), axis=0, return_counts=True)
    assert (counts >= 100).sum() >= 6  # background, shading, grid, melody, bass, chords...
    assert img.std() > 10  # not blank


def test_pickup_is_unlabelled_and_bar_one_is_the_first_full_bar(plot):
    score = waltz(pickup_in_meter_map=True)
    fig = plot._figure(*plot._score_input(score, None), 0, None, plot.PlotConfig())
    labels = bar_labels(fig)
    assert labels[float(BEAT)] == "bar 1" and labels[float(BEAT + BAR)] == "2"
    assert labels[float(BEAT + 4 * BAR)] == "bar 5"  # the second row names its first bar
    assert "0" not in labels.values() and 0.0 not in labels
    # Same picture when the meter map has no pickup but the caller gives the bar lines.
    plain = waltz(pickup_in_meter_map=False)
    fig2 = plot._figure(*plot._score_input(plain, score.bar_starts()), 0, None, plot.PlotConfig())
    assert bar_labels(fig2) == labels


def test_drums_do_not_stretch_the_pitch_axis_and_legend_names_instruments(plot):
    score = waltz()
    fig = plot._figure(*plot._score_input(score, None), 0, "t", plot.PlotConfig())
    melodic = [n.pitch for t in score.tracks if not t.is_drum for n in t.notes]
    for ax in pitch_axes(fig):  # every row on one pitch range, drums (36..81) left out
        assert ax.get_ylim() == (min(melodic) - 2 - 0.5, max(melodic) + 2 + 0.5)
    assert len(fig.axes) == 4  # two rows of a pitch roll and a drum band
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["Melody (Flute)", "Bass (Acoustic Bass)", "Chords (Acoustic Grand Piano)", "Drums"]
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["Kick", "Snare", "Hi-hat", "Open Triangle"]


def test_every_c_is_named_with_its_octave_and_has_a_line(plot):
    score = Score(TPB, [Track("Melody", 0, notes=[Note(0, BEAT, 40), Note(BEAT, 2 * BEAT, 86)])])
    fig = plot._figure(*plot._score_input(score, None), 0, None, plot.PlotConfig())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["C3", "C4", "C5", "C6"]
    heights = sorted({round(seg[0][1], 1) for c in ax.collections for seg in c.get_segments() if seg[0][1] == seg[1][1]})
    assert heights == [47.5, 59.5, 71.5, 83.5]  # a light line under every C


def test_text_is_at_least_12_px_when_shown_740_px_wide(plot):
    for cfg in (plot.PlotConfig(), plot.PlotConfig(width=9.0, height=3.6)):
        fig = plot._figure(*plot._score_input(waltz(), None), 0, "t", cfg)
        shown = 740 / (cfg.width * cfg.dpi)  # displayed pixels per picture pixel
        sizes = [t.get_fontsize() for ax in fig.axes for t in [*ax.get_xticklabels(), *ax.get_yticklabels()] if t.get_text()]
        sizes += [t.get_fontsize() for t in fig.legends[0].get_texts()]
        assert min(sizes) * cfg.dpi / 72 * shown >= 12 - 1e-6


def test_a_long_piece_wraps_into_rows_and_a_short_one_does_not(plot, tmp_path):
    cfg = plot.PlotConfig()
    short = plot._figure(*plot._score_input(waltz(4), None), 0, None, cfg)
    assert len(pitch_axes(short)) == 1
    long = plot._figure(*plot._score_input(waltz(16), None), 0, None, cfg)
    rows = pitch_axes(long)
    assert len(rows) == 4  # four bars a row
    boxes = [ax.get_position() for ax in rows]
    assert all(a.y0 > b.y1 for a, b in itertools.pairwise(boxes))  # one under the other
    assert all(abs(b.x0 - boxes[0].x0) < 1e-9 for b in boxes)
    firsts = [min(float(t) for t in ax.get_xticks()) for ax in long.axes if ax.xaxis.get_tick_params()["labelbottom"]]
    assert firsts == [BEAT + k * 4 * BAR for k in range(4)]  # each row numbers its own bars
    huge = plot._figure(*plot._score_input(waltz(64), None), 0, None, cfg)
    assert len(pitch_axes(huge)) == cfg.max_rows  # more bars a row rather than more rows
    img = read_rgb(plot.plot_score(waltz(16), tmp_path / "long.png"))
    assert img.shape[1] == 1200 and img.shape[0] > 1200  # not a thin strip


def test_the_end_of_the_students_bars_is_marked(plot, tmp_path):
    cfg = plot.PlotConfig()
    score = waltz(8)
    until = BEAT + 6 * BAR  # the student played the pickup and six bars, a model added two
    fig = plot._figure(*plot._score_input(score, None), 0, None, cfg, until)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "\u2190 your melody " in texts and " added by the model \u2192" in texts
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if list(ln.get_xdata()) == [until, until]]
    assert len(lines) == 2  # through the pitch roll and the drum band of the second row
    assert "added by the model" in [t.get_text() for t in fig.legends[0].get_texts()]
    plain = plot._figure(*plot._score_input(score, None), 0, None, cfg)
    assert not [t for ax in plain.axes for t in ax.texts]
    with_marker = read_rgb(plot.plot_score(score, tmp_path / "m.png", given_until_tick=until))
    without = read_rgb(plot.plot_score(score, tmp_path / "p.png"))
    assert with_marker.shape[1] == without.shape[1] and not np.array_equal(with_marker[-200:], without[-200:])


@pytest.mark.parametrize("config", [None, "small"], ids=["page", "learning-panel"])
def test_every_label_fits_in_the_picture_and_nothing_overlaps(plot, config):
    # The layout is computed from the labels' sizes (no constrained layout): the tick labels, title
    # and legend lie inside the figure, the title and legend above the rows and clear of the page's
    # image buttons (top right), each drum band under its row's pitch roll, the axes take most of
    # the picture.
    cfg = plot.PlotConfig() if config is None else plot.PlotConfig(width=9.0, height=3.6)
    score = waltz()
    score.tracks[2] = Track("A rather long name for the chords", 0, channel=2, notes=score.tracks[2].notes)
    fig = plot._figure(*plot._score_input(score, None), 0, "A title", cfg, BEAT + 6 * BAR)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    texts = [*fig.texts, *[t for ax in fig.axes for t in ax.texts]]
    texts += [t for ax in fig.axes for t in [*ax.get_xticklabels(), *ax.get_yticklabels()] if t.get_visible() and t.get_text()]
    texts += fig.legends[0].get_texts()
    texts = [t for t in texts if t.get_text()]
    assert len(texts) > 20 and "A title" in [t.get_text() for t in fig.texts]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, text.get_text()
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes]
    legend = fig.legends[0].get_window_extent(renderer)
    title = fig.texts[0].get_window_extent(renderer)
    assert legend.y0 > max(b.y1 for b in boxes) and title.y0 >= legend.y1
    assert legend.x1 < page.x1 - cfg.toolbar_px * cfg.scale
    for pitch, drums in zip(boxes[::2], boxes[1::2], strict=True):
        assert drums.y1 < pitch.y0 and pitch.x0 == drums.x0 and pitch.x1 == drums.x1
    for ax in fig.axes:  # y labels left of their axes
        assert max(t.get_window_extent(renderer).x1 for t in ax.get_yticklabels() if t.get_text()) < ax.get_window_extent(renderer).x0
    area = sum(b.width * b.height for b in boxes)
    assert area / (page.width * page.height) > 0.5


def test_melody_label_when_the_melody_track_has_another_name(plot):
    score = Score(TPB, [Track("Lead", 80, notes=[Note(0, 480, 62)]), Track("Pad", 89)])
    fig = plot._figure(*plot._score_input(score, None), 0, None, plot.PlotConfig())
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "Melody: Lead (Lead 1 (square))" and texts[1].startswith("Pad (Pad 2 (warm))")


def test_empty_score_gives_a_png_with_a_message(plot, tmp_path):
    out = plot.plot_score(Score(TPB), tmp_path / "empty.png")
    assert out.is_file() and read_rgb(out).shape[1] == 1200
    fig = plot._figure(*plot._score_input(Score(TPB, [Track("Melody")]), None), 0, None, plot.PlotConfig())
    assert "no notes" in [t.get_text() for t in fig.axes[0].texts]
    assert plot.plot_score(Score(TPB, [Track("Melody")]), tmp_path / "empty2.png").is_file()


def test_bad_melody_index_is_an_error(plot, tmp_path):
    with pytest.raises(ValueError, match="melody_track"):
        plot.plot_score(waltz(), tmp_path / "x.png", melody_track=7)


def test_twenty_thousand_notes_plot_fast(plot, tmp_path):
    rng = np.random.default_rng(0)
    bar = 4 * TPB
    tracks = []
    for k, (lo, hi) in enumerate([(60, 84), (28, 48), (48, 72), (50, 80), (35, 82)]):
        starts = np.sort(rng.integers(0, 200 * bar, 4000))
        lengths = rng.integers(60, 960, 4000)
        pitches = rng.integers(lo, hi, 4000)
        notes = [Note(int(s), int(s + d), int(p)) for s, d, p in zip(starts, lengths, pitches, strict=True)]
        tracks.append(Track(f"T{k}", 8 * k, is_drum=k == 4, notes=notes))
    score = Score(TPB, tracks)
    assert score.n_notes == 20_000
    t0 = time.perf_counter()
    out = plot.plot_score(score, tmp_path / "big.png")
    elapsed = time.perf_counter() - t0
    assert elapsed < 5.0, f"{elapsed:.2f} s"
    assert read_rgb(out).shape[1] == 1200
    # 200 bars: labels are thinned out (every Nth bar), never one per bar.
    fig = plot._figure(*plot._score_input(score, None), 0, None, plot.PlotConfig())
    shown = [int(v.removeprefix("bar ")) for v in bar_labels(fig).values()]
    assert 5 <= len(shown) <= 120 and min(shown) == 1  # 4 rows of 50 bars: a number every few bars
    assert len(pitch_axes(fig)) == plot.PlotConfig().max_rows


def test_plot_roll_uses_the_grid_bars(plot, tmp_path):
    score = waltz(pickup_in_meter_map=False)
    grid = make_grid(score, pickup_ticks=BEAT)
    roll = score_to_roll(score, grid)
    out = plot.plot_roll(roll, tmp_path / "roll.png", title="roll")
    img = read_rgb(out)
    assert img.shape[1] == 1200
    assert count_near(img, hex_rgb(plot.PlotConfig().melody_color)) > 500
    fig = plot._figure(*plot._roll_input(roll), 0, None, plot.PlotConfig())
    labels = bar_labels(fig)
    assert labels[float(BEAT)] == "bar 1" and labels[float(BEAT + BAR)] == "2" and 0.0 not in labels


def test_plots_from_several_threads_at_once_are_identical(plot, tmp_path):
    score = waltz()
    outs = [tmp_path / f"t{i}.png" for i in range(4)]
    threads = [threading.Thread(target=plot.plot_score, args=(score, out)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    images = [read_rgb(out) for out in outs]
    assert all(np.array_equal(images[0], img) for img in images[1:])


def test_bar_lines_closer_than_half_a_pixel_are_drawn_once(plot):
    """Issue 23: 10,000 one-step bars (a 1/128 meter) are a band of bar lines either way; the grid
    strokes at most one line per half pixel (Agg drew every one: 0.25 s), and every bar of ordinary
    music keeps its own line."""
    from matplotlib.figure import Figure
    from matplotlib.patches import PathPatch

    def bar_lines(starts: list[int], px_per_tick: float) -> int:
        ax = Figure().add_subplot()
        bars = plot._Bars(starts, starts[-1] + (starts[-1] - starts[-2]), [max(1, starts[1] - starts[0])] * len(starts), False)
        plot._draw_grid(ax, bars, list(range(1, len(starts) + 1)), 0, bars.end, px_per_tick, plot.PlotConfig())
        patches = [p for p in ax.patches if isinstance(p, PathPatch) and p.get_zorder() == 1.5]
        return sum(len(p.get_path().vertices) // 2 for p in patches)

    dense = list(range(0, 10_000 * 15, 15))  # 10,000 bars of 15 ticks
    width_px = 1000.0
    drawn = bar_lines(dense, width_px / (dense[-1] + 15))
    assert 500 <= drawn <= 2 * width_px + 2
    assert bar_lines(list(range(0, 32 * 1920, 1920)), 1000.0 / (33 * 1920)) == 33  # 32 bars and the end line


@pytest.mark.parametrize("n_tracks", [1, 3, 8, 65])
def test_the_legend_takes_the_most_columns_that_fit_beside_the_buttons(plot, n_tracks):
    """The legend's columns are found by bisection (65 kept tracks took 2 s one column at a time):
    the legend fits left of the page's image buttons, and one column more would not. Past 16
    tracks, the first 15 are named and the others counted on one line."""
    tracks = [
        Track(
            ("Vn" if i % 3 else "Violoncello") + f" {i}",
            40 + i % 8,
            channel=(i % 15) + (i % 15 >= 9),
            notes=[Note(i * BEAT, (i + 1) * BEAT, 60 + i % 24)],
        )
        for i in range(n_tracks)
    ]
    cfg = plot.PlotConfig()
    fig = plot._figure(*plot._score_input(Score(TPB, tracks), None), 0, "A title", cfg)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) == min(n_tracks, cfg.legend_entries)  # a take of 65 tracks names 15 and counts the rest
    assert (texts[-1] == "and 50 more tracks") == (n_tracks == 65)
    room = fig.bbox.width - 2 * plot._PAD_PT * fig.dpi / 72 * cfg.scale - cfg.toolbar_px * cfg.scale
    assert legend.get_window_extent(renderer).width <= room
    columns = legend._ncols
    if columns < len(texts):
        wider = fig.legend(
            handles=legend.legend_handles,
            labels=[t.get_text() for t in legend.get_texts()],
            loc="upper left",
            frameon=False,
            fontsize=legend.get_texts()[0].get_fontsize(),
            ncols=columns + 1,
            borderaxespad=legend.borderaxespad,
            borderpad=legend.borderpad,
            columnspacing=legend.columnspacing,
            handlelength=legend.handlelength,
        )
        assert wider.get_window_extent(renderer).width > room
    else:
        assert n_tracks in (1, 3)
