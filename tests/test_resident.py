"""Covers dynjax.data.resident: the stacked matrices written in blocks equal the splits concatenated;
`auto` placement counts the host's own copy on a CPU backend."""

from types import SimpleNamespace

import jax
import numpy as np
import pytest

from dynjax.data.resident import choose_placement, device_memory_bytes, put_resident, row_blocks


def _split(n_rows: int, n_features: int, seed: int) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n_rows, 2)).astype(np.float32)
    y[::3, 0] = np.nan  # unresolved rows: 0 on the device
    return SimpleNamespace(x_NxF=rng.integers(-1, 5, (n_rows, n_features), dtype=np.int8), y_NxT=y, n_rows=n_rows)


@pytest.mark.parametrize("block_rows", [1, 4, 7, 100])
def test_blocks_written_in_place_equal_the_splits_concatenated(block_rows):
    splits = (_split(9, 5, 0), _split(2, 5, 1), _split(6, 5, 2))
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    resident = put_resident(splits, jax.device_put, sharding, block_bytes=block_rows * 5)
    np.testing.assert_array_equal(np.asarray(resident.x_NxF), np.concatenate([s.x_NxF for s in splits]))
    np.testing.assert_array_equal(np.asarray(resident.y_N), np.concatenate([np.nan_to_num(s.y_NxT[:, 0]) for s in splits]))
    shapes = {block.shape for _, block in row_blocks(splits, block_rows)}
    assert len(shapes) <= 2 and all(rows <= block_rows for rows, _ in shapes)  # blocks cross the splits' bounds


def test_auto_placement_counts_the_host_copy_on_a_cpu_backend():
    cpu = jax.devices("cpu")
    ram = device_memory_bytes(cpu)
    assert choose_placement("auto", int(0.2 * ram), cpu, 0.5) == "device"
    assert choose_placement("auto", int(0.3 * ram), cpu, 0.5) == "host"  # 0.6 of the RAM with the host's copy
    gpu = [SimpleNamespace(platform="gpu", process_index=jax.process_index(), memory_stats=lambda: {"bytes_limit": 1000})]
    assert choose_placement("auto", 500, gpu, 0.5) == "device"  # device memory of its own: one copy
    assert choose_placement("auto", 501, gpu, 0.5) == "host"
    assert choose_placement("device", 10 * ram, cpu, 0.5) == "device"
    with pytest.raises(ValueError, match="data.placement"):
        choose_placement("gpu", 1, cpu, 0.5)
