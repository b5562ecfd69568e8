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
