"""Column schemas of the run-dir tables (CONTRACT.md). Tables whose subsystem is not modelled yet are
written with these columns and no rows, so downstream code can rely on the schema today."""

from __future__ import annotations

from ainur_sim.chain.balances import SUPPLY_SCHEMA
from ainur_sim.chain.blocktree import BLOCK_SCHEMA

BLOCKS = BLOCK_SCHEMA

TASKS: dict[str, str] = {
    "task_id": "int64",
    "requester": "int64",
    "t_created": "float64",
    "t_cleared": "float64",
    "winner": "int64",
    "payment": "int64",
    "budget": "int64",
    "status": "str",
    "quality": "float64",
    "t_settled": "float64",
}

SUPPLY: dict[str, str] = dict(SUPPLY_SCHEMA)

AGENTS: dict[str, str] = {
    "agent_id": "int64",
    "kind": "str",
    "strategy": "str",
    "reputation": "float64",
    "stake": "int64",
    "balance": "int64",
}

TASK_STATUSES = ("completed", "failed", "refunded", "expired", "disputed_won", "disputed_lost", "open")
