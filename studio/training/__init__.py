"""Training and evaluation: data sets from music21's corpus or a folder, pinned splits, the one
training loop, and the evaluation of every task. Imports serving, models, audio and core."""
