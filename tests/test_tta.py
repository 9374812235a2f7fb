"""The TTA strategies: their views against numpy, the inference model's merge (mean and
geometric mean) against the classifier run on the views by hand, seeding, invariance,
and option errors."""

import numpy as np
import pytest

from codabench_kit.errors import OptionError
from codabench_kit.components.selection import parse_set, select

MERGING = ("flip-tta", "rot-tta", "d4-tta", "random-tta", "crop-tta")
"""The strategies with a ``merge`` option: all but ``no-tta``."""
SIZE = 8
NUM_CLASSES = 4


@pytest.fixture
def create(registry):
    """``create(name, **overrides)``: the TTA strategy with its registered options."""
    def create(name, **overrides):
        component = registry.get(name, "tta")
        return component.create(**{**component.options, **overrides})

    return create


def views_of(tta, images):
    import keras

    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in tta(images)]


@pytest.fixture(scope="module")
def images():
    """Two asymmetric images: every pixel of each has a distinct colour."""
    rng = np.random.default_rng(0)
    pixels = np.stack([rng.permutation(SIZE * SIZE * 3) for _ in range(2)])
    return (pixels.reshape(2, SIZE, SIZE, 3) % 256).astype("float32")


@pytest.fixture(scope="module")
def classifier():
    """A tiny classifier that is not invariant to any symmetry (flatten -> Dense)."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(keras.layers.Flatten()(inputs))
    outputs = keras.layers.Dense(NUM_CLASSES, activation="softmax",
                                 kernel_initializer=keras.initializers.RandomNormal(0, 1.0))(x)
    return keras.Model(inputs, outputs)


def symmetries(images):
    """The 8 symmetries of the square by numpy, in d4-tta's order."""
    return [np.rot90(x, k, axes=(1, 2)) for k in range(4)
            for x in (images, images[:, :, ::-1])]


def pixel_rows(image):
    return sorted(map(tuple, image.reshape(-1, image.shape[-1])))


# --- views ---------------------------------------------------------------------------------


def test_strategies_are_registered_with_a_merge_option(registry, create):
    for name in MERGING:
        component = registry.get(name, "tta")
        assert component.options["merge"] == "mean"
        assert create(name).merge == "mean"
        assert create(name, merge="logits").merge == "logits"


def test_flip_tta_views_unchanged(images, create):
    views = views_of(create("flip-tta"), images)
    assert len(views) == 3
    np.testing.assert_array_equal(views[0], images)
    np.testing.assert_array_equal(views[1], images[:, :, ::-1])
    np.testing.assert_array_equal(views[2], images[:, ::-1])
    assert len(views_of(create("flip-tta", vertical=False), images)) == 2


def test_rot_tta_views_are_np_rot90(images, create):
    views = views_of(create("rot-tta"), images)
    assert len(views) == 4
    for k, view in enumerate(views):
        np.testing.assert_array_equal(view, np.rot90(images, k, axes=(1, 2)))


def test_d4_tta_gives_the_8_distinct_symmetries(images, create):
    views = views_of(create("d4-tta"), images)
    assert len(views) == 8
    assert len({v.tobytes() for v in views}) == 8
    for view, expected in zip(views, symmetries(images)):
        np.testing.assert_array_equal(view, expected)
        for i in range(len(images)):  # an exact permutation of the image's pixels
            assert pixel_rows(view[i]) == pixel_rows(images[i])


def test_non_square_images_keep_their_shape(images, create):
    wide = np.concatenate([images, images[:, :, :4] + 1], axis=2)  # 8 x 12
    with pytest.warns(UserWarning, match="not square"):
        rot = views_of(create("rot-tta"), wide)
    assert len(rot) == 2
    np.testing.assert_array_equal(rot[1], wide[:, ::-1, ::-1])
    with pytest.warns(UserWarning, match="not square"):
        d4 = views_of(create("d4-tta"), wide)
    expected = [wide, wide[:, :, ::-1], wide[:, ::-1], wide[:, ::-1, ::-1]]
    assert len(d4) == 4
    for view, want in zip(d4, expected):
        np.testing.assert_array_equal(view, want)


def test_crop_tta_views_are_centre_crops(images, create):
    """A frame of 1s around a 4x4 centre of 200s: the 0.5 crop is the centre alone."""
    framed = np.ones((1, SIZE, SIZE, 3), "float32")
    framed[:, 2:6, 2:6] = 200.0
    views = views_of(create("crop-tta", scales=[1.0, 0.5]), framed)
    assert [v.shape for v in views] == [framed.shape] * 2
    np.testing.assert_array_equal(views[0], framed)
    np.testing.assert_allclose(views[1], 200.0, atol=1e-4)
    default = views_of(create("crop-tta"), images)
    assert len(default) == 3 and not np.allclose(default[2], images)


def random_view_by_hand(image_batch, transform):
    """random-tta's view by numpy: symmetry, mirrored shift, brightness, clip."""
    symmetry, down, right, brightness = transform
    view = symmetries(image_batch)[symmetry]
    dy, dx = round(down * SIZE), round(right * SIZE)
    padded = np.pad(view, [(0, 0), (abs(dy),) * 2, (abs(dx),) * 2, (0, 0)], mode="reflect")
    view = padded[:, abs(dy) - dy:abs(dy) - dy + SIZE, abs(dx) - dx:abs(dx) - dx + SIZE]
    return np.clip(view + brightness, 0, 255)


def test_random_tta_views_match_their_transforms(images, create):
    tta = create("random-tta", views=6, seed=3, magnitude=1.0)
    views = views_of(tta, images)
    assert len(views) == len(tta.transforms) == 6
    np.testing.assert_array_equal(views[0], images)
    assert any(round(t[1] * SIZE) or round(t[2] * SIZE) for t in tta.transforms)
    for view, transform in zip(views, tta.transforms):
        np.testing.assert_allclose(view, random_view_by_hand(images, transform), atol=1e-4)
    assert len({v.tobytes() for v in views}) == 6


def test_random_tta_is_fixed_by_its_seed(images, create):
    first = views_of(create("random-tta", seed=7), images)
    again = views_of(create("random-tta", seed=7), images)
    other = views_of(create("random-tta", seed=8), images)
    assert len(first) == 8
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    quiet = views_of(create("random-tta", seed=7, magnitude=0.0), images)
    for view in quiet:  # magnitude 0: symmetries only
        assert any(np.array_equal(view, s) for s in symmetries(images))


# --- the inference model -------------------------------------------------------------------


CASES = [("no-tta", {}), ("flip-tta", {}), ("flip-tta", {"merge": "logits"}),
         ("rot-tta", {}), ("rot-tta", {"merge": "logits"}), ("d4-tta", {}),
         ("d4-tta", {"merge": "logits"}), ("random-tta", {"views": 4, "magnitude": 1.0}),
         ("random-tta", {"merge": "logits"}), ("crop-tta", {}),
         ("crop-tta", {"merge": "logits"})]


@pytest.mark.parametrize("name, options", CASES, ids=lambda c: str(c))
def test_inference_model_merges_the_views(name, options, images, classifier, create):
    """The model's output is the mean (or normalised geometric mean) of the classifier's
    probabilities on the views computed here, image by image."""
    from codabench_kit.training.model import inference_model

    tta = create(name, **options)
    model = inference_model(classifier, tta)
    got = model.predict(images, verbose=0)
    probs = np.stack([classifier.predict(v, verbose=0) for v in views_of(tta, images)])
    if options.get("merge") == "logits":
        geometric = np.exp(np.log(probs).mean(axis=0))
        expected = geometric / geometric.sum(axis=-1, keepdims=True)
    else:
        expected = probs.mean(axis=0)
    assert got.shape == (len(images), NUM_CLASSES)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    if len(probs) > 1:  # the classifier is not invariant: TTA changes something
        assert not np.allclose(got, probs[0], atol=1e-4)


def test_logits_merge_differs_from_mean(images, classifier, create):
    from codabench_kit.training.model import inference_model

    mean = inference_model(classifier, create("d4-tta")).predict(images, verbose=0)
    logits = inference_model(classifier, create("d4-tta", merge="logits")).predict(
        images, verbose=0)
    assert np.abs(mean - logits).max() > 1e-3


def test_invariant_model_is_unchanged_by_d4_tta(images, create):
    """Global average of the pixels then Dense is invariant to every symmetry."""
    import keras

    from codabench_kit.training.model import inference_model

    keras.utils.set_random_seed(1)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    invariant = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(x))
    plain = inference_model(invariant, create("no-tta")).predict(images, verbose=0)
    for merge in ("mean", "logits"):
        d4 = inference_model(invariant, create("d4-tta", merge=merge)).predict(
            images, verbose=0)
        np.testing.assert_allclose(d4, plain, rtol=0, atol=1e-6)


def test_strategy_without_merge_attribute_is_averaged(images, classifier):
    from codabench_kit.training.model import inference_model

    def twice(batch):  # a third-party strategy: a plain callable
        return [batch, batch[:, ::-1]]

    got = inference_model(classifier, twice).predict(images, verbose=0)
    expected = (classifier.predict(images, verbose=0)
                + classifier.predict(images[:, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_unknown_merge_attribute_is_refused(classifier, create):
    from codabench_kit.training.model import inference_model

    tta = create("flip-tta")
    tta.merge = "median"
    with pytest.raises(OptionError, match="expected merge to be one of mean, logits; "
                                          "received 'median'"):
        inference_model(classifier, tta)


def test_random_tta_exports_are_identical(images, classifier, tmp_path, create):
    """Two exports with the same seed predict the same, bit for bit, twice each (3 s here)."""
    from codabench_kit.packaging.export import export_savedmodel, savedmodel_probabilities
    from codabench_kit.training.model import inference_model

    outputs = []
    for i in range(2):
        model = inference_model(classifier, create("random-tta", seed=5, magnitude=1.0))
        export_savedmodel(model, tmp_path / f"export{i}")
        outputs.append(savedmodel_probabilities(tmp_path / f"export{i}", images))
        outputs.append(savedmodel_probabilities(tmp_path / f"export{i}", images))
    for other in outputs[1:]:
        np.testing.assert_array_equal(other, outputs[0])
    np.testing.assert_allclose(outputs[0], model.predict(images, verbose=0), atol=1e-6)


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, options, message", [
    ("d4-tta", {"merge": "median"}, "d4-tta.merge expects one of mean, logits; "
                                    "received 'median'"),
    ("flip-tta", {"merge": "max"}, "flip-tta.merge expects one of mean, logits"),
    ("flip-tta", {"vertical": "maybe"}, "flip-tta.vertical expects true or false; "
                                        "received 'maybe'"),
    ("rot-tta", {"merge": 1}, "rot-tta.merge expects one of mean, logits; received 1"),
    ("random-tta", {"views": 0}, "random-tta.views expects an integer >= 1; received 0"),
    ("random-tta", {"views": 2.5}, "random-tta.views expects an integer >= 1; received 2.5"),
    ("random-tta", {"seed": -1}, "random-tta.seed expects an integer >= 0; received -1"),
    ("random-tta", {"magnitude": 1.5}, "random-tta.magnitude expects a number in [0, 1]; "
                                       "received 1.5"),
    ("crop-tta", {"scales": []}, "crop-tta.scales expects a non-empty list of numbers in "
                                 "(0, 1]"),
    ("crop-tta", {"scales": [1.0, 1.2]}, "received [1.0, 1.2]"),
    ("crop-tta", {"scales": [1.0, 0.0]}, "received [1.0, 0.0]"),
    ("crop-tta", {"scales": ["big"]}, "received ['big']"),
])
def test_bad_options_are_refused(name, options, message, create):
    with pytest.raises(OptionError) as info:
        create(name, **options)
    assert message in str(info.value)


def test_options_from_the_command_line(registry, create):
    selection = select(registry, ["crop-tta"], parse_set(["crop-tta.scales=1,0.75",
                                                          "crop-tta.merge=logits"]))
    tta = create("crop-tta", **selection.options_for("crop-tta"))
    assert tta.scales == (1.0, 0.75) and tta.merge == "logits"
    selection = select(registry, ["random-tta"], parse_set(["random-tta.views=3",
                                                            "random-tta.seed=2"]))
    assert len(create("random-tta", **selection.options_for("random-tta")).transforms) == 3
    selection = select(registry, ["crop-tta"], parse_set(["crop-tta.scales=1,2"]))
    with pytest.raises(OptionError, match=r"received \['1', '2'\]"):
        create("crop-tta", **selection.options_for("crop-tta"))
