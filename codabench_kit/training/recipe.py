"""The training recipe: the classifier's head and how it trains.

Set like a component's options, under two reserved names, on the command line or in
``cbk.toml`` (command line wins)::

    cbk build --set train.optimizer=lion --set head.dense=256 --set train.ema=true

    # cbk.toml
    [train]
    schedule = "plateau"
    [head]
    dense = "512,128"
    norm = "layer"

The defaults are the recipe ``cbk build`` ships with (AdamW, cosine decay, label
smoothing 0.1; see ``TRAIN_OPTIONS``); each option's default fixes its type. A backbone
may recommend its own values (``register(..., recipe={"train": {"ema": True}})``, like
timm's per-model ``pretrained_cfg``): they sit between the defaults and cbk.toml, so the
file and ``--set`` still win. ``mobilenet`` recommends EMA (README, "Robustness to
corruptions it never trained on").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codabench_kit.errors import OptionError, PluginError
from codabench_kit.components.checks import check_choice
from codabench_kit.components.selection import coerce
from codabench_kit.components.registry import Component

HEAD_OPTIONS = {
    "dense": "",
    "dropout": 0.2,
    "norm": "none",
    "l2": 0.0,
}
"""``dense``: widths of the hidden Dense layers, comma-separated ("" = none: features ->
dropout -> softmax); ``dropout`` before each Dense; ``norm`` after each hidden Dense:
none, batch, layer or group; ``l2``: kernel regularisation of the head's layers."""

TRAIN_OPTIONS = {
    "optimizer": "adamw",
    "learning_rate": 1e-3,
    "finetune_learning_rate": 1e-4,
    "weight_decay": 1e-4,
    "schedule": "cosine",
    "label_smoothing": 0.1,
    "loss": "crossentropy",
    "focal_gamma": 2.0,
    "ema": False,
    "unfreeze": "all",
    "unfreeze_stages": 3,
    "mixed_precision": "auto",
}
"""``optimizer``: adamw, adam, lion or sgd (Nesterov, momentum 0.9). ``learning_rate``
for the head phase and training from scratch, ``finetune_learning_rate`` for fine-tuning
(Lion wants 3-10x smaller ones). ``weight_decay`` for adamw, lion and sgd. ``schedule``:
cosine (decay to 1% over the phase), plateau (x0.3 when validation loss stalls) or
constant. ``label_smoothing`` in [0, 1). ``loss``: crossentropy or focal (with
``focal_gamma``). ``ema``: evaluate and keep an exponential moving average of the
weights (momentum 0.99). ``unfreeze``: all (the whole backbone at once in phase 2) or
gradual (``unfreeze_stages`` stages, each opening a deeper share of the layers).
``mixed_precision``: auto (float16 compute on a GPU, float32 on CPU), on or off."""

CHOICES = {
    ("head", "norm"): ("none", "batch", "layer", "group"),
    ("train", "optimizer"): ("adamw", "adam", "lion", "sgd"),
    ("train", "schedule"): ("cosine", "plateau", "constant"),
    ("train", "loss"): ("crossentropy", "focal"),
    ("train", "unfreeze"): ("all", "gradual"),
    ("train", "mixed_precision"): ("auto", "on", "off"),
}

SECTIONS = {"head": HEAD_OPTIONS, "train": TRAIN_OPTIONS}
"""The reserved names in ``--set NAME.KEY=VALUE`` and cbk.toml tables."""

_PSEUDO = {name: Component(name=name, kind="recipe", factory=dict, provider="codabench_kit",
                           options=options) for name, options in SECTIONS.items()}


@dataclass(frozen=True)
class Recipe:
    head: dict[str, Any] = field(default_factory=lambda: dict(HEAD_OPTIONS))
    train: dict[str, Any] = field(default_factory=lambda: dict(TRAIN_OPTIONS))

    @classmethod
    def from_settings(cls, settings=None, file_settings=None, backbone=None) -> "Recipe":
        """The recipe from ``--set`` values (``settings``) over cbk.toml's tables
        (``file_settings``) over what the ``backbone`` component recommends
        (:func:`recommended_by`) over the defaults; only the ``head`` and ``train``
        entries are read. Bad keys and values raise :class:`OptionError` before any work."""
        values = {name: dict(options) for name, options in SECTIONS.items()}
        for source in recommended_by(backbone), (file_settings or {}), (settings or {}):
            for name in SECTIONS:
                for key, value in (source.get(name) or {}).items():
                    values[name][key] = coerce(_PSEUDO[name], key, value)
        for (name, key), allowed in CHOICES.items():
            check_choice(name, key, values[name][key], allowed)
        recipe = cls(head=values["head"], train=values["train"])
        recipe.dense_widths()
        _check_ranges(recipe)
        return recipe

    @classmethod
    def from_dict(cls, data: dict | None) -> "Recipe":
        """From a run's recorded recipe; older runs recorded only the dropout."""
        data = data or {}
        return cls.from_settings({"head": data.get("head", {}), "train": data.get("train", {})})

    def dense_widths(self) -> list[int]:
        text = str(self.head["dense"]).strip()
        if not text:
            return []
        try:
            widths = [int(part) for part in text.split(",")]
        except ValueError:
            widths = []
        if not widths or min(widths) < 1:
            raise OptionError(f"head.dense expects comma-separated positive widths such as "
                              f"'256,128' (or '' for none); received {self.head['dense']!r}")
        return widths

    def describe(self) -> str:
        """One line, e.g. ``adamw, cosine, label smoothing 0.1, head [256] dropout 0.2``."""
        train, head = self.train, self.head
        parts = [train["optimizer"], f"{train['schedule']} schedule",
                 f"lr {train['learning_rate']:g}/{train['finetune_learning_rate']:g}"]
        if train["loss"] == "focal":
            parts.append(f"focal loss (gamma {train['focal_gamma']:g})")
        if train["label_smoothing"]:
            parts.append(f"label smoothing {train['label_smoothing']:g}")
        if train["ema"]:
            parts.append("EMA")
        if train["unfreeze"] == "gradual":
            parts.append(f"gradual unfreezing in {train['unfreeze_stages']} stages")
        widths = self.dense_widths()
        parts.append(f"head {widths or 'linear'}"
                     + (f" {head['norm']}-norm" if widths and head["norm"] != "none" else "")
                     + f" dropout {head['dropout']:g}" + (f" l2 {head['l2']:g}" if head["l2"] else ""))
        return ", ".join(parts)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"head": dict(self.head), "train": dict(self.train)}


def recommended_by(backbone: Component | None) -> dict[str, dict[str, Any]]:
    """The recipe values a backbone component recommends (its ``recipe`` metadata), checked:
    a bad entry is the plugin's fault, so it raises :class:`PluginError` naming it."""
    recommended = (backbone.metadata.get("recipe") if backbone is not None else None) or {}
    if not recommended:
        return {}
    where = f"backbone {backbone.name!r} (plugin {backbone.provider!r}) registered recipe="
    if not isinstance(recommended, dict) or not all(
            name in SECTIONS and isinstance(options, dict)
            for name, options in recommended.items()):
        raise PluginError(f"{where}{recommended!r}; expected a dict of sections "
                          f"({', '.join(SECTIONS)}) each mapping options to values")
    try:
        Recipe.from_settings(recommended)
    except OptionError as exc:
        raise PluginError(f"{where}{recommended!r}: {exc}") from None
    return recommended


def split_recipe_settings(settings: dict | None) -> tuple[dict, dict]:
    """``(component settings, recipe settings)``: the ``head`` and ``train`` entries apart."""
    settings = dict(settings or {})
    recipe = {name: settings.pop(name) for name in SECTIONS if name in settings}
    return settings, recipe


def _check_ranges(recipe: Recipe) -> None:
    head, train = recipe.head, recipe.train
    checks = [
        ("head.dropout", head["dropout"], 0.0 <= head["dropout"] < 1.0, "in [0, 1)"),
        ("head.l2", head["l2"], head["l2"] >= 0.0, ">= 0"),
        ("train.learning_rate", train["learning_rate"], train["learning_rate"] > 0, "> 0"),
        ("train.finetune_learning_rate", train["finetune_learning_rate"],
         train["finetune_learning_rate"] > 0, "> 0"),
        ("train.weight_decay", train["weight_decay"], train["weight_decay"] >= 0, ">= 0"),
        ("train.label_smoothing", train["label_smoothing"],
         0.0 <= train["label_smoothing"] < 1.0, "in [0, 1)"),
        ("train.focal_gamma", train["focal_gamma"], train["focal_gamma"] >= 0, ">= 0"),
        ("train.unfreeze_stages", train["unfreeze_stages"], train["unfreeze_stages"] >= 1,
         ">= 1"),
    ]
    for name, value, ok, expected in checks:
        if not ok:
            raise OptionError(f"{name} must be {expected}; received {value!r}")
