"""Progress lines, bars, --quiet and the build's log."""

import io

import numpy as np
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.cli.terminal import TerminalProgress
from codabench_kit.progress import NullBar, bar


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Recorder:
    """A progress callable that records its lines and, per bar, [label, total, steps]."""

    def __init__(self):
        self.lines, self.bars = [], []

    def __call__(self, line):
        self.lines.append(line)

    def bar(self, label, total):
        self.bars.append([label, total, 0])
        bars = self.bars

        class Steps(NullBar):
            def update(self, steps=1):
                bars[-1][2] += steps
        return Steps()


def test_bars_draw_on_a_terminal_only():
    terminal = Terminal()
    progress = TerminalProgress(stream=terminal)
    with bar(progress, "hashing", 4) as steps:
        for _ in range(4):
            steps.update(1)
    assert "hashing" in terminal.getvalue() and "100%" in terminal.getvalue()
    assert isinstance(TerminalProgress(stream=io.StringIO()).bar("x", 3), NullBar)
    assert isinstance(TerminalProgress(stream=Terminal(), quiet=True).bar("x", 3), NullBar)
    assert isinstance(bar(lambda line: None, "x", 3), NullBar)  # a plain callable


def test_each_training_epoch_advances_a_bar_over_its_batches():
    import keras

    from codabench_kit.training.trainer import EpochLines

    recorder = Recorder()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "categorical_crossentropy")
    x, y = np.zeros((40, 4), "float32"), np.eye(2, dtype="float32")[np.arange(40) % 2]
    model.fit(x, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[EpochLines("train", 2, recorder)])
    assert recorder.bars == [["  train epoch 1/2", 5, 5], ["  train epoch 2/2", 5, 5]]
    assert len(recorder.lines) == 2 and recorder.lines[0].startswith("  train epoch 1/2: loss")


def test_quiet_build_prints_the_zip_only_and_logs_everything(tmp_path):
    out = tmp_path / "q.zip"
    result = CliRunner().invoke(cli, ["-q", "build", "--demo-size", "12", "--epochs", "1",
                                      "--set", "cnn.width=8", "--out", str(out)])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert result.stdout.strip() == str(out)
    assert "data:" not in result.stderr and "train epoch" not in result.stderr
    log = out.with_suffix(".log").read_text()
    assert "] data: 96 images" in log and "train epoch 1/1" in log and "ok    answer" in log


def test_a_failed_build_writes_no_log(tmp_path):
    result = CliRunner().invoke(cli, ["build", "--plugins", "cnn,nope",
                                      "--out", str(tmp_path / "x.zip")])
    assert result.exit_code == 1 and "unknown component 'nope'" in result.output
    assert list(tmp_path.iterdir()) == []


def test_evaluation_draws_a_bar_per_test_set():
    import keras

    from codabench_kit.evaluation.heldout_sets import HeldoutSets, TestSet
    from codabench_kit.evaluation.metrics import heldout_metrics

    recorder = Recorder()
    model = keras.Sequential([keras.Input((96, 96, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(8, activation="softmax")])
    images = np.zeros((70, 96, 96, 3), "uint8")
    heldout = HeldoutSets(clean=TestSet(images, np.zeros(70, int)),
                          augmented=TestSet(images, np.zeros(70, int)),
                          corruptions=np.array(["blur@1"] * 70), seed=0, policy="mixed:n=2",
                          ops_per_image=2)
    heldout_metrics(model, heldout, 8, batch_size=32, progress=recorder)
    assert recorder.bars == [["evaluate clean test", 3, 3], ["evaluate augmented test", 3, 3]]
