"""Structured configuration: the dataclasses behind the Hydra config, and their validation.

The dataclasses are registered in Hydra's ConfigStore (``register_configs``) so every YAML file and every
command-line override is type-checked against them. ``validate`` then checks every numeric range and
cross-field rule and raises ``ConfigError`` naming the key and the allowed range; the CLI turns that into a
one-line message and exit status 2.

Units: times in seconds (``_s``), rates per second, bandwidth in Mbit/s, money in integer base units
(1 token = 10**12 units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

from ainur_sim.chain.regions import REGIONS

CONSENSUS = ("babe", "aura")
MECHANISMS = ("vcg", "second_price", "first_price", "posted_price", "greedy")
TOPOLOGIES = ("mesh", "random_regular")
KPI_OPS = ("<", "<=", ">", ">=", "between", "none")


class ConfigError(ValueError):
    """A configuration value is invalid. ``key`` is the dotted config key, the message says what is allowed."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass
class PhaseConfig:
    """A named moment of a scenario's timeline (e.g. launch-day phases), seconds from genesis."""

    name: str = ""
    t_s: float = 0.0


@dataclass
class ScenarioConfig:
    """What the scenario is: its name, own duration and timeline. Scenario files also set other groups."""

    name: str = "baseline"
    description: str = ""
    duration_s: float = 3600.0
    phases: list[PhaseConfig] = field(default_factory=list)


@dataclass
class ChainConfig:
    """Validators and block production."""

    consensus: str = "babe"
    n_validators: int = 10
    slot_s: float = 6.0
    babe_c: float = 0.25
    stake_sigma: float = 0.0  # lognormal sigma of validator stake; 0 = equal stake (Polkadot: weight 1 each)
    build_base_s: float = 0.05  # time an author needs to build an (empty) block, seconds
    block_exec_weight_s: float = 0.005  # weight of executing an empty block (BlockExecutionWeight), seconds
    header_bytes: int = 512  # encoded length of an empty block (header, digests, inherents)
    sync_delay_s: float = 1.0  # time a returning validator needs to catch up, on top of block imports


@dataclass
class FinalityConfig:
    """GRANDPA finality (research/substrate.md §3)."""

    enabled: bool = True
    gossip_duration_s: float = 1.0  # T: prevote timer 2T, precommit timer 4T (Polkadot: 1 s)
    before_best: int = 2  # voting rule BeforeBestBlockBy(2)
    vote_processing_s: float = 0.005  # time to check and sign a vote
    byzantine_fraction: float = 0.0  # share of validators that may equivocate
    equivocation_prob: float = 0.0  # per round, chance that an online byzantine voter equivocates
    timing_observers: int = 100  # receivers whose vote arrivals are computed each round (all when fewer)


@dataclass
class NetworkConfig:
    """Where validators are and how blocks travel between them."""

    regions: list[str] = field(
        default_factory=lambda: [
            "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-1",
            "sa-east-1", "us-west-1",
        ]
    )
    region_weights: list[float] = field(default_factory=lambda: [3.0, 2.0, 2.0, 3.0, 2.0, 2.0, 1.0, 1.0])
    topology: str = "mesh"  # validators meshed via authority discovery (one hop), or a random regular graph
    degree: int = 8  # peers per node for random_regular
    intra_region_rtt_ms: float = 2.0
    link_jitter_sigma: float = 0.15  # lognormal sigma of a link's fixed latency factor
    message_jitter_sigma: float = 0.10  # lognormal sigma of the per-delivery latency factor
    hop_latency_factor: float = 3.0  # announce + request + response: ~3 one-way delays per hop
    bandwidth_mbps: float = 100.0


@dataclass
class PartitionConfig:
    """A network partition: validators in ``regions`` (or a random ``minority_fraction``) are cut off
    from the rest for ``[start_s, start_s + duration_s)``."""

    start_s: float = 0.0
    duration_s: float = 0.0
    regions: list[str] = field(default_factory=list)
    minority_fraction: float = 0.0


@dataclass
class DegradationConfig:
    """Latency degradation: every delay to or from the affected validators (all when ``fraction`` is 1)
    is multiplied by ``factor`` during ``[start_s, start_s + duration_s)``."""

    start_s: float = 0.0
    duration_s: float = 0.0
    factor: float = 1.0
    fraction: float = 1.0


@dataclass
class FaultsConfig:
    """Faults: the outage window (``offline_validators`` go offline, then sync), random crash/recover per
    validator (off when ``mtbf_s`` is null), partitions and latency degradation windows."""

    offline_validators: int = 0
    outage_start_s: float = 0.0
    outage_duration_s: float = 0.0
    mtbf_s: float | None = None  # mean time between failures per validator; null = no random crashes
    mttr_s: float = 1800.0  # mean time to repair
    repair: str = "exponential"  # or lognormal
    partitions: list[PartitionConfig] = field(default_factory=list)
    degradations: list[DegradationConfig] = field(default_factory=list)


@dataclass
class SpikeConfig:
    """A load spike: the rate is multiplied by ``factor`` during ``[start_s, start_s + duration_s)``."""

    start_s: float = 0.0
    duration_s: float = 0.0
    factor: float = 1.0


@dataclass
class LoadConfig:
    """Background transfer load: a non-homogeneous Poisson process (rate × daily cycle × ramp × spikes)."""

    tps: float = 0.0
    daily_amplitude: float = 0.0  # rate × (1 + a·cos(2π(t − peak)/day)); t = 0 is midnight UTC
    peak_hour: float = 14.0
    spikes: list[SpikeConfig] = field(default_factory=list)
    ramp_start_s: float = 0.0
    ramp_end_s: float = 0.0
    ramp_from: float = 1.0
    ramp_to: float = 1.0
    tip_zero_share: float = 0.9  # share of transfers without a tip
    tip_median_units: float = 1e9  # median tip of tipped transfers, base units (0.001 token)
    tip_sigma: float = 1.0
    gossip_mean_s: float = 0.5  # mean delay from submission until authors have the transaction
    longevity_s: float = 330.0  # mortal era: 55 blocks
    call_mix: dict[str, float] = field(default_factory=lambda: {"transfer": 1.0})  # share of each call kind


@dataclass
class PauseWindowConfig:
    """An emergency-pause window; ``calls``: ``pallet.call`` or ``pallet.*`` patterns (tx-pause only)."""

    start_s: float = 0.0
    duration_s: float = 0.0
    calls: list[str] = field(default_factory=list)


@dataclass
class EmergencyConfig:
    """Emergency pause: tx-pause windows for chosen calls, safe-mode windows for all but the whitelist."""

    tx_pause: list[PauseWindowConfig] = field(default_factory=list)
    safe_mode: list[PauseWindowConfig] = field(default_factory=list)
    whitelist: list[str] = field(default_factory=lambda: ["system.*", "timestamp.*", "tx_pause.*", "safe_mode.*"])


@dataclass
class PoolConfig:
    """Transaction-pool limits (Substrate defaults)."""

    ready_count: int = 8192
    ready_kib: int = 20480
    future_count: int = 512
    future_kib: int = 1024
    ban_s: float = 1800.0


@dataclass
class ApiConfig:
    """RPC/API layer: nodes in regions, servers per node, request mix, autoscaling."""

    enabled: bool = True
    node_regions: list[str] = field(default_factory=lambda: ["us-east-1", "eu-central-1", "ap-southeast-1"])
    servers_per_node: int = 4
    reads_per_tx: float = 4.0  # state reads (balances, status polls) per submitted transaction
    base_read_rps: float = 50.0  # reads not tied to submissions (explorers, dashboards)
    read_mean_ms: float = 2.0
    submit_mean_ms: float = 8.0
    service_distribution: str = "exponential"
    autoscale: bool = True
    target_utilization: float = 0.6
    interval_s: float = 15.0
    provisioning_delay_s: float = 60.0
    max_servers: int = 256
    sample: str = "auto"  # full (every request), sampled (windows, see chain/api.py) or auto (> 2e7 requests)


@dataclass
class EconomicsConfig:
    """Money outside the chain: token price and operating cost, for USD-denominated KPIs."""

    token_usd: float = 1.0  # USD per token (1 token = 10**12 base units)
    opex_usd_per_day: float = 1000.0  # validators, RPC nodes, monitoring
    background_tokens: float = 5_000_000.0  # genesis endowment of the background users (pays their fees)
    validator_bond_tokens: float = 10_000.0  # genesis stake of each validator (slashed for equivocation)


@dataclass
class FeesConfig:
    """TargetedFeeAdjustment parameters (Polkadot defaults)."""

    adjustment_variable: float = 0.000075  # Polkadot; the W3F "fast" example is 0.0033
    target_fullness: float = 0.25
    min_multiplier: float = 0.1
    treasury_share: float = 0.8  # of inclusion fees; the rest is burned; tips go to the block author


@dataclass
class WaveConfig:
    """An onboarding wave: ``workers`` and ``requesters`` join, spread uniformly over ``spread_s`` from ``t_s``."""

    t_s: float = 0.0
    workers: int = 0
    requesters: int = 0
    spread_s: float = 600.0


@dataclass
class WindowConfig:
    """A time window of the run, seconds."""

    start_s: float = 0.0
    duration_s: float = 0.0


@dataclass
class PopulationConfig:
    """The market's users: who joins when, their money, and how they behave.

    Times are simulated seconds; amounts are tokens (converted to integer base units at build time).
    ``n_workers``/``n_requesters`` join at ``onboarding_s`` (requesters start posting at ``market_start_s``);
    ``waves`` add more; ``growth_*`` add a logistic adoption curve. ``strategy_mix`` gives the workers'
    strategies by share (``agents/strategies.py``).
    """

    n_workers: int = 0
    n_requesters: int = 0
    onboarding_s: float = 0.0  # the initial agents join from here (spread over onboarding_spread_s)
    onboarding_spread_s: float = 600.0
    market_start_s: float = 0.0  # requesters start posting tasks here
    waves: list[WaveConfig] = field(default_factory=list)
    growth_workers: int = 0  # more workers joining along a logistic curve
    growth_requesters: int = 0
    growth_midpoint_s: float = 3 * 86400.0
    growth_width_s: float = 86400.0
    idle_workers: int = 0  # workers that exist (accounts, genesis) but never act
    mean_active_days: float = 84.0  # exponential activity lifetime: 70 % still active after 30 days
    n_capabilities: int = 4  # task types; each worker holds 1..n of them
    tasks_per_requester_hour: float = 2.0  # mean task rate of an active requester (lognormal spread)
    requester_rate_sigma: float = 0.5
    task_daily_amplitude: float = 0.3  # daily cycle of task posting (peak at load.peak_hour)
    budget_tokens: float = 50.0  # median task budget (lognormal, sigma budget_sigma)
    budget_sigma: float = 0.5
    quality_threshold: float = 0.7  # requesters' quality threshold
    max_wait_s: float = 3600.0  # requesters' patience until clearing (else the task expires)
    worker_tokens: float = 500.0  # genesis balance of each worker identity
    requester_tokens: float = 5_000.0  # genesis balance of each requester
    stake_tokens: float = 200.0  # what each worker identity stakes when onboarding
    capacity: int = 3  # tasks a worker holds at once
    bidders_per_task: float = 12.0  # attention: each eligible worker bids with probability min(1, this / eligible)
    resubmits: int = 2  # a dropped call is resubmitted up to this many times, each time with a higher tip
    bump_tip_tokens: float = 0.002  # the first resubmission's tip; each further one doubles it
    cost_share: float = 0.5  # a worker's cost for a task, as a share of the median budget (mean, ±50 %)
    quality_alpha: float = 9.0  # honest worker quality ~ Beta(alpha, beta): chance a delivery meets the threshold
    quality_beta: float = 1.0
    work_s: float = 600.0  # mean time from allocation to delivery (exponential)
    non_delivery_prob: float = 0.02  # an honest winner never delivers
    dispute_prob: float = 0.9  # a requester disputes a delivery below its quality threshold
    frivolous_dispute_prob: float = 0.01  # ... and a good one
    release_prob: float = 0.7  # a requester releases a good delivery at once (else it auto-releases)
    strategy_mix: dict[str, float] = field(default_factory=lambda: {  # every strategy listed: overridable by key
        "truthful": 1.0, "shading": 0.0, "underbid": 0.0, "collusion": 0.0, "sybil": 0.0, "lazy": 0.0,
        "malicious": 0.0, "whitewash": 0.0, "on_off": 0.0, "camouflage": 0.0})
    shade: float = 0.3  # shading: ask = cost × (1 + shade)
    underbid: float = 0.3  # underbidding / malicious: ask = cost × (1 − underbid)
    ring_size: int = 5  # collusion: members per ring
    ring_reserve: float = 0.7  # collusion: the ring's shared reserve, share of the budget
    ring_bidding: str = "floor"  # collusion: "floor" (every member asks the reserve) or "designated" (bid ring)
    sybil_identities: int = 3  # sybil: DIDs per principal
    whitewash_below: float = 0.4  # whitewashing: leave and re-register when reputation falls below
    on_period_s: float = 6 * 3600.0  # on-off: honest for this long ...
    off_period_s: float = 2 * 3600.0  # ... then defecting for this long
    camouflage_above_tokens: float = 75.0  # camouflage: honest below this task budget, low quality at or above
    verifier_outages: list[WindowConfig] = field(default_factory=list)  # the verifier answers nothing
    collect_every_s: float = 3600.0  # DataCollector period (model-level series)
    collect_agents_every_s: float = 21600.0  # agent-level series period (one row per worker per collection)

    def joining_workers(self) -> int:
        """Workers (principals) that join during a run: initial, waves and growth (idle ones excluded)."""
        return self.n_workers + sum(w.workers for w in self.waves) + self.growth_workers

    def joining_requesters(self) -> int:
        """Requesters that join during a run: initial, waves and growth."""
        return self.n_requesters + sum(w.requesters for w in self.waves) + self.growth_requesters

    def any_agents(self) -> bool:
        """Whether the run has market participants (then the market pallets and the population exist)."""
        return self.joining_workers() + self.joining_requesters() + self.idle_workers > 0


@dataclass
class RegistryConfig:
    """DID registry: deposits, capability verification, anti-whitewashing."""

    did_deposit_tokens: float = 10.0  # reserved while the DID is active; refunded on deactivation
    deposit_refund_share: float = 1.0  # share of the remaining deposit refunded on deactivation (rest → treasury)
    verification_delay_s: float = 120.0  # verifier's delay before issuing a capability credential
    verification_failure_prob: float = 0.05  # a verification that fails (no credential)
    allow_reregistration: bool = False  # False: a deactivated DID's owner cannot register again
    verifier_tokens: float = 1_000.0  # genesis balance of the verifier's account (pays its call fees)


@dataclass
class AuctionConfig:
    """Task auctions: bidding window and deadlines, in blocks of the finalized chain."""

    bid_window_blocks: int = 10  # bids count if included within this many blocks after the post
    deadline_blocks: int = 600  # delivery deadline after clearing (600 blocks = 1 h at 6 s)
    max_bidders: int = 64  # bids kept per task (cheapest first)


@dataclass
class EscrowConfig:
    """Escrow: challenge window after delivery and the protocol fee."""

    challenge_window_blocks: int = 50  # a delivery auto-releases after this many blocks without dispute
    protocol_fee_share: float = 0.02  # of each payment, to the treasury


@dataclass
class DisputeConfig:
    """Dispute resolution: automated verification or a stake-weighted juror court."""

    model: str = "automated"  # automated | court
    bond_tokens: float = 5.0  # reserved by the disputing requester; the loser's fee comes out of its side
    fee_tokens: float = 1.0  # automated model: the loser pays this to the treasury
    false_accept: float = 0.05  # automated: a bad delivery ruled good
    false_reject: float = 0.05  # automated: a good delivery ruled bad
    resolution_blocks: int = 10  # blocks from dispute to ruling (per court round)
    initial_jurors: int = 3
    max_rounds: int = 4  # jury sizes 3, 7, 15, 31
    juror_accuracy: float = 0.8
    juror_fee_tokens: float = 0.2  # per drawn vote, paid by the loser
    juror_stake_at_risk_tokens: float = 1.0  # per incoherent vote


@dataclass
class ReputationConfig:
    """Reputation model feeding the auction's quality weight q(ρ) = q_min + (1 − q_min)·ρ."""

    model: str = "beta"  # beta | ema | eigentrust
    forgetting: float = 0.98  # beta: λ per feedback
    half_life_s: float = 7 * 86400.0  # ema: evidence half-life
    q_min: float = 0.5


@dataclass
class StakingConfig:
    """Worker stake: entry requirements and slashing."""

    min_stake_tokens: float = 100.0  # needed to bid
    max_value_per_stake: float = 1.0  # a bid is valid only for tasks with budget ≤ this × stake
    slash_non_delivery: float = 0.1  # share of the payment slashed from stake when the deadline is missed
    slash_dispute_loss: float = 0.2  # share of the payment slashed from stake for a lost dispute


@dataclass
class MarketConfig:
    """The market pallets: the allocation mechanism and each pallet's parameters."""

    mechanism: str = "vcg"
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    auction: AuctionConfig = field(default_factory=AuctionConfig)
    escrow: EscrowConfig = field(default_factory=EscrowConfig)
    dispute: DisputeConfig = field(default_factory=DisputeConfig)
    reputation: ReputationConfig = field(default_factory=ReputationConfig)
    staking: StakingConfig = field(default_factory=StakingConfig)


@dataclass
class KpiTarget:
    """A KPI's target: ``op`` one of <, <=, >, >=, between (lo..hi) or none (reported, not judged)."""

    op: str = "none"
    value: float | None = None
    lo: float | None = None
    hi: float | None = None
    unit: str = ""


@dataclass
class KpiConfig:
    """The targets a run is judged against."""

    name: str = "launch"
    targets: dict[str, KpiTarget] = field(default_factory=dict)
    uptime_max_block_gap_s: float = 18.0  # "up" needs a canonical block within this many seconds (3 slots)
    uptime_max_finality_lag_s: float = 60.0  # ... and the newest finalized block at most this old


@dataclass
class OutputConfig:
    """How a run reports itself (not part of the results)."""

    progress: bool = True  # progress bar on stderr when it is a terminal
    audit_transactions: bool = False  # record every inclusion (block, tx) as tx_inclusions.parquet (small runs)
    check_invariants: bool = False  # check the ledger's books at every finalized block (tests; slower)
    plots: bool = True  # draw plots/*.png (≈ 0.3 s a figure); false: report.md only (ainur-sim-report draws later)


@dataclass
class PerfConfig:
    """How a run uses the machine (not part of the results: the outputs are the same either way)."""

    # draw the background load and the finality vote jitter ahead in forked processes on a spare core
    # (ainur_sim.draw_ahead): auto = on Linux when the process may use ≥ 2 CPUs and the run is ≥ 1 simulated
    # hour (never inside a parallel sweep's workers); always = whenever the platform can fork; never
    draw_ahead: str = "auto"
    # evaluate the API layer (chain/rpc.py) in a forked process on a spare core while the chain runs
    # (ainur_sim.background): auto = under the same conditions as draw_ahead; always; never
    api_concurrent: str = "auto"


@dataclass
class Config:
    """The whole run configuration (see CONTRACT.md for the stable keys)."""

    seed: int = 0
    duration_s: float | None = None
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    finality: FinalityConfig = field(default_factory=FinalityConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    economics: EconomicsConfig = field(default_factory=EconomicsConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    emergency: EmergencyConfig = field(default_factory=EmergencyConfig)
    fees: FeesConfig = field(default_factory=FeesConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    market: MarketConfig = field(default_factory=MarketConfig)
    kpi: KpiConfig = field(default_factory=KpiConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)

    @property
    def run_duration_s(self) -> float:
        """Simulated seconds of this run: ``duration_s`` if set, else the scenario's own."""
        return float(self.duration_s if self.duration_s is not None else self.scenario.duration_s)


def register_configs() -> None:
    """Register the structured schema so YAML files and overrides are type-checked."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)


# --- validation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Allowed numeric range of one key, and how to say it."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def contains(self, x: float) -> bool:
        if self.integer and (not isinstance(x, int) or isinstance(x, bool)):
            return False
        if isinstance(x, float) and not math.isfinite(x) and not (x == math.inf and self.hi == math.inf):
            return False
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.lo > -math.inf and self.hi < math.inf:
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            return f"{kind} in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"
        if self.lo > -math.inf:
            return f"{kind} {'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        if self.hi < math.inf:
            return f"{kind} {'<' if self.hi_open else '<='} {_fmt(self.hi)}"
        return kind


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


#: Largest genesis (tokens) the int64 ledger accepts with headroom for mints: 2^63 − 1 units ≈ 9.22 M tokens.
GENESIS_CAP_TOKENS = 9.0e6

#: Allowed range of every numeric key. ``validate`` checks each; the CLI also uses these to explain type errors.
RANGES: dict[str, Range] = {
    "seed": Range(0, 2**63 - 1, integer=True),
    "duration_s": Range(0, 366 * 86400, lo_open=True),
    "scenario.duration_s": Range(0, 366 * 86400, lo_open=True),
    "chain.n_validators": Range(1, 5000, integer=True),
    "chain.slot_s": Range(0, 3600, lo_open=True),
    "chain.babe_c": Range(0, 1, lo_open=True),
    "chain.stake_sigma": Range(0, 5),
    "chain.build_base_s": Range(0, 60),
    "chain.block_exec_weight_s": Range(0, 10),
    "chain.header_bytes": Range(1, 5 * 2**20, integer=True),
    "chain.sync_delay_s": Range(0, 3600),
    "finality.gossip_duration_s": Range(0, 600, lo_open=True),
    "finality.before_best": Range(0, 1000, integer=True),
    "finality.vote_processing_s": Range(0, 60),
    "finality.byzantine_fraction": Range(0, 1),
    "finality.equivocation_prob": Range(0, 1),
    "finality.timing_observers": Range(1, 100_000, integer=True),
    "network.degree": Range(1, 1000, integer=True),
    "network.intra_region_rtt_ms": Range(0, 10_000),
    "network.link_jitter_sigma": Range(0, 3),
    "network.message_jitter_sigma": Range(0, 3),
    "network.hop_latency_factor": Range(0, 100),
    "network.bandwidth_mbps": Range(0, 1e6, lo_open=True),
    "faults.offline_validators": Range(0, 5000, integer=True),
    "faults.outage_start_s": Range(0, 366 * 86400),
    "faults.outage_duration_s": Range(0, 366 * 86400),
    "load.tps": Range(0, 1e6),
    "load.daily_amplitude": Range(0, 1),
    "load.peak_hour": Range(0, 24),
    "load.ramp_start_s": Range(0, 366 * 86400),
    "load.ramp_end_s": Range(0, 366 * 86400),
    "load.ramp_from": Range(0, 1e6),
    "load.ramp_to": Range(0, 1e6),
    "load.tip_zero_share": Range(0, 1),
    "load.tip_median_units": Range(0, 1e24, lo_open=True),
    "load.tip_sigma": Range(0, 10),
    "load.gossip_mean_s": Range(0, 600),
    "load.longevity_s": Range(0, 1e9, lo_open=True),
    "pool.ready_count": Range(1, 10_000_000, integer=True),
    "pool.ready_kib": Range(1, 100_000_000, integer=True),
    "pool.future_count": Range(0, 10_000_000, integer=True),
    "pool.future_kib": Range(0, 100_000_000, integer=True),
    "pool.ban_s": Range(0, 86400 * 30),
    "fees.treasury_share": Range(0, 1),
    "economics.token_usd": Range(0, 1e9),
    "api.servers_per_node": Range(1, 100_000, integer=True),
    "api.reads_per_tx": Range(0, 1e4),
    "api.base_read_rps": Range(0, 1e8),
    "api.read_mean_ms": Range(0, 1e5, lo_open=True),
    "api.submit_mean_ms": Range(0, 1e5, lo_open=True),
    "api.target_utilization": Range(0, 1, lo_open=True),
    "api.interval_s": Range(0, 3600, lo_open=True),
    "api.provisioning_delay_s": Range(0, 86400),
    "api.max_servers": Range(1, 1_000_000, integer=True),
    "economics.opex_usd_per_day": Range(0, 1e12),
    "kpi.uptime_max_block_gap_s": Range(0, 86400, lo_open=True),
    "kpi.uptime_max_finality_lag_s": Range(0, 86400, lo_open=True),
    "fees.adjustment_variable": Range(0, 1),
    "fees.target_fullness": Range(0, 1, lo_open=True, hi_open=True),
    "fees.min_multiplier": Range(0, 1e6, lo_open=True),
    "population.n_workers": Range(0, 10_000_000, integer=True),
    "population.n_requesters": Range(0, 10_000_000, integer=True),
    "population.n_capabilities": Range(1, 62, integer=True),
    "population.onboarding_s": Range(0, 366 * 86400),
    "population.onboarding_spread_s": Range(0, 366 * 86400),
    "population.market_start_s": Range(0, 366 * 86400),
    "population.growth_workers": Range(0, 10_000_000, integer=True),
    "population.growth_requesters": Range(0, 10_000_000, integer=True),
    "population.growth_midpoint_s": Range(0, 366 * 86400),
    "population.growth_width_s": Range(0, 366 * 86400, lo_open=True),
    "population.idle_workers": Range(0, 10_000_000, integer=True),
    "population.mean_active_days": Range(0, 1e6, lo_open=True),
    "population.tasks_per_requester_hour": Range(0, 1e5),
    "population.requester_rate_sigma": Range(0, 5),
    "population.task_daily_amplitude": Range(0, 1),
    "population.quality_threshold": Range(0, 1),
    "population.max_wait_s": Range(0, 366 * 86400),
    "population.capacity": Range(1, 10_000, integer=True),
    "population.bidders_per_task": Range(0, 1e6, lo_open=True),
    "population.resubmits": Range(0, 100, integer=True),
    "population.bump_tip_tokens": Range(0, 1e6),
    "population.shade": Range(0, 10),
    "population.underbid": Range(0, 1, hi_open=True),
    "population.ring_size": Range(1, 10_000, integer=True),
    "population.ring_reserve": Range(0, 1),
    "population.sybil_identities": Range(1, 1000, integer=True),
    "population.whitewash_below": Range(0, 1),
    "population.on_period_s": Range(0, 1e9, lo_open=True),
    "population.off_period_s": Range(0, 1e9),
    "population.camouflage_above_tokens": Range(0, 1e6),
    "population.collect_every_s": Range(1, 1e9),
    "population.collect_agents_every_s": Range(1, 1e9),
    "population.budget_tokens": Range(0, 1e6, lo_open=True),
    "population.budget_sigma": Range(0, 5),
    "population.worker_tokens": Range(0, 1e6),
    "population.requester_tokens": Range(0, 1e7),
    "population.stake_tokens": Range(0, 1e6),
    "population.cost_share": Range(0, 1, lo_open=True, hi_open=True),
    "population.quality_alpha": Range(0, 1e3, lo_open=True),
    "population.quality_beta": Range(0, 1e3, lo_open=True),
    "population.work_s": Range(0, 30 * 86400, lo_open=True),
    "population.non_delivery_prob": Range(0, 1),
    "population.dispute_prob": Range(0, 1),
    "population.frivolous_dispute_prob": Range(0, 1),
    "population.release_prob": Range(0, 1),
    "economics.background_tokens": Range(0, 9e6),
    "economics.validator_bond_tokens": Range(0, 1e6),
    "market.registry.did_deposit_tokens": Range(0, 1e6),
    "market.registry.deposit_refund_share": Range(0, 1),
    "market.registry.verification_delay_s": Range(0, 30 * 86400),
    "market.registry.verification_failure_prob": Range(0, 1),
    "market.registry.verifier_tokens": Range(0, 1e6),
    "market.auction.bid_window_blocks": Range(1, 100_000, integer=True),
    "market.auction.deadline_blocks": Range(1, 10_000_000, integer=True),
    "market.auction.max_bidders": Range(1, 100_000, integer=True),
    "market.escrow.challenge_window_blocks": Range(1, 10_000_000, integer=True),
    "market.escrow.protocol_fee_share": Range(0, 1),
    "market.dispute.bond_tokens": Range(0, 1e6),
    "market.dispute.fee_tokens": Range(0, 1e6),
    "market.dispute.false_accept": Range(0, 1),
    "market.dispute.false_reject": Range(0, 1),
    "market.dispute.resolution_blocks": Range(1, 1_000_000, integer=True),
    "market.dispute.initial_jurors": Range(1, 1001, integer=True),
    "market.dispute.max_rounds": Range(1, 8, integer=True),
    "market.dispute.juror_accuracy": Range(0, 1),
    "market.dispute.juror_fee_tokens": Range(0, 1e6),
    "market.dispute.juror_stake_at_risk_tokens": Range(0, 1e6),
    "market.reputation.forgetting": Range(0, 1),
    "market.reputation.half_life_s": Range(0, 1e9, lo_open=True),
    "market.reputation.q_min": Range(0, 1),
    "market.staking.min_stake_tokens": Range(0, 1e6),
    "market.staking.max_value_per_stake": Range(0, 1e6, lo_open=True),
    "market.staking.slash_non_delivery": Range(0, 1),
    "market.staking.slash_dispute_loss": Range(0, 1),
}

#: Keys that take one of a fixed set of names.
CHOICES: dict[str, tuple[str, ...]] = {
    "chain.consensus": CONSENSUS,
    "market.mechanism": MECHANISMS,
    "network.topology": TOPOLOGIES,
    "faults.repair": ("exponential", "lognormal"),
    "api.service_distribution": ("exponential", "lognormal"),
    "api.sample": ("auto", "full", "sampled"),
    "market.dispute.model": ("automated", "court"),
    "market.reputation.model": ("beta", "ema", "eigentrust"),
    "population.ring_bidding": ("floor", "designated"),
    "perf.draw_ahead": ("auto", "always", "never"),
    "perf.api_concurrent": ("auto", "always", "never"),
}


def _get(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def allowed(key: str) -> str | None:
    """Human description of what ``key`` accepts, or None if the key has no declared rule."""
    if key in RANGES:
        return RANGES[key].describe()
    if key in CHOICES:
        return "one of " + ", ".join(CHOICES[key])
    if _field_type(key) in (bool, "bool"):
        return "true or false"
    return None


def _field_type(key: str) -> object:
    """The declared type of the schema field at dotted ``key`` (None if there is no such field)."""
    node: object = Config
    kind: object = None
    for part in key.split("."):
        match = [f for f in fields(node) if f.name == part] if is_dataclass(node) else []
        if not match:
            return None
        kind = match[0].type
        node = globals().get(kind, kind) if isinstance(kind, str) else kind
    return kind


def _check_window(key: str, start_s: float, duration_s: float, run_s: float) -> None:
    """A time window must have a positive length and lie inside the run."""
    if start_s < 0 or duration_s <= 0 or start_s + duration_s > run_s:
        raise ConfigError(key, f"window [{start_s}, {start_s + duration_s}] s; allowed: duration_s > 0 and the "
                               f"window inside the run (0..{run_s})")


def validate(cfg: Config) -> None:
    """Check every range and cross-field rule of a typed ``Config``; raise ``ConfigError`` on the first failure."""
    for key, rng in RANGES.items():
        value = _get(cfg, key)
        if value is None and key == "duration_s":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not rng.contains(value):
            raise ConfigError(key, f"got {value!r}; allowed: {rng.describe()}")
    for key, names in CHOICES.items():
        value = _get(cfg, key)
        if value not in names:
            raise ConfigError(key, f"got {value!r}; allowed: one of {', '.join(names)}")

    net = cfg.network
    if not net.regions:
        raise ConfigError("network.regions", "must list at least one region")
    for r in net.regions:
        if r not in REGIONS:
            raise ConfigError("network.regions", f"unknown region {r!r}; allowed: {', '.join(REGIONS)}")
    if len(net.region_weights) != len(net.regions):
        raise ConfigError(
            "network.region_weights",
            f"got {len(net.region_weights)} weights; allowed: one weight per region ({len(net.regions)})",
        )
    if any(w < 0 or not math.isfinite(w) for w in net.region_weights) or sum(net.region_weights) <= 0:
        raise ConfigError("network.region_weights", "weights must be finite, >= 0, with a positive sum")
    n = cfg.chain.n_validators
    if net.topology == "random_regular" and n > 1 and not (1 <= net.degree < n and (net.degree * n) % 2 == 0):
        raise ConfigError(
            "network.degree", f"got {net.degree}; allowed: 1 <= degree < n_validators ({n}), degree*n even"
        )

    duration = cfg.run_duration_s
    if duration < cfg.chain.slot_s:
        raise ConfigError(
            "duration_s", f"got {duration}; allowed: at least one slot (>= chain.slot_s = {cfg.chain.slot_s})"
        )
    f = cfg.faults
    if f.offline_validators > n:
        raise ConfigError(
            "faults.offline_validators", f"got {f.offline_validators}; allowed: 0..chain.n_validators ({n})"
        )
    if f.outage_start_s + f.outage_duration_s > duration:
        raise ConfigError(
            "faults.outage_start_s",
            f"outage window [{f.outage_start_s}, {f.outage_start_s + f.outage_duration_s}] s ends after the run "
            f"({duration} s); allowed: outage_start_s + outage_duration_s <= duration",
        )
    if f.offline_validators > 0 and f.outage_duration_s <= 0:
        raise ConfigError(
            "faults.outage_duration_s", f"got {f.outage_duration_s}; allowed: > 0 when offline_validators > 0"
        )
    if f.mtbf_s is not None and not (f.mtbf_s > 0 and f.mttr_s > 0):
        raise ConfigError(
            "faults.mtbf_s", f"got mtbf_s={f.mtbf_s}, mttr_s={f.mttr_s}; allowed: both > 0 (or mtbf_s null)"
        )
    if not cfg.api.node_regions or any(r not in REGIONS for r in cfg.api.node_regions):
        raise ConfigError("api.node_regions", f"got {list(cfg.api.node_regions)}; allowed: a non-empty list of "
                                               f"{', '.join(REGIONS)}")
    if cfg.api.max_servers < cfg.api.servers_per_node:
        raise ConfigError("api.max_servers", f"got {cfg.api.max_servers}; allowed: >= api.servers_per_node")
    from ainur_sim.chain.calls import CALLS, valid_pattern

    em = cfg.emergency
    for group in ("tx_pause", "safe_mode"):
        for i, w in enumerate(getattr(em, group)):
            key = f"emergency.{group}[{i}]"
            _check_window(key, w.start_s, w.duration_s, duration)
            bad = [c for c in w.calls if not valid_pattern(c)]
            if bad or (group == "tx_pause" and not w.calls):
                raise ConfigError(key + ".calls", f"got {list(w.calls)}; allowed: non-empty list of pallet.call "
                                                  "or pallet.* (pallets: balances, registry, auction, escrow, "
                                                  "reputation)")
    for c in em.whitelist:
        if not valid_pattern(c):
            raise ConfigError("emergency.whitelist", f"got {c!r}; allowed: pallet.call or pallet.* patterns")
    ld = cfg.load
    if not ld.call_mix or any(k not in CALLS for k in ld.call_mix) or any(v < 0 for v in ld.call_mix.values()) \
            or sum(ld.call_mix.values()) <= 0:
        raise ConfigError("load.call_mix", f"got {dict(ld.call_mix)}; allowed: shares >= 0 (positive sum) of "
                                           f"{', '.join(CALLS)}")
    if ld.ramp_end_s < ld.ramp_start_s:
        raise ConfigError("load.ramp_end_s", f"got {ld.ramp_end_s}; allowed: >= load.ramp_start_s ({ld.ramp_start_s})")
    for i, sp in enumerate(ld.spikes):
        if sp.duration_s <= 0 or sp.factor < 0 or sp.start_s < 0:
            raise ConfigError(f"load.spikes[{i}]", f"got {sp}; allowed: start_s >= 0, duration_s > 0, factor >= 0")
    if ld.tps > 0 and not cfg.finality.enabled:
        raise ConfigError("load.tps", "transactions need finality to settle; allowed: 0 when finality.enabled=false")
    pop = cfg.population
    if pop.any_agents() and not cfg.finality.enabled:
        raise ConfigError("population.n_workers", "market calls need finality to execute; allowed: 0 workers and "
                                                  "requesters when finality.enabled=false")
    if cfg.market.dispute.initial_jurors % 2 == 0:
        raise ConfigError("market.dispute.initial_jurors",
                          f"got {cfg.market.dispute.initial_jurors}; allowed: an odd integer >= 1")
    from ainur_sim.agents.strategies import STRATEGIES, worker_identities

    mix = dict(pop.strategy_mix)
    if not mix or any(k not in STRATEGIES for k in mix) or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ConfigError("population.strategy_mix", f"got {mix}; allowed: shares >= 0 (positive sum) of "
                                                     f"{', '.join(STRATEGIES)}")
    for i, w in enumerate(pop.waves):
        if w.t_s < 0 or w.workers < 0 or w.requesters < 0 or w.spread_s < 0:
            raise ConfigError(f"population.waves[{i}]", f"got {w}; allowed: t_s >= 0, workers >= 0, "
                                                        "requesters >= 0, spread_s >= 0")
    for i, w in enumerate(pop.verifier_outages):
        _check_window(f"population.verifier_outages[{i}]", w.start_s, w.duration_s, duration)
    n_req = pop.joining_requesters()
    genesis = (cfg.economics.background_tokens + n * cfg.economics.validator_bond_tokens
               + worker_identities(pop) * pop.worker_tokens + n_req * pop.requester_tokens
               + cfg.market.registry.verifier_tokens)
    if genesis > GENESIS_CAP_TOKENS:
        raise ConfigError("economics.background_tokens",
                          f"genesis endowments total {genesis:,.0f} tokens; allowed: at most {GENESIS_CAP_TOKENS:,.0f} "
                          "(the int64 ledger holds 9.22 M tokens at 10^12 units each)")
    for i, part in enumerate(f.partitions):
        key = f"faults.partitions[{i}]"
        _check_window(key, part.start_s, part.duration_s, duration)
        if bool(part.regions) == (part.minority_fraction > 0):
            raise ConfigError(key, "allowed: exactly one of regions (non-empty) or minority_fraction in (0, 1)")
        if not 0 <= part.minority_fraction < 1 or any(r not in REGIONS for r in part.regions):
            raise ConfigError(key, f"allowed: minority_fraction in [0, 1), regions among {', '.join(REGIONS)}")
    for i, deg in enumerate(f.degradations):
        key = f"faults.degradations[{i}]"
        _check_window(key, deg.start_s, deg.duration_s, duration)
        if not (deg.factor > 0 and 0 < deg.fraction <= 1):
            raise ConfigError(key, f"got factor={deg.factor}, fraction={deg.fraction}; allowed: factor > 0, "
                                   "fraction in (0, 1]")
    for p in cfg.scenario.phases:
        if not 0 <= p.t_s <= cfg.scenario.duration_s:
            raise ConfigError("scenario.phases", f"phase {p.name!r} at {p.t_s} s lies outside the scenario")
    for name, t in cfg.kpi.targets.items():
        if t.op not in KPI_OPS:
            raise ConfigError(f"kpi.targets.{name}.op", f"got {t.op!r}; allowed: one of {', '.join(KPI_OPS)}")
        if t.op == "between" and (t.lo is None or t.hi is None or t.lo > t.hi):
            raise ConfigError(f"kpi.targets.{name}", "op 'between' needs lo <= hi")
        if t.op in ("<", "<=", ">", ">=") and t.value is None:
            raise ConfigError(f"kpi.targets.{name}.value", f"op {t.op!r} needs a value")
