"""Model code shares its process with the harness: whatever it forges there must not make
``cbk validate`` say valid, nor hide its time or memory from the budget."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from codabench_kit.validation.fidelity import Budget
from codabench_kit.validation.sandbox import choose_sandbox
from tests.test_parity import PROBE, fake_zip, softmax_of_pixels
from tests.test_validate import TRUE_LABELS, assert_rejected, isolated, model, validate, write_zip  # noqa: F401

FORGE = """\
import json, os
io_dir = os.path.join(os.path.dirname(os.path.dirname(os.getcwd())), 'io')
np.save(os.path.join(io_dir, 'output.npy'), np.zeros(32, dtype=np.int64))
fake = {'phase': 'done', 'ok': True, 'load_s': 0.01, 'predict_s': 0.01, 'peak_mb': 1.0, 'n_images': 32,
        'output': {'type': 'numpy.ndarray', 'dtype': 'int64', 'kind': 'i', 'shape': [32], 'saved': True}}
for name in os.listdir(io_dir) + ['result.json']:
    if name.endswith('.json'):
        json.dump(fake, open(os.path.join(io_dir, name), 'w'))
os._exit(0)
"""


def test_forged_result_in_init_fails(isolated):
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(init="import numpy as np\n" + FORGE)}),
                      labels=TRUE_LABELS)
    line = assert_rejected(report, "load", "the process exited with code 0 during the import of model.py "
                                           "or Model() without reporting back")


def test_forged_result_in_predict_fails(isolated):
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(predict=FORGE)}), labels=TRUE_LABELS)
    assert not report.ok, report.lines()
    assert report.predictions is None
    assert_rejected(report, "answer", "predict's answer never reached cbk: the process exited with code 0 "
                                      "(its own record says it finished; model code can write that record")


PATCH_TIMERS = """\
import time, resource
time.perf_counter = lambda: 0.0
time.time = lambda: 0.0
time.monotonic = lambda: 0.0
_real = resource.getrusage
class _Fake:
    ru_maxrss = 1
resource.getrusage = lambda who: _Fake()
"""


def test_patched_timers_do_not_hide_time(isolated):
    source = model(top=PATCH_TIMERS, predict="import time as t; t.sleep(1.0)\nreturn (X[:, 0, 0, 0] % 8).astype(np.int64)")
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}), budget=Budget(time_limit_s=60))
    assert report.predict_s is not None and report.predict_s >= 1.0, report.lines()
    assert report.ms_per_image >= 1000 / 32
    budget = report.checks[-1]
    assert budget.name == "budget" and not budget.ok, report.lines()
    assert "is over the 60 s limit" in budget.detail


FORKED_ALLOCATION = """\
import os, time
pid = os.fork()
if pid == 0:
    block = np.ones(400 * 2**20 // 8)
    time.sleep(1.0)
    os._exit(0)
os.waitpid(pid, 0)
return (X[:, 0, 0, 0] % 8).astype(np.int64)
"""


def test_memory_of_a_forked_child_counts(isolated):
    source = model(predict=FORKED_ALLOCATION)
    report = validate(write_zip(Path("sub.zip"), {"model.py": source}), budget=Budget(max_memory_mb=300))
    assert report.peak_mb is not None and report.peak_mb > 400, report.lines()
    budget = report.checks[-1]
    assert budget.name == "budget" and not budget.ok, report.lines()
    assert "over the 300 MB limit" in budget.detail


def test_memory_is_projected_to_the_hidden_images(isolated):
    # 2 MB per image, held for 0.3 s: cbk samples memory every 20 ms, as a real predict
    # holds its activations for far longer than one sample.
    grow = ("held = np.ones((len(X), 2**18))\nimport time\ntime.sleep(0.3)\n"
            "return (X[:, 0, 0, 0] % 8).astype(np.int64)")
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(predict=grow)}),
                      budget=Budget(hidden_images=2000, max_memory_mb=2000))
    budget = report.checks[-1]
    # Said, not failed on: the projection is an upper bound (it scales one-off allocations too).
    assert budget.name == "budget" and budget.ok, report.lines()
    assert f"peak memory {report.peak_mb:.0f} MB on 32 images, projected " in budget.detail
    projected = float(budget.detail.split("projected ")[1].split(" MB")[0])
    assert projected > 3000  # 64 MB of growth on 32 images is about 4,000 MB on 2,000
    assert "a linear upper bound from 32 images that may go over the limit" in budget.detail
    ok = validate(write_zip(Path("sub2.zip"), {"model.py": model(predict=grow)}),
                  budget=Budget(hidden_images=2000))
    assert ok.ok and "projected" in ok.checks[-1].detail and "of 8192 MB" in ok.checks[-1].detail


ESCAPED_ALLOCATION = """\
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        block = np.ones(400 * 2**20 // 8)
        time.sleep(1.5)
        os._exit(0)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(1.0)
return (X[:, 0, 0, 0] % 8).astype(np.int64)
"""


def test_memory_of_a_helper_that_left_the_session_counts(isolated):
    """Double fork + setsid: out of the process tree and the session, still in the sandbox."""
    if choose_sandbox("auto").kind == "none":
        pytest.skip("no sandbox here: a helper that leaves the session is not found")
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(predict=ESCAPED_ALLOCATION)}))
    assert report.peak_mb is not None and report.peak_mb > 400, report.lines()


def _zip_with_own_tolerance(path: Path) -> Path:
    """A probe.npz with wrong probabilities and ``tolerance`` inf; predict_proba returns uniform ones."""
    fake_zip(path, proba_body="return np.full((len(X), 8), 0.125, dtype=np.float32)", probe=False)
    with zipfile.ZipFile(path) as archive:
        source = archive.read("model.py")
    buffer = io.BytesIO()
    wrong = np.roll(softmax_of_pixels(PROBE), 1, axis=1)
    np.savez(buffer, images=PROBE, probabilities=wrong, tolerance=np.float64(np.inf))
    return write_zip(path, {"model.py": source, "probe.npz": buffer.getvalue()})


def test_the_zips_own_tolerance_is_ignored(isolated):
    report = validate(_zip_with_own_tolerance(Path("sub.zip")))
    parity = next(c for c in report.checks if c.name == "parity")
    assert not report.ok and not parity.ok, report.lines()
    assert "cbk's tolerance 0.0001" in parity.detail
    assert "against the zip's own reference (probe.npz, not an external check)" in parity.detail


SEND = """\
import io, os, sys
fd = int(sys.argv[-2 if sys.argv[-1].endswith('.json') else -3])  # ingest.py's ANSWER_FD
def send(tag, payload):
    os.write(fd, tag + len(payload).to_bytes(8, 'big') + payload)
"""


def test_a_pickled_answer_is_not_loaded(isolated):
    body = SEND + ("buffer = io.BytesIO(); np.save(buffer, np.array([object()] * len(X)), allow_pickle=True)\n"
                   "send(b'A', buffer.getvalue()); os._exit(0)")
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(body)}))
    assert_rejected(report, "answer", "could not read predict's answer: Object arrays cannot be loaded")


def test_an_oversized_frame_ends_the_conversation(isolated):
    body = SEND + "os.write(fd, b'A' + (2**40).to_bytes(8, 'big')); os._exit(0)"
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(body)}))
    assert_rejected(report, "predict", "over cbk's 536870912 limit")


def test_an_answer_before_x_is_ignored(isolated):
    init = (SEND.replace("import io, os, sys", "import io, os, sys\nimport numpy as np") +
            "buffer = io.BytesIO(); np.save(buffer, np.zeros(32, dtype=np.int64)); send(b'A', buffer.getvalue())\n"
            "os._exit(0)")
    report = validate(write_zip(Path("sub.zip"), {"model.py": model(init=init)}))
    assert_rejected(report, "load", "exited with code 0 during")


def test_parity_names_the_builds_heldout_beside_the_zip(isolated, tmp_path):
    path = fake_zip(Path("cbk-x.zip"))
    np.savez(Path("cbk-x.heldout.npz"), images=PROBE, labels=np.zeros(6, dtype=np.int64),
             predictions=np.zeros(6, dtype=np.int64))
    report = validate(path)
    parity = next(c for c in report.checks if c.name == "parity")
    assert parity.ok, report.lines()
    assert ("(probe.npz, not an external check: --data cbk-x.heldout.npz compares with the build's "
            "predictions)") in parity.detail


def test_project_memory():
    from codabench_kit.validation.fidelity import project_memory

    assert project_memory(100.0, 50.0, 60.0, 32, 2000) == 50.0 + 10.0 * 2000 / 32
    assert project_memory(100.0, 50.0, 40.0, 32, 2000) == 100.0  # never under the measured peak
    assert project_memory(100.0, None, None, 32, 2000) == 100.0
    assert project_memory(100.0, 50.0, 60.0, 32, 16) == 100.0  # the run was larger than the hidden set
    assert project_memory(None, 50.0, 60.0, 32, 2000) is None
