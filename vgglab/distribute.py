"""Data parallelism through the backend's own engine: one copy of the model per device, each batch split among them.

``data_parallel()`` returns what the active backend trains with: ``keras.distribution.DataParallel`` on JAX,
``tf.distribute.MirroredStrategy`` on TensorFlow; ``tpu_strategy()`` gives a ``tf.distribute.TPUStrategy``.
Each has a ``scope()``. Build the model inside it and pass the distribution to ``vgglab.train.fit``, or give it
to ``run_experiment(..., distribution=...)``, which builds, trains and tests inside the scope::

    dist = data_parallel()
    with dist.scope():
        model = vgg("D", ...)
    fit(model, x, y, recipe=recipe, epochs=10, batch_size=256, distribution=dist)

Every device computes the gradient of its share (batch / devices) and the engine averages them (all-reduce), so
one step equals a step on one device with the whole batch; the batch size must divide by the number of devices.
"""

from __future__ import annotations

import contextlib
import sys

import keras
import numpy as np

KINDS = {"DataParallel": "jax", "MirroredStrategy": "tensorflow", "TPUStrategy": "tensorflow"}


def data_parallel(devices=None):
    """The active backend's data parallelism over ``devices`` (default: every accelerator, else every CPU device).

    JAX names devices ``"gpu:0"``, TensorFlow ``"/gpu:0"``. PyTorch has no engine here: ValueError.
    """
    if devices is not None and (isinstance(devices, (str, bytes)) or not isinstance(devices, (list, tuple))
                                or not all(isinstance(d, str) for d in devices)):
        raise TypeError(f"devices must be a list of device names such as ['gpu:0', 'gpu:1'], not {devices!r}")
    backend = keras.backend.backend()
    if backend == "jax":
        return keras.distribution.DataParallel(devices=list(devices) if devices else None)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(list(devices) if devices else None)
    raise ValueError(f"data parallelism is not supported on the {backend} backend; "
                     "set KERAS_BACKEND=jax (keras.distribution) or tensorflow (tf.distribute)")


def tpu_strategy(tpu: str = ""):
    """TensorFlow on a TPU: connect to it, initialise it and return a ``tf.distribute.TPUStrategy``.

    ``tpu=""`` finds the TPU of a Colab TPU runtime; on a Cloud TPU VM pass ``"local"``. Call it once, before
    building anything.
    """
    if not isinstance(tpu, str):
        raise TypeError(f"tpu must be a TPU name or address (a string, '' on Colab), not {tpu!r}")
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ValueError(f"tpu_strategy needs the tensorflow backend, not {backend}; on JAX a TPU's cores are "
                         "ordinary devices and data_parallel() uses them")
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def kind(distribution) -> str:
    """``"DataParallel"``, ``"MirroredStrategy"`` or ``"TPUStrategy"``; TypeError for anything else, ValueError when
    the active backend cannot run it."""
    tf = sys.modules.get("tensorflow")
    if isinstance(distribution, keras.distribution.DataParallel):
        name = "DataParallel"
    elif tf is not None and isinstance(distribution, tf.distribute.TPUStrategy):
        name = "TPUStrategy"
    elif tf is not None and isinstance(distribution, tf.distribute.MirroredStrategy):
        name = "MirroredStrategy"
    else:
        t = type(distribution)
        raise TypeError(f"distribution must be keras.distribution.DataParallel (JAX), tf.distribute.MirroredStrategy "
                        f"or tf.distribute.TPUStrategy (TensorFlow), or None; not {t.__module__}.{t.__qualname__}")
    backend = keras.backend.backend()
    if KINDS[name] != backend:
        raise ValueError(f"{name} runs on the {KINDS[name]} backend, but the active backend is {backend}; "
                         "vgglab.distribute.data_parallel() picks the one that fits")
    return name


def replicas(distribution) -> int:
    """How many devices share each batch."""
    if kind(distribution) == "DataParallel":
        return _batch_shards(distribution)
    return int(distribution.num_replicas_in_sync)


def _batch_shards(dp) -> int:
    """The devices along a DataParallel mesh's batch axis (its only axis, unless built from a larger mesh)."""
    mesh = dp.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(dp.batch_dim_name)])


def describe(distribution) -> dict | None:
    """What a run record keeps: ``{"kind": ..., "replicas": n}``, or None without a distribution."""
    return None if distribution is None else {"kind": kind(distribution), "replicas": replicas(distribution)}


def scope(distribution):
    """The distribution's scope (variables created inside it are placed on its devices); a no-op for None."""
    if distribution is None:
        return contextlib.nullcontext()
    kind(distribution)  # a TypeError naming anything that is not a distribution
    return distribution.scope()


def check_model(distribution, model: keras.Model) -> None:
    """ValueError unless ``model``'s variables were created inside ``distribution.scope()``."""
    name = kind(distribution)
    if name == "DataParallel":
        devices = set(distribution.device_mesh.backend_mesh.devices.flat)
        inside = all(set(v.value.sharding.device_set) == devices for v in model.variables)
    else:
        inside = all(distribution.extended.variable_created_in_scope(v.value) for v in model.variables)
    if not inside:
        raise ValueError(f"the model was built outside the {name}'s scope, so its variables are not on its devices; "
                         "build it inside `with distribution.scope():`, or use run_experiment(..., distribution=...)")


def check_batches(distribution, batch_size: int, train_images: int, val_images: int = 0) -> int:
    """ValueError unless the batches split evenly among the devices; returns the validation batch size.

    Every training batch must, the last one too: TensorFlow would split a short last batch unevenly and average
    the shares' gradients with equal weights, which is no longer the step on one device (with a last batch of
    25 + 24 images the weights differed by 7e-3 relative after 8 steps), and JAX cannot split it at all.
    Validation runs in batches of ``max(batch_size, 256)`` rounded up to a multiple of the devices; only JAX needs
    its last one to split.
    """
    n = replicas(distribution)
    if batch_size % n:
        raise ValueError(f"batch_size {batch_size} does not divide among {n} devices; use a multiple of {n}")
    val_batch = -(-max(batch_size, 256) // n) * n
    sizes = [("training", train_images, batch_size)]
    if kind(distribution) == "DataParallel" and val_images:
        sizes.append(("validation", val_images, val_batch))
    for name, images, batch in sizes:
        last = images % batch
        if last % n:
            raise ValueError(f"{images} {name} images in batches of {batch} leave a last batch of {last}, which "
                             f"does not divide among {n} devices; choose sizes that leave a multiple of {n}")
    return val_batch


def _jax_devices_in_use() -> int:
    """The number of devices the current JAX distribution splits batches over; 1 without one."""
    if keras.backend.backend() != "jax":
        return 1
    current = keras.distribution.distribution()
    return _batch_shards(current) if isinstance(current, keras.distribution.DataParallel) else 1


def predict(model: keras.Model, x, batch_size: int = 256) -> np.ndarray:
    """``model.predict``; under a JAX ``DataParallel`` the images are padded to a multiple of the devices and the
    padding's outputs dropped (in inference every image's output depends on that image only)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a Keras model, not {type(model).__name__}")
    n = _jax_devices_in_use()
    x = np.asarray(x)
    pad = (-len(x)) % n
    if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    batch_size += (-batch_size) % n
    return model.predict(x, batch_size=batch_size, verbose=0)[:len(x) - pad]
