"""Image operations on batches written with keras.ops: contrast, grey, affine warps,
per-image convolutions and kernels, pixelation, hole filling, JPEG-like quality loss."""

from __future__ import annotations

from codabench_kit.training.augmenter import per_image

FILLS = ("noise", "mean", "zero")
"""What ``gridmask`` and ``erasing`` put into the holes: uniform noise 0..255, the
image's mean colour, or black (see :func:`_fill`)."""


def _contrast(images, factor):
    """Scale the deviation from each image's mean grey by ``factor`` (B,)."""
    from keras import ops

    mean = ops.mean(_gray(images), axis=(1, 2, 3), keepdims=True)
    return (images - mean) * per_image(factor) + mean


def _gray(images):
    r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _grid(height, width):
    """Pixel coordinates (H, W) relative to the image centre: ``(y, x)``."""
    from keras import ops

    ys = ops.arange(height, dtype="float32") - (height - 1) / 2.0
    xs = ops.arange(width, dtype="float32") - (width - 1) / 2.0
    return ops.meshgrid(ys, xs, indexing="ij")


def _affine_matrices(height, width, angle, shear_x, shear_y, shift_x, shift_y, scale):
    """(B, 3, 3) output->input pixel maps ``p_in = c + M (p_out - c - t)`` with
    ``M = R(angle) @ [[1, shear_x], [shear_y, 1]] / scale``, about the image centre ``c``."""
    from keras import ops

    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = ops.cos(angle), ops.sin(angle)
    m00 = (cos - sin * shear_y) / scale
    m01 = (cos * shear_x - sin) / scale
    m10 = (sin + cos * shear_y) / scale
    m11 = (sin * shear_x + cos) / scale
    ox, oy = cx + shift_x, cy + shift_y
    a2 = cx - m00 * ox - m01 * oy
    b2 = cy - m10 * ox - m11 * oy
    zeros, ones = ops.zeros_like(angle), ops.ones_like(angle)
    rows = [ops.stack(r, axis=1) for r in ([m00, m01, a2], [m10, m11, b2], [zeros, zeros, ones])]
    return ops.stack(rows, axis=1)


def _affine(images, angle, shear_x, shear_y, shift_x, shift_y, scale,
            fill_mode="reflect", interpolation="bilinear"):
    """Rotate/shear/scale about the centre and shift, with per-image (B,) parameters
    (see ``_affine_matrices``); one interpolation for all, by ``ops.image.affine_transform``."""
    from keras import ops

    _, height, width, _ = ops.shape(images)
    matrices = _affine_matrices(height, width, angle, shear_x, shear_y, shift_x, shift_y, scale)
    transform = ops.concatenate([ops.reshape(matrices, (-1, 9))[:, :6],
                                 ops.zeros_like(matrices[:, 0, :2])], axis=1)
    return ops.image.affine_transform(images, transform, interpolation=interpolation,
                                      fill_mode=fill_mode)


def _mirror(coordinate, size):
    """Fold pixel coordinates into [0, size - 1] by mirroring at the edge pixels."""
    from keras import ops

    period = 2.0 * max(size - 1, 1)
    folded = ops.mod(coordinate, period)
    return ops.where(folded > size - 1, period - folded, folded)


def _warp(images, matrices):
    """Resample each image bilinearly at ``p_in = matrices[i] @ p_out`` ((B, 3, 3) pixel
    maps, as ``_affine_matrices``), borders mirrored.

    Gathers only, so unlike ``ops.image.affine_transform`` (TensorFlow's
    ImageProjectiveTransform) it compiles under XLA, where the training pipeline runs."""
    from keras import ops

    batch, height, width, channels = ops.shape(images)
    ys, xs = ops.meshgrid(ops.arange(height, dtype="float32"),
                          ops.arange(width, dtype="float32"), indexing="ij")
    grid = ops.stack([ops.reshape(xs, (-1,)), ops.reshape(ys, (-1,)),
                      ops.ones((height * width,))], axis=0)
    source = ops.einsum("bij,jn->bin", matrices, grid)
    x = _mirror(source[:, 0], width)
    y = _mirror(source[:, 1], height)
    x0, y0 = ops.floor(x), ops.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    y1 = ops.minimum(y0 + 1, height - 1)
    # each pixel next to its right-hand neighbour: two gathers fetch all four corners
    right = ops.concatenate([images[:, :, 1:], images[:, :, -1:]], axis=2)
    flat = ops.reshape(ops.concatenate([images, right], axis=3), (-1, 2 * channels))
    base = ops.arange(batch, dtype="int32")[:, None] * (height * width)

    def row(y_index):
        pair = ops.take(flat, base + y_index * width + x0, axis=0)
        return pair[..., :channels] * (1.0 - fx) + pair[..., channels:] * fx

    out = row(y0) * (1.0 - fy) + row(y1) * fy
    return ops.reshape(out, (batch, height, width, channels))


def _convolve_per_image(images, kernels):
    """Convolve each image with its own (K, K) kernel, K odd: one depthwise convolution
    with the batch folded into the channels, reflect padding."""
    from keras import ops

    batch, height, width, channels = ops.shape(images)
    size = ops.shape(kernels)[1]
    half = size // 2
    x = ops.reshape(ops.transpose(images, (1, 2, 0, 3)), (1, height, width, batch * channels))
    x = ops.pad(x, [[0, 0], [half, half], [half, half], [0, 0]], mode="reflect")
    k = ops.transpose(kernels, (1, 2, 0))[:, :, :, None]
    k = ops.reshape(ops.repeat(k, channels, axis=3), (size, size, batch * channels, 1))
    y = ops.depthwise_conv(x, k, strides=1, padding="valid")
    return ops.transpose(ops.reshape(y, (height, width, batch, channels)), (2, 0, 1, 3))


def _gaussian_blur(images, sigma, size=11):
    """Gaussian blur with per-image ``sigma`` (B,) in pixels: the separable way, a
    column pass then a row pass (2 x 11 taps instead of 121), batch folded into the
    channels of one depthwise convolution each, reflect padding."""
    from keras import ops

    batch, height, width, channels = ops.shape(images)
    half = size // 2
    taps = ops.arange(size, dtype="float32") - half
    s = ops.reshape(ops.maximum(sigma, 1e-3), (-1, 1))
    k = ops.exp(-(taps[None] ** 2) / (2.0 * s * s))
    k = k / ops.sum(k, axis=1, keepdims=True)                       # (B, K)
    k = ops.reshape(ops.repeat(k[:, None, :], channels, axis=1), (batch * channels, size))
    x = ops.reshape(ops.transpose(images, (1, 2, 0, 3)), (1, height, width, batch * channels))
    x = ops.pad(x, [[0, 0], [half, half], [half, half], [0, 0]], mode="reflect")
    column = ops.reshape(ops.transpose(k), (size, 1, batch * channels, 1))
    row = ops.reshape(ops.transpose(k), (1, size, batch * channels, 1))
    x = ops.depthwise_conv(x, column, strides=1, padding="valid")
    x = ops.depthwise_conv(x, row, strides=1, padding="valid")
    return ops.transpose(ops.reshape(x, (height, width, batch, channels)), (2, 0, 1, 3))


def _kernel_taps(size):
    from keras import ops

    taps = ops.arange(size, dtype="float32") - (size - 1) / 2.0
    return ops.meshgrid(taps, taps, indexing="ij")  # (dy, dx), each (K, K)


def _disc_kernels(radius, size=11):
    """(B, K, K) anti-aliased discs (defocus)."""
    from keras import ops

    dy, dx = _kernel_taps(size)
    dist = ops.sqrt(dy[None] ** 2 + dx[None] ** 2)
    k = ops.clip(ops.reshape(radius, (-1, 1, 1)) + 0.5 - dist, 0.0, 1.0)
    return k / ops.sum(k, axis=(1, 2), keepdims=True)


def _line_kernels(length, angle, size=11):
    """(B, K, K) anti-aliased line segments through the centre (motion blur)."""
    from keras import ops

    dy, dx = _kernel_taps(size)
    cos, sin = ops.reshape(ops.cos(angle), (-1, 1, 1)), ops.reshape(ops.sin(angle), (-1, 1, 1))
    along = dx[None] * cos + dy[None] * sin
    across = -dx[None] * sin + dy[None] * cos
    half = ops.reshape(length, (-1, 1, 1)) / 2.0
    k = (ops.clip(1.0 - ops.abs(across), 0.0, 1.0)
         * ops.clip(half + 0.5 - ops.abs(along), 0.0, 1.0))
    return k / ops.sum(k, axis=(1, 2), keepdims=True)


def _pixelate(images, block):
    """Average over ``block`` x ``block`` cells (one static block size for the batch)."""
    from keras import ops

    _, height, width, _ = ops.shape(images)
    ph, pw = -height % block, -width % block
    x = ops.pad(images, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="symmetric") if ph or pw \
        else images
    x = ops.average_pool(x, block, strides=block, padding="valid")
    x = ops.repeat(ops.repeat(x, block, axis=1), block, axis=2)
    return x[:, :height, :width, :]


def _fill(augmenter, images, mode):
    from keras import ops

    if mode == "noise":
        return augmenter.uniform(ops.shape(images), 0.0, 255.0)
    if mode == "mean":
        return ops.broadcast_to(ops.mean(images, axis=(1, 2), keepdims=True), ops.shape(images))
    return ops.zeros_like(images)


# JPEG: the standard (Annex K) quantisation tables, quality scaling as libjpeg's.
_JPEG_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
              14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
              18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
              49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_JPEG_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
                24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _jpeg(images, quality):
    """JPEG-like quality loss with per-image ``quality`` (B,) in 1..100: YCbCr, 4:2:0
    chroma subsampling, 8x8 DCT, quantisation by the standard tables, and back."""
    import numpy as np
    from keras import ops

    batch, height, width, _ = ops.shape(images)
    ph, pw = -height % 16, -width % 16
    x = ops.pad(images, [[0, 0], [0, ph], [0, pw], [0, 0]], mode="symmetric") if ph or pw \
        else images
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128.0
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128.0

    def half(c):
        return ops.average_pool(c[..., None], 2, strides=2, padding="valid")[..., 0]

    def up(c):
        return ops.repeat(ops.repeat(c, 2, axis=1), 2, axis=2)

    n = np.arange(8)
    dct = np.sqrt(2.0 / 8) * np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16)
    dct[0] /= np.sqrt(2.0)
    dct = ops.convert_to_tensor(dct.astype("float32"))
    q = ops.clip(quality, 1.0, 100.0)
    scale = ops.where(q < 50.0, 5000.0 / q, 200.0 - 2.0 * q)

    def lossy(channel, table):
        h, w = ops.shape(channel)[1], ops.shape(channel)[2]
        blocks = ops.reshape(channel - 128.0, (batch, h // 8, 8, w // 8, 8))
        coef = ops.einsum("ij,bhjwk,lk->bhiwl", dct, blocks, dct)
        table = ops.convert_to_tensor(np.asarray(table, "float32").reshape(8, 8))
        step = ops.clip(ops.floor((table[None] * ops.reshape(scale, (-1, 1, 1)) + 50.0) / 100.0),
                        1.0, 255.0)
        step = ops.reshape(step, (-1, 1, 8, 1, 8))
        coef = ops.round(coef / step) * step
        blocks = ops.einsum("ji,bhjwk,kl->bhiwl", dct, coef, dct)
        return ops.reshape(blocks, (batch, h, w)) + 128.0

    y = lossy(y, _JPEG_LUMA)
    cb = up(lossy(half(cb), _JPEG_CHROMA)) - 128.0
    cr = up(lossy(half(cr), _JPEG_CHROMA)) - 128.0
    out = ops.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb],
                    axis=-1)
    return out[:, :height, :width, :]


