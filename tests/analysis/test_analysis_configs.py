"""One model name run under two configs is analysed as two models, never averaged into one curve."""

import numpy as np
import pandas as pd
import pytest

from ttscale.analysis.results import Results, model_table, parameter_count, split_configs
from ttscale.errors import TtscaleWarning


def rows(configs, model="Qwen/QwQ-32B"):
    """Two problems × two budgets per config; config A always right, config B always wrong."""
    out = []
    for config in configs:
        for pid in ("p1", "p2"):
            for budget in (16, 32):
                out.append(
                    dict(model=model, dataset="d", problem_id=pid, seed=0, budget=budget, config_id=config,
                         cell_id=f"{config}-{budget}", correct=int(config == "aaaaaaaa1111"), family="qwq")
                )  # fmt: skip
    return pd.DataFrame(out)


def test_a_single_config_keeps_its_name_without_a_warning(recwarn):
    table = rows(["aaaaaaaa1111"])
    assert split_configs(table).model.unique().tolist() == ["Qwen/QwQ-32B"]
    assert not [w for w in recwarn if issubclass(w.category, TtscaleWarning)]


def test_two_configs_become_two_models_and_two_curves():
    with pytest.warns(TtscaleWarning, match="Qwen/QwQ-32B: rows from several configs"):
        results = Results.from_frame(rows(["aaaaaaaa1111", "bbbbbbbb2222"]), n_boot=20)
    curves = results.curves("accuracy").set_index("model")
    assert sorted(curves.index.unique()) == ["Qwen/QwQ-32B@aaaaaaaa", "Qwen/QwQ-32B@bbbbbbbb"]
    assert (curves.loc["Qwen/QwQ-32B@aaaaaaaa", "value"] == 1).all()
    assert (curves.loc["Qwen/QwQ-32B@bbbbbbbb", "value"] == 0).all()


def test_rows_without_a_config_id_are_a_config_of_their_own():
    """Shards from before config ids read back with nulls: they must not merge into a new config silently."""
    table = rows(["aaaaaaaa1111"])
    table = pd.concat([table.assign(config_id=None, cell_id="old"), table], ignore_index=True)
    with pytest.warns(TtscaleWarning):
        split = split_configs(table)
    assert sorted(split.model.unique()) == ["Qwen/QwQ-32B@aaaaaaaa", "Qwen/QwQ-32B@unknown"]
    assert split.model.notna().all() and len(split) == len(table)


def test_categorical_model_columns_split_too():
    table = rows(["aaaaaaaa1111", "bbbbbbbb2222"])
    table["model"] = table["model"].astype("category")
    with pytest.warns(TtscaleWarning):
        assert split_configs(table).model.nunique() == 2


def test_the_config_suffix_is_not_read_as_a_model_size():
    assert parameter_count("Qwen/QwQ-32B@3b1f2a00") == 32.0
    assert parameter_count("mymodel@3b1f2a00") is None and parameter_count("ckpt@12m9ff00") is None
    with pytest.warns(TtscaleWarning):
        split = split_configs(rows(["aaaaaaaa1111", "bbbbbbbb2222"], model="org/model-7B"))
    assert np.allclose(model_table(split).params_b, 7.0)
