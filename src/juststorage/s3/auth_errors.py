"""The one error of S3 authentication and body integrity, carrying S3's code.

S3AuthError (code, message, status)
    raised by S3Authenticator.verify, verified_body and the body iterator;
    the gateway renders it as S3's XML error.
"""

from __future__ import annotations

# S3's error codes of authentication and request bodies, with S3's statuses.
STATUS_OF_S3_AUTH_CODE: dict[str, int] = {
    "AccessDenied": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "RequestTimeTooSkewed": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "MissingSecurityHeader": 400,
    "XAmzContentSHA256Mismatch": 400,
    "BadDigest": 400,
    "InvalidDigest": 400,
    "IncompleteBody": 400,
    "InvalidRequest": 400,
    "InvalidArgument": 400,
    "NotImplemented": 501,
}


class S3AuthError(Exception):
    """A request that does not authenticate or whose body does not verify.

    `code` is S3's error code, `status` its HTTP status; `message` never holds a
    secret, a signature we computed or a string-to-sign.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = STATUS_OF_S3_AUTH_CODE[code]
