"""`--engine ray`: embedding in a pool of Ray actors, everything else as in a local run.

The driver (the `vsearch` process) keeps the whole `load` contract: the lock, reading, rejects, the fingerprint
comparison before anything is embedded, the batch writes in MULTI/EXEC, prune, rebuild and the report. Only the
texts and images that need vectors go to the actors, and their vectors come back to the driver, which writes
them. So a worker never needs Redis credentials, and a worker that dies costs a retried task, never a
half-written batch: each actor is created with `max_restarts` and `max_task_retries`, so Ray starts a new process
and runs the lost call again, and the encoders are deterministic.

Why long-lived actors rather than one Ray Data `map_batches` per batch: a Ray Data actor pool lives for one
dataset execution, so each batch would start its actors and load the model again. Measured here (2 cores,
all-MiniLM-L6-v2, 512 short texts a chunk): 14.6 s and 16.6 s for two chunks through `map_batches`, against
13.5 s and then 1.8 s through one actor that stays up.

Ray itself is imported only here, and only when `--engine ray` is used: it is an optional extra.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

from vsearch.config import DEFAULT_IMAGE_MODEL, EngineOptions, Settings
from vsearch.errors import ModelError, UsageError, VsearchError
from vsearch.models.base import Purpose, first_line
from vsearch.models.names import model_name_for

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from vsearch.models.base import Encoder
    from vsearch.schema import VectorField


class EncoderActor:
    """One model in one Ray worker process. Errors come back as values: an exception in an actor's constructor
    would leave an actor that Ray keeps restarting."""

    def __init__(self, kind: str, name: str, device: str | None, threads: int | None) -> None:
        self.error: str | None = None
        if threads:
            import torch

            torch.set_num_threads(threads)  # Ray sets one thread per worker; local mode shares the machine's cores
        try:
            from vsearch.models.cnn import load_image_encoder
            from vsearch.models.sentence import load_text_encoder

            self.encoder = load_image_encoder(name, device) if kind == "image" else load_text_encoder(name, device)
        except VsearchError as exc:
            self.error = str(exc)

    def describe(self) -> tuple[str | None, str, int, frozenset[str]]:
        if self.error is not None:
            return self.error, "", 0, frozenset()
        return None, self.encoder.name, self.encoder.dim, self.encoder.modalities

    def encode_texts(self, texts: list[str], batch_size: int) -> np.ndarray | str:
        try:
            return self.encoder.encode_texts(texts, batch_size)
        except VsearchError as exc:
            return str(exc)

    def encode_images(self, images: list[Image.Image], batch_size: int) -> np.ndarray | str:
        try:
            return self.encoder.encode_images(images, batch_size)
        except VsearchError as exc:
            return str(exc)

    def pid(self) -> int:
        return os.getpid()


class RayEncoder:
    """An `Encoder` whose work is split over a pool of actors that each hold the model."""

    def __init__(self, actors: list[Any], name: str, dim: int, modalities: frozenset[str]) -> None:
        self.actors, self.name, self.dim, self.modalities = actors, name, dim, modalities

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._spread("encode_texts", list(texts), batch_size)

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 64) -> np.ndarray:
        return self._spread("encode_images", list(images), batch_size)

    def _spread(self, method: str, items: list[Any], batch_size: int) -> np.ndarray:
        """One contiguous share of `items` per actor, results in input order."""
        import numpy as np
        import ray

        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        share = math.ceil(len(items) / len(self.actors))
        calls = [getattr(actor, method).remote(items[start:start + share], batch_size)
                 for actor, start in zip(self.actors, range(0, len(items), share))]
        try:
            parts = ray.get(calls)
        except ray.exceptions.RayError as exc:
            raise ModelError(f"a Ray worker failed while embedding: {first_line(exc)}") from exc
        for part in parts:
            if isinstance(part, str):
                raise ModelError(part)
        return np.concatenate(parts).astype(np.float32, copy=False)


class RayEngine:
    """Connects to Ray (or starts it in local mode) on first use, and makes one actor pool per model.

    Use it as a context manager: at exit the actors go, and Ray too when this engine started it. A load with
    nothing to embed never asks for an encoder, so it never starts Ray.
    """

    def __init__(self, options: EngineOptions, device: str | None = None) -> None:
        if options.workers < 1:
            raise UsageError("--workers must be at least 1")
        if options.gpus_per_worker < 0:
            raise UsageError("--gpus-per-worker cannot be negative")
        self.options = options
        self.device = device or ("cuda" if options.gpus_per_worker > 0 else "cpu")
        self.started_ray = False
        self.pools: dict[tuple[str, str], RayEncoder] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    local = False  # the models run in Ray workers: no ONNX fast path

    def encoder(self, vector: VectorField, override: str | None, settings: Settings,
                purpose: Purpose = Purpose.BULK) -> Encoder:
        """The same model as `models.encoder_for` (`names.model_name_for`); every purpose runs in the pool."""
        name = model_name_for(vector, override, settings)
        return self.image_encoder(name) if vector.embeds == "image" else self.text_encoder(name)

    def text_encoder(self, name: str, settings: Settings | None = None, purpose: Purpose = Purpose.BULK) -> Encoder:
        return self._pool("text", name)

    def image_encoder(self, name: str, settings: Settings | None = None, purpose: Purpose = Purpose.BULK) -> Encoder:
        encoder = self._pool("image", name)
        if "image" not in encoder.modalities:
            raise ModelError(f"model '{name}' cannot embed images: pass a CLIP model or '{DEFAULT_IMAGE_MODEL}'")
        return encoder

    def pids(self) -> list[int]:
        """The worker processes' ids, for `kill` and for the tests that kill one."""
        import ray

        return [ray.get(actor.pid.remote()) for pool in self.pools.values() for actor in pool.actors]

    def close(self) -> None:
        if not self.pools and not self.started_ray:
            return
        import ray

        for pool in self.pools.values():
            for actor in pool.actors:
                ray.kill(actor, no_restart=True)
        self.pools.clear()
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False

    def _pool(self, kind: str, name: str) -> RayEncoder:
        if (kind, name) in self.pools:
            return self.pools[kind, name]
        ray = self._ray()
        local = self.options.address is None
        cpus = os.cpu_count() or 1
        workers = self.options.workers
        # In local mode the pool must fit the machine or its actors would wait forever for a free CPU or GPU.
        per_worker = min(1.0, cpus / workers) if local else 1.0
        gpus = ray.cluster_resources().get("GPU", 0)
        if local and self.options.gpus_per_worker * workers > gpus:
            raise UsageError(f"--gpus-per-worker {self.options.gpus_per_worker:g} x --workers {workers} asks for more "
                             f"GPUs than Ray sees on this machine ({gpus:g})")
        actor_class = ray.remote(num_cpus=per_worker, num_gpus=self.options.gpus_per_worker,
                                 max_restarts=-1, max_task_retries=-1)(EncoderActor)
        threads = max(1, cpus // workers) if local else None
        actors = [actor_class.remote(kind, name, self.device, threads) for _ in range(workers)]
        try:
            error, model, dim, modalities = ray.get(actors[0].describe.remote())
        except ray.exceptions.RayError as exc:
            raise ModelError(f"cannot start a Ray worker for model '{name}': {first_line(exc)}") from exc
        if error is not None:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            raise ModelError(error)
        self.pools[kind, name] = RayEncoder(actors, model, dim, modalities)
        return self.pools[kind, name]

    def _ray(self) -> Any:
        try:
            import ray
        except ImportError:
            raise UsageError("--engine ray needs Ray: pip install 'vsearch[ray]'") from None
        _quiet_driver()
        if ray.is_initialized():
            return ray  # someone (a test, a notebook) already holds a Ray session: use it, leave it up
        # stdout carries data: Ray's own logs stay in its session folder.
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR, "configure_logging": True}
        if self.options.address is None:
            kwargs["num_cpus"] = os.cpu_count() or 1
        try:
            ray.init(address=self.options.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.options.address or "local mode"
            raise VsearchError(f"cannot start Ray ({where}): {first_line(exc)}") from exc
        self.started_ray = True
        return ray


def _quiet_driver() -> None:
    """Ray prints its notes about dead workers ("(raylet) A worker died...") to the driver's stdout even with
    log_to_driver=False, and stdout carries vsearch's data. Only this private switch (which Ray's own debugger
    uses) stops them; without it, a killed worker would put a line into `vsearch encode`'s vectors."""
    import ray._private.worker as ray_worker

    if hasattr(ray_worker, "_worker_logs_enabled"):
        ray_worker._worker_logs_enabled = False
