"""Checkpoints of a sweep's finished chunks: claim the folder, save a chunk atomically, load it back.

The resume step of `runner.execute` (plan -> compile -> run chunk -> resume). A sweep is
identified by its fingerprint (the runs' indices, seeds, values and labels, plus what else
decides its outputs); a resumed sweep loads each finished chunk only when the chunk's
checkpoint holds the same fingerprint, the same runs and the same device count, so it ends
with exactly the outputs of an uninterrupted sweep.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxopt_lab import _io, checkpoint
from jaxopt_lab.config import ConfigError


def fingerprint(groups: Sequence[Any], extra: Any) -> str:
    """A digest of the sweep's runs (`runner.Group`s) and of `extra` (what else decides the outputs)."""
    h = hashlib.sha256()
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for g in groups:
        h.update(np.asarray(g.indices, np.int64).tobytes())
        h.update(np.asarray(g.seeds, np.int64).tobytes())
        for k in sorted(g.hparams):
            h.update(k.encode())
            h.update(np.asarray(g.hparams[k], np.float64).tobytes())
        h.update(json.dumps(g.label, sort_keys=True, default=str).encode())
    return h.hexdigest()


def prepare_checkpoints(ckpt: Path, fp: str, resume: bool) -> None:
    """Claim the checkpoint folder `ckpt` for the sweep of fingerprint `fp` (its manifest, written
    atomically); an earlier sweep's folder is refused without `resume`, another sweep's always."""
    manifest = ckpt / "sweep.json"
    if ckpt.exists() and any(ckpt.iterdir()):
        if not resume:
            raise ValueError(
                f"{ckpt} holds checkpoints of an earlier sweep: pass --resume to continue it, or remove it"
            )
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text(encoding="utf-8")).get("fingerprint")
            except (ValueError, AttributeError):
                raise ConfigError(f"--resume: {manifest} is corrupt (not the JSON jaxopt_lab wrote): remove "
                                  f"{ckpt} and drop --resume") from None
            if old != fp:
                raise ConfigError(
                    f"--resume: the checkpoints in {ckpt} belong to a different sweep (config or space changed)"
                )
    ckpt.mkdir(parents=True, exist_ok=True)
    _io.atomic_write_text(manifest, json.dumps({"fingerprint": fp}))


def checkpoint_path(ckpt: Path | None, group_index: int, chunk_index: int) -> Path | None:
    """Where a chunk's checkpoint lives (None without a checkpoint folder)."""
    return ckpt / f"group{group_index:03d}_chunk{chunk_index:05d}.ckpt" if ckpt is not None else None


def _chunk_metadata(fp: str, indices: np.ndarray, n_devices: int) -> dict[str, Any]:
    return {"fingerprint": fp, "indices": [int(i) for i in indices], "devices": n_devices}


def save(path: Path, chunk_out: Any, fp: str, indices: np.ndarray, n_devices: int) -> None:
    """Save a finished chunk's host outputs (leading axis over `indices`), atomically."""
    checkpoint.save(path, chunk_out, _chunk_metadata(fp, indices, n_devices))


def stacked_like(out_shape: Any, n: int) -> Any:
    """Zeros shaped like `n` runs' outputs stacked: the structure a chunk's checkpoint must have."""
    return jax.tree.map(lambda a: np.zeros((n, *a.shape), a.dtype), out_shape)


def load(path: Path, out_shape: Any, fp: str, indices: np.ndarray, n_devices: int) -> Any:
    """A finished chunk's host outputs, checked to hold exactly these runs of this sweep.

    `out_shape` is one run's output structure: it restores the outputs' pytree types
    (NamedTuples come back as dicts without it).
    """
    expected = _chunk_metadata(fp, indices, n_devices)
    meta = checkpoint.load_metadata(path)
    # Another device count may round differently (batched executions do): refused, not mixed.
    if (meta.get("fingerprint") != fp or list(meta.get("indices", [])) != expected["indices"]
            or meta.get("devices", n_devices) != n_devices):
        raise ConfigError(
            f"--resume: checkpoint {path} holds other runs (another config, --chunk-size, "
            "--devices or --execution): resume with the arguments of the interrupted sweep, "
            "or remove it and drop --resume")
    tree, _ = checkpoint.load(path, like=stacked_like(out_shape, len(indices)))
    return jax.tree.map(np.asarray, tree)
