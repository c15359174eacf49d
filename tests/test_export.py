"""`dynjax export` and dynjax.upload: the model-upload pickle predicts what `dynjax predict` writes, without
dynjax, in every Python Numerai's images run (it carries source and plain values, not bytecode)."""

import importlib.util
import json
import os
import pickle
import pickletools
import shutil
import subprocess
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import polars as pl
import pytest

from dynjax.cli import main
from dynjax.model.attention import masked_logits
from dynjax.model.normalizers import get_normalizer
from dynjax.upload import portable
from dynjax.upload.live import NORMALIZERS
from tests.conftest import TINY_RUN

# Interpreters holding only what Numerai's images hold (`.ci/numerai-env DIR 3.12` makes one), separated by
# os.pathsep. CI sets it to the default image's (Python 3.12) and sets CI, where its absence is a failure.
NUMERAI_PYTHONS = [p for p in os.environ.get("DYNJAX_NUMERAI_PYTHON", "").split(os.pathsep) if p]


def pandas_frame(path: Path) -> pd.DataFrame:
    """A live parquet as numerai-predict hands it over (pandas, indexed by id), without pyarrow."""
    frame = pl.read_parquet(path)
    return pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns}).set_index("id")


def export_and_predict(run: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """`(pickle, live frame, dynjax predict's submission indexed by id)` of a finished run."""
    live = run / "data" / "live.parquet"
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "model.pkl")]) == 0
    assert main(["predict", "--run", str(run), "--data", str(live), "--out", str(tmp_path / "s.csv")]) == 0
    sub = pl.read_csv(tmp_path / "s.csv")
    return tmp_path / "model.pkl", pandas_frame(live), pd.Series(sub["prediction"].to_numpy(), index=sub["id"].to_numpy())


def check_upload(out: pd.DataFrame, live: pd.DataFrame, sub: pd.Series) -> None:
    """numerai-predict's rules, and the same values as `dynjax predict`."""
    assert type(out) is pd.DataFrame and list(out.columns) == ["prediction"] and out.index.equals(live.index)
    assert len(out) == len(live) > 0 and not out.isna().any().any() and out["prediction"].between(0, 1).all()
    np.testing.assert_allclose(out["prediction"].to_numpy(), sub.loc[out.index].to_numpy(), atol=1e-5, rtol=0)


def test_pickle_predicts_what_dynjax_predict_writes(finished_run, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    pkl, live, sub = export_and_predict(run, tmp_path)
    model = pickle.loads(pkl.read_bytes())
    check_upload(model(live), live, sub)
    # Rows in another order, and the era column gone (a one-era live file): the same predictions per id.
    shuffled = live.drop(columns="era").sample(frac=1.0, random_state=0)
    check_upload(model(shuffled), shuffled, sub)


@pytest.mark.parametrize("overrides", [
    ["train.ensemble=3", "model.normalizer=entmax15", "data.missing=model", "selection.mode=none", "eval.neutralize=0.5"],
    # with two feature pairs' tables (model.pairs; given, as the tiny data's screen keeps none)
    ["model.normalizer=sparsemax", "model.gates=l0", "data.missing=era_median", "train.ensemble=1", "train.horizons=",
     "model.pairs=2", "model.pair_index=0,3,1,2", "loss.pair_l2=0"],
])
def test_pickle_covers_members_normalisers_gates_and_imputers(tmp_path, overrides):
    run = tmp_path / "run"
    assert main(["walk-forward", "--out", str(run), *TINY_RUN, *overrides]) == 0
    pkl, live, sub = export_and_predict(run, tmp_path)
    check_upload(pickle.loads(pkl.read_bytes())(live), live, sub)


@pytest.mark.parametrize("python", NUMERAI_PYTHONS or [None])
def test_pickle_runs_in_a_numerai_environment_without_dynjax(finished_run, tmp_path, python):
    if python is None:
        why = "DYNJAX_NUMERAI_PYTHON is unset: no Numerai-like interpreter (.ci/numerai-env DIR 3.12 makes one)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    run = shutil.copytree(finished_run, tmp_path / "run")
    pkl, _, _ = export_and_predict(run, tmp_path)
    check = Path(__file__).with_name("numerai_env_check.py")
    done = subprocess.run([python, "-I", str(check), str(pkl), str(run / "data" / "live.parquet"),
                           str(tmp_path / "s.csv")], check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(r["absent"].values()) and r["loaded"] == [], r
    assert r["n_args"] == 1 and r["is_frame"] and r["columns"] == ["prediction"] and r["same_index"], r
    assert r["rows"] == pl.read_parquet(run / "data" / "live.parquet").height and not r["any_nan"] and r["in_0_1"], r
    assert r["max_diff"] <= 1e-5, r
    assert r["info"]["target"] == "target" and r["info"]["embargo"] == 4, r


def test_the_pickle_names_no_module_but_builtins_eval(finished_run, tmp_path):
    """No class or function of dynjax, numpy or cloudpickle is referenced: nothing but `eval` needs importing."""
    run = shutil.copytree(finished_run, tmp_path / "run")
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "model.pkl")]) == 0
    blob = (tmp_path / "model.pkl").read_bytes()
    strings = [arg for op, arg, _ in pickletools.genops(blob) if op.name in ("SHORT_BINUNICODE", "BINUNICODE")]
    globals_ = [op.name for op, _, _ in pickletools.genops(blob) if "GLOBAL" in op.name]
    assert globals_ == ["STACK_GLOBAL"] and strings[:2] == ["builtins", "eval"], (globals_, strings[:4])
    model = pickle.loads(blob)
    assert type(model).__module__ == portable.MODULE_NAME and model.info["exported_with_python"]


def test_the_bundle_refuses_what_an_image_cannot_run(tmp_path):
    source = portable.bundle_source(portable.MODULES)
    assert "from dynjax" not in source and "import jax" not in source
    module = types.ModuleType(portable.MODULE_NAME)
    exec(compile(source, "bundle.py", "exec"), module.__dict__)  # noqa: S102  (as the pickle's loader does)
    assert module.LiveModel.__name__ == "LiveModel" and module.MISSING == 5
    with pytest.raises(portable.NotPortable, match="does not parse as Python 3.10"):
        portable.check_python("try:\n    pass\nexcept* ValueError:\n    pass\n")
    uses_jax = _module(tmp_path, "uses_jax", "import jax.numpy as jnp\n")
    with pytest.raises(portable.NotPortable, match="imports jax.numpy .*only dataclasses, numpy, pandas, typing"):
        portable.bundle_source((uses_jax,))
    unbundled = _module(tmp_path, "unbundled", "from dynjax.data.bins import MISSING\n")
    with pytest.raises(portable.NotPortable, match="imports MISSING from dynjax.data.bins, which is not bundled"):
        portable.bundle_source((unbundled,))


def _module(tmp_path: Path, name: str, source: str):
    """A module from source in a file (so inspect.getsource finds it)."""
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_live_model_names_bad_frames(finished_run, tmp_path):
    run = shutil.copytree(finished_run, tmp_path / "run")
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "model.pkl")]) == 0
    model = pickle.loads((tmp_path / "model.pkl").read_bytes())
    live = pandas_frame(run / "data" / "live.parquet")
    feature = model.features[1]
    with pytest.raises(ValueError, match=f"differ from the training file's: missing {feature}; extra none"):
        model(live.drop(columns=feature))
    with pytest.raises(ValueError, match=f"not: {feature} \\("):
        model(live.assign(**{feature: "a"}))
    with pytest.raises(ValueError, match=f"integer bins 0..4 .* in {feature}"):
        model(live.assign(**{feature: 7}))
    with pytest.raises(ValueError, match="empty"):
        model(live.iloc[:0])
    with pytest.raises(TypeError, match="pandas DataFrame"):
        model(live.to_numpy())
    with pytest.raises(ValueError, match="missing none; extra feature_unknown"):  # as dynjax predict: live = training
        model(live.assign(feature_unknown=1))
    pd.testing.assert_frame_equal(model(live.assign(other=1)), model(live))  # columns that are not features: ignored


def test_export_of_a_run_without_a_next_era_state_is_a_clear_error(tmp_path, capsys):
    assert main(["export", "--run", str(tmp_path / "nothing"), "--out", str(tmp_path / "m.pkl")]) == 2
    assert "no next-era state" in capsys.readouterr().err and not (tmp_path / "m.pkl").exists()


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_numpy_normalisers_match_dynjax(name):
    z_RxF = np.asarray(jax.random.normal(jax.random.key(0), (7, 9)) * 3, np.float64)
    keep_F = np.arange(9) % 4 != 1
    want = get_normalizer(name)(masked_logits(jnp.asarray(z_RxF, jnp.float32), jnp.asarray(keep_F)))
    got = NORMALIZERS[name](np.where(keep_F, z_RxF, -np.inf))
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-5)
    assert np.all(got[:, ~keep_F] == 0) and np.allclose(got.sum(axis=1), 1.0)


def test_v53_layout_runs_end_to_end_on_its_quantum_set_and_exports(tmp_path, capsys):
    data = tmp_path / "v53"
    assert main(["synth", "--out", str(data), "--layout", "v5.3", "--n-train-eras", "12", "--n-val-eras", "3",
                 "--rows-per-era", "30"]) == 0
    sets = json.loads((data / "features.json").read_text())["feature_sets"]
    assert (len(sets["all"]), len(sets["medium"]), len(sets["small"]), len(sets["quantum"])) == (3555, 780, 42, 807)
    assert sets["quantum"] == sorted(sets["all"][-807:]) and not set(sets["quantum"]) & set(sets["medium"] + sets["small"])
    assert all(f.startswith("feature_") and f.count("_") == 3 for f in sets["all"]) and len(set(sets["all"])) == 3555
    for name in ("validation_benchmark_models.parquet", "live_benchmark_models.parquet", "meta_model.parquet"):
        assert {"id", "era"} < set(pl.read_parquet(data / name).columns), name
    assert pl.read_parquet(data / "live.parquet")["era"].unique().to_list() == ["X"]
    run = tmp_path / "run"
    assert main(["walk-forward", "--data", str(data), "--out", str(run), "--feature-set", "quantum", *TINY_RUN]) == 0
    printed = capsys.readouterr().out
    assert "BMC beyond synthetic_ridge" in printed and "payout score (0.5 x corr + 2 x MMC" in printed, printed
    assert json.loads((run / "data_summary.json").read_text())["train"]["features"] == 807
    live = data / "live.parquet"
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "model.pkl")]) == 0
    assert main(["predict", "--run", str(run), "--data", str(live), "--out", str(tmp_path / "s.csv")]) == 0
    sub = pl.read_csv(tmp_path / "s.csv")
    frame = pandas_frame(live)
    # 807 features over 30 rows an era: members that barely leave 0.5, whose scores tie at float32's
    # resolution; the pickle ranks them at that resolution too, or these rows would swap places.
    check_upload(pickle.loads((tmp_path / "model.pkl").read_bytes())(frame), frame,
                 pd.Series(sub["prediction"].to_numpy(), index=sub["id"].to_numpy()))
