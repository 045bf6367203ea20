"""GET /api/v1/datasets/<name>/versions/<n>/<file>: a frozen version's files for a token with
the `export` scope. Files are streamed from this node's export directory when it holds one,
else from the database with their sha256 checked as they go (training.datasets.serve);
never built in memory."""

from typing import Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from curation.models import TokenScope
from flywheel_site.api_auth import TokenAuth
from flywheel_site.api_errors import ErrorOut
from training.datasets import export, selectors, serve
from training.datasets.pii_scan import ExportPiiFound

OUTSIDE_LIMIT = "this token may export only the datasets: {names}"
NOT_FOUND = "no frozen version {number} of dataset {name!r}"
NO_FILE = "version {number} of {name!r} has no file {file!r}; files: {files}"

router = Router(tags=["datasets"])
AUTH_ERRORS = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut}

# formats.CHOICES, spelt out so the schema lists them (a test keeps the two equal).
FileFormat = Literal["jsonl", "parquet", "openai-sft", "openai-preference", "all"]


class FormatQuery(Schema):
    format: FileFormat = "all"


class VersionFileOut(Schema):
    name: str
    format: str
    rows: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    url: str


def _version(request: HttpRequest, name: str, number: int):
    # Checked before the lookup, so a limited token learns nothing of other datasets.
    limit = selectors.export_token_datasets(token=request.auth)
    if limit and name not in limit:
        raise HttpError(403, OUTSIDE_LIMIT.format(names=", ".join(limit)))
    version = selectors.version_get(name=name, number=number)
    if version is None:
        raise HttpError(404, NOT_FOUND.format(number=number, name=name))
    return version


@router.get(
    "/{name}/versions/{int:number}",
    operation_id="training_api_version_files",
    auth=TokenAuth(TokenScope.EXPORT),
    summary="List the files of a frozen dataset version, in one format or all",
    description="`format` selects the data files: jsonl (the TRL JSON Lines of each of the "
    "version's formats), parquet (the same rows as Parquet), openai-sft, openai-preference, "
    "or all (the default). The cards (README.md, croissant.json) and manifest.json are "
    "always listed. An unknown format is a 422. Sizes and sha256 of data files come from "
    "the manifest; the cards' once the version's files are written. Versions frozen before "
    "Parquet existed list their JSON Lines only.",
    response={200: list[VersionFileOut], 422: ErrorOut, **AUTH_ERRORS},
)
def version_files(
    request: HttpRequest,
    name: str,
    number: int,
    query: Query[FormatQuery],
):
    version = _version(request, name, number)
    base = request.path.rstrip("/")
    return [
        {**f, "url": f"{base}/{f['name']}"}
        for f in export.version_files(version=version, file_format=query.format)
    ]


@router.get(
    "/{name}/versions/{int:number}/{path:file}",
    # The id the schema had before training became sub-packages: generated clients name it.
    operation_id="training_api_version_file",
    auth=TokenAuth(TokenScope.EXPORT),
    summary="Download a file of a frozen dataset version",
    description="Files: manifest.json and <format>/train.jsonl, <format>/eval.jsonl for each "
    "of the version's formats (dpo_standard, dpo_conversational, sft_conversational); since "
    "Parquet, also <format>/<split>.parquet, openai_sft/ and openai_preference/ JSON Lines, "
    "README.md and croissant.json (list them with the version's listing). "
    "A token made with a dataset limit (create_export_token --datasets) gets 403 for any "
    "other dataset.",
    response={200: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut},
    openapi_extra={
        "responses": {
            200: {
                "description": "The file, streamed: JSON Lines for the splits, JSON for the "
                "manifest. X-Manifest-SHA256 carries the version's manifest digest.",
                "headers": {
                    "X-Manifest-SHA256": {
                        "description": "SHA-256 of the version's manifest.json",
                        "schema": {"type": "string"},
                    }
                },
                "content": {
                    "application/jsonl": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "string", "format": "binary"}},
                    "application/vnd.apache.parquet": {
                        "schema": {"type": "string", "format": "binary"}
                    },
                    "text/markdown": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            401: {"description": "Missing, invalid or revoked token, or no `export` scope."},
            403: {"description": "The token is limited to other datasets."},
            404: {"description": "No such frozen version, or no such file in it."},
            429: {"description": "Rate limit exceeded; see Retry-After."},
        }
    },
)
def version_file(request: HttpRequest, name: str, number: int, file: str):
    version = _version(request, name, number)
    names = export.file_names(version)
    if file not in names:
        raise HttpError(
            404, NO_FILE.format(number=number, name=name, file=file, files=", ".join(names))
        )
    try:
        download = serve.dataset_version_download(version=version, name=file)
    except ExportPiiFound as error:
        raise HttpError(409, str(error)) from error
    response = serve.download_response(download, name=file)
    response["X-Manifest-SHA256"] = version.manifest_sha256
    return response
