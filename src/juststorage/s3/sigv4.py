"""What a SigV4 request claims: from its Authorization header or its presigned query.

Only parsing and the checks that need no secret (shape, scope, dates); the
signature itself is checked by `signing.S3Authenticator`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from juststorage.s3.auth_errors import S3AuthError
from juststorage.s3.canonical import ALGORITHM, SERVICE, TERMINATOR, canonical_query

MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGNED_SECONDS = 604800  # 7 days: S3's limit for X-Amz-Expires
_TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_QUERY_FIELDS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


@dataclass(frozen=True, slots=True)
class V4Claim:
    """The parts of a SigV4 request that its signature must cover."""

    key_id: str
    date: str
    region: str
    timestamp: str
    signed_headers: tuple[str, ...]
    signature: str
    canonical_query: str
    presigned: bool

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{SERVICE}/{TERMINATOR}"


def _credential(text: str, code: str) -> tuple[str, str, str]:
    """`<key id>/<yyyymmdd>/<region>/s3/aws4_request` -> (key id, date, region)."""
    parts = text.strip().split("/")
    if len(parts) != 5 or not all(parts):
        raise S3AuthError(
            code, "the Credential must be <access key id>/<date>/<region>/s3/aws4_request"
        )
    key_id, date, region, service, terminator = parts
    if not (len(date) == 8 and date.isdigit() and date.isascii()):
        raise S3AuthError(code, f"the credential's date {date!r} is not yyyymmdd")
    if service != SERVICE:
        raise S3AuthError(code, f"the credential names the service {service!r}; this is 's3'")
    if terminator != TERMINATOR:
        raise S3AuthError(code, "the credential must end in aws4_request")
    return key_id, date, region


def _signed_headers(text: str, code: str) -> tuple[str, ...]:
    names = tuple(sorted({name.strip().lower() for name in text.split(";") if name.strip()}))
    if not names or not all(_HEADER_NAME.fullmatch(name) for name in names):
        raise S3AuthError(code, "SignedHeaders must list header names separated by ';'")
    if "host" not in names:
        raise S3AuthError(code, "the host header must be signed")
    return names


def _signature(text: str, code: str) -> str:
    text = text.strip()
    if not _SIGNATURE.fullmatch(text):
        raise S3AuthError(code, "the signature must be 64 lower-case hex digits")
    return text


def parse_timestamp(text: str, code: str) -> datetime:
    """`20130524T000000Z` -> an aware UTC datetime."""
    if not _TIMESTAMP.fullmatch(text):
        raise S3AuthError(code, f"the date {text!r} is not in the form yyyymmddThhmmssZ")
    try:  # by hand: strptime costs more than the rest of a request's parsing
        return datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[9:11]),
            int(text[11:13]),
            int(text[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        raise S3AuthError(code, f"the date {text!r} is not a valid time") from None


def parse_authorization(
    authorization: str, x_amz_date: str | None, date_header: str | None, query: str
) -> tuple[V4Claim, datetime]:
    """An `Authorization: AWS4-HMAC-SHA256 ...` header -> its claim and its time.

    The time comes from x-amz-date, else from Date (whichever is used must be signed,
    which the caller checks through `time_header`).

    Raises:
        S3AuthError: AuthorizationHeaderMalformed, or AccessDenied without a date.
    """
    code = "AuthorizationHeaderMalformed"
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise S3AuthError(code, f"the algorithm must be {ALGORITHM}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or name in fields:
            raise S3AuthError(code, "expected Credential=..., SignedHeaders=..., Signature=...")
        fields[name] = value
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise S3AuthError(code, "expected Credential=..., SignedHeaders=..., Signature=...")
    key_id, date, region = _credential(fields["Credential"], code)
    if x_amz_date is not None:
        when = parse_timestamp(x_amz_date, code)
    elif date_header is not None:
        try:
            when = parsedate_to_datetime(date_header).astimezone(UTC)
        except (TypeError, ValueError):
            raise S3AuthError("AccessDenied", "the Date header is not a valid date") from None
    else:
        raise S3AuthError(
            "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
        )
    timestamp = x_amz_date if x_amz_date is not None else when.strftime("%Y%m%dT%H%M%SZ")
    if timestamp[:8] != date:
        raise S3AuthError(code, "Invalid credential date. Date is not the same as X-Amz-Date.")
    claim = V4Claim(
        key_id=key_id,
        date=date,
        region=region,
        timestamp=timestamp,
        signed_headers=_signed_headers(fields["SignedHeaders"], code),
        signature=_signature(fields["Signature"], code),
        canonical_query=query,
        presigned=False,
    )
    return claim, when


def check_skew(when: datetime, now: datetime) -> None:
    """Raises S3AuthError(RequestTimeTooSkewed) beyond 15 minutes either way."""
    if abs(now - when) > MAX_SKEW:
        raise S3AuthError(
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )


def parse_presigned(pairs: list[tuple[str, str]], now: datetime) -> V4Claim:
    """A presigned SigV4 query string -> its claim, checked against the time `now`.

    Raises:
        S3AuthError: AuthorizationQueryParametersError for a missing or malformed
            parameter; AccessDenied when expired or not valid yet.
    """
    code = "AuthorizationQueryParametersError"
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in _QUERY_FIELDS:
            if name in fields:
                raise S3AuthError(code, f"{name} was given more than once")
            fields[name] = value
    missing = [name for name in _QUERY_FIELDS if name not in fields]
    if missing:
        raise S3AuthError(
            code,
            "Query-string authentication version 4 requires the X-Amz-Algorithm,"
            " X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders,"
            f" and X-Amz-Expires parameters (missing: {', '.join(missing)}).",
        )
    if fields["X-Amz-Algorithm"] != ALGORITHM:
        raise S3AuthError(code, f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    key_id, date, region = _credential(fields["X-Amz-Credential"], code)
    when = parse_timestamp(fields["X-Amz-Date"], code)
    if fields["X-Amz-Date"][:8] != date:
        raise S3AuthError(code, "Invalid credential date. Date is not the same as X-Amz-Date.")
    expires = fields["X-Amz-Expires"]
    if not (expires.isascii() and expires.isdigit()) or int(expires) < 1:
        raise S3AuthError(code, "X-Amz-Expires must be a positive number of seconds")
    if int(expires) > MAX_PRESIGNED_SECONDS:
        raise S3AuthError(
            code, "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    if when - now > MAX_SKEW:
        raise S3AuthError("AccessDenied", "Request is not valid yet")
    if now > when + timedelta(seconds=int(expires)):
        raise S3AuthError("AccessDenied", "Request has expired")
    return V4Claim(
        key_id=key_id,
        date=date,
        region=region,
        timestamp=fields["X-Amz-Date"],
        signed_headers=_signed_headers(fields["X-Amz-SignedHeaders"], code),
        signature=_signature(fields["X-Amz-Signature"], code),
        canonical_query=canonical_query(pairs, without="X-Amz-Signature"),
        presigned=True,
    )
