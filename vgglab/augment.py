"""Data augmentation: the Keras layers a recipe puts in front of a model (flip, translate, Cutout), the NumPy
augmentations done once per epoch (airbench's alternating flip and reflected shifts), and the VGG paper's scale
jittering (``RandomScaleCrop``)."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from vgglab.recipes import Recipe, check_recipe
from vgglab.runtime import check_seed

REFLECT_SHIFT = 2  # "translate-reflect": up to 2 pixels each way, the border mirrored (airbench's translate 2)
CUTOUT_SIZE = 16  # DeVries & Taylor (2017) found 16 x 16 best on CIFAR-10 (8 x 8 on CIFAR-100)


@keras.saving.register_keras_serializable(package="vgglab")
class Cutout(layers.Layer):
    """Cutout (DeVries & Taylor, 2017): in training, set one ``size`` x ``size`` square of every image to 0.

    The square's centre is drawn uniformly over the image, so near a border only part of the square
    lies inside it, as in the paper. After ``minus_one_one`` or ``standardize`` normalisation 0 is a
    mid grey or the mean colour. At inference (``training=False``) the layer returns its input unchanged.
    """

    def __init__(self, size: int = CUTOUT_SIZE, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"cutout size must be a positive integer, not {size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"cutout seed must be a non-negative integer or None, not {seed!r}")
        self.size, self.seed = int(size), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training:
            return x
        shape = ops.shape(x)
        n, h, w = shape[0], shape[1], shape[2]
        cy = keras.random.randint((n, 1, 1), 0, h, seed=self.seed_generator)
        cx = keras.random.randint((n, 1, 1), 0, w, seed=self.seed_generator)
        top, left = cy - self.size // 2, cx - self.size // 2
        rows = ops.expand_dims(ops.expand_dims(ops.arange(h), 0), -1)  # (1, h, 1)
        cols = ops.expand_dims(ops.expand_dims(ops.arange(w), 0), 0)  # (1, 1, w)
        inside = ops.logical_and(ops.logical_and(rows >= top, rows < top + self.size),
                                 ops.logical_and(cols >= left, cols < left + self.size))
        keep = ops.cast(ops.logical_not(inside), x.dtype)
        return x * ops.expand_dims(keep, -1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


def augmentation_layers(recipe: Recipe, seed: int = 0) -> list:
    """The recipe's augmentation as Keras preprocessing layers (active only in training)."""
    check_recipe(recipe)
    seed = check_seed(seed)
    out = []
    if "flip" in recipe.augment:
        out.append(layers.RandomFlip("horizontal", seed=seed, name="augment_flip"))
    if "translate" in recipe.augment:  # up to 4 px each way, like padding by 4 and cropping 32x32
        out.append(layers.RandomTranslation(0.125, 0.125, fill_mode="constant", interpolation="nearest",
                                            seed=seed + 1, name="augment_translate"))
    if "cutout" in recipe.augment:  # one CUTOUT_SIZE x CUTOUT_SIZE square per image set to 0 (Cutout, below)
        out.append(Cutout(CUTOUT_SIZE, seed=seed + 2, name="augment_cutout"))
    return out


def epoch_augment(x: np.ndarray, augment, seed: int, epoch: int) -> np.ndarray:
    """The NumPy augmentations of ``augment`` applied to the training images ``x`` (N, H, W, C) for one epoch.

    ``"flip-alternating"`` mirrors a fixed random half of the images in even epochs and the other half in odd ones,
    so that every image is seen both ways in every two epochs (airbench's alternating flip). ``"translate-reflect"``
    shifts each image by up to ``REFLECT_SHIFT`` pixels each way, filling the border with its mirror image. Returns
    ``x`` itself when neither is asked for.
    """
    if "flip-alternating" not in augment and "translate-reflect" not in augment:
        return x
    x = np.array(x, copy=True)
    if "flip-alternating" in augment:
        flip = (np.random.default_rng([seed, 7]).random(len(x)) < 0.5) ^ bool(epoch % 2)
        x[flip] = x[flip, :, ::-1]
    if "translate-reflect" in augment:
        r = REFLECT_SHIFT
        h, w = x.shape[1:3]
        shifts = np.random.default_rng([seed, epoch, 11]).integers(-r, r + 1, size=(len(x), 2))
        for start in range(0, len(x), 4096):  # in chunks, so the padded copy stays small
            part = slice(start, start + 4096)
            padded = np.pad(x[part], ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    sel = np.flatnonzero((shifts[part, 0] == dy) & (shifts[part, 1] == dx))
                    x[start + sel] = padded[sel, r + dy:r + dy + h, r + dx:r + dx + w]
    return x


def augment_images(x, augment, seed: int = 0) -> np.ndarray:
    """Apply ``augment`` (names from ``AUGMENTATIONS``, in that order) to float images, as in training.

    For looking at augmentation: each call with the same ``seed`` gives the same result.
    """
    augment = (augment,) if isinstance(augment, str) else tuple(augment)
    recipe = check_recipe(Recipe("augment", "sgd", 0.1, augment=augment))
    seed = check_seed(seed)
    x = np.asarray(x, np.float32)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), not {x.shape}")
    for layer in augmentation_layers(recipe, seed):
        x = keras.ops.convert_to_numpy(layer(x, training=True))
    return x


def _scale_crop(images, sizes, offsets):
    """``scale_crop`` without the checks, for use inside a model (``sizes``, ``offsets`` are tensors)."""
    h, w = images.shape[1], images.shape[2]
    s = ops.cast(sizes, "float32") / float(min(h, w))
    offsets = ops.cast(offsets, "float32")
    zero = ops.zeros_like(s)
    # Output pixel (col, row) samples the input at ((col + ox + 0.5) / s - 0.5, (row + oy + 0.5) / s - 0.5):
    # pixel col + ox of the image resized by s (half-pixel centres, like keras.ops.image.resize).
    transform = ops.stack([1 / s, zero, (offsets[:, 1] + 0.5) / s - 0.5,
                           zero, 1 / s, (offsets[:, 0] + 0.5) / s - 0.5, zero, zero], axis=1)
    return ops.image.affine_transform(ops.cast(images, "float32"), transform, interpolation="bilinear",
                                      fill_mode="nearest")


def scale_crop(images, sizes, offsets):
    """Rescale each image so its shorter side is ``sizes[i]``, then cut a window of the input's size from it.

    ``images`` is ``(N, H, W, C)``; ``offsets[i] = (row, col)`` is the window's top-left corner in the
    rescaled image, from 0 to (rescaled side - input side). Bilinear, in one resampling with
    ``keras.ops.image.affine_transform``, so it runs on every backend. With S = 64 and CIFAR's 32x32
    images this is "rescale to 64x64, crop 32x32": the paper's training crop at scale S.
    """
    images = np.asarray(images, "float32")
    if images.ndim != 4:
        raise ValueError(f"images must be (N, height, width, channels), got shape {images.shape}")
    n, h, w = images.shape[:3]
    try:
        sizes, offsets = (np.broadcast_to(np.asarray(sizes, "float32"), (n,)),
                          np.broadcast_to(np.asarray(offsets, "float32"), (n, 2)))
    except ValueError:
        raise ValueError(f"sizes must be one number or one per image ({n}) and offsets one (row, col) pair or one per "
                         f"image, not sizes {sizes!r} and offsets {offsets!r}") from None
    if not np.all(np.isfinite(sizes)) or not np.all(np.isfinite(offsets)):
        raise ValueError(f"sizes and offsets must be finite numbers, got sizes {sizes[:4]} and offsets {offsets[:4]}")
    short = min(h, w)
    if np.any(sizes < short):
        raise ValueError(f"sizes must be at least the images' shorter side {short} (no room to crop from a smaller "
                         f"image), got {sizes.min():g}")
    room = np.stack([np.floor(sizes * h / short) - h, np.floor(sizes * w / short) - w], axis=1)
    if np.any(offsets < 0) or np.any(offsets > room):
        bad = int(np.argmax(np.any((offsets < 0) | (offsets > room), axis=1)))
        (r, c), (rr, rc) = offsets[bad].tolist(), room[bad].tolist()
        raise ValueError(f"offset ({r:g}, {c:g}) of image {bad} lies outside (0..{rr:g}, 0..{rc:g}), "
                         f"the room left by rescaling to {sizes[bad]:g}")
    return ops.convert_to_numpy(_scale_crop(images, sizes, offsets))


@keras.saving.register_keras_serializable(package="vgglab")
class RandomScaleCrop(layers.Layer):
    """Scale jittering: in training, rescale each image to a random S in [min_size, max_size], then crop.

    The paper rescaled ImageNet images so that the shorter side was S (fixed at 256 or 384, or drawn
    from [256, 512] per image) and took a random 224x224 crop. Here the crop is the input's own size,
    so for CIFAR-10 ``RandomScaleCrop(32, 64)`` rescales to S in [32, 64] and crops 32x32. At
    inference the layer passes images through unchanged.
    """

    inference_identity = True  # to_fully_convolutional leaves it out

    def __init__(self, min_size: int, max_size: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        for label, v in (("min_size", min_size), ("max_size", max_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{label} must be a positive integer, not {v!r}")
        if max_size < min_size:
            raise ValueError(f"max_size ({max_size}) must be at least min_size ({min_size})")
        if seed is not None:
            check_seed(seed)
        self.min_size, self.max_size, self.seed = min_size, max_size, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        if h is None or w is None:
            raise ValueError("RandomScaleCrop needs a fixed input size (the crop size)")
        if self.min_size < min(h, w):
            raise ValueError(f"min_size {self.min_size} is smaller than the {h}x{w} input: S must be at least "
                             f"the crop size {min(h, w)}")

    def call(self, x, training=False):
        if not training:
            return x
        h, w = x.shape[1], x.shape[2]
        short = float(min(h, w))
        n = ops.shape(x)[0]
        u = keras.random.uniform((n, 3), seed=self.seed_generator)
        sizes = ops.minimum(ops.floor(self.min_size + u[:, 0] * (self.max_size - self.min_size + 1)), self.max_size)
        room_y = ops.floor(sizes * h / short) - h
        room_x = ops.floor(sizes * w / short) - w
        offsets = ops.stack([ops.floor(u[:, 1] * (room_y + 1)), ops.floor(u[:, 2] * (room_x + 1))], axis=1)
        return ops.cast(_scale_crop(x, sizes, ops.minimum(offsets, ops.stack([room_y, room_x], axis=1))), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_size": self.min_size, "max_size": self.max_size, "seed": self.seed}
