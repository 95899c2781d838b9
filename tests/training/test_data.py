"""studio.training.data: corpora to pieces, the split by piece, the cache, training windows and reference stats."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from studio.core.midi import write_midi
from studio.core.roll import make_grid, notes_to_roll
from studio.core.score import Note, Score, TimeSignature, Track
from studio.training import data
from studio.training.data import (
    Dataset,
    DatasetConfig,
    Piece,
    build_dataset,
    dataset_stats,
    window_index,
    windows,
)
from studio.training.splits import split_pieces

N_PIECES = 12


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dataset-cache")


@pytest.fixture(scope="module")
def chorales(cache_dir) -> Dataset:
    config = DatasetConfig("chorale", max_pieces=N_PIECES, cache_dir=cache_dir, workers=1)
    return build_dataset(config, progress=False, rebuild=True)


def _mean_pitch(piece: Piece, track: int) -> float:
    rows = piece.notes[piece.notes[:, 0] == track]
    return float(rows[:, 3].mean())


def _same_piece(a: Piece, b: Piece) -> None:
    assert (a.id, a.source, a.genre, a.group, a.key, a.meter, a.n_bars) == (b.id, b.source, b.genre, b.group, b.key, b.meter, b.n_bars)
    assert (a.track_names, a.programs, a.drums) == (b.track_names, b.programs, b.drums)
    assert a.grid.n_steps == b.grid.n_steps and a.grid.bars == b.grid.bars
    assert a.notes.dtype == b.notes.dtype and np.array_equal(a.notes, b.notes)


# --------------------------------------------------------------------------- split


def test_split_is_by_piece_disjoint_and_deterministic(chorales):
    train = {p.id for p in chorales.train}
    held = {p.id for p in chorales.held_out}
    assert train and held and not train & held
    assert len(train) + len(held) == N_PIECES
    ids = [f"piece{i:03d}" for i in range(100)]
    groups = [f"group{i // 3}" for i in range(100)]
    first = split_pieces(ids, groups, 0.1, seed=0)
    # Same result whatever order the pieces arrive in (e.g. from parallel workers).
    order = np.random.default_rng(1).permutation(100)
    assert split_pieces([ids[i] for i in order], [groups[i] for i in order], 0.1, seed=0) == first
    assert split_pieces(ids, groups, 0.1, seed=1) != first
    train_ids, held_ids = first
    assert not set(train_ids) & set(held_ids) and len(train_ids) + len(held_ids) == 100
    assert 10 <= len(held_ids) <= 12
    held_groups = {groups[ids.index(i)] for i in held_ids}
    assert not held_groups & {groups[ids.index(i)] for i in train_ids}  # related pieces stay together


def test_split_is_the_same_on_a_rebuild(chorales, cache_dir):
    again = build_dataset(chorales.config, progress=False, rebuild=True)
    assert [p.id for p in again.train] == [p.id for p in chorales.train]
    assert [p.id for p in again.held_out] == [p.id for p in chorales.held_out]


# --------------------------------------------------------------------------- cache


def test_cache_round_trip_gives_identical_arrays_and_loads_faster(chorales):
    start = time.perf_counter()
    cached = build_dataset(chorales.config, progress=False)
    load_seconds = time.perf_counter() - start
    assert cached.info["from_cache"] and not chorales.info["from_cache"]
    assert load_seconds < chorales.info["build_seconds"]
    for a, b in zip(chorales.pieces, cached.pieces, strict=True):
        _same_piece(a, b)
    assert cached.skipped == chorales.skipped
    cache = Path(cached.info["cache"])
    with np.load(cache, allow_pickle=False) as z:  # plain arrays, no pickled objects
        assert all(z[name].dtype != object for name in z.files)
    sidecar = cache.with_suffix(".json").read_text()
    assert '"music21"' in sidecar and '"held_out"' in sidecar and '"seed": 0' in sidecar


def test_a_damaged_cache_is_rebuilt(tmp_path):
    config = DatasetConfig("chorale", max_pieces=2, cache_dir=tmp_path, workers=1)
    first = build_dataset(config, progress=False)
    Path(first.info["cache"]).write_bytes(b"damaged")
    again = build_dataset(config, progress=False)
    assert not again.info["from_cache"]
    for a, b in zip(first.pieces, again.pieces, strict=True):
        _same_piece(a, b)


def test_cache_folder_follows_studio_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    assert data.default_cache_dir() == tmp_path / "datasets"
    assert DatasetConfig("quartet").cache_path == tmp_path / "datasets"
    monkeypatch.delenv("STUDIO_CACHE")
    assert data.default_cache_dir() == Path.home() / ".cache" / "music-studio" / "datasets"


# --------------------------------------------------------------------------- pieces


def test_chorales_have_four_tracks_with_the_soprano_as_melody(chorales):
    for piece in chorales.pieces:
        assert piece.track_names == ("Soprano", "Alto", "Tenor", "Bass")
        assert piece.id.startswith("chorale/bwv") and piece.source.startswith("bach/")
        means = [_mean_pitch(piece, t) for t in range(4)]
        assert means[0] == max(means), piece.id
        assert piece.n_bars == len(piece.grid.bars) > 4
        tracks = piece.tracks
        assert len(tracks) == 4 and tracks[0].velocity.shape == (piece.n_steps, 128)
        assert ((tracks[0].velocity > 0).sum(axis=1) <= 1).all()  # the melody is one note at a time
        tonic, mode = piece.key.split()
        assert mode in ("major", "minor") and tonic[0] in "ABCDEFG"
    assert all(reason.startswith(("5 parts", "6 parts", "7 parts")) for _source, reason in chorales.skipped)


def test_bar_lines_follow_the_pickup_like_make_grid(chorales):
    with_pickup = [p for p in chorales.pieces if p.grid.pickup_steps and p.meter == "4/4"]
    assert with_pickup
    for piece in with_pickup:
        pickup = piece.grid.pickup_steps
        bars = piece.grid.bars
        assert bars[0].start == 0 and bars[1].start == pickup
        # Measures split at a repeat sign (12 + 4 beats) come back as one bar: only the pickup and the last are short.
        assert all(b.length == 16 for b in bars[1:-1]), piece.id
        score = Score(480, [Track("x", notes=[Note(0, piece.n_steps * 120, 60)])], time_signatures=[TimeSignature(0, 4, 4)])
        reference = make_grid(score, pickup * 120)
        assert reference.bars[:-1] == bars[:-1] and reference.bars[-1].start == bars[-1].start


def test_tracks_are_what_notes_to_roll_makes():
    path = data._corpus_root() / "bach" / "bwv26.6.mxl"
    parts, _sigs, _bars = data._m21_read(path)
    piece = data._corpus_piece("chorale", "chorale/bwv26.6", "bach/bwv26.6.mxl", path, True, True)
    for track, notes in zip(piece.tracks[1:], parts[1:], strict=True):
        expected = notes_to_roll(notes, piece.grid, track.name, track.program)
        assert np.array_equal(track.velocity, expected.velocity) and np.array_equal(track.onset, expected.onset)


def _as_tuples(parts: list[list[Note]]) -> list[list[tuple[int, int, int]]]:
    return sorted(sorted((n.start, n.end, n.pitch) for n in p) for p in parts)


def test_the_fast_kern_reader_matches_music21():
    folder = data._corpus_root() / "palestrina"
    for name in ("Agnus_01.krn", "Kyrie_02.krn"):
        fast = data._kern_read((folder / name).read_text(encoding="utf-8", errors="replace"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slow = data._m21_read(folder / name)
        assert _as_tuples(fast[0]) == _as_tuples(slow[0]), name
        assert fast[2] == slow[2], name
        assert [(s.tick, s.numerator, s.denominator) for s in fast[1]] == [(s.tick, s.numerator, s.denominator) for s in slow[1]]


def test_renaissance_takes_the_four_highest_voices_and_splits_breve_bars(tmp_path):
    config = DatasetConfig("renaissance", max_pieces=3, cache_dir=tmp_path, workers=1)
    dataset = build_dataset(config, progress=False)
    assert any("voices (needs at least 4)" in reason for _source, reason in dataset.skipped)
    for piece in dataset.pieces:
        assert piece.track_names == ("Cantus", "Altus", "Tenor", "Bassus")
        means = [_mean_pitch(piece, t) for t in range(4)]
        assert means == sorted(means, reverse=True)
    sources = [s for s in data.list_sources("renaissance") if s[1] == "palestrina/Kyrie_02.krn"]
    piece = data._corpus_piece("renaissance", *sources[0], True, True)
    assert piece.meter == "4/2" and piece.group.startswith("mass: ")
    index = window_index([piece], bars=4, steps_per_bar=16)
    assert len(index) and set((index[:, 1] % 16).tolist()) == {0}  # two 2/2 window bars per 4/2 bar


def test_quartet_piece_has_violin_one_as_melody():
    path = data._corpus_root() / "mozart" / "k80" / "movement3.mxl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        piece = data._corpus_piece("quartet", "quartet/mozart/k80/movement3", "mozart/k80/movement3.mxl", path, True, True)
    assert piece.track_names == ("Violin I", "Violin II", "Viola", "Cello")
    assert piece.programs == (40, 40, 41, 42)
    assert _mean_pitch(piece, 0) > _mean_pitch(piece, 3)


# --------------------------------------------------------------------------- windows


def test_windows_have_the_right_shape_and_a_melody(chorales):
    x, index = windows(chorales.train, bars=4, steps_per_bar=16, return_index=True)
    assert x.dtype == bool and x.ndim == 4 and x.shape[1:] == (4, 64, 84)
    assert len(x) == len(index) > 0
    assert x[:, 0].any(axis=(1, 2)).all()  # every window has melody notes
    assert (index[:, 2] == 0).all()
    for piece_i, start, _shift in index[:5].tolist():
        piece = chorales.train[piece_i]
        assert piece.meter == "4/4" and start >= piece.grid.pickup_steps
        bar = piece.grid.bars[piece.grid.bar_index(start)]
        assert bar.start == start and bar.length == 16
    # 3/4 chorales have no 16-step bars, but do have 12-step windows.
    three_four = [p for p in chorales.pieces if p.meter == "3/4"]
    for piece in three_four:
        assert len(window_index([piece], 4, 16)) == 0 and len(window_index([piece], 4, 12)) > 0
    # A batch of given rows is the same as those rows of the full set.
    batch = windows(chorales.train, index=index[[3, 1], :2])
    assert np.array_equal(batch, x[[3, 1]])
    assert len(chorales.windows("held_out")) == len(window_index(chorales.held_out))


def test_transposition_moves_every_track_by_the_same_interval(chorales):
    index = window_index(chorales.train)[:20]
    plain = windows(chorales.train, index=index)
    up = windows(chorales.train, index=index, transpose=3)
    assert np.array_equal(up[..., 3:], plain[..., :-3])  # chorales stay well inside 24..107
    shifted, rows = windows(chorales.train, index=index, transpose=(-5, 6), rng=np.random.default_rng(7), return_index=True)
    assert rows[:, 2].min() >= -5 and rows[:, 2].max() <= 6 and len(set(rows[:, 2].tolist())) > 1
    for w, shift in enumerate(rows[:, 2].tolist()):
        for track in range(4):
            before, after = np.nonzero(plain[w, track]), np.nonzero(shifted[w, track])
            assert np.array_equal(before[0], after[0])
            assert np.array_equal(before[1] + shift, after[1])
    again = windows(chorales.train, index=index, transpose=(-5, 6), rng=np.random.default_rng(7))
    assert np.array_equal(again, shifted)


def test_notes_outside_the_model_range_move_by_octaves():
    assert data._fold(np.array([10, 24, 60, 107, 110, 127])).tolist() == [34, 24, 60, 107, 98, 103]


# --------------------------------------------------------------------------- folder of MIDI files


def _song(bass_program: int = 33) -> Score:
    melody = [Note(480 * i, 480 * (i + 1), 72 + (i % 5) * 2) for i in range(32)]
    bass = [Note(1920 * i, 1920 * (i + 1), 36 + (i % 2) * 7) for i in range(8)]
    chords = [Note(960 * i, 960 * (i + 1), p) for i in range(16) for p in (60, 64, 67)]
    pad = [Note(0, 1920 * 8, 55)]
    drums = [Note(480 * i, 480 * i + 120, 36 if i % 2 == 0 else 38) for i in range(32)]
    brass = [Note(0, 480, 70)]
    return Score(
        480,
        [
            Track("Lead", 73, notes=melody),
            Track("Bass", bass_program, notes=bass),
            Track("Keys", 4, notes=chords),
            Track("Pad", 89, notes=pad),
            Track("Drums", 0, True, 9, drums),
            Track("Horn", 61, notes=brass),
        ],
    )


def test_folder_loader_reads_midi_files_and_skips_a_bad_one(tmp_path):
    songs = tmp_path / "songs"
    (songs / "more").mkdir(parents=True)
    (songs / "one.mid").write_bytes(write_midi(_song()))
    (songs / "more" / "two.MID").write_bytes(write_midi(_song(bass_program=38)))
    (songs / "broken.mid").write_bytes(b"this is not a MIDI file")
    (songs / "notes.txt").write_text("not music")
    config = DatasetConfig(f"folder:{songs}", cache_dir=tmp_path / "cache", workers=1, held_out_fraction=0.5)
    dataset = build_dataset(config, progress=False)
    assert [s for s, _reason in dataset.skipped] == ["broken.mid"]
    assert dataset.skipped[0][1]  # with the reader's message
    pieces = dataset.pieces
    assert sorted(p.id for p in pieces) == ["folder/more/two", "folder/one"]
    assert len(dataset.train) == len(dataset.held_out) == 1
    piece = pieces[0]
    assert piece.track_names == ("Melody", "Piano", "Guitar", "Bass", "Strings", "Drums")
    assert piece.drums == (False, False, False, False, False, True)
    counts = [int((piece.notes[:, 0] == t).sum()) for t in range(6)]
    assert counts == [32, 48, 0, 8, 1, 32]  # guitar stays empty; the horn has no role
    assert _mean_pitch(piece, 0) > 70
    x, rows = dataset.windows("train", rng=np.random.default_rng(0), return_index=True)
    assert x.shape[1:] == (6, 64, 84)
    plain = windows(dataset.train, index=rows[:, :2])
    assert np.array_equal(x[:, 5], plain[:, 5])  # drums are never transposed
    assert any("Horn" in note["note"] for note in dataset.info["notes"])
    again = build_dataset(config, progress=False)
    assert again.info["from_cache"]
    (songs / "three.mid").write_bytes(write_midi(_song()))
    assert not build_dataset(config, progress=False).info["from_cache"]  # a changed folder is read again


def test_folder_roles_follow_general_midi_families():
    def role(program: int, drum: bool = False) -> str | None:
        return data.folder_role(Track("t", program, drum))

    assert [role(p) for p in (0, 23, 24, 31, 32, 39, 40, 55, 88, 95)] == [
        "Piano",
        "Piano",
        "Guitar",
        "Guitar",
        "Bass",
        "Bass",
        "Strings",
        "Strings",
        "Strings",
        "Strings",
    ]
    assert role(56) is None and role(80) is None and role(0, True) == "Drums"


# --------------------------------------------------------------------------- stats


def test_stats_are_finite_numbers(chorales):
    stats = dataset_stats(chorales)
    for split in ("train", "held_out"):
        s = stats[split]
        assert s["pieces"] == len(getattr(chorales, split)) and s["bars"] > 0 and s["windows"] > 0
        for name in ("in_key_rate", "consonance", "empty_bar_rate", "used_pitch_classes", "qualified_note_rate", "polyphony"):
            assert math.isfinite(s[name]), (split, name)
        assert 0.5 < s["in_key_rate"] <= 1 and 0.5 < s["consonance"] <= 1
        assert set(s["tracks"]) == {"Alto", "Tenor", "Bass"}


def test_parallel_and_serial_builds_agree(tmp_path):
    serial = build_dataset(DatasetConfig("renaissance", max_pieces=18, cache_dir=tmp_path / "a", workers=1), progress=False)
    parallel = build_dataset(DatasetConfig("renaissance", max_pieces=18, cache_dir=tmp_path / "b", workers=2), progress=False)
    assert len(serial.pieces) == 18
    for a, b in zip(serial.pieces, parallel.pieces, strict=True):
        _same_piece(a, b)
    assert serial.skipped == parallel.skipped
