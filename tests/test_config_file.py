"""cbk.toml's [build] table (command line > file > defaults) and `cbk init`."""

import tomllib

from click.testing import CliRunner

from codabench_kit.cli import cli


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_build_table_fills_what_the_command_line_leaves_at_its_default(tmp_path):
    out = tmp_path / "from-file.zip"
    config = write(tmp_path / "cbk.toml", f"""
plugins = ["cnn", "flips"]
[build]
demo_size = 12
epochs = 3
seed = 3
out = "{out}"
[cnn]
width = 8
""")
    result = CliRunner().invoke(cli, ["build", "--config", config, "--epochs", "1"])
    assert result.exit_code == 0, result.output + str(result.exception)
    assert out.is_file()                            # out from the file
    assert "train epoch 1/1" in result.stderr       # --epochs 1 beat the file's 3
    assert "data: 96 images" in result.stderr       # demo_size 12 x 8 classes


def test_bad_build_table_entries_fail_before_any_work(tmp_path):
    cases = [("epoch = 3", "[build] has no option 'epoch'"),
             ("epochs = -1", "[build] epochs = -1:"),
             ("heldout_policy = \"mixed:n=99\"", "[build] heldout_policy = 'mixed:n=99':")]
    for line, message in cases:
        config = write(tmp_path / "cbk.toml", f"[build]\n{line}\n")
        result = CliRunner().invoke(cli, ["build", "--config", config])
        assert result.exit_code != 0 and message in result.output, (line, result.output)
        assert not (tmp_path / "submissions").exists()


def test_init_writes_a_starter_that_parses_and_never_overwrites(tmp_path):
    path = tmp_path / "cbk.toml"
    result = CliRunner().invoke(cli, ["init", "--out", str(path)])
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert tomllib.loads(text) == {"plugins": [], "build": {}, "head": {}, "train": {}}
    options = text[:text.index("\n# [")]  # [build], [head], [train]; then components
    uncommented = "\n".join(line[2:] if line.startswith("# ") and " = " in line else line
                            for line in options.splitlines()
                            if not line.startswith("# plugins"))
    settings = tomllib.loads(uncommented.replace(" = ...", ' = ""'))
    assert settings["build"]["epochs"] == 30 and settings["train"]["optimizer"] == "adamw"
    again = CliRunner().invoke(cli, ["init", "--out", str(path)])
    assert again.exit_code == 1 and "already exists" in again.output
    assert path.read_text() == text
