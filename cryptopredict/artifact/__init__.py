"""The forecast artifact: the one contract between training and serving (standard library only).

An artifact is a directory:

    artifacts/
      manifest.json                 the commit point: schema, digest, model version, checksums, records
      gen-20261122T085400Z-1a2b3c4d/
        BTC-USD.series.bin          Prophet's yhat / lower / upper (float32)
        BTC-USD.served.bin          the served distribution's parameters: the closes (NaN: no bar), the
                                    volatility at each bar, Prophet's changes where a weight reads them
        BTC-USD.prophet.json        the fitted model (prophet.serialize.model_to_json), for the record
                                    (not in the API's copy: `python -m cryptopredict.artifact served`)
        ...

A run writes a new generation directory, then replaces `manifest.json` atomically (temporary file,
fsync, rename). Until that rename the previous manifest, and the generation it names, stay intact,
so a failed run never leaves a half artifact and a server that starts meanwhile reads the old one.
Every file of the generation is listed in the manifest with its SHA-256, checked on load, and the
manifest carries the SHA-256 of its own canonical content ("digest"), so an edited figure in it is
refused too. Plain data, never pickle: reading an artifact runs no code and needs no heavy library.

The manifest is read into typed records (`records`), by the same functions that write it; nothing
outside this package reads it by key. The modules, by job:

- `records`: the manifest's sections as frozen records, and the codec both sides use;
- `grids`: a pair's grid as training hands it over (`PairGrid`, its served distribution a `ServedGrid`),
  packed into binary files, and seen back as a `SymbolForecast` (`grid_of`: its `PairGrid` again);
- `validation`: the served quantiles' rule (the reader's, the writer's and the gate's);
- `write`: a new generation and the atomic commit of its manifest (the train side);
- `read`: verification and loading (the serve side).

The server maps the grids (mmap) instead of parsing them: at start each is checked (size, SHA-256,
the quantiles' order) and released again, and a request reads the few pages it needs, so a grid
costs memory only while it is read.
"""

from __future__ import annotations

from cryptopredict.artifact.grids import PairGrid, ServedGrid, SymbolForecast, grid_of
from cryptopredict.artifact.read import Artifact, carried_pair, read_artifact
from cryptopredict.artifact.records import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    BacktestRecord,
    Carried,
    GateCheck,
    GateRecord,
    HorizonScore,
    Manifest,
    ModelSettings,
    PairEntry,
    Production,
    ValidationRecord,
    from_json,
    to_json,
)
from cryptopredict.artifact.validation import disordered_points
from cryptopredict.artifact.write import MANIFEST_NAME, canonical_digest, json_bytes, new_generation, write_artifact
from cryptopredict.timeframes import format_utc, parse_utc

__all__ = [
    "MANIFEST_NAME",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "Artifact",
    "BacktestRecord",
    "Carried",
    "GateCheck",
    "GateRecord",
    "HorizonScore",
    "Manifest",
    "ModelSettings",
    "PairEntry",
    "PairGrid",
    "Production",
    "ServedGrid",
    "SymbolForecast",
    "ValidationRecord",
    "canonical_digest",
    "carried_pair",
    "disordered_points",
    "format_utc",
    "from_json",
    "grid_of",
    "json_bytes",
    "new_generation",
    "parse_utc",
    "read_artifact",
    "to_json",
    "write_artifact",
]
