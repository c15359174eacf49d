"""Run by test_export in a Numerai-like interpreter (`python -I`): load the pickle as numerai-predict
does and check its rules. Prints one JSON line. Argv: model.pkl live.parquet submission.csv."""

import importlib.util
import inspect
import json
import sys

import pandas as pd

absent = {m: importlib.util.find_spec(m) is None for m in ("dynjax", "flax", "optax", "orbax")}
model = pd.read_pickle(sys.argv[1])
n_args = len(inspect.signature(model).parameters)
live = pd.read_parquet(sys.argv[2]).set_index("id")
out = model(live)
sub = pd.read_csv(sys.argv[3]).set_index("id")
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dynjax", "flax", "optax", "orbax"))
print(json.dumps({
    "absent": absent, "loaded": loaded, "n_args": n_args, "is_frame": type(out) is pd.DataFrame,
    "columns": list(out.columns), "same_index": bool(out.index.equals(live.index)), "rows": len(out),
    "any_nan": bool(out.isna().any().any()), "in_0_1": bool(out.iloc[:, 0].between(0, 1).all()),
    "max_diff": float((out.iloc[:, 0] - sub.loc[out.index, "prediction"]).abs().max()),
    "versions": {m: sys.modules[m].__version__ for m in ("numpy", "pandas")},
    "python": f"{sys.version_info[0]}.{sys.version_info[1]}", "info": model.info,
}))
