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


def test_unfinalized_chain_stops_at_the_finalized_ancestor():
    """unfinalized_chain walks from a block up to (without) the last finalized ancestor or genesis."""
    tree = BlockTree()
    for i in range(6):  # a chain 1..6 and a fork 7 on 3
        tree.add(i, slot=i, author=0, primary=True, t_authored=float(i), n_tx=0, weight_s=0.0, length_bytes=0)
    tree.add(3, slot=7, author=0, primary=False, t_authored=7.0, n_tx=0, weight_s=0.0, length_bytes=0)
    np.testing.assert_array_equal(tree.unfinalized_chain(6), [6, 5, 4, 3, 2, 1])
    assert tree.unfinalized_chain(0).size == 0
    tree.mark_finalized(2, 10.0)
    np.testing.assert_array_equal(tree.unfinalized_chain(6), [6, 5, 4, 3])
    np.testing.assert_array_equal(tree.unfinalized_chain(7), [7, 3])
    assert tree.unfinalized_chain(2).size == 0 and tree.unfinalized_chain(6).dtype == np.int64
