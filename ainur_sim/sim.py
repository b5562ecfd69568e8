"""Build the world from a config, run the SimPy kernel, and collect a ``RunResult``.

``run`` is pure: everything it needs comes from the config (one root seed → named streams), nothing it
does touches global state or the working directory, and the same config gives identical tables.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import simpy
from omegaconf import DictConfig, OmegaConf

from ainur_sim import schemas
from ainur_sim.background import Background
from ainur_sim.chain.blocktree import BlockTree, finality_is_safe, fork_stats
from ainur_sim.chain.connectivity import Connectivity
from ainur_sim.chain.economy import ValidatorSlashing, build_economy, tokens
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.faults import Availability
from ainur_sim.chain.fees import CALL_LENGTHS, BlockLimits, FeeParams
from ainur_sim.chain.finality import Grandpa
from ainur_sim.chain.load import LoadSchedule, TipDistribution
from ainur_sim.chain.network import Network, build_network
from ainur_sim.chain.pause import CallFilter
from ainur_sim.chain.production import BlockProduction, empty_block_builder
from ainur_sim.chain.regions import REGIONS
from ainur_sim.chain.rpc import simulate_run_api
from ainur_sim.chain.runtime import Economy, Runtime
from ainur_sim.chain.txflow import TransactionFlow
from ainur_sim.chain.txpool import PoolLimits, TxPool
from ainur_sim.config import Config, validate
from ainur_sim.draw_ahead import spare_core
from ainur_sim.kpi import (
    block_kpis,
    evaluate,
    finality_kpis,
    storage_bandwidth_kpis,
    transaction_kpis,
    uptime,
)
from ainur_sim.market.protocol import Market
from ainur_sim.record import empty_frame
from ainur_sim.result import RunResult
from ainur_sim.rng import Streams

DRAW_AHEAD_MIN_S = 3600.0  # simulated seconds: shorter runs draw in-process (a fork costs ≈ 10 ms)

if TYPE_CHECKING:  # (imported where a population is built: Mesa's import costs ≈ 0.7 s a process)
    from ainur_sim.agents.population import MarketPopulation


@functools.cache
def _config_schema() -> DictConfig:
    """``OmegaConf.structured(Config)``, built once per process (≈ 60 ms each time; merging copies it)."""
    return OmegaConf.structured(Config)


class _NotPlain(Exception):
    """A config value ``config_container`` leaves to OmegaConf."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain(value: Any, hint: Any) -> Any:
    """``value`` (of type ``hint``) as ``OmegaConf.to_container(OmegaConf.structured(…), resolve=True)`` gives
    it, for the types the config uses with values of exactly those types; ``_NotPlain`` otherwise."""
    if hint in (float, int, str, bool):
        if type(value) is not hint or (hint is str and ("${" in value or value == "???")):
            raise _NotPlain  # (OmegaConf would convert, resolve or refuse it)
        return value
    if dataclasses.is_dataclass(hint):
        if type(value) is not hint:
            raise _NotPlain
        hints = _hints(hint)
        return {f.name: _plain(getattr(value, f.name), hints[f.name]) for f in dataclasses.fields(hint)}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is types.UnionType and len(args) == 2 and type(None) in args:
        return None if value is None else _plain(value, args[0] if args[1] is type(None) else args[1])
    if origin is list and type(value) is list:
        return [_plain(v, args[0]) for v in value]
    if origin is dict and type(value) is dict and args[0] is str:
        return {_plain(k, str): _plain(v, args[1]) for k, v in value.items()}
    raise _NotPlain


def config_container(typed: Config) -> dict[str, Any]:
    """``OmegaConf.to_container(OmegaConf.structured(typed), resolve=True)`` — the run's config as plain
    containers — built directly from the dataclasses when every value already has its field's type (≈ 0.2 s
    less per run); through OmegaConf otherwise."""
    try:
        return _plain(typed, Config)
    except _NotPlain:
        return OmegaConf.to_container(OmegaConf.structured(typed), resolve=True)


def to_config(cfg: Config | DictConfig | Mapping[str, Any]) -> Config:
    """A typed, validated ``Config`` from a composed DictConfig, a plain mapping or a ``Config``."""
    if isinstance(cfg, Config):
        typed = cfg
    elif isinstance(cfg, DictConfig) and OmegaConf.get_type(cfg) is Config:
        typed = OmegaConf.to_object(cfg)  # (composed against the schema already: merging it changes nothing)
    else:
        merged = OmegaConf.merge(_config_schema(), cfg)
        typed = OmegaConf.to_object(merged)
    validate(typed)
    return typed


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (the kernel's work, for activation-cost
    comparisons that do not depend on the machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.events_processed = 0

    def step(self) -> None:
        self.events_processed += 1
        super().step()


@dataclass
class World:
    """Everything a run is made of, built once from the config."""

    cfg: Config
    env: CountingEnvironment
    streams: Streams
    network: Network
    availability: Availability
    tree: BlockTree
    production: BlockProduction
    finality: Grandpa | None
    txflow: TransactionFlow | None
    offline: np.ndarray
    economy: Economy | None = None
    market: Market | None = None
    population: MarketPopulation | None = None


MARKET_KPIS = ("task_completion_rate", "task_success_rate", "agents_registered", "tvl_escrow", "daily_tx_value",
               "reputation_staked")


def build_connectivity(cfg: Config, network: Network, streams: Streams) -> Connectivity | None:
    """Partitions and latency-degradation windows from the config; None when there are none."""
    f = cfg.faults
    if not f.partitions and not f.degradations:
        return None
    n = network.n
    conn = Connectivity(n)
    rng = streams.generator("faults.partitions")
    for p in f.partitions:
        if p.regions:
            side = np.isin(network.region, [REGIONS.index(r) for r in p.regions])
            group = side.astype(np.int64)
        else:
            group = Connectivity.split_fraction(n, p.minority_fraction, rng)
        conn.add_partition(p.start_s, p.start_s + p.duration_s, group)
    for d in f.degradations:
        affected = None if d.fraction >= 1 else np.sort(rng.choice(n, max(1, round(d.fraction * n)), replace=False))
        conn.add_degradation(d.start_s, d.start_s + d.duration_s, d.factor, affected)
    return conn


def _use_spare_core(cfg: Config, mode: str) -> bool:
    """Whether a ``perf`` mode (auto/always/never) puts work in a forked process: auto = on a spare core for
    runs of at least :data:`DRAW_AHEAD_MIN_S`."""
    if mode == "never" or not hasattr(os, "fork"):
        return False
    return mode == "always" or (cfg.run_duration_s >= DRAW_AHEAD_MIN_S and spare_core())


def draw_ahead(cfg: Config) -> bool:
    """Whether the run draws its load and vote jitter ahead in forked processes (``perf.draw_ahead``)."""
    return _use_spare_core(cfg, cfg.perf.draw_ahead)


def api_concurrent(cfg: Config) -> bool:
    """Whether the run evaluates its API layer in a forked process while the chain runs
    (``perf.api_concurrent``; only when the API layer is enabled)."""
    return cfg.api.enabled and _use_spare_core(cfg, cfg.perf.api_concurrent)


def build_world(cfg: Config) -> World:
    """rng streams → network → validators (stake, availability) → block production."""
    streams = Streams(cfg.seed)
    env = CountingEnvironment()
    ch, net = cfg.chain, cfg.network
    n = ch.n_validators
    network = build_network(
        n, net.regions, net.region_weights, topology=net.topology, degree=net.degree,
        intra_region_rtt_ms=net.intra_region_rtt_ms, link_jitter_sigma=net.link_jitter_sigma,
        message_jitter_sigma=net.message_jitter_sigma, hop_latency_factor=net.hop_latency_factor,
        bandwidth_mbps=net.bandwidth_mbps, rng=streams.generator("network.links"),
    )
    if ch.stake_sigma > 0:
        stake = streams.generator("chain.stake").lognormal(0.0, ch.stake_sigma, size=n)
    else:
        stake = np.ones(n)
    availability = Availability(n, ch.sync_delay_s)
    f = cfg.faults
    offline = np.zeros(0, dtype=np.int64)
    if f.offline_validators > 0:
        offline = np.sort(streams.generator("faults.outage").choice(n, f.offline_validators, replace=False))
        availability.add_outage(offline, f.outage_start_s, f.outage_start_s + f.outage_duration_s)
    if f.mtbf_s is not None:
        availability.add_random_crashes(f.mtbf_s, f.mttr_s, cfg.run_duration_s,
                                        streams.generator("faults.crashes"), repair=f.repair)
    connectivity = build_connectivity(cfg, network, streams)
    tree = BlockTree(capacity=int(cfg.run_duration_s / ch.slot_s * 1.2) + 16)
    production = BlockProduction(
        env, consensus=ch.consensus, slot_s=ch.slot_s, babe_c=ch.babe_c, stake=stake, network=network,
        availability=availability, tree=tree,
        builder=empty_block_builder(ch.block_exec_weight_s, ch.header_bytes),
        build_base_s=ch.build_base_s, leader_rng=streams.generator("consensus.leaders"),
        delivery_rng=streams.generator("network.delivery"), connectivity=connectivity,
    )
    fin = cfg.finality
    ahead = draw_ahead(cfg)
    grandpa = None
    if fin.enabled:
        byz_rng = streams.generator("finality.byzantine")
        byzantine = byz_rng.choice(n, int(round(fin.byzantine_fraction * n)), replace=False)
        grandpa = Grandpa(
            env, production=production, tree=tree, network=network, availability=availability,
            gossip_duration_s=fin.gossip_duration_s, before_best=fin.before_best,
            vote_processing_s=fin.vote_processing_s, byzantine=byzantine,
            equivocation_prob=fin.equivocation_prob, timing_observers=fin.timing_observers,
            rng=streams.generator("finality.votes"), draw_ahead=ahead,
        )
    txflow = economy = market = population = None
    if grandpa is not None and (cfg.load.tps > 0 or has_market(cfg)):
        econ = cfg.economics
        economy = build_economy(n, background=tokens(econ.background_tokens),
                                validator_bond=tokens(econ.validator_bond_tokens),
                                treasury_share=cfg.fees.treasury_share,
                                check_invariants=cfg.output.check_invariants)
        book, events = CallBook(longevity_s=cfg.load.longevity_s, gossip_s=cfg.load.gossip_mean_s), EventBus()
        runtime = build_runtime(cfg, economy, book, events)
        runtime.register(ValidatorSlashing(economy, grandpa.offences, tokens(econ.validator_bond_tokens)))
        txflow = build_txflow(cfg, env, production, tree, streams, runtime, book, events, draw_ahead=ahead)
        grandpa.listeners.append(txflow.on_finalized)
        if has_market(cfg):
            market = Market.build(cfg, runtime, economy, book, events, streams.generator("market.disputes"))
            from ainur_sim.agents.population import MarketPopulation

            population = MarketPopulation(cfg, env, market, streams.generator("agents.population"),
                                          list(net.regions), list(net.region_weights))
    return World(cfg, env, streams, network, availability, tree, production, grandpa, txflow, offline, economy,
                 market, population)


def population_stats(pop: MarketPopulation, duration_s: float) -> dict[str, Any]:
    """Adoption and activity figures of the population at the end of a run."""
    joined = pop.join <= duration_s
    principals = np.unique(pop.principal[joined])
    out: dict[str, Any] = {
        "workers_joined": int(principals.size), "worker_identities_joined": int(joined.sum()),
        "requesters_joined": int((pop.r_join <= duration_s).sum()),
        "workers_active_end": int(pop.active_workers(duration_s).sum()),
        "agent_activations": pop.activations, "tasks_submitted": pop.tasks_submitted,
        "verifier_delayed_requests": pop.verifier.delayed,
        "regions_with_agents": int(np.unique(pop.region[joined]).size) if joined.any() else 0,
        "whitewash_attempts": sum(w.whitewash_attempts for w in pop.workers),
        "calls_resubmitted": pop.resubmitted,
    }
    return out


def has_market(cfg: Config) -> bool:
    """Whether the run has market participants (then the market pallets and the population are built)."""
    return cfg.population.any_agents()


def load_schedule(cfg: Config) -> LoadSchedule:
    """The offered background load of ``cfg`` (transactions per second over time)."""
    ld = cfg.load
    return LoadSchedule(
        tps=ld.tps, daily_amplitude=ld.daily_amplitude, peak_hour=ld.peak_hour,
        spikes=tuple((sp.start_s, sp.duration_s, sp.factor) for sp in ld.spikes),
        ramp_start_s=ld.ramp_start_s, ramp_end_s=ld.ramp_end_s, ramp_from=ld.ramp_from, ramp_to=ld.ramp_to,
    )


def fee_params(cfg: Config) -> FeeParams:
    f = cfg.fees
    return FeeParams(adjustment_variable=f.adjustment_variable, target_fullness=f.target_fullness,
                     min_multiplier=f.min_multiplier, treasury_share=f.treasury_share)


def build_txflow(cfg: Config, env: simpy.Environment, production: BlockProduction, tree: BlockTree,
                 streams: Streams, runtime: Runtime, book: CallBook | None = None,
                 events: EventBus | None = None, *, draw_ahead: bool = False) -> TransactionFlow:
    """Pool, load and fees, wired into block production (``draw_ahead``: the load drawn in a forked child)."""
    p, ld = cfg.pool, cfg.load
    limits = BlockLimits()
    pool = TxPool(PoolLimits(ready_count=p.ready_count, ready_bytes=p.ready_kib * 1024,
                             future_count=p.future_count, future_bytes=p.future_kib * 1024, ban_s=p.ban_s),
                  limits)
    return TransactionFlow(
        env, production=production, tree=tree, pool=pool, schedule=load_schedule(cfg),
        tips=TipDistribution(zero_share=ld.tip_zero_share, median=ld.tip_median_units, sigma=ld.tip_sigma),
        fee_params=fee_params(cfg), block_limits=limits, exec_weight_s=limits.block_base_weight_s,
        header_bytes=cfg.chain.header_bytes, gossip_mean_s=ld.gossip_mean_s, longevity_s=ld.longevity_s,
        rng=streams.generator("load.transfers"), runtime=runtime, call_mix=dict(ld.call_mix),
        audit=cfg.output.audit_transactions, book=book, events=events,
        draw_ahead_s=cfg.run_duration_s if draw_ahead else None,
    )


def build_runtime(cfg: Config, economy: Economy | None = None, book: CallBook | None = None,
                  events: EventBus | None = None) -> Runtime:
    """The runtime with its emergency-pause filter, charging fees on ``economy``'s ledger."""
    em = cfg.emergency
    flt = CallFilter(list(em.whitelist))
    for w in em.tx_pause:
        flt.pause(w.start_s, w.start_s + w.duration_s, list(w.calls))
    for w in em.safe_mode:
        flt.enter_safe_mode(w.start_s, w.start_s + w.duration_s)
    return Runtime(flt, economy=economy, book=book, fee_params=fee_params(cfg), events=events)


def _progress(env: simpy.Environment, horizon: float):  # noqa: ANN202 - SimPy generator
    """Advance a tqdm bar in simulated time (hundred updates; off when stderr is not a terminal)."""
    from tqdm import tqdm

    step = horizon / 100.0
    with tqdm(total=horizon, unit="sim s", disable=None, mininterval=0.5, leave=False) as bar:
        while True:
            yield env.timeout(step)
            bar.update(min(step, horizon - bar.n))


def run(cfg: Config | DictConfig | Mapping[str, Any], *, progress: bool = False) -> RunResult:
    """Simulate one run of ``cfg`` and return its tables and KPI verdict."""
    t0 = time.perf_counter()
    typed = to_config(cfg)
    world = build_world(typed)
    duration = typed.run_duration_s
    if progress:
        world.env.process(_progress(world.env, duration))
    # (the API layer depends on the config and its own stream only: it can be evaluated beside the chain)
    api_args = (typed, load_schedule(typed), duration, world.streams.generator("api"))
    api_job = Background(simulate_run_api, *api_args) if api_concurrent(typed) else None
    try:
        world.env.run(until=duration)
    except BaseException:
        if api_job is not None:
            api_job.close()
        raise
    finally:  # (the children drawing ahead are stopped; their streams left where the run leaves them)
        for ahead in (getattr(world.txflow, "ahead", None), getattr(world.finality, "ahead", None)):
            if ahead is not None:
                ahead.close()
        if world.population is not None:  # (no agent joins after the kernel stops)
            world.population.release()

    tree = world.tree
    grandpa = world.finality
    tree.mark_canonical(tree.best_descendant(grandpa.finalized) if grandpa else tree.best_block())
    blocks = tree.to_frame()
    blocks = blocks[list(schemas.BLOCKS)]
    measured, reasons = block_kpis(blocks)
    fin_measured, fin_reasons = finality_kpis(blocks, enabled=grandpa is not None)
    measured.update(fin_measured)
    reasons.update(fin_reasons)
    k = typed.kpi
    up = uptime(blocks, duration, max_block_gap_s=k.uptime_max_block_gap_s,
                max_finality_lag_s=k.uptime_max_finality_lag_s if grandpa else None)
    if np.isfinite(up):
        measured["uptime"] = up
    else:
        reasons["uptime"] = "run shorter than the uptime criteria's warm-up"
    stats: dict[str, Any] = {
        "kernel_events": world.env.events_processed,
        "slots": world.production.slots_run,
        "blocks_authored": len(blocks),
        "canonical_blocks": int(blocks["canonical"].sum()),
        **fork_stats(blocks),
        "offline_validators": [int(v) for v in world.offline],
    }
    extra: dict[str, Any] = {}
    if grandpa is not None:
        rounds = grandpa.rounds.to_frame()
        offences = grandpa.offences.to_frame()
        extra = {"finality_rounds": rounds, "offences": offences}
        stats.update({
            "finality_rounds": int((~rounds["stalled"]).sum()),
            "finality_stalled_rounds": int(rounds["stalled"].sum()),
            "finalized_height": int(tree.store.cols["number"][grandpa.finalized]),
            "finality_safe": finality_is_safe(blocks),
            "equivocations": len(offences),
        })
    if len(world.availability.validator):
        extra["outages"] = world.availability.intervals_frame()
    flow = world.txflow
    if flow is not None:
        extra["chain_series"] = flow.series.to_frame()
        extra["call_failures"] = flow.runtime.outcomes.to_frame()
        stats["calls"] = flow.runtime.totals()
        if flow.audit:
            extra.update(flow.audit_frames())
        tx_measured, tx_reasons, tx_stats = transaction_kpis(blocks, flow, duration, typed)
        measured.update(tx_measured)
        reasons.update(tx_reasons)
        stats.update(tx_stats)
    else:
        for key in ("tps_sustained", "tx_success_rate", "fee_revenue_vs_opex"):
            reasons[key] = "no transaction load (load.tps = 0)"
    if typed.api.enabled:
        api, api_stats = api_job.result() if api_job is not None else simulate_run_api(*api_args)
        measured.update(api.percentiles_ms())
        stats.update(api_stats)
        extra["api_series"] = pd.DataFrame(api.series)
    else:
        for key in ("api_p50_ms", "api_p95_ms", "api_p99_ms"):
            reasons[key] = "API layer disabled (api.enabled=false)"
    supply = world.economy.supply.frame() if world.economy is not None else empty_frame(schemas.SUPPLY)
    tasks = empty_frame(schemas.TASKS)
    agents = empty_frame(schemas.AGENTS)
    if world.market is not None:
        m_measured, m_reasons, m_stats = world.market.kpis(typed, duration, supply)
        measured.update(m_measured)
        reasons.update(m_reasons)
        stats.update(m_stats)
        tasks = world.market.tasks.frame()
        agents = world.population.frame()
        extra["calls"] = world.market.book.frame()
        extra["agents_series"] = world.population.series()
        extra["workers_series"] = world.population.worker_series()
        stats.update(population_stats(world.population, duration))
    else:
        for key in MARKET_KPIS:
            reasons[key] = "no market participants (population.n_workers = n_requesters = 0)"
    if world.economy is not None:
        stats["ledger"] = world.economy.ledger.snapshot(-1)
        stats["validator_slashed_units"] = sum(p.slashed for p in flow.runtime.pallets
                                               if isinstance(p, ValidatorSlashing))
    tx_bytes = flow.pool.counters.submitted * CALL_LENGTHS["transfer"] if flow is not None else 0
    measured.update(storage_bandwidth_kpis(blocks, duration, tx_bytes))
    kpis = evaluate(measured, reasons, typed.kpi.targets)
    return RunResult(
        blocks=blocks,
        tasks=tasks,
        supply=supply,
        agents=agents,
        kpis=kpis,
        config=config_container(typed),
        seed=typed.seed,
        duration_s=duration,
        wall_s=time.perf_counter() - t0,
        stats=stats,
        extra_tables=extra,
    )
