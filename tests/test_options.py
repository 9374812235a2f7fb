import pytest

from codabench_kit.errors import OptionError, UnknownComponentError
from codabench_kit.components.selection import parse_set, read_config, select

# What `cbk build` without --plugins uses, stage by stage (the README's defaults).
DEFAULT_CLEANERS = ["contaminants", "conflicts", "dedupe", "phash"]
DEFAULT_COMPONENTS = {"cleaner": DEFAULT_CLEANERS,
                      "augmenter": ["flips", "augmix", "color", "noise"],
                      "backbone": ["cnn"], "tta": ["d4-tta"]}


def names_by_kind(selection):
    return {kind: [c.name for c in components]
            for kind, components in selection.components.items()}


def test_defaults_fill_every_stage(registry):
    assert names_by_kind(select(registry, [])) == DEFAULT_COMPONENTS


def test_selected_components_keep_their_order(registry):
    selection = select(registry, ["augmix", "effnet", "flips"])
    assert [c.name for c in selection.of("augmenter")] == ["augmix", "flips"]
    assert selection.one("backbone").name == "effnet"
    assert [c.name for c in selection.of("cleaner")] == DEFAULT_CLEANERS


def test_set_is_typed_by_the_default(registry):
    selection = select(registry, ["effnet", "augmix", "flip-tta"],
                       parse_set(["effnet.variant=s", "augmix.magnitude=0.5",
                                  "augmix.num_chains=2", "flip-tta.vertical=false"]))
    assert selection.options_for("effnet") == {"variant": "s", "size": 0}
    assert selection.options_for("augmix") == {"probability": 1.0, "magnitude": 0.5,
                                               "num_chains": 2, "chain_depth": 3, "alpha": 1.0}
    assert selection.options_for("flip-tta") == {"vertical": False, "merge": "mean"}


def test_command_line_wins_over_config_file(registry, tmp_path):
    config = tmp_path / "cbk.toml"
    config.write_text('plugins = ["mobilenet"]\n[mobilenet]\nvariant = "v3small"\nalpha = 0.75\n')
    parsed = read_config(config)
    assert parsed["plugins"] == ["mobilenet"]
    selection = select(registry, parsed["plugins"], parse_set(["mobilenet.variant=v3large"]),
                       parsed["options"])
    assert selection.options_for("mobilenet") == {"variant": "v3large", "alpha": 0.75, "size": 128}


@pytest.mark.parametrize("assignment", ["effnet", "effnet=s", "variant=s", ".variant=s"])
def test_malformed_set_says_what_was_expected(assignment):
    with pytest.raises(OptionError, match=r"expected --set COMPONENT.OPTION=VALUE.*received"):
        parse_set([assignment])


def test_unknown_option_lists_valid_ones(registry):
    with pytest.raises(OptionError, match=r"effnet has no option 'varient'\. Did you mean "
                                          r"'variant'\? Its options: size, variant"):
        select(registry, ["effnet"], parse_set(["effnet.varient=s"]))


@pytest.mark.parametrize("assignment, message", [
    ("augmix.num_chains=many", "augmix.num_chains expects an int (default 1); received 'many'"),
    ("augmix.magnitude=big", "augmix.magnitude expects a float (default 0.3); received 'big'"),
])
def test_wrongly_typed_value(registry, assignment, message):
    with pytest.raises(OptionError) as info:
        select(registry, ["augmix"], parse_set([assignment]))
    assert str(info.value) == message


def test_options_for_an_unselected_component(registry):
    with pytest.raises(OptionError, match="does not use; add it to --plugins"):
        select(registry, ["cnn"], parse_set(["effnet.variant=s"]))
    with pytest.raises(UnknownComponentError, match="Did you mean 'effnet'"):
        select(registry, ["cnn"], parse_set(["efnet.variant=s"]))


def test_one_backbone_per_build(registry):
    with pytest.raises(OptionError, match="a build uses one backbone; --plugins selects 2"):
        select(registry, ["cnn", "effnet"])


def test_unknown_plugin_name(registry):
    with pytest.raises(UnknownComponentError, match="Did you mean 'augmix'"):
        select(registry, ["augmx"])


def test_bad_config_file(tmp_path):
    bad = tmp_path / "cbk.toml"
    bad.write_text("plugins = [\n")
    with pytest.raises(OptionError, match="is not valid TOML"):
        read_config(bad)
    with pytest.raises(OptionError, match="config file not found"):
        read_config(tmp_path / "missing.toml")
    bad.write_text("plugins = 3\n")
    with pytest.raises(OptionError, match="expected `plugins` to be a list"):
        read_config(bad)
