"""Device mesh and shardings: the train step and predict run data parallel over the devices.

`train.mesh` names the mesh's axes and sizes, e.g. "data=8" or "data=4,model=2"; "" (the
default) puts every visible device on the data axis, so the same command uses one CPU, one
GPU or a TPU slice. Axes:

  data     the era window (W eras) is split across these devices; when W does not divide
           evenly, its R rows are; predict splits its chunk's rows
  model    the per-(feature, bin) tables (embedding, per-feature gates) and their optimiser
           state are split along features: for very wide feature sets
  members  the ensemble (or population) axis of the stacked train states is split

Everything else (the rest of the params, the selection state, metrics,
predictions, device-resident data) is replicated, so every process can read it. The step
and predict (`dynjax.train.step`) are jitted with these shardings as their in/out shardings.
Nothing names a device type.
"""

from dataclasses import dataclass
from functools import cached_property

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dynjax.config import MESH_AXES as AXES
from dynjax.config import parse_mesh
from dynjax.data.windows import Batch


def make_mesh(spec: str, devices: list | None = None) -> Mesh:
    """The mesh of `spec` over the first devices; the data axis takes the devices left over when not given."""
    devices = jax.devices() if devices is None else devices
    sizes = parse_mesh(spec)
    rest = sizes.get("model", 1) * sizes.get("members", 1)
    sizes.setdefault("data", max(len(devices) // rest, 1))
    shape = tuple(sizes.get(a, 1) for a in AXES)
    n = int(np.prod(shape))
    if n > len(devices):
        raise ValueError(f"train.mesh {spec!r} needs {n} devices; {len(devices)} are visible "
                         f"({devices[0].platform}; XLA_FLAGS=--xla_force_host_platform_device_count=N makes N CPU devices)")
    # make_mesh orders devices by the physical topology (TPU slices, NVLink islands): data, the
    # outer axis, spans hosts. Auto axes: GSPMD places the collectives; the step's code stays
    # that of one device.
    return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices[:n])


@dataclass(frozen=True, eq=False)
class Layout:
    """Shardings of a run's arrays on one mesh."""

    mesh: Mesh
    n_features: int

    @property
    def n_devices(self) -> int:
        return self.mesh.devices.size

    @cached_property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def _named(self, *spec) -> NamedSharding:
        return NamedSharding(self.mesh, P(*spec))

    def _size(self, axis: str) -> int:
        return self.mesh.shape[axis]

    # State

    def train_shardings(self, train):
        """Stacked train states `[G * M, ...]`: members split on "members", feature tables on "model"."""
        members = "members" if self._size("members") > 1 else None

        def leaf(path, a):
            if members is not None and a.shape[0] % self._size("members"):
                raise ValueError(f"train.mesh: {a.shape[0]} ensemble members do not split over "
                                 f"{self._size('members')} devices on the members axis")
            spec = [members] + [None] * (a.ndim - 1)
            if self._size("model") > 1 and _feature_table(path) and a.ndim >= 2 and a.shape[1] == self.n_features:
                spec[1] = "model" if a.shape[1] % self._size("model") == 0 else None
            return self._named(*spec)

        return jax.tree_util.tree_map_with_path(leaf, train)

    def state_shardings(self, state):
        """A `RunState`'s shardings: the train states as above, the frozen members as their EMA params, the rest replicated."""
        rest = jax.tree.map(lambda _: self.replicated, state.replace(train=None, frozen=None))
        train = self.train_shardings(state.train)
        return rest.replace(train=train, frozen=train.ema_params)

    def abstract(self, tree, shardings):
        """`jax.eval_shape` leaves with their shardings: a restore target that lands on the mesh."""
        return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), tree, shardings)

    # Inputs

    def window_axis(self, windows: tuple[int, ...], rows: int) -> int:
        """1 (eras) when every window size in `windows` splits evenly over the data axis, else 2 (rows)."""
        n = self._size("data")
        if all(w % n == 0 for w in windows):
            return 1
        if rows % n == 0:
            return 2
        raise ValueError(f"train.mesh: windows of {'/'.join(map(str, windows))} eras x {rows} rows split over {n} "
                         "data devices along neither axis; pick data.window_eras or "
                         "data.rows_per_era divisible by it")

    def batch_shardings(self, axis: int, lead: int = 0):
        """A `Batch`'s shardings: every per-era field split along eras (`axis` 1), or the per-row
        fields along rows (2; per-era ones replicated). `lead` leading axes (a member axis: one
        window per member) come first everywhere. Per field, so it is a prefix of any batch the
        step is fed (absent fields are None)."""
        by_eras = axis == 1
        rows = lambda tail=0: self._named(*[None] * lead, *(("data", None) if by_eras else (None, "data")), *[None] * tail)
        per_era = self._named(*[None] * lead, "data") if by_eras else self.replicated
        return Batch(x_WxRxF=rows(1), y_WxR=rows(), mask_WxR=rows(), context=per_era, rows_WxR=rows())

    def rows_sharding(self, *chunks: int) -> NamedSharding:
        """Predict chunks' rows split on the data axis (replicated when some size does not divide)."""
        n = self._size("data")
        return self._named("data") if all(c % n == 0 for c in chunks) else self.replicated

    def put(self, tree, shardings):
        """`tree` on `shardings`: host arrays are sent, device arrays moved only where they differ."""
        if jax.process_count() == 1:
            return jax.device_put(tree, shardings)
        return jax.tree.map(_put_global, tree, shardings)


def make_layout(spec: str, n_features: int) -> Layout:
    return Layout(make_mesh(spec), n_features)


def _feature_table(path) -> bool:
    """A leaf of the per-feature tables: the embedding module, or the global per-feature gates."""
    names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
    return "embed" in names or ("gates" in names and names[-1] in ("scale", "log_alpha"))


def _put_global(leaf, sharding: NamedSharding):
    """One leaf onto a sharding that spans processes: each process supplies its devices' shards
    from its own copy (every process holds the same host data)."""
    if isinstance(leaf, jax.Array) and leaf.sharding.is_equivalent_to(sharding, leaf.ndim):
        return leaf
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(_put_global(jax.random.key_data(leaf), sharding),
                                        impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])
