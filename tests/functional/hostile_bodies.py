"""Generated hostile request bodies for the router, the feedback function and the inference server.

Each is malformed in one way a careless or hostile caller can produce: nested past any parser's stack,
above the size limit, with NaN/Infinity or numbers no float holds, of another content type or charset,
empty, undecodable, or random JSON of the wrong shape. None may be answered with a 5xx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import strategies as st

JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class HostileBody:
    kind: str
    body: bytes
    content_type: str | None
    """None: no Content-Type header at all."""

    def __repr__(self) -> str:  # hypothesis prints failing examples; a 2 MiB body is not readable
        shown = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return f"HostileBody({self.kind!r}, {shown!r}, {self.content_type!r}, {len(self.body)} bytes)"


def _nested(depth: int, opener: str, closed: bool, wrap: str) -> bytes:
    closer = {"[": "]", '{"a":': "}"}[opener]
    inner = opener * depth + ("1" + closer * depth if closed else "")
    return wrap.replace("@", inner).encode()


nested = st.builds(
    _nested,
    depth=st.integers(min_value=900, max_value=60_000),
    opener=st.sampled_from(["[", '{"a":']),
    closed=st.booleans(),
    wrap=st.sampled_from(["@", '{"features": @}', '{"features": {"a": @}}', '{"inference_id": @}']),
).map(lambda body: HostileBody("nested", body, JSON_TYPE))


def huge(limit: int) -> st.SearchStrategy[HostileBody]:
    """Bodies between the limit and a megabyte above it, valid JSON but for their size."""

    def build(size: int) -> HostileBody:
        prefix, suffix = b'{"features": {"a": "', b'"}, "inference_id": "x", "converted": true}'
        filler = size - len(prefix) - len(suffix)
        return HostileBody("huge", prefix + b"x" * filler + suffix, JSON_TYPE)

    return st.integers(min_value=limit + 1, max_value=limit + 1024 * 1024).map(build)


non_finite = st.sampled_from(
    [
        '{"features": {"tenure_months": NaN}, "user_id": "u-1"}',
        '{"features": [Infinity, 1, 2, 3, 4, 5, 6, 7]}',
        '{"features": {"tenure_months": -Infinity}}',
        '{"features": {"tenure_months": 1e400}}',
        '{"features": [1e999, 1, 2, 3, 4, 5, 6, 7]}',
        '{"inference_id": "00000000-0000-4000-8000-000000000000", "label": NaN}',
        '{"inference_id": "00000000-0000-4000-8000-000000000000", "label": [Infinity]}',
        '{"features": {"tenure_months": ' + "9" * 5000 + "}}",
        '{"inference_id": "00000000-0000-4000-8000-000000000000", "label": ' + "7" * 4400 + "}",
        "NaN",
        "[NaN, Infinity]",
    ]
).map(lambda text: HostileBody("non_finite", text.encode(), JSON_TYPE))

VALID_LOOKING = b'{"features": {"tenure_months": 3}, "inference_id": "x", "converted": true}'

wrong_content_type = st.sampled_from(
    [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/octet-stream",
        "image/png",
        "application/json-patch+json",
        "",
        ";;;",
        "application/json; charset",
    ]
).map(lambda content_type: HostileBody("content_type", VALID_LOOKING, content_type))


def _charset_body(charset: str, declared: str) -> HostileBody:
    text = '{"features": {"tenure_months": 3, "plan": "été"}, "inference_id": "é", "converted": true}'
    return HostileBody("charset", text.encode(charset), f"{JSON_TYPE}; charset={declared}")


wrong_charset = st.builds(
    _charset_body,
    charset=st.sampled_from(["latin-1", "utf-16", "utf-32", "cp1252"]),
    declared=st.sampled_from(["utf-8", "klingon", "latin-1", "utf-16", "utf-7", ""]),
)

empty = st.sampled_from([b"", b" ", b"\n\r\n", b"\t", b"\x00", b"\xef\xbb\xbf"]).map(
    lambda body: HostileBody("empty", body, JSON_TYPE)
)

undecodable = st.binary(min_size=1, max_size=300).map(lambda body: HostileBody("bytes", body, JSON_TYPE))

surrogates = st.sampled_from(
    [
        '{"features": {"tenure_months": "\\ud800"}, "user_id": "u-1"}',
        '{"features": {"a": 1}, "user_id": "\\udfff"}',
        '{"features": {"a": 1}, "segment": "\\ud83d"}',
        '{"inference_id": "\\ud800", "converted": true}',
        '{"\\ud800": 1}',
    ]
).map(lambda text: HostileBody("surrogates", text.encode(), JSON_TYPE))

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
_documents = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
_field_names = st.sampled_from(
    ["features", "user_id", "segment", "inference_id", "label", "converted", "instances", "extra"]
)
wrong_shape = st.one_of(
    _documents,
    st.dictionaries(_field_names, _documents, max_size=4),
).map(lambda document: HostileBody("shape", json.dumps(document).encode(), JSON_TYPE))


def hostile_bodies(limit: int) -> st.SearchStrategy[HostileBody]:
    """Every kind of hostile body, for a receiver whose body limit is `limit` bytes."""
    return st.one_of(
        nested,
        huge(limit),
        non_finite,
        wrong_content_type,
        wrong_charset,
        empty,
        undecodable,
        surrogates,
        wrong_shape,
    )
