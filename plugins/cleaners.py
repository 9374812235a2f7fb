"""Built-in cleaner ``dedupe``: exact duplicates and contaminants.

Pictures are grouped by exact pixel identity. A picture found under two or more labels,
or copied more than ``max_copies`` times (the AN2DL training file has one non-cell
picture copied 200 times under every label and another 200 times under one label), is
a contaminant: every copy goes. Otherwise the first copy stays and the others go.
"""

from codabench_kit import hookimpl


@hookimpl
def register_cleaners(register):
    register("dedupe", make_dedupe,
             description="Drop exact duplicates; drop every copy of a picture found under "
             "several labels or repeated more than max_copies times.",
             options={"max_copies": 10})


def make_dedupe(max_copies=10):
    def dedupe(images, labels):
        return find_exact_duplicates(images, labels, max_copies=max_copies)

    return dedupe


def find_exact_duplicates(images, labels, max_copies=10):
    import hashlib

    import numpy as np

    from codabench_kit.cleaning import CleanResult

    n = len(labels)
    digests = np.array([hashlib.blake2b(images[i].tobytes(), digest_size=16).digest()
                        for i in range(n)], dtype="S16")
    _, group = np.unique(digests, return_inverse=True)
    keep = np.ones(n, dtype=bool)
    reasons = {}
    order = np.argsort(group, kind="stable")
    boundaries = np.flatnonzero(np.diff(group[order])) + 1
    for members in np.split(order, boundaries):
        if len(members) < 2:
            continue
        distinct = np.unique(labels[members])
        if len(distinct) > 1:
            reason = f"contaminant: same picture under {len(distinct)} labels"
            drop = members
        elif len(members) > max_copies:
            reason = f"contaminant: same picture {len(members)} times"
            drop = members
        else:
            reason = "exact duplicate"
            drop = members[1:]
        keep[drop] = False
        reasons.update((int(i), reason) for i in drop)
    return CleanResult(keep=keep, reasons=reasons)
