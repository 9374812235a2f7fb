"""Built-in cleaners.

Default chain (in this order): ``contaminants`` -> ``conflicts`` -> ``dedupe`` ->
``phash``. Opt-in: ``outliers``, ``similar``, ``balance``.

Distances were chosen on the real PBC cells: among 5,000 distinct images, 1 pair lies
within pHash distance 4 and 4 within 6, while JPEG re-encodes (quality 70-90) lie within
4 of their original and 1-pixel shifts 97% within 6.

The AN2DL training file shows why: one non-cell picture copied 200 times under every
label, another 200 times under one label (contaminants), exact and perceptual duplicates,
some under two labels (conflicts). Every cleaner says why it removed each image.
"""

from codabench_kit.api import check_choice, hookimpl


@hookimpl
def register_cleaners(register):
    register("contaminants", make_contaminants,
             description="Drop every copy of a picture repeated min_copies times or more, or "
             "under min_labels labels or more (copies: pHash distance <= max_distance, or "
             "exact pixels with by=pixels).")
    register("conflicts", make_conflicts,
             description="Duplicates (pHash distance <= max_distance) under different labels: "
             "policy 'drop' removes every copy, 'majority' keeps the majority label's.")
    register("dedupe", make_dedupe,
             description="Drop exact duplicates; drop every copy of a picture found under "
             "several labels or repeated more than max_copies times.")
    register("phash", make_phash,
             description="Drop perceptual near-duplicates (JPEG re-encodes, small shifts): "
             "pHash Hamming distance <= max_distance; keeps the first of each group.")
    register("outliers", make_outliers,
             description="IsolationForest on image features; drops the given share of most "
             "anomalous images (features: thumbnail, or a backbone name with weights).")
    register("similar", make_similar,
             description="Drop every image within cosine similarity threshold of example "
             "images you point at (examples: comma-separated image files).")
    register("balance", make_balance,
             description="Balance classes: class_weights (training weights), oversample "
             "(repeat rows of small classes; the augmenters vary them) or downsample.")


def _hashes(images):
    from codabench_kit.cleaning.phash import phash

    return phash(images)


def make_contaminants(min_copies=10, min_labels=3, by="phash", max_distance=4):
    check_choice("contaminants", "by", by, ("phash", "pixels"))

    def contaminants(images, labels):
        import numpy as np

        from codabench_kit.api import CleanResult
        from codabench_kit.cleaning.grouping import exact_groups, near_groups

        groups = (exact_groups(images) if by == "pixels"
                  else near_groups(_hashes(images), max_distance))
        keep, reasons = np.ones(len(labels), bool), {}
        for group in groups:
            n_labels = len(np.unique(labels[group]))
            if len(group) >= min_copies or n_labels >= min_labels:
                keep[group] = False
                reason = (f"contaminant: one picture {len(group)} times under "
                          f"{n_labels} label{'s' if n_labels > 1 else ''}")
                reasons.update((int(i), reason) for i in group)
        return CleanResult(keep, reasons)

    return contaminants


def make_conflicts(policy="drop", max_distance=4):
    check_choice("conflicts", "policy", policy, ("drop", "majority"))

    def conflicts(images, labels):
        import numpy as np

        from codabench_kit.api import CleanResult
        from codabench_kit.cleaning.grouping import near_groups

        keep, reasons = np.ones(len(labels), bool), {}
        for group in near_groups(_hashes(images), max_distance):
            values, counts = np.unique(labels[group], return_counts=True)
            if len(values) < 2:
                continue
            top = np.flatnonzero(counts == counts.max())
            if policy == "majority" and len(top) == 1:
                winner = values[top[0]]
                drop = group[labels[group] != winner]
                reason = "conflict: label outvoted by the copies' majority label"
            else:
                drop = group
                reason = f"conflict: same picture under {len(values)} labels"
            keep[drop] = False
            reasons.update((int(i), reason) for i in drop)
        return CleanResult(keep, reasons)

    return conflicts


def make_dedupe(max_copies=10):
    def dedupe(images, labels):
        return find_exact_duplicates(images, labels, max_copies=max_copies)

    return dedupe


def find_exact_duplicates(images, labels, max_copies=10):
    import numpy as np

    from codabench_kit.api import CleanResult
    from codabench_kit.cleaning.grouping import exact_groups

    keep, reasons = np.ones(len(labels), dtype=bool), {}
    for members in exact_groups(images):
        distinct = np.unique(labels[members])
        if len(distinct) > 1:
            reason, drop = f"contaminant: same picture under {len(distinct)} labels", members
        elif len(members) > max_copies:
            reason, drop = f"contaminant: same picture {len(members)} times", members
        else:
            reason, drop = "exact duplicate", members[1:]
        keep[drop] = False
        reasons.update((int(i), reason) for i in drop)
    return CleanResult(keep=keep, reasons=reasons)


def make_phash(max_distance=6):
    def near_duplicates(images, labels):
        import numpy as np

        from codabench_kit.api import CleanResult
        from codabench_kit.cleaning.grouping import near_groups

        keep, reasons = np.ones(len(labels), bool), {}
        for group in near_groups(_hashes(images), max_distance):
            if len(np.unique(labels[group])) > 1:
                drop, reason = group, "near duplicates under different labels"
            else:
                drop, reason = group[1:], f"near duplicate (pHash distance <= {max_distance})"
            keep[drop] = False
            reasons.update((int(i), reason) for i in drop)
        return CleanResult(keep, reasons)

    return near_duplicates


def make_outliers(share=0.01, features="thumbnail", weights="none", seed=0):
    from codabench_kit.api import OptionError

    if not 0 < share < 0.5:
        raise OptionError(f"outliers.share expects a fraction in (0, 0.5); received {share!r}")

    def outliers(images, labels):
        import numpy as np
        from sklearn.ensemble import IsolationForest

        from codabench_kit.api import CleanResult
        from codabench_kit.cleaning.features import image_features

        x = image_features(images, features, weights)
        forest = IsolationForest(contamination=share, random_state=seed).fit(x)
        keep = forest.predict(x) == 1
        return CleanResult(keep, {int(i): "outlier (IsolationForest)"
                                  for i in np.flatnonzero(~keep)})

    return outliers


def make_similar(examples=(), threshold=0.95, features="thumbnail", weights="none"):
    from codabench_kit.api import OptionError

    paths = [str(p) for p in examples]
    if not paths:
        raise OptionError("similar.examples expects one or more image files, e.g. "
                          "--set similar.examples=cartoon.png,poster.png; received none")
    example_images = _read_examples(paths)

    def similar(images, labels):
        import numpy as np

        from codabench_kit.api import CleanResult
        from codabench_kit.cleaning.features import image_features

        both = image_features(np.concatenate([example_images, images]), features, weights)
        cosine = both[len(example_images):] @ both[:len(example_images)].T
        best = cosine.argmax(axis=1)
        keep = cosine.max(axis=1) < threshold
        return CleanResult(keep, {int(i): f"similar to {paths[best[i]]} "
                                  f"(cosine {cosine[i, best[i]]:.2f})"
                                  for i in np.flatnonzero(~keep)})

    return similar


def _read_examples(paths):
    import numpy as np
    from PIL import Image

    from codabench_kit.api import OptionError

    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(np.asarray(image.convert("RGB").resize((96, 96))))
        except (OSError, ValueError) as exc:
            raise OptionError(f"similar.examples expects readable image files; received "
                              f"{path!r}: {exc}") from None
    return np.stack(images)


def make_balance(method="class_weights", target=0, seed=0):
    check_choice("balance", "method", method, ("class_weights", "oversample", "downsample"))

    def balance(images, labels):
        import numpy as np

        from codabench_kit.api import CleanResult

        counts = np.bincount(labels)
        present = counts[counts > 0]
        if method == "class_weights":
            weights = len(labels) / (len(present) * counts[labels])
            return CleanResult(np.ones(len(labels), bool), weights=weights)
        rng = np.random.default_rng(seed)
        if method == "downsample":
            goal = target or int(present.min())
            keep = np.zeros(len(labels), bool)
            for c in np.flatnonzero(counts):
                rows = np.flatnonzero(labels == c)
                keep[rng.permutation(rows)[:goal]] = True
            return CleanResult(keep, {int(i): f"downsampled class {labels[i]} to {goal}"
                                      for i in np.flatnonzero(~keep)})
        goal = target or int(present.max())
        repeats = np.ones(len(labels), np.int64)
        for c in np.flatnonzero(counts):
            rows = np.flatnonzero(labels == c)
            extra = max(goal - len(rows), 0)
            repeats[rows] += extra // len(rows)
            repeats[rng.permutation(rows)[:extra % len(rows)]] += 1
        return CleanResult(np.ones(len(labels), bool), repeats=repeats)

    return balance
