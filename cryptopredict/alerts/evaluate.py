"""The alerts' evaluator: each rule evaluated on a new forecast, and whether it fired (crossed into true
since the previous run). Training computes the states (`cryptopredict.alerts.states`) and stores them in
the artifact; the deploy only posts what fired (standard library only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptopredict import quantiles
from cryptopredict.alerts.rules import AlertRuleError, Rule, load_rules, parse_horizon, utc_midnight
from cryptopredict.alerts.states import Alerts, RuleState
from cryptopredict.ledger import Ledger
from cryptopredict.timeframes import TIMEFRAMES, parse_utc

if TYPE_CHECKING:  # annotations only: cryptopredict.artifact imports cryptopredict.alerts.states, so not at run time
    from cryptopredict.artifact.grids import PairGrid, ServedGrid

__all__ = ["decide", "evaluate", "holds", "log_line", "refused"]


def _served(rule: Rule, grid: PairGrid) -> ServedGrid:
    """The grid's served forecast, which a rule on its quantiles reads (a fit's grid has none yet)."""
    if grid.served is None:
        msg = f"rule {rule.name!r}: pair: {rule.pair} has no served forecast"
        raise AlertRuleError(msg)
    return grid.served


def _data_end(grid: PairGrid) -> datetime:
    step = timedelta(seconds=int(grid.step_seconds))
    return parse_utc(grid.start) + (int(grid.history_points) - 1) * step


def _index(rule: Rule, grid: PairGrid) -> int:
    """The grid point a rule looks at: the data end plus its horizon, or its date's 00:00 UTC."""
    step = timedelta(seconds=int(grid.step_seconds))
    end = int(grid.history_points) - 1
    n = len(_served(rule, grid).quantiles[0])
    start = parse_utc(grid.start)
    data_end = _data_end(grid)
    if rule.horizon is not None:
        lead = parse_horizon(rule.horizon)
        field, what = "horizon", rule.horizon
    else:
        lead = utc_midnight(rule.date or "") - data_end
        field, what = "date", rule.date
        if lead <= timedelta(0):
            msg = f"rule {rule.name!r}: date: {what} is not after {rule.pair}'s data end {data_end.date().isoformat()}"
            raise AlertRuleError(msg)
    steps = lead // step  # a date between two bars looks at the bar at or before it
    if (lead % step and field == "horizon") or steps < 1:
        msg = f"rule {rule.name!r}: horizon: {what} is not a whole number of bars ({step // timedelta(hours=1)}h each)"
        raise AlertRuleError(msg)
    if end + steps >= n:
        last = (start + (n - 1) * step).date().isoformat()
        msg = f"rule {rule.name!r}: {field}: {what} is past the forecast, which ends {last}"
        raise AlertRuleError(msg)
    return end + steps


def _streak(ledger: Ledger | None, rule: Rule) -> float:
    """Scored forecasts of the pair and horizon whose 80% band missed, in a row up to the newest."""
    if ledger is None:
        return 0.0
    entries = ledger.series(rule.pair).get(rule.horizon or "", [])
    scored = sorted((e for e in entries if e.actual is not None), key=lambda e: e.target)
    n = 0
    for e in reversed(scored):
        s = ledger.scores(e)
        if s is None or s["in_80"]:
            break
        n += 1
    return float(n)


def _measure(
    rule: Rule, grid: PairGrid, ledger: Ledger | None, before: RuleState | None
) -> tuple[float | None, str, float | None]:
    """The rule's value, how it was measured, and (median_move) the median to compare with next time."""
    if rule.kind == "band_misses":
        scored = [h.name for h in TIMEFRAMES[grid.timeframe].horizons]
        if rule.horizon not in scored:
            tf = grid.timeframe
            msg = f"rule {rule.name!r}: horizon: the track record scores {', '.join(scored)} on {tf} bars"
            raise AlertRuleError(msg)
        value = _streak(ledger, rule)
        return value, f"{value:.0f} missed in a row", None
    i = _index(rule, grid)
    served = _served(rule, grid)
    values = [float(column[i]) for column in served.quantiles]
    levels = [float(x) for x in served.levels]
    if rule.kind == "median_move":
        median = values[levels.index(0.5)]
        basis = before.basis if before is not None else None
        if basis is None:
            return None, f"median {median:,.10g}; no earlier publication to compare with", median
        move = median / basis - 1
        return move, f"median {median:,.10g} against {basis:,.10g} published before ({move:+.2%})", median
    side = "above" if rule.kind == "probability_above" else "below"
    p, bound = quantiles.probability(levels, values, rule.price or 0.0, side)
    shown = "" if bound == "exact" else f"{bound} "
    return round(p, 6), f"probability {shown}{p:.1%}", None


def holds(rule: Rule, value: float | None) -> bool:
    """Whether a rule holds at `value` (None: nothing measured, never holds)."""
    if value is None:
        return False
    if rule.kind == "median_move":
        return abs(value) >= rule.threshold
    return value >= rule.threshold


def evaluate(
    rules: Sequence[Rule],
    grids: Mapping[str, PairGrid],
    ledger: Ledger | None,
    previous: Alerts | None,
) -> Alerts:
    """Each rule on this run's forecast (its grids by pair, as the artifact stores them) and track record.

    A rule fires when it holds now and did not after the previous run; a rule the previous run did
    not know (new, watching something else, or a first run) fires when it holds now. Moving a rule
    to another webhook or format keeps its state. Rules no longer listed are dropped.
    """
    before = {s.rule.name: s for s in previous.states} if previous is not None else {}
    out = []
    for rule in rules:
        prior = before.get(rule.name)
        if prior is not None and prior.rule.watch != rule.watch:
            prior = None  # a rule watching something else now starts again, like a new one
        value, measured, basis = _measure(rule, grids[rule.pair], ledger, prior)
        active = holds(rule, value)
        fired = active and (prior is None or not prior.active)
        if prior is None:
            why = "first evaluation: holds now, fires" if active else "first evaluation: does not hold"
        elif fired:
            why = "crossed since the previous run: fires"
        else:
            why = "still holds: already fired" if active else "does not hold"
        detail = f"{measured} (threshold {rule.threshold:g}): {why}"
        out.append(RuleState(rule, value, active, fired, detail, basis))
    return Alerts(tuple(out))


def refused(error: str, previous: Alerts | None) -> Alerts:
    """A refused rule file: the error, and the previous states carried unchanged (none fires)."""
    states = tuple(replace(s, fired=False) for s in previous.states) if previous is not None else ()
    return Alerts(states, error)


def decide(
    path: str | Path | None,
    grids: Mapping[str, PairGrid],
    ledger: Ledger | None,
    previous: Alerts | None,
) -> Alerts:
    """The rule file (None: no rules) evaluated on this run's forecasts (`grids` by pair); a refused file
    keeps the previous states and records the refusal, which fails the alert step and nothing else."""
    if path is None:
        return Alerts()
    today = max(_data_end(g) for g in grids.values()).date()
    try:
        rules = load_rules(path, grids.keys(), today)
    except AlertRuleError as exc:
        return refused(str(exc), previous)
    try:
        return evaluate(rules, grids, ledger, previous)
    except AlertRuleError as exc:  # a rule this forecast cannot answer (past its horizon, say)
        return refused(f"{Path(path).name}: {exc}", previous)


def log_line(alerts: Alerts, first_run: bool) -> str:
    """What training says about the alerts in one line."""
    if alerts.error is not None:
        return f"alerts: refused, nothing fires this run (the deploy still goes ahead): {alerts.error}"
    if not alerts.states:
        return "alerts: no rules"
    fired = ", ".join(s.rule.name for s in alerts.fired) or "none"
    first = " (a first run: each rule that holds now fires)" if first_run else ""
    return f"alerts: {len(alerts.states)} rule(s) evaluated{first}; fired: {fired}"
