"""Corruption families: what a build trains on, what it holds out, and the report's marks."""

import numpy as np
import pytest
from click.testing import CliRunner

from codabench_kit.cli import cli
from codabench_kit.components.registry import Component
from codabench_kit.components.selection import select
from codabench_kit.errors import OptionError
from codabench_kit.evaluation.corruptions import CORRUPTIONS, FAMILIES
from codabench_kit.evaluation.families import (check_families, families_of,
                                               heldout_corruptions, plan_holdout)
from codabench_kit.evaluation.heldout import make_augmented_test_set
from codabench_kit.evaluation.robustness import robustness_report, table_lines


def test_check_families_orders_names_and_says_what_was_expected():
    assert check_families(["microscopy", "noise,blur"]) == ("noise", "blur", "microscopy")
    assert check_families("color") == ("color",)
    with pytest.raises(OptionError, match=r"expected a corruption family from noise, blur.*"
                                          r"received 'nois'\. Did you mean 'noise'\?"):
        check_families(["nois"])


def test_every_family_has_corruptions_and_every_corruption_one_family():
    members = [name for family in FAMILIES.values() for name in family]
    assert sorted(members) == sorted(CORRUPTIONS) and len(set(members)) == len(members)
    assert heldout_corruptions(("digital",)) == ["jpeg", "pixelate"]
    assert heldout_corruptions(()) == list(CORRUPTIONS)


@pytest.mark.parametrize("name, families", [
    ("flips", ("geometry",)), ("geometric", ("geometry",)), ("color", ("color",)),
    ("augmix", ("color", "geometry")), ("randaugment", ("color", "geometry")),
    ("noise", ("noise", "blur", "digital")), ("mixup", ()), ("cutmix", ()), ("pixmix", ()),
    ("gridmask", ("microscopy",)), ("erasing", ("microscopy",)),
    ("corrupt", ("blur", "digital", "color", "microscopy")),
    ("kerascv-augmix", ("color", "geometry")),
])
def test_each_builtin_augmenter_declares_its_families(registry, name, families):
    component = registry.get(name)
    assert families_of(component, dict(component.options)) == families


def test_an_augmenter_with_kinds_simulates_the_families_of_the_kinds_chosen(registry):
    noise = registry.get("noise")
    assert families_of(noise, {"kinds": ("jpeg",)}) == ("digital",)
    assert families_of(noise, {"kinds": "gaussian,blur"}) == ("noise", "blur")
    corrupt = registry.get("corrupt")
    assert families_of(corrupt, {"kinds": ["bubbles", "deposits"]}) == ("microscopy",)


def test_the_default_augmenters_leave_microscopy_held_out(registry):
    selection = select(registry, [])
    plan = plan_holdout(selection)
    assert plan.heldout == ("microscopy",) and not plan.requested
    assert plan.trained == ("noise", "blur", "digital", "color", "geometry")
    assert [c.name for c in selection.of("augmenter")] == ["flips", "augmix", "color", "noise"]
    assert plan.lines()[0] == ("held-out corruption families: microscopy (no augmenter "
                               "simulates them); trained on: noise, blur, digital, color, "
                               "geometry")


def test_holding_out_a_family_narrows_kinds_and_leaves_out_what_cannot_narrow(registry):
    selection = select(registry, [])
    plan = plan_holdout(selection, ["noise", "color"])
    assert plan.heldout == ("noise", "color") and plan.requested
    assert plan.dropped == ["augmix", "color"]
    assert plan.narrowed == {"noise": ["blur", "jpeg"]}
    assert [c.name for c in selection.of("augmenter")] == ["flips", "noise"]
    assert selection.options_for("noise")["kinds"] == ["blur", "jpeg"]
    assert plan.trained == ("blur", "digital", "geometry")
    lines = plan.lines()
    assert "  augmenter augmix left out: it simulates a held-out family" in lines
    assert "  augmenter noise keeps kinds blur,jpeg" in lines
    # The narrowed augmenter builds, and draws only the kinds kept.
    noise = selection.of("augmenter")[1]
    assert noise.create(seed=0, **selection.options_for("noise")).kinds == ["blur", "jpeg"]


def test_an_augmenter_whose_kinds_are_all_held_out_is_left_out(registry):
    selection = select(registry, ["noise"], {"noise": {"kinds": "gaussian"}})
    plan = plan_holdout(selection, ["noise"])
    assert plan.dropped == ["noise"] and selection.of("augmenter") == []


def test_undeclared_augmenters_and_nothing_held_out_are_warned_about(registry):
    selection = select(registry, ["flips"])
    stranger = Component(name="stranger", kind="augmenter", factory=lambda seed=0: None,
                         provider="someone")
    selection.components["augmenter"].append(stranger)
    plan = plan_holdout(selection)
    assert plan.undeclared == ["stranger"]
    assert any("stranger declare no corruption families" in line for line in plan.lines())
    everything = plan_holdout(select(registry, ["noise", "color", "flips", "corrupt"]))
    assert everything.heldout == ()
    assert any("training simulates every family" in line for line in everything.lines())


def test_the_mixed_set_draws_only_from_the_pool_and_at_most_all_of_it():
    images = np.random.default_rng(0).integers(0, 256, (30, 32, 32, 3), dtype=np.uint8)
    _, applied = make_augmented_test_set(images, seed=1, ops_per_image=2,
                                         names=["bubbles", "dust", "deposits"])
    used = {step.split("@")[0] for o in applied for step in o.split("+")}
    assert used == {"bubbles", "dust", "deposits"}
    _, single = make_augmented_test_set(images, seed=1, ops_per_image=2, names=["jpeg"])
    assert all(o.split("@")[0] == "jpeg" and "+" not in o for o in single)


def test_the_report_marks_held_out_families_and_gives_their_mean():
    images = np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(6) % 3
    table = {image.tobytes(): int(label) for image, label in zip(images, labels)}

    def right_on_clean_only(batch):
        return np.array([table.get(image.tobytes(), -1) for image in batch])

    report = robustness_report(right_on_clean_only, images, labels,
                               heldout_families=("blur", "microscopy"))
    assert report["heldout_families"] == ["blur", "microscopy"]
    assert report["families"]["blur"] == ["blur", "defocus", "motion_blur"]
    held = [report["mean"][n] for n in [*FAMILIES["blur"], *FAMILIES["microscopy"]]]
    assert report["heldout_mean"] == pytest.approx(np.mean(held))
    assert report["family_mean"]["geometry"] == report["mean"]["d4"]
    lines = table_lines(report)
    assert "blur (held out)" in lines and "microscopy (held out)" in lines
    assert "noise" in lines and "noise (held out)" not in lines
    assert any(line.startswith("held-out families") for line in lines)
    none = robustness_report(right_on_clean_only, images, labels)
    assert none["heldout_mean"] is None
    assert not any(line.startswith("held-out families") for line in table_lines(none))


def test_build_rejects_an_unknown_family_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["build", "--holdout-family", "nois"])
    assert result.exit_code == 2
    assert "--holdout-family" in result.stderr and "received 'nois'" in result.stderr
    assert "data:" not in result.stderr and list(tmp_path.iterdir()) == []
