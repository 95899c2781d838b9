"""Tests of `studio.plot`: the piano-roll PNG a student sees after generating."""

from __future__ import annotations

import importlib
import threading
import time
from types import ModuleType

import numpy as np
import pytest

from studio.roll import make_grid, score_to_roll
from studio.score import Note, Score, TimeSignature, Track

TPB = 480
BEAT = TPB
BAR = 3 * BEAT  # 3/4


@pytest.fixture(autouse=True)
def plot(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """`studio.plot`, imported with matplotlib's config/cache folder in a temporary directory."""
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path_factory.mktemp("mplconfig")))
    return importlib.import_module("studio.plot")


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
    """Labelled x ticks of the bottom axes: tick position -> text."""
    ax = fig.axes[-1]
    return {float(t): lab.get_text() for t, lab in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)}


def test_plot_score_writes_a_colorful_png_of_the_expected_size(plot, tmp_path):
    cfg = plot.PlotConfig()
    out = plot.plot_score(waltz(), tmp_path / "sub" / "waltz.png", title="Waltz")
    assert out == tmp_path / "sub" / "waltz.png" and out.is_file()
    img = read_rgb(out)
    assert img.shape == (round(cfg.height * cfg.dpi), round(cfg.width * cfg.dpi), 3)  # 500 x 1400
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
    assert labels[float(BEAT)] == "1" and labels[float(BEAT + BAR)] == "2"
    assert "0" not in labels.values() and 0.0 not in labels
    assert fig.axes[-1].get_xlabel() == "bar"
    # Same picture when the meter map has no pickup but the caller gives the bar lines.
    plain = waltz(pickup_in_meter_map=False)
    fig2 = plot._figure(*plot._score_input(plain, score.bar_starts()), 0, None, plot.PlotConfig())
    assert bar_labels(fig2) == labels


def test_drums_do_not_stretch_the_pitch_axis_and_legend_names_instruments(plot):
    score = waltz()
    fig = plot._figure(*plot._score_input(score, None), 0, "t", plot.PlotConfig())
    melodic = [n.pitch for t in score.tracks if not t.is_drum for n in t.notes]
    low, high = fig.axes[0].get_ylim()
    assert (low, high) == (min(melodic) - 2 - 0.5, max(melodic) + 2 + 0.5)  # drums (36..81) left out
    assert len(fig.axes) == 2  # the pitch roll and the drum band
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["Melody (Flute)", "Bass (Acoustic Bass)", "Chords (Acoustic Grand Piano)", "Drums"]
    assert "C4" in [t.get_text() for t in fig.axes[0].get_yticklabels()]


@pytest.mark.parametrize("config", [None, "small"], ids=["page", "learning-panel"])
def test_every_label_fits_in_the_picture_and_nothing_overlaps(plot, config):
    # The layout is computed from the labels' sizes (no constrained layout): the tick labels, axis
    # labels, title and legend lie inside the figure, the legend right of the axes, the drum band
    # under the pitch axes with a gap, and the axes take most of the picture.
    cfg = plot.PlotConfig() if config is None else plot.PlotConfig(width=9.0, height=3.6)
    score = waltz()
    score.tracks[2] = Track("A rather long name for the chords", 0, channel=2, notes=score.tracks[2].notes)
    fig = plot._figure(*plot._score_input(score, None), 0, "A title", cfg)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    texts = [fig.axes[0].title, *[ax.yaxis.label for ax in fig.axes], fig.axes[-1].xaxis.label]
    texts += [t for ax in fig.axes for t in [*ax.get_xticklabels(), *ax.get_yticklabels()] if t.get_visible() and t.get_text()]
    texts += fig.legends[0].get_texts()
    texts = [t for t in texts if t.get_text()]
    assert len(texts) > 20
    for text in texts:
        box = text.get_window_extent(renderer)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, text.get_text()
    pitch, drums = (ax.get_window_extent(renderer) for ax in fig.axes)
    legend = fig.legends[0].get_window_extent(renderer)
    assert legend.x0 > pitch.x1 and legend.x0 > drums.x1
    assert drums.y1 < pitch.y0 and pitch.x0 == drums.x0 and pitch.x1 == drums.x1
    for ax in fig.axes:  # y labels left of their axes, clear of the axis label
        assert max(t.get_window_extent(renderer).x1 for t in ax.get_yticklabels() if t.get_text()) < ax.get_window_extent(renderer).x0
        assert ax.yaxis.label.get_window_extent(renderer).x1 < min(
            t.get_window_extent(renderer).x0 for t in ax.get_yticklabels() if t.get_text())
    assert (pitch.width * (pitch.height + drums.height)) / (page.width * page.height) > (0.5 if config is None else 0.3)


def test_melody_label_when_the_melody_track_has_another_name(plot):
    score = Score(TPB, [Track("Lead", 80, notes=[Note(0, 480, 62)]), Track("Pad", 89)])
    fig = plot._figure(*plot._score_input(score, None), 0, None, plot.PlotConfig())
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0] == "Melody: Lead (Lead 1 (square))" and texts[1].startswith("Pad (Pad 2 (warm))")


def test_empty_score_gives_a_png_with_a_message(plot, tmp_path):
    out = plot.plot_score(Score(TPB), tmp_path / "empty.png")
    assert out.is_file() and read_rgb(out).shape == (500, 1400, 3)
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
    assert read_rgb(out).shape == (500, 1400, 3)
    # 200 bars: labels are thinned out (every Nth bar), never one per bar.
    fig = plot._figure(*plot._score_input(score, None), 0, None, plot.PlotConfig())
    shown = [int(v) for v in bar_labels(fig).values()]
    assert 5 <= len(shown) <= 60 and shown[0] == 1


def test_plot_roll_uses_the_grid_bars(plot, tmp_path):
    score = waltz(pickup_in_meter_map=False)
    grid = make_grid(score, pickup_ticks=BEAT)
    roll = score_to_roll(score, grid)
    out = plot.plot_roll(roll, tmp_path / "roll.png", title="roll")
    img = read_rgb(out)
    assert img.shape == (500, 1400, 3)
    assert count_near(img, hex_rgb(plot.PlotConfig().melody_color)) > 500
    fig = plot._figure(*plot._roll_input(roll), 0, None, plot.PlotConfig())
    labels = bar_labels(fig)
    assert labels[float(BEAT)] == "1" and labels[float(BEAT + BAR)] == "2" and 0.0 not in labels


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
