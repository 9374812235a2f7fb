"""Which corruption families a build trains on, and which it holds out.

Augmenters say which families of :data:`codabench_kit.evaluation.corruptions.FAMILIES`
they simulate, in one of two ways (read from the registered factory, or from the
registration's metadata of the same name):

``FAMILIES``
    a tuple of family names (``()``: none, e.g. MixUp);
``KIND_FAMILIES``
    for an augmenter with a ``kinds`` option: each kind's family, so the families follow
    the kinds chosen and a held-out family can be taken out of its kinds.

An augmenter that declares neither is *undeclared*: the build says so, since its
training may cover a family the report calls held out.

The held-out families of a build are those asked for (``cbk build --holdout-family``),
or by default every family that no augmenter simulates. Asking for a family takes it
out of training: an augmenter with kinds keeps its other kinds; any other augmenter
that simulates it is left out of the build (:func:`plan_holdout`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from codabench_kit.components.selection import split_names
from codabench_kit.errors import OptionError
from codabench_kit.evaluation.corruptions import FAMILIES


def check_families(names) -> tuple[str, ...]:
    """``names`` (a list, or comma-separated text) as a tuple of known family names, in
    :data:`FAMILIES` order; :class:`OptionError` naming the known ones otherwise."""
    if isinstance(names, str):
        names = [names]
    wanted = [part.strip() for name in names for part in str(name).split(",") if part.strip()]
    for name in wanted:
        if name not in FAMILIES:
            close = difflib.get_close_matches(name, FAMILIES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OptionError(f"expected a corruption family from {', '.join(FAMILIES)}; "
                              f"received {name!r}.{hint}")
    return tuple(family for family in FAMILIES if family in wanted)


def _declared(component, key):
    if key in component.metadata:
        return component.metadata[key]
    return getattr(component.factory, key, None)


def families_of(component, options: dict) -> tuple[str, ...] | None:
    """The families an augmenter ``component`` simulates with ``options``; ``None`` when
    it declares none."""
    kind_families = _declared(component, "KIND_FAMILIES")
    if kind_families is not None:
        used = {kind_families[k] for k in _kinds(component, options, kind_families)
                if k in kind_families}
        return tuple(family for family in FAMILIES if family in used)
    declared = _declared(component, "FAMILIES")
    return None if declared is None else tuple(f for f in FAMILIES if f in declared)


@dataclass
class HoldoutPlan:
    """The outcome of :func:`plan_holdout`."""

    heldout: tuple[str, ...]
    """The families no augmenter of the build simulates, in FAMILIES order."""
    trained: tuple[str, ...]
    """The families the build's augmenters simulate."""
    requested: bool
    """Whether the held-out families were asked for (else: what training left over)."""
    dropped: list[str] = field(default_factory=list)
    """Augmenters left out because they simulate a requested family."""
    narrowed: dict[str, list[str]] = field(default_factory=dict)
    """Augmenters with kinds: name -> the kinds kept."""
    undeclared: list[str] = field(default_factory=list)
    """Augmenters that declare no families."""

    def describe(self) -> dict:
        """The manifest's record of it (in the ``heldout`` section)."""
        return {"families": list(self.heldout), "trained_families": list(self.trained),
                "requested": self.requested, "dropped_augmenters": list(self.dropped),
                "narrowed_augmenters": dict(self.narrowed),
                "undeclared_augmenters": list(self.undeclared)}

    def lines(self) -> list[str]:
        """Progress lines saying what is held out and why."""
        why = "asked for" if self.requested else "no augmenter simulates them"
        lines = [f"held-out corruption families: {', '.join(self.heldout) or 'none'} ({why}); "
                 f"trained on: {', '.join(self.trained) or 'none'}"]
        for name in self.dropped:
            lines.append(f"  augmenter {name} left out: it simulates a held-out family")
        for name, kinds in self.narrowed.items():
            lines.append(f"  augmenter {name} keeps kinds {','.join(kinds)}")
        if self.undeclared:
            lines.append(f"  warning: {', '.join(self.undeclared)} declare no corruption "
                         f"families; held-out figures assume they simulate none")
        if not self.heldout:
            lines.append("  warning: training simulates every family: the augmented test "
                         "set and report measure corruptions the model trained on")
        return lines


def plan_holdout(selection, requested=None) -> HoldoutPlan:
    """Decide the held-out families of a build and apply them to ``selection``'s
    augmenters (in place: dropped ones removed, narrowed ones' ``kinds`` set)."""
    requested = check_families(requested or ())
    plan = HoldoutPlan(heldout=(), trained=(), requested=bool(requested))
    kept, trained = [], set()
    for component in selection.of("augmenter"):
        options = selection.options.setdefault(component.name, {})
        kind_families = _declared(component, "KIND_FAMILIES")
        families = families_of(component, options)
        if families is None:
            plan.undeclared.append(component.name)
        elif set(families) & set(requested):
            if kind_families is None:
                plan.dropped.append(component.name)
                continue
            kinds = [k for k in _kinds(component, options, kind_families)
                     if kind_families[k] not in requested]
            if not kinds:
                plan.dropped.append(component.name)
                continue
            options["kinds"] = kinds
            plan.narrowed[component.name] = kinds
            families = families_of(component, options)
        trained.update(families or ())
        kept.append(component)
    if selection.of("augmenter"):
        selection.components["augmenter"] = kept
    plan.trained = tuple(f for f in FAMILIES if f in trained)
    plan.heldout = requested or tuple(f for f in FAMILIES if f not in trained)
    return plan


def _kinds(component, options, kind_families) -> list[str]:
    kinds = options.get("kinds", component.options.get("kinds", tuple(kind_families)))
    return split_names(kinds) if isinstance(kinds, str) else list(kinds)


def heldout_corruptions(families) -> list[str]:
    """The corruption names of ``families`` (every family when empty)."""
    families = families or tuple(FAMILIES)
    return [name for family in families for name in FAMILIES[family]]
