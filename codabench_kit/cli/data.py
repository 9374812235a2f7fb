"""``cbk clean`` and ``cbk augment``: one stage of the pipeline on a data file."""

from __future__ import annotations

import click

from codabench_kit.cleaning.run import MAX_REMOVED_SHARE
from codabench_kit.cli.shared import (batch_size_option, core_errors, default_of,
                                      echo_progress, load_registry, max_removed_option,
                                      plugins_option, seed_option, set_option)
from codabench_kit.training.augment_file import augment_file


@click.command()
@click.option("--data", type=click.Path(), required=True,
              help="Training .npz (AN2DL layout) or a folder with one subfolder per class.")
@click.option("--out", type=click.Path(), default=None,
              help="Cleaned .npz to write (never overwritten): the input's keys, row-selected, "
                   "plus `index`, the input rows kept. Required unless --dry-run.")
@plugins_option("Comma-separated cleaners, in order. Default: "
                "contaminants,conflicts,dedupe,phash.")
@set_option("A cleaner option, e.g. --set phash.max_distance=6. Repeatable.")
@click.option("--config", type=click.Path(), default=None,
              help="A cbk.toml (default: ./cbk.toml if present); only its cleaners are used.")
@click.option("--picture", type=click.Path(), default=None,
              help="PNG of the removed images. Default: OUT with .removed.png "
                   "(with --dry-run, only when given).")
@max_removed_option(MAX_REMOVED_SHARE,
                    "Stop, writing nothing, if one cleaner would remove more than this share.")
@click.option("--dry-run", is_flag=True, help="Report what would be removed; write no .npz.")
@core_errors
def clean(data, out, plugin_names, assignments, config, picture, max_removed, dry_run):
    """Run the cleaners alone: report what each removes and why, draw the removed images,
    and write the cleaned data.

    \b
    Examples:
      cbk clean --data training_set.npz --out clean.npz
      cbk clean --data training_set.npz --dry-run --picture removed.png
      cbk clean --data training_set.npz --out clean.npz --plugins contaminants,phash,balance \\
                --set balance.method=oversample
    """
    from codabench_kit.cleaning.clean_file import clean_file
    from codabench_kit.components.selection import component_choices, select_kind

    names, settings, file_settings = component_choices(plugin_names, assignments, config)
    chosen = select_kind(load_registry(), "cleaner", "cbk clean", names, settings,
                         file_settings)
    cleaners = [(c.name, c.create(**options)) for c, options in chosen]
    result = clean_file(data, out, cleaners, picture=picture, dry_run=dry_run,
                        max_removed_share=max_removed, progress=echo_progress)
    for line in result.table:
        click.echo(line)
    if result.picture is not None:
        click.echo(f"picture of the removed images: {result.picture}")
    if result.out is not None:
        click.echo(f"cleaned data: {result.out}")


@click.command()
@click.option("--data", type=click.Path(), required=True,
              help="Labelled .npz (AN2DL layout) or a folder with one subfolder per class.")
@click.option("--out", type=click.Path(), required=True,
              help="The augmented .npz to write (never overwritten).")
@plugins_option("Augmenters to apply, in order, e.g. corrupt or flips,color.", required=True)
@set_option("An augmenter option, e.g. --set corrupt.severity=3. Repeatable.")
@seed_option(default_of(augment_file, "seed"))
@batch_size_option(default_of(augment_file, "batch_size"))
@core_errors
def augment(data, out, plugin_names, assignments, seed, batch_size):
    """Apply augmenters to a labelled set and write the result: to look at them, or to
    test a submission on corrupted images.

    \b
    Examples:
      cbk augment --data mini.npz --out mini-s3.npz --plugins corrupt \\
                  --set corrupt.severity=3 --set corrupt.probability=1
      cbk validate submissions/cbk-mobilenet.zip --data mini-s3.npz
    """
    from codabench_kit.components.selection import parse_set, select_kind, split_names

    names = split_names(plugin_names)
    if not names:
        raise click.BadParameter(f"expected one or more augmenter names; received "
                                 f"{plugin_names!r}", param_hint="--plugins")
    chosen = select_kind(load_registry(), "augmenter", "cbk augment", names,
                         parse_set(assignments))
    path = augment_file(data, out, chosen, seed=seed, batch_size=batch_size,
                        progress=echo_progress)
    click.echo(f"augmented data: {path}")
