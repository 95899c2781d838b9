"""studio.training.splits: the pinned train / validation / held-out lists, and that training and evaluation keep to them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from studio.core.midi import write_midi
from studio.core.score import Note, Score, TimeSignature, Track
from studio.training import splits
from studio.training.data import DatasetConfig, build_dataset
from studio.training.splits import SPLITS_DIR, Split, assign, make_split, read_split, split_path, write_split
from studio.training.tunes import UNSEEN_COLLECTIONS

PINNED = ("chorale", "folk", "quartet", "renaissance")  # the genres of the shipped cards
SIDES = ("train", "validation", "held_out")


def _lists(genre: str) -> dict[str, list[str]]:
    raw = json.loads(split_path(genre).read_text())
    return {side: raw[side] for side in SIDES}


def test_every_shipped_genre_has_a_pinned_split_and_nothing_else_is_there():
    assert sorted(p.stem for p in SPLITS_DIR.glob("*.json")) == sorted(PINNED)


@pytest.mark.parametrize("genre", PINNED)
def test_held_out_validation_and_training_share_nothing(genre):
    lists = _lists(genre)
    for a, b in (("train", "held_out"), ("validation", "held_out"), ("train", "validation")):
        shared = set(lists[a]) & set(lists[b])
        assert not shared, f"{genre}: {sorted(shared)[:3]} are both {a} and {b}"
    for side in SIDES:
        assert lists[side] == sorted(set(lists[side])), f"{genre} {side}: ids repeated or unsorted"
    assert lists["held_out"] and lists["train"], f"{genre}: an empty side"


def test_shipped_cards_name_their_split_file_with_its_counts():
    from studio.core.config import REPO_ROOT

    for card_path in sorted((REPO_ROOT / "models" / "checkpoints").glob("*.json")):
        training = json.loads(card_path.read_text())["training"]
        if card_path.stem == "rules":
            continue
        genre = card_path.stem.split("-", 1)[1]
        assert training["split_file"] == f"models/checkpoints/splits/{genre}.json", card_path.name
        lists = _lists(genre)
        assert training["split_lists"]["held_out"] == len(lists["held_out"]) == training["held_out_pieces"], card_path.name
        assert training["split_lists"]["validation"] == len(lists["validation"]), card_path.name


def test_folk_keeps_the_chorale_sopranos_on_the_chorale_split_side():
    """The melody models learn chorale sopranos too: a held-out chorale's soprano is held out for them."""
    chorale, folk = _lists("chorale"), _lists("folk")
    folk_held = set(folk["held_out"])
    assert set(chorale["held_out"]) <= folk_held, "a held-out chorale's soprano trains the melody models"
    assert not (set(chorale["train"]) | set(chorale["validation"])) & folk_held


def test_the_unseen_folk_collections_are_in_no_list_of_any_split():
    unseen = tuple(f"folk/{c.rsplit('.', 1)[0]}/" for c in UNSEEN_COLLECTIONS)
    for genre in PINNED:
        for side, ids in _lists(genre).items():
            leaked = [i for i in ids if i.startswith(unseen)]
            assert not leaked, f"{genre} {side} lists unseen tunes: {leaked[:3]}"


def test_the_melody_dataset_never_reads_the_unseen_collections():
    from studio.training.melodies import folk_sources

    read = {path for task in folk_sources() for path in task}
    assert read, "no folk sources found"
    assert not read & set(UNSEEN_COLLECTIONS)


def test_adding_a_piece_moves_no_existing_piece_and_never_holds_it_out():
    split = read_split(split_path("chorale"))
    ids = [*split.train, *split.validation, *split.held_out]
    before = assign(split, ids)
    with_new = assign(split, [*ids, "chorale/bwv9999"])
    for side in SIDES:
        assert getattr(with_new, side) == getattr(before, side)
    assert with_new.unlisted == ["chorale/bwv9999"]
    assert "chorale/bwv9999" in assign(split, [*ids, "chorale/bwv9999"], add_unlisted=True).train


def test_make_split_is_the_seeded_draw_and_keeps_groups_whole():
    ids = [f"p{i:03d}" for i in range(200)]
    groups = [f"g{i // 4}" for i in range(200)]
    made = make_split("toy", ids, groups, "test")
    group = dict(zip(ids, groups, strict=True))
    for a in SIDES:
        for b in SIDES:
            if a < b:
                assert not {group[i] for i in getattr(made, a)} & {group[i] for i in getattr(made, b)}, f"a group in {a} and {b}"
    assert len(made.held_out) == 20 and 1 <= len(made.validation) <= splits.VALIDATION_CAP
    assert sorted([*made.train, *made.validation, *made.held_out]) == ids
    with pytest.raises(ValueError, match="two sides"):
        Split("toy", "", ("a",), (), ("a",))


# --------------------------------------------------------------------------- reading the lists, end to end


def _song(seed: int) -> bytes:
    melody = [Note(480 * i, 480 * (i + 1), 67 + (i * seed) % 7) for i in range(32)]
    bass = [Note(1920 * i, 1920 * (i + 1), 36 + (i + seed) % 5) for i in range(8)]
    chords = [Note(960 * i, 960 * (i + 1), p) for i in range(16) for p in (60, 64)]
    tracks = [Track("Melody", 73, notes=melody), Track("Bass", 33, notes=bass), Track("Keys", 4, notes=chords)]
    return write_midi(Score(480, tracks, time_signatures=[TimeSignature(0, 4, 4)]))


@pytest.fixture
def pinned_folder(tmp_path) -> tuple[Path, Path]:
    """A folder of six songs and a split file that pins them against the seeded draw's habits."""
    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(6):
        (songs / f"s{i}.mid").write_bytes(_song(i))
    pinned = Split(f"folder:{songs}", "test", ("folder/s0", "folder/s1", "folder/s2"), ("folder/s3",), ("folder/s4", "folder/s5"))
    return songs, write_split(pinned, tmp_path / "split.json")


def test_build_dataset_reads_the_pinned_lists_and_a_new_file_stays_out_of_held_out(pinned_folder, tmp_path):
    songs, split_file = pinned_folder
    config = DatasetConfig(f"folder:{songs}", cache_dir=tmp_path / "cache", workers=1, split_file=str(split_file))
    data = build_dataset(config, progress=False)
    assert [p.id for p in data.held_out] == ["folder/s4", "folder/s5"]
    assert [p.id for p in data.train] == ["folder/s0", "folder/s1", "folder/s2", "folder/s3"] and data.validation == ["folder/s3"]
    (songs / "a_new.mid").write_bytes(_song(9))  # sorts first: the seeded draw would reshuffle around it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = build_dataset(config, progress=False)
    assert any("1 piece(s) are in no list" in str(w.message) for w in caught)
    assert [p.id for p in again.held_out] == ["folder/s4", "folder/s5"]
    assert "folder/a_new" not in {p.id for p in again.pieces}
    added = build_dataset(
        DatasetConfig(f"folder:{songs}", cache_dir=tmp_path / "cache", workers=1, split_file=str(split_file), add_unlisted=True),
        progress=False,
    )
    assert "folder/a_new" in {p.id for p in added.train} and [p.id for p in added.held_out] == ["folder/s4", "folder/s5"]


def test_evaluate_accompanies_exactly_the_pinned_held_out_pieces(pinned_folder, monkeypatch):
    import studio.training.data
    from studio.training import evaluate as E

    songs, split_file = pinned_folder
    built = []
    original = studio.training.data.build_dataset

    def recording_build(config, progress=True, rebuild=False):
        built.append(original(config, progress=False, rebuild=rebuild))
        return built[-1]

    grids = []

    def generate(registry, name, melody, grid, params, seed):
        grids.append(grid)
        return []

    monkeypatch.setattr(E, "build_dataset", recording_build)  # where evaluation reads it
    monkeypatch.setattr(E, "_generate", generate)
    monkeypatch.setattr(E, "_likelihood", lambda *a: None)
    config = E.EvaluationConfig(n=None, unseen=0, copy_check=False, data=f"folder:{songs}", split_file=str(split_file))
    report = E.evaluate("rules", config, progress=False)
    by_grid = {id(p.grid): p.id for p in built[0].pieces}
    assert [by_grid[id(g)] for g in grids] == list(read_split(split_file).held_out)
    assert report["held_out"]["pieces"] == 2 and "split.json" in report["how"]
    grids.clear()
    E.evaluate(
        "rules", E.EvaluationConfig(n=1, unseen=0, copy_check=False, data=f"folder:{songs}", split_file=str(split_file)), progress=False
    )
    by_grid = {id(p.grid): p.id for p in built[-1].pieces}
    assert [by_grid[id(g)] for g in grids] == ["folder/s4"]  # n: the first n of the list


def test_corpus_genres_read_the_committed_file_unless_told_otherwise():
    assert DatasetConfig("chorale").pinned_split == split_path("chorale")
    assert DatasetConfig("chorale", split_file="").pinned_split is None
    assert DatasetConfig("chorale", max_pieces=8).pinned_split is None  # a quick look draws over its few pieces
    assert DatasetConfig("folder:/nowhere").pinned_split is None


def test_a_folder_run_pins_its_split_beside_the_checkpoint_and_reads_it_next_time(tmp_path):
    from studio.training.train import TrainConfig, split_file_for

    songs = tmp_path / "songs"
    songs.mkdir()
    config = TrainConfig("gan", "mine", data=str(songs), out=tmp_path / "ckpt" / "gan-mine")
    assert split_file_for(config) == tmp_path / "ckpt" / "splits" / "gan-mine.json"
    assert split_file_for(TrainConfig("gan", "chorale")) == split_path("chorale")
    assert split_file_for(TrainConfig("gan", "chorale", max_pieces=8)) is None
