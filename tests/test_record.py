import numpy as np

from ainur_sim.record import ColumnStore, empty_frame


def test_column_store_grows_and_keeps_fill_values():
    st = ColumnStore({"a": "int64", "b": "float64"}, capacity=2, fill={"b": np.nan})
    for i in range(5):
        st.append(a=i)
    sl = st.extend(3, a=np.array([10, 11, 12]), b=1.5)
    assert sl == slice(5, 8)
    df = st.to_frame()
    assert list(df["a"]) == [0, 1, 2, 3, 4, 10, 11, 12]
    assert df["b"].isna().sum() == 5 and (df["b"].iloc[5:] == 1.5).all()
    assert df["a"].dtype == np.int64


def test_empty_frame_has_schema():
    df = empty_frame({"x": "int64", "s": "str"})
    assert list(df.columns) == ["x", "s"] and len(df) == 0 and df["x"].dtype == np.int64
