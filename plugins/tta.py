"""Built-in test-time augmentation: ``no-tta`` and ``flip-tta``.

A TTA strategy returns the views of a batch; the exported model averages the class
probabilities over them inside one graph, so prediction stays batched.
"""

from codabench_kit import hookimpl


@hookimpl
def register_tta(register):
    register("no-tta", NoTTA, description="Predict on the image as given.")
    register("flip-tta", FlipTTA, description="Average over the image and its flips "
             "(horizontal, and vertical unless vertical=false).", options={"vertical": True})


class NoTTA:
    def __call__(self, images):
        return [images]


class FlipTTA:
    def __init__(self, vertical=True):
        self.vertical = vertical

    def __call__(self, images):
        from keras import ops

        views = [images, ops.flip(images, axis=2)]
        if self.vertical:
            views.append(ops.flip(images, axis=1))
        return views
