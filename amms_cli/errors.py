"""The amms exception tree. Stdlib only, so every layer can raise and render it.

Every error carries an HTTP status (used by the server) and an optional hint naming the next step
(used by the CLI, which prints the message in red and the hint under it):

    AmmsError
    ├── ConfigError            amms.json is missing, malformed or invalid               (500 on a server)
    ├── VersionSyntaxError     a string is not a version or a version pattern           (400)
    ├── RepositoryError        a problem with the model repository on disk              (500)
    │   ├── ModelExists        add-model with a name that is already configured         (409)
    │   ├── ChecksumMismatch   an artifact does not match its recorded sha256           (500)
    │   └── PublishError       a version could not be published                         (500)
    ├── ModelLoadError         an artifact failed to load or to pass its smoke check    (500)
    ├── NotFound               unknown model or version                                 (404)
    ├── InvalidInput           a request body of the wrong shape, type or width         (400)
    ├── PayloadTooLarge        a request body over the configured limit                 (413)
    ├── ModelNotReady          the model exists but no version is available yet         (503)
    ├── PredictionError        the model raised while predicting                        (500)
    ├── Unauthorized           admin API without a bearer token                         (401)
    ├── Forbidden              admin API with a wrong token                             (403)
    └── EngineError            Docker engine unreachable or a build failed               (500)
"""

from __future__ import annotations

from http import HTTPStatus


class AmmsError(Exception):
    """Base class: a message for people, an HTTP status for the server, a hint for the CLI."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(AmmsError):
    pass


class VersionSyntaxError(AmmsError):
    status = HTTPStatus.BAD_REQUEST


class RepositoryError(AmmsError):
    pass


class ModelExists(RepositoryError):
    status = HTTPStatus.CONFLICT


class ChecksumMismatch(RepositoryError):
    pass


class PublishError(RepositoryError):
    pass


class ModelLoadError(AmmsError):
    pass


class NotFound(AmmsError):
    status = HTTPStatus.NOT_FOUND


class InvalidInput(AmmsError):
    status = HTTPStatus.BAD_REQUEST


class PayloadTooLarge(AmmsError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class ModelNotReady(AmmsError):
    status = HTTPStatus.SERVICE_UNAVAILABLE


class ModelBusy(ModelNotReady):
    """The model is fine but cannot be served in time (it is still loading, or the server is loading
    others to make room): 503 with a Retry-After header."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PredictionError(AmmsError):
    pass


class Unauthorized(AmmsError):
    status = HTTPStatus.UNAUTHORIZED


class Forbidden(AmmsError):
    status = HTTPStatus.FORBIDDEN


class EngineError(AmmsError):
    pass
