"""Python client for JustStorage: `Client` (blocking) and `AsyncClient` (asyncio)."""

from juststorage_client._async import AsyncClient, AsyncDownload
from juststorage_client._errors import (
    ApiError,
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InsufficientStorage,
    IntegrityError,
    Internal,
    JustStorageError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RangeNotSatisfiable,
    TooManyRequests,
    TransportError,
    Unauthorized,
    Unavailable,
)
from juststorage_client._models import (
    ClassUsage,
    CommonPrefix,
    Health,
    ListPage,
    ObjectHead,
    ObjectInfo,
    PresignedUrl,
    Usage,
)
from juststorage_client._retry import NO_RETRIES, RetryEvent, RetryPolicy
from juststorage_client._sessions import UploadedPart, UploadSession
from juststorage_client._sync import Client, Download
from juststorage_client._transfer_state import TEMP_SUFFIX, is_temp_name

__version__ = "0.1.0"
__all__ = [
    "TEMP_SUFFIX",
    "NO_RETRIES",
    "ApiError",
    "AsyncClient",
    "AsyncDownload",
    "BadRequest",
    "ChecksumMismatch",
    "ClassUsage",
    "Client",
    "CommonPrefix",
    "Download",
    "Forbidden",
    "Health",
    "InsufficientStorage",
    "IntegrityError",
    "Internal",
    "JustStorageError",
    "ListPage",
    "Conflict",
    "MethodNotAllowed",
    "NotFound",
    "ObjectHead",
    "ObjectInfo",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PresignedUrl",
    "RangeNotSatisfiable",
    "RetryEvent",
    "RetryPolicy",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "Unavailable",
    "UploadSession",
    "UploadedPart",
    "Usage",
    "__version__",
    "is_temp_name",
]
