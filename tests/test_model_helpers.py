"""Helpers shared by the fit tests."""

import numpy as np
import pandas as pd

import pymc_maxent as pmx


def assert_round_trip(cm, tmp_path, new_data):
    path = cm.save(tmp_path / "model.nc")
    loaded = pmx.ChoiceModel.load(path)
    assert loaded.spec == cm.spec
    assert loaded.fit_result.estimator == cm.fit_result.estimator
    for data in (None, new_data):
        a = cm.predict(data, random_seed=2).values
        b = loaded.predict(data, random_seed=2).values
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(cm.fit_result.estimates(), loaded.fit_result.estimates())
    return loaded
