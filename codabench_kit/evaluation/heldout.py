"""The held-out *augmented* test set.

The competition's hidden test images are corrupted, so accuracy on a clean split says
little about the leaderboard. Once per build, the test split is corrupted from a
fixed-seed stream following a *policy* (:func:`parse_policy`):

``mixed:n=N`` (default ``mixed:n=2``)
    each image gets N different corruptions drawn at random severities 1-5, from the
    build's *held-out families* (those no augmenter of the build simulates, see
    :mod:`codabench_kit.evaluation.families`), so the figure is about corruptions the
    model never trained on;
``ops:NAME,NAME[@SEVERITY]``
    each image gets the named corruptions, in order, at SEVERITY (1-5), or at random
    severities when it is left out;
``corruptions``
    every corruption at every severity 1-5 applied to every image (19 x 5 copies of the
    test split, corruption by corruption; what the robustness report measures).

The corruptions themselves are in :mod:`codabench_kit.evaluation.corruptions`.
"""

from __future__ import annotations

import difflib
import re
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from codabench_kit.errors import OptionError
from codabench_kit.evaluation.corruptions import CORRUPTIONS, FAMILIES  # noqa: F401

HELDOUT_SEED = 20_241_122
"""Fixed: every build of the same test split gets the same augmented test set."""


def make_augmented_test_set(images: np.ndarray, *, seed: int = HELDOUT_SEED,
                            ops_per_image: int = 2, names=None) -> tuple[np.ndarray, list[str]]:
    """Return corrupted copies of ``images`` (uint8, same shape) and, per image, the
    corruptions applied as ``"name@severity+name@severity"``: ``ops_per_image``
    different ones drawn from ``names`` (every corruption when ``None``; at most all
    of them)."""
    names = list(CORRUPTIONS) if names is None else list(names)
    ops_per_image = min(ops_per_image, len(names))

    def steps(rng):
        for name in rng.choice(names, size=ops_per_image, replace=False):
            yield name, int(rng.integers(1, 6))

    return _corrupt_each(images, np.random.default_rng(seed), steps)


def _corrupt_each(images: np.ndarray, rng: np.random.Generator,
                  steps: Callable[[np.random.Generator], Iterable[tuple[str, int]]]
                  ) -> tuple[np.ndarray, list[str]]:
    """Corrupt each image (uint8) in turn with the (name, severity) pairs ``steps(rng)`` gives
    for it, clipping to 0..255 after each; the copies as uint8 and, per image, the corruptions
    applied as ``"name@severity+name@severity"``."""
    out = np.empty_like(images)
    applied: list[str] = []
    for i, image in enumerate(images):
        img = image.astype(np.float64)
        done = []
        for name, severity in steps(rng):
            img = np.clip(CORRUPTIONS[name](img, severity, rng), 0, 255)
            done.append(f"{name}@{severity}")
        out[i] = np.round(img).astype(np.uint8)
        applied.append("+".join(done))
    return out, applied


# --- policies ------------------------------------------------------------------------

SEVERITIES = (1, 2, 3, 4, 5)
DEFAULT_POLICY = "mixed:n=2"
_SYNTAX = ("'mixed:n=N' (N 1-{most}), 'ops:NAME,NAME[@SEVERITY]' (SEVERITY 1-5) or "
           "'corruptions'")


class PolicyError(OptionError):
    """A held-out policy string that does not parse."""


@dataclass(frozen=True)
class HeldoutPolicy:
    """How the held-out augmented test set is drawn; ``str()`` gives the canonical spec."""

    kind: str
    """``mixed``, ``ops`` or ``corruptions``."""
    n: int = 2
    """``mixed``: corruptions per image."""
    ops: tuple[str, ...] = ()
    """``ops``: the corruptions applied to every image, in order."""
    severity: int | None = None
    """``ops``: their severity; ``None`` draws one at random (1-5) per image and op."""

    def __str__(self) -> str:
        if self.kind == "mixed":
            return f"mixed:n={self.n}"
        if self.kind == "ops":
            return "ops:" + ",".join(self.ops) + (f"@{self.severity}" if self.severity else "")
        return self.kind

    @property
    def copies(self) -> int:
        """Augmented images per test image."""
        return len(CORRUPTIONS) * len(SEVERITIES) if self.kind == "corruptions" else 1

    @property
    def ops_per_image(self) -> int:
        return {"mixed": self.n, "ops": len(self.ops)}.get(self.kind, 1)

    def describe(self) -> str:
        """What the policy does to each image, for a progress line."""
        if self.kind == "mixed":
            return (f"{self.n} different random corruption{'s' if self.n > 1 else ''} each, "
                    f"at random severities 1-5")
        if self.kind == "ops":
            at = f"at severity {self.severity}" if self.severity else "at random severities 1-5"
            return f"{' then '.join(self.ops)} on each, {at}"
        return (f"every corruption ({len(CORRUPTIONS)}) at every severity 1-5 "
                f"({self.copies} copies of each test image)")


def parse_policy(text: str | HeldoutPolicy) -> HeldoutPolicy:
    """Parse ``mixed[:n=N]``, ``ops:NAME,NAME[@SEVERITY]`` or ``corruptions``.

    Raises :class:`PolicyError` naming what was expected and what was received.
    """
    if isinstance(text, HeldoutPolicy):
        return text
    received = repr(text)
    syntax = _SYNTAX.format(most=len(CORRUPTIONS))
    if not isinstance(text, str):
        raise PolicyError(f"expected a held-out policy {syntax}; received {received}")
    spec = text.strip()
    kind, colon, rest = spec.partition(":")
    kind, rest = kind.strip(), rest.strip()
    if kind == "corruptions" and not colon:
        return HeldoutPolicy("corruptions")
    if kind == "mixed":
        if not colon:
            return HeldoutPolicy("mixed")
        key, equals, value = rest.partition("=")
        if key.strip() != "n" or not equals or not _is_int(value) \
                or not 1 <= int(value) <= len(CORRUPTIONS):
            raise PolicyError(f"expected a held-out policy 'mixed:n=N' with N an integer "
                              f"1-{len(CORRUPTIONS)} (corruptions per image); received "
                              f"{received}")
        return HeldoutPolicy("mixed", n=int(value))
    if kind == "ops" and rest:
        names_part, at, severity_part = rest.partition("@")
        severity = None
        if at:
            severity_part = severity_part.strip()
            if not _is_int(severity_part) or int(severity_part) not in SEVERITIES:
                raise PolicyError(
                    f"expected a held-out policy 'ops:NAME,NAME@SEVERITY' with one SEVERITY "
                    f"1-5 after the last name (or none, for random severities); received "
                    f"{received}")
            severity = int(severity_part)
        names = tuple(name.strip() for name in names_part.split(","))
        for name in names:
            if name not in CORRUPTIONS:
                close = difflib.get_close_matches(name, CORRUPTIONS, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise PolicyError(
                    f"expected corruption names from {', '.join(CORRUPTIONS)} in the held-out "
                    f"policy 'ops:NAME,NAME[@SEVERITY]'; received {name!r} in {received}.{hint}")
        return HeldoutPolicy("ops", ops=names, severity=severity)
    raise PolicyError(f"expected a held-out policy {syntax}; received {received}")


def _is_int(text: str) -> bool:
    return re.fullmatch(r"\s*[0-9]{1,3}\s*", text) is not None


@dataclass
class HeldoutSet:
    images: np.ndarray
    """uint8 corrupted images."""
    applied: list[str]
    """Per image, the corruptions applied as ``"name@severity+name@severity"``."""
    source: np.ndarray
    """Per image, the index of the test image it was made from (for its label)."""


def make_heldout_set(images: np.ndarray, policy: str | HeldoutPolicy = DEFAULT_POLICY, *,
                     seed: int = HELDOUT_SEED, names=None) -> HeldoutSet:
    """The held-out augmented test set of ``images`` under ``policy``; deterministic in
    ``seed``. ``mixed:n=N`` is exactly :func:`make_augmented_test_set`, drawing from
    ``names`` (the held-out families' corruptions; every corruption when ``None``)."""
    policy = parse_policy(policy)
    n = len(images)
    if policy.kind == "mixed":
        out, applied = make_augmented_test_set(images, seed=seed, ops_per_image=policy.n,
                                               names=names)
        return HeldoutSet(out, applied, np.arange(n))
    if policy.kind == "ops":
        def steps(rng):
            for name in policy.ops:
                yield name, policy.severity or int(rng.integers(1, 6))

        out, applied = _corrupt_each(images, np.random.default_rng(seed), steps)
        return HeldoutSet(out, applied, np.arange(n))
    blocks = [corrupt(images, name, severity, seed=seed)
              for name in CORRUPTIONS for severity in SEVERITIES]
    applied = [f"{name}@{severity}" for name in CORRUPTIONS for severity in SEVERITIES
               for _ in range(n)]
    return HeldoutSet(np.concatenate(blocks) if blocks else images[:0], applied,
                      np.tile(np.arange(n), len(blocks)))


def corrupt(images: np.ndarray, name: str, severity: int, *,
            seed: int = HELDOUT_SEED) -> np.ndarray:
    """``images`` (uint8) with corruption ``name`` at ``severity`` applied to each.

    The random stream depends on ``seed``, the corruption's name and the severity only,
    so one (corruption, severity) block is the same whichever others are drawn with it.
    """
    if name not in CORRUPTIONS:
        raise PolicyError(f"expected a corruption from {', '.join(CORRUPTIONS)}; received "
                          f"{name!r}")
    if severity not in SEVERITIES:
        raise PolicyError(f"expected a severity 1-5; received {severity!r}")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), severity])
    out, _ = _corrupt_each(images, rng, lambda rng: [(name, severity)])
    return out
