"""What caches and browsers rely on in a JSON answer: an ETag with 304, gzip when asked, `Vary`.

A 200 JSON answer gets a strong `ETag`, a digest of its identity bytes; its gzip form is another
representation and gets that tag with `-gz` (a cache holding both must never hand one for the
other). `If-None-Match` naming the tag of the representation this request would get is a 304.
`Vary: Accept-Encoding` on every JSON 200, compressed or not this time: the answer depends on it.
`Vary: Origin` on every answer when CORS_ORIGINS is restricted (the Allow-Origin header depends on
it, and a cache keyed without it would hand a refused origin's answer to an allowed one).

Gzip is deterministic (no timestamp in its header), so an answer compressed twice is the same
bytes: the hot path keys on the request's `Accept-Encoding` and replays the encoded bytes the app
made, and its replays equal Flask's byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib

from flask import Request, Response

__all__ = ["GZIP_MIN_BYTES", "finish"]

# Below this a gzip header and trailer (18 bytes) save little or nothing; a small answer is sent as is.
GZIP_MIN_BYTES = 512
# zlib's level 6, its default: within a few percent of level 9's size on this JSON, at half the time.
_LEVEL = 6


def _accepts_gzip(request: Request) -> bool:
    return request.accept_encodings.quality("gzip") > 0


def finish(response: Response, request: Request, vary_origin: bool) -> Response:
    """Add the validators, the encoding and `Vary` to an answer (every answer passes here once)."""
    if vary_origin:
        response.vary.add("Origin")
    if response.mimetype != "application/json" or response.status_code != 200 or response.direct_passthrough:
        return response
    response.vary.add("Accept-Encoding")
    body = response.get_data()
    compress = len(body) >= GZIP_MIN_BYTES and _accepts_gzip(request)
    tag = hashlib.blake2b(body, digest_size=12).hexdigest()
    tag = f"{tag}-gz" if compress else tag
    response.set_etag(tag)
    # Not make_conditional: it adds a Date header, which every replay of the hot path would then
    # have to rewrite; Waitress dates each answer itself.
    if request.if_none_match.contains_weak(tag):
        response.status_code = 304  # werkzeug sends no body and drops the entity headers
        return response
    if not compress:
        return response
    response.set_data(gzip.compress(body, _LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    return response
