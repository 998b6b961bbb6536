"""Forecast and components charts, drawn at train time from the fit a worker already holds."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

__all__ = ["CHART_SIZE", "components_chart", "forecast_chart", "png", "served_chart", "track_record_chart"]

CHART_SIZE = (1000, 560)  # pixels: readable on a laptop, small as a PNG
_DPI = 100
# More points than pixels only costs time: thin long hourly histories before drawing.
_MAX_POINTS = 4000


def _figure(rows: int = 1, sharex: bool = False):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(CHART_SIZE[0] / _DPI, CHART_SIZE[1] / _DPI), dpi=_DPI)
    return fig, fig.subplots(rows, 1, squeeze=False, sharex=sharex)[:, 0]


def png(fig) -> bytes:
    """The figure as a PNG of 256 colours at most (a third of the size of matplotlib's true-colour one, which
    the API image holds four of a pair; a line chart's anti-aliased edges need no more), with no
    "Software" stamp: the same data gives the same bytes."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    image = Image.open(buf).convert("RGB").quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


def _thin(index: np.ndarray) -> np.ndarray:
    step = max(1, len(index) // _MAX_POINTS)
    return index[::step]


def _usd_axis(ax, log: bool) -> None:
    from matplotlib.ticker import FuncFormatter

    if log:
        from matplotlib.ticker import LogLocator

        ax.set_yscale("log")
        # 1, 2 and 5 of each power of ten: a log axis over one decade otherwise shows a single label.
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"${v:,.0f}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))
    ax.set_ylabel("USD")
    ax.grid(alpha=0.3)


def _title(symbol: str, timeframe: str, model_version: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    return f"{symbol} {timeframe} · model {model_version} · data {start:%Y-%m-%d} to {end:%Y-%m-%d}"


def _finish(fig, ax, end: pd.Timestamp, title: str, log_scale: bool) -> bytes:
    """A marker where the data ends, USD and date axes, the title and legend; the PNG bytes."""
    ax.axvline(end, color="#555555", ls="--", lw=1)
    ax.annotate(f"data ends {end:%Y-%m-%d}", (end, 0.97), xycoords=("data", "axes fraction"), ha="right",
                va="top", fontsize=8, color="#555555")  # fmt: skip
    _usd_axis(ax, log_scale)
    ax.set_xlabel("date (UTC)")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return png(fig)


def forecast_chart(
    symbol: str,
    timeframe: str,
    model_version: str,
    grid: pd.DatetimeIndex,
    history_points: int,
    actual: np.ndarray,
    yhat: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    log_scale: bool,
) -> bytes:
    """History (actual close), the fitted line, the forecast with its 80% band, a marker where data ends."""
    fig, (ax,) = _figure()
    hist = _thin(np.arange(history_points))
    fut = np.arange(history_points - 1, len(grid))
    ax.plot(grid[hist], actual[hist], ".", ms=1.5, color="#333333", label="actual close")
    ax.plot(grid[hist], yhat[hist], lw=1, color="#1f77b4", label="fitted")
    ax.plot(grid[fut], yhat[fut], lw=1.5, color="#d62728", label="forecast")
    ax.fill_between(grid[fut], lower[fut], upper[fut], color="#d62728", alpha=0.2, lw=0, label="80% interval")
    end = grid[history_points - 1]
    return _finish(fig, ax, end, _title(symbol, timeframe, model_version, grid[0], end), log_scale)


def components_chart(
    symbol: str,
    timeframe: str,
    model_version: str,
    forecast: pd.DataFrame,
    history_points: int,
    log_scale: bool,
) -> bytes:
    """Trend in USD, then each seasonality as its effect on the price (percent on log prices)."""
    seasonal = [c for c in ("yearly", "weekly", "daily") if c in forecast and np.any(forecast[c].to_numpy() != 0)]
    fig, axes = _figure(1 + len(seasonal))
    ds = pd.DatetimeIndex(forecast["ds"])
    idx = _thin(np.arange(len(ds)))
    trend = forecast["trend"].to_numpy(dtype=float)
    axes[0].plot(ds[idx], np.exp(trend[idx]) if log_scale else trend[idx], color="#1f77b4")
    axes[0].axvline(ds[history_points - 1], color="#555555", ls="--", lw=1)
    _usd_axis(axes[0], log_scale)
    axes[0].set_title("trend", fontsize=9, loc="left")
    # One full cycle of each seasonality, from the first grid points that span it.
    spans = {"yearly": pd.Timedelta(days=365), "weekly": pd.Timedelta(days=7), "daily": pd.Timedelta(days=1)}
    for ax, name in zip(axes[1:], seasonal, strict=True):
        cycle = forecast[ds < ds[0] + spans[name]]
        values = cycle[name].to_numpy(dtype=float)
        effect = (np.exp(values) - 1) * 100 if log_scale else values
        x = pd.DatetimeIndex(cycle["ds"])
        ax.plot(x, effect, color="#2ca02c")
        ax.axhline(0, color="#999999", lw=0.8)
        ax.set_ylabel("% of price" if log_scale else "USD")
        ax.grid(alpha=0.3)
        ax.set_title(f"{name} seasonality", fontsize=9, loc="left")
        fmt = {"yearly": "%b", "weekly": "%a", "daily": "%H:%M"}[name]
        from matplotlib.dates import DateFormatter

        ax.xaxis.set_major_formatter(DateFormatter(fmt))
    fig.suptitle(_title(symbol, timeframe, model_version, ds[0], ds[history_points - 1]) + " · components", fontsize=11)
    fig.tight_layout()
    return png(fig)


def served_chart(
    symbol: str,
    timeframe: str,
    model_version: str,
    grid: pd.DatetimeIndex,
    history_points: int,
    actual: np.ndarray,
    levels: tuple[float, ...],
    quantiles: np.ndarray,
    log_scale: bool = True,
) -> bytes:
    """The served forecast: recent closes, then the median and its 50%, 80% and 90% bands as a fan.

    History is shown for three times the forecast's length (all of it when shorter), so the fan
    is large enough to read.
    """
    fig, (ax,) = _figure()
    future = len(grid) - history_points
    first = max(0, history_points - 3 * future)
    hist = first + _thin(np.arange(history_points - first))
    fut = np.arange(history_points - 1, len(grid))
    ax.plot(grid[hist], actual[hist], lw=1, color="#333333", label="actual close")
    col = {p: i for i, p in enumerate(levels)}
    for (lo, hi), alpha in (((0.05, 0.95), 0.15), ((0.1, 0.9), 0.2), ((0.25, 0.75), 0.3)):
        ax.fill_between(grid[fut], quantiles[fut, col[lo]], quantiles[fut, col[hi]], color="#1f77b4",
                        alpha=alpha, lw=0, label=f"{hi - lo:.0%} interval")  # fmt: skip
    ax.plot(grid[fut], quantiles[fut, col[0.5]], lw=1.5, color="#1f77b4", label="forecast (median)")
    end = grid[history_points - 1]
    title = _title(symbol, timeframe, model_version, grid[first], end) + " · served forecast"
    return _finish(fig, ax, end, title, log_scale)


def track_record_chart(
    symbol: str,
    model_version: str,
    ledger,  # cryptopredict.ledger.Ledger
    dates: pd.DatetimeIndex,
    closes: np.ndarray,
) -> bytes:
    """What production published, horizon by horizon, against what happened.

    One panel per horizon: at each published forecast's target time its median and 80% band
    (green where the close landed inside, red where not, grey while the target is ahead), over
    the actual closes of the same span.
    """
    series = ledger.series(symbol)
    fig, axes = _figure(max(1, len(series)), sharex=True)
    lo, hi = ledger.band_indices()
    mid = ledger.median_index
    for ax, (horizon, entries) in zip(axes, series.items(), strict=False):
        first = min(e.origin for e in entries).replace(tzinfo=None)
        last = max(e.target for e in entries).replace(tzinfo=None)
        shown = (dates >= pd.Timestamp(first)) & (dates <= pd.Timestamp(last))
        ax.plot(dates[shown], closes[shown], lw=1, color="#333333", label="actual close")
        for state, color in (("held", "#2ca02c"), ("missed", "#d62728"), ("pending", "#999999")):
            picked = [
                e
                for e in entries
                if state == ("pending" if e.actual is None else "held" if ledger.scores(e)["in_80"] else "missed")
            ]
            if not picked:
                continue
            t = [e.target.replace(tzinfo=None) for e in picked]
            med = np.array([e.quantiles[mid] for e in picked])
            err = np.array([[med[i] - e.quantiles[lo], e.quantiles[hi] - med[i]] for i, e in enumerate(picked)]).T
            ax.errorbar(t, med, yerr=err, fmt="o", ms=3, lw=1, color=color, label=f"{state} ({len(picked)})")
        _usd_axis(ax, log=False)
        ax.set_ylabel(f"{horizon} ahead")
        ax.legend(loc="upper left", fontsize=7, frameon=False, ncol=4)
    if not series:
        axes[0].text(0.5, 0.5, "no published forecasts yet", ha="center", va="center", transform=axes[0].transAxes)
    fig.suptitle(
        f"{symbol} · track record to model {model_version}: published median and 80% band at each target, "
        "against the actual close",
        fontsize=9,
    )
    fig.autofmt_xdate()
    fig.tight_layout()
    return png(fig)
