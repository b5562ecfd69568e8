import numpy as np
import pandas as pd

from ainur_sim.chain.blocktree import BlockTree, fork_stats


def test_fork_choice_prefers_primaries_then_length():
    t = BlockTree()
    a = t.add(0, 1, 0, True, 1.0, 0, 0.0, 100)   # primary
    b = t.add(0, 1, 1, False, 1.0, 0, 0.0, 100)  # secondary sibling
    c = t.add(b, 2, 2, False, 2.0, 0, 0.0, 100)  # longer but lighter than a
    assert t.best_block() == a
    d = t.add(c, 3, 3, True, 3.0, 0, 0.0, 100)
    assert t.best_block() == d
    t.mark_canonical(d)
    df = t.to_frame()
    assert df.set_index("block_id")["canonical"].to_dict() == {a: False, b: True, c: True, d: True}
    assert df["number"].tolist() == [1, 1, 2, 3]


def test_fork_stats_separates_collisions_from_propagation_forks():
    df = pd.DataFrame({
        "block_id": [1, 2, 3, 4, 5],
        "parent_id": [0, 0, 1, 1, 4],
        "slot": [1, 1, 2, 3, 4],
        "canonical": [True, False, True, False, False],
    })
    # blocks 1 and 2 collide in slot 1; block 4 (slot 3) was built on 1 after 3 already extended it
    s = fork_stats(df)
    assert s["same_slot_forks"] == 1 and s["propagation_forks"] == 1 and s["orphan_share"] == 0.6


def test_not_descending_matches_descends_from():
    """not_descending gives the positions descends_from marks False, for a tree with forks."""
    tree = BlockTree()
    rng = np.random.default_rng(1)
    for i in range(60):
        parent = int(rng.integers(0, len(tree)))
        tree.add(parent, slot=i, author=0, primary=bool(i % 2), t_authored=float(i), n_tx=0, weight_s=0.0,
                 length_bytes=0)
    ids = rng.integers(0, len(tree), 40)
    for block in range(len(tree)):
        np.testing.assert_array_equal(tree.not_descending(ids, block),
                                      np.flatnonzero(~tree.descends_from(ids, block)))
