"""A procedural demo training set that looks loosely like AN2DL's blood-smear crops.

Each image is a pale background with red blood cells and, except for platelets, one
white cell near the centre whose morphology follows its class, roughly as in a
May-Grünwald-Giemsa stained peripheral-blood smear. Painting happens in optical
density (absorbance) so that stains overlap the way they do on glass; every pixel
operation is vectorised numpy, and the same seed always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codabench_kit.data.dataset import AN2DL_CLASS_NAMES, Dataset
from codabench_kit.errors import DataError


def _od(rgb) -> np.ndarray:
    """Optical density per channel of a colour seen through one unit of stain."""
    return (-np.log(np.asarray(rgb, dtype=np.float64) / 255.0)).astype(np.float32)


# Colour of one unit of each stain on white: OD vectors (R, G, B).
_BACKGROUND = _od((240, 226, 224))
_RBC = _od((226, 158, 158))
_NUCLEUS = _od((92, 52, 140))
_CYTO_PALE_BLUE = _od((178, 202, 236))
_CYTO_GREY_BLUE = _od((186, 184, 214))
_CYTO_DEEP_BLUE = _od((150, 150, 205))
_CYTO_PINK = _od((232, 208, 218))
_CYTO_LILAC = _od((214, 196, 226))
_GRAN_EOSIN = _od((238, 122, 86))
_GRAN_BASO = _od((62, 32, 104))
_GRAN_NEUTRO = _od((196, 160, 206))
_PLATELET = _od((160, 110, 196))

_BLOB_CHUNK = 32
"""Spots per matrix product in :meth:`_Painter.blobs`."""

# Radius range (px at 96x96) of the central cell per class, in AN2DL label order; a
# platelet's entry only sizes the space kept free of red cells.
_CELL_RADIUS = (
    (15.5, 18.5),  # basophil
    (17.5, 20.5),  # eosinophil
    (11.5, 14.0),  # erythroblast
    (20.0, 24.0),  # immature granulocyte
    (10.5, 13.0),  # lymphocyte
    (22.5, 27.0),  # monocyte
    (17.0, 20.0),  # neutrophil
    (4.0, 7.0),    # platelet
)


def demo_dataset(seed: int = 0, per_class: int = 200, image_size: int = 96) -> Dataset:
    """Draw a deterministic synthetic blood-cell dataset with the 8 AN2DL classes.

    Args:
        seed: Random seed; the same seed gives byte-identical arrays.
        per_class: Images per class.
        image_size: Side of the square images in pixels; cell sizes scale with it.

    Returns:
        A :class:`Dataset` of ``8 * per_class`` shuffled images, source ``"demo(seed=...)"``.

    Raises:
        DataError: An argument is out of range.
    """
    for name, value, low in (("seed", seed, 0), ("per_class", per_class, 1), ("image_size", image_size, 32)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DataError(f"Expected {name} to be an integer >= {low}. Received: {name}={value!r}")
    rng = np.random.default_rng(int(seed))
    num_classes = len(AN2DL_CLASS_NAMES)
    labels = rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), int(per_class)))
    painter = _Painter(int(image_size))
    images = np.empty((labels.size, image_size, image_size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = painter.paint(int(label), rng)
    return Dataset(images=images, labels=labels, class_names=AN2DL_CLASS_NAMES,
                   source=f"demo(seed={int(seed)})")


def _ramp(inside: np.ndarray, width: float) -> np.ndarray:
    """Soft step: 0 outside, 1 inside, linear over ``width`` pixels around the edge."""
    return np.clip(0.5 + inside / width, 0.0, 1.0)


def _interp_matrix(size: int, cells: int) -> np.ndarray:
    """Linear interpolation from ``cells`` grid values to ``size`` pixels, as a matrix."""
    pos = (np.arange(size) + 0.5) / size * (cells - 1)
    lo = np.minimum(np.floor(pos).astype(int), cells - 2)
    frac = pos - lo
    matrix = np.zeros((size, cells), dtype=np.float32)
    matrix[np.arange(size), lo] = 1.0 - frac
    matrix[np.arange(size), lo + 1] = frac
    return matrix


class _Painter:
    """Paints one image at a time on a fixed pixel grid."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.scale = size / 96.0
        coords = np.arange(size, dtype=np.float32) + 0.5
        self.yy, self.xx = np.meshgrid(coords, coords, indexing="ij")
        self.coords = coords
        self._interp = {}
        self.focus(None)

    def focus(self, centre, half=None) -> None:
        """Restrict drawing to a square window around ``centre`` (or the whole image for None).

        Shapes and spots are computed only inside the window, which is what keeps the
        generator fast; :attr:`window` says where a layer goes back into the image.
        """
        if centre is None:
            rows = cols = slice(0, self.size)
        else:
            cx, cy = centre
            rows = slice(max(0, int(cy - half)), min(self.size, int(np.ceil(cy + half))))
            cols = slice(max(0, int(cx - half)), min(self.size, int(np.ceil(cx + half))))
        self.window = (rows, cols)
        self.X, self.Y = self.xx[rows, cols], self.yy[rows, cols]
        self.xc, self.yc = self.coords[cols], self.coords[rows]

    # ---------------------------------------------------------------- helpers

    def noise(self, rng, cells: int) -> np.ndarray:
        """Smooth noise with roughly unit variance and features ``size / cells`` wide."""
        matrix = self._interp.get(cells)
        if matrix is None:
            matrix = self._interp[cells] = _interp_matrix(self.size, cells)
        grid = rng.standard_normal((cells, cells), dtype=np.float32)
        rows, cols = self.window
        return matrix[rows] @ grid @ matrix[cols].T * 1.4

    def blobs(self, rng, centres: np.ndarray, sigma, weights=None) -> np.ndarray:
        """Sum of round Gaussian spots at ``centres`` (G, 2) as (x, y); separable, so a matmul."""
        sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float32), (len(centres),))[:, None]
        # Exponents are floored at -30: far tails would otherwise underflow into subnormal
        # floats, which make the matmul below a hundred times slower.
        gx = np.exp(np.maximum(-0.5 * ((self.xc[None, :] - centres[:, :1]) / sigma) ** 2, -30.0))
        gy = np.exp(np.maximum(-0.5 * ((self.yc[None, :] - centres[:, 1:]) / sigma) ** 2, -30.0))
        if weights is not None:
            gy = gy * np.asarray(weights, dtype=np.float32)[:, None]
        # Summed in chunks so that each product stays small enough for BLAS to run it on
        # one thread: threading these tiny products costs far more than it saves.
        out = np.zeros((gy.shape[1], gx.shape[1]), dtype=np.float32)
        for start in range(0, len(centres), _BLOB_CHUNK):
            out += gy[start:start + _BLOB_CHUNK].T @ gx[start:start + _BLOB_CHUNK]
        return out

    @staticmethod
    def points_in_disc(rng, cx, cy, radius, count) -> np.ndarray:
        r = radius * np.sqrt(rng.uniform(0.0, 1.0, count))
        a = rng.uniform(0.0, 2 * np.pi, count)
        return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1).astype(np.float32)

    def ellipse(self, cx, cy, a, b, theta, wobble=None) -> np.ndarray:
        """Approximate signed distance (px, positive inside) to a rotated ellipse."""
        dx, dy = self.X - cx, self.Y - cy
        c, s = float(np.cos(theta)), float(np.sin(theta))  # Python floats keep arrays float32
        u, v = dx * c + dy * s, -dx * s + dy * c
        rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        if wobble is not None:
            # 1 + sum_k amp_k cos(k phi + ph_k) is 1 + Re P(z) with z = e^(i phi) and
            # P(z) = sum_k amp_k e^(i ph_k) z^k: Horner's rule, no trigonometry per pixel.
            z = (u + 1j * v).astype(np.complex64)
            z /= np.maximum(np.abs(z), 1e-6)
            coeffs = {k: complex(amp * np.exp(1j * ph)) for k, amp, ph in wobble}
            poly = np.zeros_like(z)
            for k in range(max(coeffs), 0, -1):
                poly = (poly + coeffs.get(k, 0.0)) * z
            rho = rho / (1.0 + poly.real)
        return (1.0 - rho) * min(a, b)

    def segment(self, p, q, width) -> np.ndarray:
        """Signed distance (px, positive inside) to a capsule of half-width ``width`` from p to q."""
        px, py = p
        vx, vy = q[0] - px, q[1] - py
        length2 = max(vx * vx + vy * vy, 1e-6)
        t = np.clip(((self.X - px) * vx + (self.Y - py) * vy) / length2, 0.0, 1.0)
        return width - np.hypot(self.X - (px + t * vx), self.Y - (py + t * vy))

    @staticmethod
    def wobble(rng, amount) -> list:
        return [(k, rng.normal(0, amount / k), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4, 5)]

    # ---------------------------------------------------------------- scene

    def paint(self, label: int, rng) -> np.ndarray:
        s = self.scale
        size = self.size
        layers: list[tuple[np.ndarray, np.ndarray]] = []
        stain = {"eosin": rng.uniform(0.8, 1.2), "azure": rng.uniform(0.8, 1.15)}
        tint = np.exp(rng.normal(0.0, 0.07, 3)).astype(np.float32)

        # Background: pale pink with slow variation.
        bg = rng.uniform(0.6, 1.4) * (1.0 + 0.25 * self.noise(rng, 4))
        layers.append((bg, _BACKGROUND))

        # The white cell's footprint decides where red cells may sit.
        cx = size / 2 + float(np.clip(rng.normal(0, 4.0 * s), -10 * s, 10 * s))
        cy = size / 2 + float(np.clip(rng.normal(0, 4.0 * s), -10 * s, 10 * s))
        radius = rng.uniform(*_CELL_RADIUS[label]) * s
        layers.append((self.red_cells(rng, cx, cy, radius) * stain["eosin"], _RBC))

        od = np.zeros((size, size, 3), dtype=np.float32)
        for density, vector in layers:
            od += density[..., None] * (vector * tint)

        # The cell itself is drawn only in a window around it.
        if label == 7:
            self.focus((cx, cy), 22 * s)
            layers = self.platelets(rng, cx, cy)
        else:
            self.focus((cx, cy), radius * 1.35 + 3 * s)
            layers = self.white_cell(label, rng, cx, cy, radius, stain)
        region = od[self.window]
        for density, vector in layers:
            region += density[..., None] * (vector * tint)
        self.focus(None)

        od = self.blur(od)
        white = (255.0 * rng.uniform(0.93, 1.0) * np.exp(rng.normal(0.0, 0.02, 3))).astype(np.float32)
        image = white * np.exp(-od)
        image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(1.5, 4.0)
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)

    @staticmethod
    def blur(od: np.ndarray) -> np.ndarray:
        """3x3 binomial blur with edge padding: the optics' slight softness."""
        p = np.pad(od, ((1, 1), (1, 1), (0, 0)), mode="edge")
        rows = 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]
        return 0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:]

    def red_cells(self, rng, cx, cy, keep_out) -> np.ndarray:
        """Light red discs with paler centres, scattered, some cut by the border."""
        s, size = self.scale, self.size
        rbc_r = rng.uniform(10.0, 12.5) * s
        candidates = rng.uniform(-0.6 * rbc_r, size + 0.6 * rbc_r, (40, 2))
        clear = np.hypot(candidates[:, 0] - cx, candidates[:, 1] - cy) > keep_out + 0.55 * rbc_r
        centres = candidates[clear][: int(rng.integers(6, 14))]
        k = len(centres)
        radii = (rbc_r * rng.uniform(0.88, 1.12, k)).astype(np.float32)[:, None, None]
        squash = rng.uniform(0.85, 1.0, k).astype(np.float32)[:, None, None]
        theta = rng.uniform(0, np.pi, k).astype(np.float32)[:, None, None]
        strength = rng.uniform(0.75, 1.15, k).astype(np.float32)[:, None, None]
        # Each disc is drawn on its own small stamp, then the stamps are added to a
        # padded canvas; far cheaper than evaluating every disc over the whole image.
        w = int(np.ceil(2 * 1.12 * rbc_r)) + 4
        corner = np.floor(centres).astype(int) - w // 2  # (k, 2) as (x, y)
        local = np.arange(w, dtype=np.float32) + 0.5
        dx = (corner[:, 0, None] + local[None, :] - centres[:, :1]).astype(np.float32)[:, None, :]
        dy = (corner[:, 1, None] + local[None, :] - centres[:, 1:]).astype(np.float32)[:, :, None]
        u = dx * np.cos(theta) + dy * np.sin(theta)
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / squash
        dist = np.sqrt(u * u + v * v)
        body = _ramp(radii - dist, 1.6)
        pallor = np.exp(-((dist / (0.55 * radii)) ** 2))
        stamps = body * (1.0 - 0.72 * pallor) * strength
        canvas = np.zeros((size + 2 * w, size + 2 * w), dtype=np.float32)
        for (x0, y0), stamp in zip(corner + w, stamps):
            canvas[y0:y0 + w, x0:x0 + w] += stamp
        return canvas[w:w + size, w:w + size]

    def platelets(self, rng, cx, cy) -> list:
        """One or a few small purple fragments with a darker granular centre."""
        s = self.scale
        count = int(rng.choice([1, 1, 2, 3, 4]))
        pts = [(cx, cy)]
        for _ in range(count - 1):
            a, d = rng.uniform(0, 2 * np.pi), rng.uniform(6, 12) * s
            pts.append((cx + d * np.cos(a), cy + d * np.sin(a)))
        body = np.zeros_like(self.X)
        granules = np.zeros_like(self.X)
        for px, py in pts:
            r = rng.uniform(4.0, 7.0) * s
            shape = self.ellipse(px, py, r, r * rng.uniform(0.6, 0.95), rng.uniform(0, np.pi),
                                 self.wobble(rng, 0.12))
            body = np.maximum(body, _ramp(shape, 1.2))
            centres = self.points_in_disc(rng, px, py, 0.6 * r, int(rng.integers(4, 9)))
            granules += self.blobs(rng, centres, 0.7 * s)
        return [(body * rng.uniform(0.6, 0.9), _PLATELET),
                (np.minimum(granules, 1.5) * body * rng.uniform(0.35, 0.6), _NUCLEUS)]

    # ---------------------------------------------------------------- white cells

    def white_cell(self, label, rng, cx, cy, r, stain) -> list:
        """The (density, OD vector) layers of one white cell of class ``label``."""
        theta = rng.uniform(0, 2 * np.pi)
        irregular = 0.09 if label == 5 else 0.04
        mask = _ramp(self.ellipse(cx, cy, r, r * rng.uniform(0.88, 1.0), theta,
                                  self.wobble(rng, irregular)), 1.4)
        cell = _Cell(cx, cy, r, theta, mask, stain["azure"], stain["eosin"])
        paint = {0: self.basophil, 1: self.eosinophil, 2: self.erythroblast,
                 3: self.immature_granulocyte, 4: self.lymphocyte,
                 5: self.monocyte}.get(label, self.neutrophil)
        return paint(rng, cell)

    def texture(self, rng, amount, cells) -> np.ndarray:
        """Chromatin texture: a factor ``1 +- amount`` varying over ``size / cells`` pixels."""
        return 1.0 + amount * self.noise(rng, cells)

    def granule_centres(self, rng, cell, spread, counts) -> np.ndarray:
        """Granule positions: a count drawn from ``counts`` within ``spread`` x the cell radius."""
        return self.points_in_disc(rng, cell.cx, cell.cy, spread * cell.r,
                                   int(rng.integers(*counts)))

    def basophil(self, rng, cell) -> list:
        """Basophil: nucleus hidden under coarse dark granules."""
        s, r = self.scale, cell.r
        nucleus = _ramp(self.ellipse(*cell.at(rng.normal(0, 2 * s), 0), 0.62 * r, 0.5 * r,
                                     cell.theta, self.wobble(rng, 0.12)), 1.5)
        layers = [(cell.mask * rng.uniform(0.55, 0.8), _CYTO_LILAC),
                  (nucleus * rng.uniform(0.55, 0.75) * cell.azure, _NUCLEUS)]
        centres = self.granule_centres(rng, cell, 0.9, (45, 80))
        grains = self.blobs(rng, centres, rng.uniform(1.0, 1.5, len(centres)) * s,
                            rng.uniform(0.5, 1.0, len(centres)))
        layers.append((np.minimum(grains, 1.6) * cell.mask * rng.uniform(0.5, 0.7) * cell.azure,
                       _GRAN_BASO))
        return layers

    def eosinophil(self, rng, cell) -> list:
        """Eosinophil: bilobed nucleus, orange-red granules everywhere."""
        nucleus = _ramp(self.bilobed_nucleus(rng, cell), 1.2)
        texture = self.texture(rng, 0.15, 24)
        centres = self.granule_centres(rng, cell, 0.93, (110, 160))
        grains = self.blobs(rng, centres, rng.uniform(1.0, 1.3) * self.scale)
        return [(cell.mask * rng.uniform(0.35, 0.5), _CYTO_PINK),
                (nucleus * texture * rng.uniform(0.75, 0.95) * cell.azure, _NUCLEUS),
                (np.minimum(grains, 2.0) * cell.mask * rng.uniform(0.45, 0.6) * cell.eosin,
                 _GRAN_EOSIN)]

    def bilobed_nucleus(self, rng, cell) -> np.ndarray:
        """Signed distance to two lobes joined by a thin strand (eosinophil)."""
        r = cell.r
        gap = rng.uniform(0.32, 0.42) * r
        bend = rng.uniform(-0.15, 0.1) * r
        lobes = [cell.at(side * gap, bend) for side in (-1, 1)]
        return np.maximum.reduce([
            self.ellipse(lx, ly, 0.36 * r * rng.uniform(0.9, 1.1), 0.27 * r,
                         cell.theta + side * 0.5, self.wobble(rng, 0.06))
            for (lx, ly), side in zip(lobes, (-1, 1))
        ] + [self.segment(lobes[0], lobes[1], 1.4 * self.scale)])

    def erythroblast(self, rng, cell) -> list:
        """Erythroblast: very dense round nucleus, thin deep-blue rim."""
        r = cell.r
        off = rng.uniform(0, 0.18) * r
        nucleus = _ramp(self.ellipse(*cell.at(off, 0), 0.66 * r, 0.62 * r, cell.theta,
                                     self.wobble(rng, 0.02)), 1.0)
        texture = self.texture(rng, 0.06, 32)
        return [(cell.mask * rng.uniform(0.75, 1.05), _CYTO_DEEP_BLUE),
                (nucleus * texture * rng.uniform(1.45, 1.7) * cell.azure, _NUCLEUS)]

    def immature_granulocyte(self, rng, cell) -> list:
        """Immature granulocyte: big oval nucleus, fine lighter chromatin."""
        r = cell.r
        off = rng.uniform(0.1, 0.25) * r
        nucleus = _ramp(self.ellipse(*cell.at(off, 0), 0.58 * r, rng.uniform(0.45, 0.55) * r,
                                     cell.theta + rng.normal(0, 0.3), self.wobble(rng, 0.05)), 1.4)
        texture = self.texture(rng, 0.22, 40)
        centres = self.granule_centres(rng, cell, 0.9, (15, 40))
        grains = self.blobs(rng, centres, 0.8 * self.scale)
        return [(cell.mask * rng.uniform(0.55, 0.8), _CYTO_GREY_BLUE),
                (nucleus * texture * rng.uniform(0.55, 0.75) * cell.azure, _NUCLEUS),
                (np.minimum(grains, 1.0) * cell.mask * 0.25, _GRAN_NEUTRO)]

    def lymphocyte(self, rng, cell) -> list:
        """Lymphocyte: small, nucleus nearly fills it, thin pale-blue rim."""
        r = cell.r
        nucleus = _ramp(self.ellipse(*cell.at(rng.uniform(0, 0.08) * r, 0), 0.86 * r,
                                     rng.uniform(0.78, 0.86) * r, cell.theta,
                                     self.wobble(rng, 0.04)), 1.1)
        texture = self.texture(rng, 0.2, 20)
        return [(cell.mask * rng.uniform(0.6, 0.9), _CYTO_PALE_BLUE),
                (nucleus * texture * rng.uniform(1.05, 1.3) * cell.azure, _NUCLEUS)]

    def monocyte(self, rng, cell) -> list:
        """Monocyte: kidney / horseshoe nucleus, grey-blue cytoplasm, vacuoles."""
        nucleus = _ramp(self.kidney_nucleus(rng, cell), 1.3)
        texture = self.texture(rng, 0.25, 28)
        vac = self.vacuoles(rng, cell, nucleus)
        return [(cell.mask * (1.0 - 0.7 * vac) * rng.uniform(0.6, 0.85), _CYTO_GREY_BLUE),
                (nucleus * texture * rng.uniform(0.7, 0.9) * cell.azure, _NUCLEUS)]

    def kidney_nucleus(self, rng, cell) -> np.ndarray:
        """Signed distance to an oval with a round notch cut from its edge (monocyte)."""
        r = cell.r
        shift = rng.uniform(0.05, 0.15) * r
        body = self.ellipse(*cell.at(shift, 0), 0.6 * r, 0.5 * r, cell.theta,
                            self.wobble(rng, 0.05))
        notch_r = rng.uniform(0.22, 0.4) * r
        # The notch always cuts the nucleus edge: shallow = kidney, deep = horseshoe.
        nx, ny = cell.at(shift + 0.6 * r + notch_r * rng.uniform(-0.7, 0.3), 0)
        notch = np.hypot(self.X - nx, self.Y - ny) - notch_r
        return np.minimum(body, notch)

    def vacuoles(self, rng, cell, nucleus) -> np.ndarray:
        """Up to four pale vacuoles on the side away from the nucleus, none over it."""
        count = int(rng.integers(0, 5))
        vac = np.zeros_like(self.X)
        if count:
            centres = self.points_in_disc(rng, *cell.at(-0.78 * cell.r, 0), 0.15 * cell.r, count)
            vac = np.minimum(self.blobs(rng, centres, rng.uniform(0.8, 1.3) * self.scale), 1.0)
            vac *= 1.0 - nucleus
        return vac

    def neutrophil(self, rng, cell) -> list:
        """Neutrophil: 3-5 lobes joined by thin strands, pale pink cytoplasm."""
        nucleus = _ramp(self.segmented_nucleus(rng, cell), 1.1)
        texture = self.texture(rng, 0.15, 24)
        grains_at = self.granule_centres(rng, cell, 0.92, (40, 80))
        grains = self.blobs(rng, grains_at, 0.6 * self.scale)
        return [(cell.mask * rng.uniform(0.6, 0.8), _CYTO_PINK),
                (np.minimum(grains, 1.0) * cell.mask * 0.3, _GRAN_NEUTRO),
                (nucleus * texture * rng.uniform(0.95, 1.15) * cell.azure, _NUCLEUS)]

    def segmented_nucleus(self, rng, cell) -> np.ndarray:
        """Signed distance to 3-5 lobes on an arc, each joined to the next (neutrophil)."""
        r = cell.r
        count = int(rng.integers(3, 6))
        arc_r = rng.uniform(0.38, 0.5) * r
        span = rng.uniform(3.3, 4.6)
        angles = np.linspace(-span / 2, span / 2, count) + rng.normal(0, 0.15, count)
        centres = [cell.at(arc_r * np.cos(a) - 0.1 * r, arc_r * np.sin(a)) for a in angles]
        lobe = rng.uniform(0.22, 0.27) * r
        parts = [self.ellipse(px, py, lobe * rng.uniform(1.0, 1.3), lobe * rng.uniform(0.75, 0.95),
                              rng.uniform(0, np.pi), self.wobble(rng, 0.05)) for px, py in centres]
        parts += [self.segment(centres[i], centres[i + 1], rng.uniform(0.9, 1.4) * self.scale)
                  for i in range(count - 1)]
        return np.maximum.reduce(parts)


@dataclass(frozen=True)
class _Cell:
    """The white cell being painted: centre, radius, orientation, body and stain strengths."""

    cx: float
    cy: float
    r: float
    theta: float
    mask: np.ndarray
    """The cell body, 0..1, over the painter's window."""
    azure: float
    eosin: float

    def at(self, u, v):
        """Local cell coordinates (u along ``theta``) -> image coordinates."""
        c, sn = np.cos(self.theta), np.sin(self.theta)
        return self.cx + u * c - v * sn, self.cy + u * sn + v * c
