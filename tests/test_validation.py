"""Tests for cryptopredict.training.validation: the checks run on market bars before a fit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptopredict.errors import DataValidationError
from cryptopredict.timeframes import TIMEFRAMES
from cryptopredict.training.config import ValidationConfig
from cryptopredict.training.validation import Gap, ValidatedBars, validate_bars

DATA = Path(__file__).parent.parent / "data"
DAY = TIMEFRAMES["1Day"]
HOUR = TIMEFRAMES["1Hour"]
SYMBOL = "BTC/USD"
COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


def _walk(n: int = 100, *, freq: str = "D", start: str = "2024-01-01", seed: int = 0):
    """A valid OHLCV random walk with tz-aware UTC timestamps and float columns."""
    rs = np.random.RandomState(seed)
    close = 100.0 * np.exp(np.cumsum(rs.normal(0.0, 0.02, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1.0 + rs.uniform(0.0, 0.01, n))
    low = np.minimum(open_, close) * (1.0 - rs.uniform(0.0, 0.01, n))
    volume = rs.uniform(1.0, 1000.0, n)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq=freq, tz="UTC"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def _as_text(bars: pd.DataFrame, fmt: str = "%Y-%m-%d") -> pd.DataFrame:
    """The same bars as a CSV read with dtype=str would give them."""
    text = bars.copy()
    text["timestamp"] = bars["timestamp"].dt.strftime(fmt)
    for col in COLUMNS[1:]:
        text[col] = [repr(float(v)) for v in bars[col]]
    return text.astype(object)


def _text_walk(n: int = 100) -> pd.DataFrame:
    """A daily random walk as strings, the shape of the real CSV samples."""
    return _as_text(_walk(n))


def _fail(raw: pd.DataFrame, timeframe=DAY, config: ValidationConfig | None = None, **kw) -> DataValidationError:
    """Run validation that must fail and return the error."""
    with pytest.raises(DataValidationError) as info:
        validate_bars(raw, SYMBOL, timeframe, config or ValidationConfig(), **kw)
    return info.value


def _set(col: str, row: int, value: object) -> Callable[[pd.DataFrame], None]:
    """A mutator that overwrites one cell."""

    def mutate(df: pd.DataFrame) -> None:
        df.loc[row, col] = value

    return mutate


def _swap(i: int, j: int) -> Callable[[pd.DataFrame], None]:
    """A mutator that swaps two rows."""

    def mutate(df: pd.DataFrame) -> None:
        df.iloc[[i, j]] = df.iloc[[j, i]].to_numpy()

    return mutate


def _copy_stamp(src: int, dst: int) -> Callable[[pd.DataFrame], None]:
    """A mutator that gives row `dst` the timestamp of row `src`."""

    def mutate(df: pd.DataFrame) -> None:
        df.loc[dst, "timestamp"] = df.loc[src, "timestamp"]

    return mutate


# --- real samples -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "symbol", "zero_volume"),
    [("BTC-USD.daily.csv", "BTC/USD", 8), ("ETH-USD.daily.csv", "ETH/USD", 0)],
)
def test_real_samples_pass(name: str, symbol: str, zero_volume: int) -> None:
    """The shipped BTC and ETH daily CSVs pass, read as strings, with no gaps."""
    raw = pd.read_csv(DATA / name, dtype=str)
    result = validate_bars(raw, symbol, DAY)
    assert result.report.rows == len(raw)
    assert result.report.gaps == ()
    assert result.report.zero_volume_rows == zero_volume
    assert len(result.report.warnings) == (1 if zero_volume else 0)
    assert result.report.start == pd.Timestamp(raw["timestamp"].iloc[0], tz="UTC")
    assert result.report.end == pd.Timestamp(raw["timestamp"].iloc[-1], tz="UTC")


def test_btc_zero_volume_halts_kept_with_one_warning() -> None:
    """BTC's 8 flat zero-volume days are kept, counted and named in a single warning."""
    raw = pd.read_csv(DATA / "BTC-USD.daily.csv", dtype=str)
    result = validate_bars(raw, SYMBOL, DAY)
    (warning,) = result.report.warnings
    assert warning.startswith("8 zero-volume bars (exchange halts?) kept: 2014-12-15, 2015-01-06")
    assert warning.endswith(", ...")  # more halts than example_rows
    halts = result.frame[result.frame["volume"] == 0]
    assert len(halts) == 8
    assert pd.Timestamp("2015-08-06", tz="UTC") in set(halts["timestamp"])


# --- canonical output -------------------------------------------------------------------------


def test_frame_is_canonical() -> None:
    """The frame has exactly the six columns, UTC ns timestamps, floats and a RangeIndex."""
    raw = _text_walk()
    raw["trade_count"] = "7"
    raw.index = pd.RangeIndex(1000, 1100)
    frame = validate_bars(raw, SYMBOL, DAY).frame
    assert list(frame.columns) == COLUMNS
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(frame[c].dtype == np.float64 for c in COLUMNS[1:])
    pd.testing.assert_index_equal(frame.index, pd.RangeIndex(100))


def test_text_and_typed_input_give_the_same_frame() -> None:
    """A CSV-style all-string frame and an SDK-style typed frame validate to equal frames."""
    typed = _walk()
    from_typed = validate_bars(typed, SYMBOL, DAY)
    from_text = validate_bars(_as_text(typed), SYMBOL, DAY)
    pd.testing.assert_frame_equal(from_typed.frame, from_text.frame, check_exact=True)
    assert from_typed.report == from_text.report


def test_csv_round_trip_with_dtype_str(tmp_path: Path) -> None:
    """Bars written to CSV and read back with dtype=str validate to the original values."""
    bars = _walk(80, freq="h")
    path = tmp_path / "bars.csv"
    bars.to_csv(path, index=False)
    frame = validate_bars(pd.read_csv(path, dtype=str), SYMBOL, HOUR).frame
    pd.testing.assert_frame_equal(frame, bars.assign(timestamp=bars["timestamp"].dt.as_unit("ns")))


def test_input_is_not_modified() -> None:
    """Validation is pure: the caller's frame is unchanged afterwards."""
    raw = _text_walk()
    before = raw.copy()
    validate_bars(raw, SYMBOL, DAY)
    pd.testing.assert_frame_equal(raw, before)


def test_custom_column_names() -> None:
    """Other column spellings are accepted by keyword and renamed to the canonical ones."""
    raw = _walk().rename(columns={"timestamp": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"})
    result = validate_bars(raw, SYMBOL, DAY, timestamp_col="t", price_cols=("o", "h", "l", "c"), volume_col="v")
    assert list(result.frame.columns) == COLUMNS
    assert result.frame["close"].tolist() == raw["c"].tolist()


def test_price_cols_must_name_four_columns() -> None:
    """A price_cols tuple that is not open/high/low/close is a programming error (ValueError)."""
    with pytest.raises(ValueError, match="price_cols"):
        validate_bars(_walk(), SYMBOL, DAY, price_cols=("open", "close"))  # type: ignore[arg-type]


def test_report_to_dict_is_json_ready() -> None:
    """to_dict gives ISO 'YYYY-MM-DDTHH:MM:SSZ' strings, ints and lists that json can dump."""
    raw = _walk(100, freq="h").drop(index=[10, 11]).reset_index(drop=True)
    raw.loc[50, "volume"] = 0.0
    report = validate_bars(raw, SYMBOL, HOUR).report
    data = json.loads(json.dumps(report.to_dict()))
    assert data == {
        "symbol": SYMBOL,
        "rows": 98,
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-05T03:00:00Z",
        "gaps": [{"start": "2024-01-01T09:00:00Z", "end": "2024-01-01T12:00:00Z", "missing": 2}],
        "zero_volume_rows": 1,
        "warnings": list(report.warnings),
    }
    assert len(data["warnings"]) == 2


# --- each check -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [["close"], ["timestamp"], ["open", "volume"]])
def test_missing_columns(missing: list[str]) -> None:
    """A missing column fails 'columns', listing the missing ones and the ones that arrived."""
    raw = _text_walk().drop(columns=missing)
    err = _fail(raw)
    assert err.check == "columns"
    assert f"The following columns are missing: {missing}" in str(err)
    assert str(list(raw.columns)) in str(err)
    assert str(err).startswith(f"{SYMBOL}: columns: ")


def test_timestamp_in_index_gets_a_hint() -> None:
    """A timestamp index (as Alpaca's .df gives) fails 'columns' with a reset_index hint."""
    err = _fail(_walk().set_index("timestamp"))
    assert err.check == "columns"
    assert "reset_index()" in err.detail


def test_duplicated_column_fails() -> None:
    """A required column that appears twice fails 'columns' rather than being guessed at."""
    raw = _text_walk()
    raw = pd.concat([raw, raw[["close"]]], axis=1)
    err = _fail(raw)
    assert err.check == "columns"
    assert "more than once: ['close']" in err.detail


@pytest.mark.parametrize(
    ("mutate", "check", "quoted"),
    [
        (_set("timestamp", 3, "garbage"), "timestamps", "row 3: timestamp='garbage'"),
        (_set("timestamp", 3, "2024-13-01"), "timestamps", "row 3: timestamp='2024-13-01'"),
        (_set("timestamp", 3, "2024-01-04T25:00:00Z"), "timestamps", "row 3: timestamp="),
        (_set("timestamp", 3, "2024"), "timestamps", "row 3: timestamp='2024'"),
        (_set("timestamp", 3, "20240104"), "timestamps", "row 3: timestamp='20240104'"),
        (_set("timestamp", 3, "3000-01-01"), "timestamps", "row 3: timestamp='3000-01-01'"),
        (_set("timestamp", 3, np.nan), "timestamps", "row 3: timestamp=nan"),
        (_set("timestamp", 3, 1704326400), "timestamps", "row 3: timestamp=1704326400"),
        (_copy_stamp(3, 4), "duplicates", "row 4 (2024-01-04): duplicate of row 3"),
        (_copy_stamp(3, 9), "duplicates", "row 9 (2024-01-04): duplicate of row 3"),
        (_swap(10, 11), "order", "row 11 (2024-01-11): earlier than row 10 (2024-01-12)"),
        (_swap(10, 40), "order", "row 11 (2024-01-12): earlier than row 10 (2024-02-10)"),
        (_set("timestamp", 5, "2024-01-06T06:00:00Z"), "grid", "row 5 (2024-01-06T06:00:00Z): 06:00:00 past the grid"),
        (_set("timestamp", 5, "2024-01-06T00:00:01Z"), "grid", "row 5 (2024-01-06T00:00:01Z): 00:00:01 past the grid"),
        (_set("close", 7, "abc"), "prices", "row 7 (2024-01-08): close='abc'"),
        (_set("close", 7, np.nan), "prices", "row 7 (2024-01-08): close=nan"),
        (_set("close", 7, "nan"), "prices", "row 7 (2024-01-08): close='nan'"),
        (_set("high", 7, "inf"), "prices", "row 7 (2024-01-08): high='inf'"),
        (_set("low", 7, "0"), "prices", "row 7 (2024-01-08): low='0'"),
        (_set("open", 7, "-1.5"), "prices", "row 7 (2024-01-08): open='-1.5'"),
        (_set("volume", 7, "-1"), "prices", "row 7 (2024-01-08): volume='-1'"),
        (_set("volume", 7, "-inf"), "prices", "row 7 (2024-01-08): volume='-inf'"),
        (_set("volume", 7, ""), "prices", "row 7 (2024-01-08): volume=''"),
        (_set("high", 7, "1.0"), "ohlc", "row 7 (2024-01-08): open="),
        (_set("low", 7, "1000000.0"), "ohlc", "row 7 (2024-01-08): open="),
    ],
)
def test_bad_rows_fail_the_right_check(mutate, check: str, quoted: str) -> None:
    """Each kind of bad bar fails its own check, names the symbol and quotes the row."""
    raw = _text_walk()
    mutate(raw)
    err = _fail(raw)
    assert err.check == check
    assert err.symbol == SYMBOL
    assert str(err).startswith(f"{SYMBOL}: {check}: ")
    assert any(r.startswith(quoted) for r in err.rows), err.rows
    assert quoted in str(err)


def test_prices_quote_every_bad_field_of_a_row() -> None:
    """A row with several bad values quotes all of them, once, in column order."""
    raw = _walk()
    raw.loc[12, ["close", "volume"]] = [np.nan, -1.0]
    err = _fail(raw)
    assert err.rows == ["row 12 (2024-01-13): close=nan, volume=-1.0"]


def test_boolean_volume_is_not_a_number() -> None:
    """A boolean column is refused by 'prices' rather than read as 1.0 and 0.0."""
    raw = _walk()
    raw["volume"] = True
    err = _fail(raw)
    assert err.check == "prices"
    assert err.rows[0] == "row 0 (2024-01-01): volume=True"


def test_ohlc_quotes_all_four_prices() -> None:
    """An OHLC violation quotes open, high, low and close of the row as plain numbers."""
    raw = _walk()
    raw.loc[20, ["open", "high", "low", "close"]] = [10.0, 9.0, 8.0, 8.5]
    err = _fail(raw)
    assert err.check == "ohlc"
    assert err.rows == ["row 20 (2024-01-21): open=10.0 high=9.0 low=8.0 close=8.5"]
    assert "1e-09" in err.detail


def test_ohlc_allows_float_noise() -> None:
    """close a hair (1e-12 relative) above high passes: the tolerance is 1e-9 relative."""
    raw = _walk()
    raw.loc[20, "close"] = raw.loc[20, "high"] * (1 + 1e-12)
    raw.loc[21, "open"] = raw.loc[21, "low"] * (1 - 1e-12)
    validate_bars(raw, SYMBOL, DAY)


def test_example_rows_limits_quotes_but_not_the_count() -> None:
    """Only config.example_rows offending rows are quoted; the detail counts all of them."""
    raw = _walk()
    raw.loc[10:19, "close"] = -1.0
    err = _fail(raw, config=ValidationConfig(example_rows=3))
    assert len(err.rows) == 3
    assert err.rows[0].startswith("row 10 ")
    assert err.detail.startswith("10 row(s)")


def test_duplicate_wins_over_order() -> None:
    """A repeated timestamp is reported as 'duplicates', even where it also steps backwards."""
    raw = _walk()
    raw.loc[50, "timestamp"] = raw.loc[2, "timestamp"]
    err = _fail(raw)
    assert err.check == "duplicates"
    assert err.rows == ["row 50 (2024-01-03): duplicate of row 2"]


def test_checks_run_in_order() -> None:
    """With several problems, the earliest check in the documented order is the one raised."""
    raw = _text_walk()
    raw.loc[3, "close"] = "abc"  # prices
    raw.loc[5, "timestamp"] = "2024-01-06T01:00:00Z"  # grid
    assert _fail(raw).check == "grid"
    raw.loc[8, "timestamp"] = "nope"  # timestamps
    assert _fail(raw).check == "timestamps"
    assert _fail(raw.drop(columns="volume")).check == "columns"


# --- timestamps: offsets and grids ------------------------------------------------------------


def test_offsets_are_converted_to_utc() -> None:
    """Timestamps with an offset become UTC; naive ones are taken as UTC."""
    raw = _text_walk(70)
    raw.loc[0, "timestamp"] = "2023-12-31T19:00:00-05:00"
    raw.loc[1, "timestamp"] = "2024-01-02T09:00:00+09:00"
    raw.loc[2, "timestamp"] = "2024-01-03 00:00:00"
    raw.loc[3, "timestamp"] = "2024-01-04T00:00:00.000Z"
    frame = validate_bars(raw, SYMBOL, DAY).frame
    expected = pd.date_range("2024-01-01", periods=70, freq="D", tz="UTC").as_unit("ns")
    pd.testing.assert_series_equal(frame["timestamp"], pd.Series(expected, name="timestamp"))


@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York", "Asia/Kolkata"])
def test_datetime_columns_in_any_zone(tz: str | None) -> None:
    """A datetime64 column, naive or in any zone, validates and comes out in UTC."""
    raw = _walk(80, freq="h")
    utc = raw["timestamp"]
    raw["timestamp"] = utc.dt.tz_localize(None) if tz is None else utc.dt.tz_convert(tz)
    frame = validate_bars(raw, SYMBOL, HOUR).frame
    assert (frame["timestamp"] == utc).all()
    assert str(frame["timestamp"].dt.tz) == "UTC"


def test_datetime_objects_in_an_object_column() -> None:
    """An object column of Python datetimes (as some SDK paths give) parses too."""
    raw = _walk(80)
    raw["timestamp"] = pd.Series([t.to_pydatetime() for t in raw["timestamp"]], dtype=object)
    frame = validate_bars(raw, SYMBOL, DAY).frame
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_hourly_walk_passes_hourly_grid() -> None:
    """Hourly bars on the hour pass the 1Hour grid and keep ISO datetime strings working."""
    raw = _as_text(_walk(200, freq="h"), fmt="%Y-%m-%dT%H:%M:%SZ")
    result = validate_bars(raw, SYMBOL, HOUR)
    assert result.report.rows == 200
    assert result.report.gaps == ()


def test_hourly_grid_rejects_half_hours() -> None:
    """An hourly bar at :30 fails 'grid' and quotes its full UTC stamp and offset."""
    raw = _walk(200, freq="h")
    raw.loc[7, "timestamp"] += pd.Timedelta(minutes=30)
    err = _fail(raw, HOUR)
    assert err.check == "grid"
    assert err.rows == ["row 7 (2024-01-01T07:30:00Z): 00:30:00 past the grid"]
    assert "on the hour" in err.detail


def test_hourly_bars_are_off_the_daily_grid() -> None:
    """Hourly bars validated as 1Day fail 'grid' (they are not at 00:00:00 UTC)."""
    err = _fail(_walk(200, freq="h"), DAY)
    assert err.check == "grid"
    assert "00:00:00 UTC" in err.detail
    assert err.rows[0] == "row 1 (2024-01-01T01:00:00Z): 01:00:00 past the grid"


def test_daily_bars_stamped_at_chicago_midnight_fail_grid() -> None:
    """Daily bars stamped 06:00Z (US Central midnight, as Alpaca crypto does) fail 'grid'."""
    raw = _walk(80)
    raw["timestamp"] += pd.Timedelta(hours=6)
    err = _fail(raw)
    assert err.check == "grid"
    assert err.rows[0] == "row 0 (2024-01-01T06:00:00Z): 06:00:00 past the grid"


# --- rows and gaps ----------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "ok"), [(59, False), (60, True), (1, False)])
def test_min_rows(rows: int, ok: bool) -> None:
    """Fewer than config.min_rows (default 60) rows fail 'rows'; exactly min_rows pass."""
    raw = _walk(rows)
    if ok:
        assert validate_bars(raw, SYMBOL, DAY).report.rows == rows
    else:
        err = _fail(raw)
        assert err.check == "rows"
        assert err.detail == f"{rows} rows; expected at least 60"


def test_empty_frame_always_fails_rows() -> None:
    """An empty frame with the right columns fails 'rows', even when min_rows is 0."""
    raw = _text_walk().iloc[0:0]
    err = _fail(raw, config=ValidationConfig(min_rows=0))
    assert err.check == "rows"


@pytest.mark.parametrize("missing", [1, 3, 7])
def test_short_gap_is_reported_not_fatal(missing: int) -> None:
    """A daily gap of up to max_gap (7 days) passes, as one Gap and one warning line."""
    raw = _walk(120)
    kept = raw.drop(index=range(30, 30 + missing)).reset_index(drop=True)
    report = validate_bars(kept, SYMBOL, DAY).report
    before = raw["timestamp"].iloc[29]
    after = raw["timestamp"].iloc[30 + missing]
    assert report.gaps == (Gap(start=before, end=after, missing=missing),)
    (warning,) = report.warnings
    assert warning.startswith(f"1 short gap(s), {missing} bar(s) missing in all")
    assert "2024-01-31" in warning  # first missing day


@pytest.mark.parametrize(("timeframe", "freq", "missing"), [(DAY, "D", 8), (HOUR, "h", 169)])
def test_long_gap_is_fatal(timeframe, freq: str, missing: int) -> None:
    """A gap longer than max_gap (7 days) fails 'gaps' and quotes the first bar after it."""
    raw = _walk(400, freq=freq).drop(index=range(100, 100 + missing)).reset_index(drop=True)
    err = _fail(raw, timeframe)
    assert err.check == "gaps"
    assert err.rows[0].startswith("row 100 (")
    assert f"{missing} bars missing after" in err.rows[0]
    assert "7 days" in err.detail


def test_max_gap_is_configurable() -> None:
    """max_gap is a timedelta: 5 hours allows 5 missing hourly bars and refuses 6."""
    config = ValidationConfig(max_gap=timedelta(hours=5))
    five = _walk(100, freq="h").drop(index=range(10, 15)).reset_index(drop=True)
    assert validate_bars(five, SYMBOL, HOUR, config).report.gaps[0].missing == 5
    six = _walk(100, freq="h").drop(index=range(10, 16)).reset_index(drop=True)
    assert _fail(six, HOUR, config).check == "gaps"


def test_many_short_gaps_in_one_warning() -> None:
    """Several short gaps are all in report.gaps but share one warning line."""
    raw = _walk(200).drop(index=[10, 20, 21, 30, 40, 50, 60, 61, 62]).reset_index(drop=True)
    report = validate_bars(raw, SYMBOL, DAY).report
    assert [g.missing for g in report.gaps] == [1, 2, 1, 1, 1, 3]
    (warning,) = report.warnings
    assert warning.startswith("6 short gap(s), 9 bar(s) missing in all")
    assert "2024-01-21..2024-01-22 (2 bars)" in warning
    assert warning.endswith(", ...")


# --- scale ------------------------------------------------------------------------------------


def test_fifty_thousand_hourly_rows_validate() -> None:
    """50,000 hourly rows, typed and as strings, validate (vectorised; timed by the suite)."""
    raw = _walk(50_000, freq="h")
    assert validate_bars(raw, SYMBOL, HOUR).report.rows == 50_000
    text = _as_text(raw, fmt="%Y-%m-%dT%H:%M:%SZ")
    assert validate_bars(text, SYMBOL, HOUR).report.rows == 50_000


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, database=None)
@given(
    n=st.integers(min_value=60, max_value=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    hourly=st.booleans(),
    data=st.data(),
)
def test_any_walk_passes_and_a_swap_fails_order(n: int, seed: int, hourly: bool, data) -> None:
    """Any valid random walk passes unchanged; swapping two of its rows fails 'order'."""
    timeframe, freq = (HOUR, "h") if hourly else (DAY, "D")
    raw = _walk(n, freq=freq, seed=seed)
    result = validate_bars(raw, SYMBOL, timeframe)
    assert isinstance(result, ValidatedBars)
    assert result.report.rows == n
    np.testing.assert_array_equal(result.frame["close"].to_numpy(), raw["close"].to_numpy())

    i = data.draw(st.integers(min_value=0, max_value=n - 2), label="i")
    j = data.draw(st.integers(min_value=i + 1, max_value=n - 1), label="j")
    _swap(i, j)(raw)
    err = _fail(raw, timeframe)
    assert err.check == "order"
    assert err.rows[0].startswith(f"row {i + 1} (")
