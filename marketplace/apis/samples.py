"""A listing's free sample over HTTP: download (anyone who can see the listing), upload and delete
(the dataset's provider)."""

import uuid
from collections.abc import Sequence
from typing import Any

from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.fields import empty
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.permissions import IsProvider
from config.serializers import StrictSerializer
from marketplace.apis.common import request_membership
from marketplace.apis.serializers import SampleSummarySerializer
from marketplace.errors import DatasetSampleNotFoundError
from marketplace.models import Dataset, DatasetSample
from marketplace.selectors.datasets import dataset_list_visible
from marketplace.services.dataset_samples import (
    dataset_sample_delete,
    dataset_sample_download_record,
    dataset_sample_upload,
)


class DeclarationField(serializers.BooleanField):
    """A boolean that must be sent: a form leaving it out has not declared anything (DRF would read
    an absent checkbox as false)."""

    default_empty_html = empty


class SampleUploadSerializer(StrictSerializer):
    file = serializers.FileField(help_text="The sample; its type is taken from the file name.", allow_empty_file=True)
    contains_personal_data = DeclarationField(
        required=True,
        help_text="Required, and must be false: samples go through no transfer check, so personal ones are refused.",
    )


class _SampleChunks:
    """The stored sample, read in chunks and closed when the response ends."""

    chunk_size = 64 * 1024

    def __init__(self, sample: DatasetSample) -> None:
        self._file = sample.file.storage.open(sample.file.name, "rb")

    def __iter__(self) -> "_SampleChunks":
        return self

    def __next__(self) -> bytes:
        chunk = self._file.read(self.chunk_size)
        if not chunk:
            raise StopIteration
        return bytes(chunk)

    def close(self) -> None:
        self._file.close()


class DatasetSampleApi(APIView):
    """GET/HEAD: download the sample. POST (multipart): attach or replace it. DELETE: remove it."""

    parser_classes = [MultiPartParser]  # a real file upload: multipart only (GET and DELETE take no body)

    def get_permissions(self) -> Sequence[Any]:
        if self.request.method in ("POST", "DELETE"):
            return [IsAuthenticated(), IsProvider()]
        return [IsAuthenticated()]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A download client may send `Accept: application/octet-stream`; errors fall back to JSON.
        return super().perform_content_negotiation(request, force=True)

    def _dataset(self, dataset_id: uuid.UUID) -> Dataset:
        # 404 when the caller cannot see the listing (another organisation's draft, an unknown id).
        return get_object_or_404(dataset_list_visible(user=self.request.user), pk=dataset_id)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The sample."),
            304: None,
            404: OpenApiResponse(description="No such listing visible to you, or `dataset_sample_not_found`."),
        }
    )
    def get(self, request: Request, dataset_id: uuid.UUID) -> HttpResponseBase:
        """Anyone who can see the listing, without buying. Streams the sample with its content type,
        Content-Length and an ETag (its SHA-256; If-None-Match answers 304). Each download is audited
        (`dataset.sample_downloaded`)."""
        dataset = self._dataset(dataset_id)
        try:
            sample = dataset.sample
        except DatasetSample.DoesNotExist:
            raise DatasetSampleNotFoundError() from None
        etag = f'"{sample.sha256}"'
        headers = {"ETag": etag, "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            not_modified = HttpResponse(status=status.HTTP_304_NOT_MODIFIED)
            for key, value in headers.items():
                not_modified[key] = value
            return not_modified
        response: HttpResponseBase
        if request.method == "HEAD":
            response = HttpResponse(content_type=sample.content_type)
        else:
            dataset_sample_download_record(sample=sample, user=request.user)
            response = StreamingHttpResponse(_SampleChunks(sample), content_type=sample.content_type)
        for key, value in headers.items():
            response[key] = value
        response["Content-Length"] = str(sample.size)
        response["Content-Disposition"] = content_disposition_header(True, sample.original_name) or "attachment"
        return response

    @extend_schema(
        request={"multipart/form-data": SampleUploadSerializer}, responses={201: SampleSummarySerializer}
    )
    def post(self, request: Request, dataset_id: uuid.UUID) -> Response:
        """The dataset's provider only (another organisation: 403; its draft: 404). `contains_personal_data`
        is required and must be false (400 `sample_personal_data_refused`); at most ELEMENTA_SAMPLE_MAX_BYTES
        (1 MiB by default; 400 `upload_rejected`). Replaces an earlier sample. Audited (`dataset.sample_uploaded`)."""
        dataset = self._dataset(dataset_id)
        serializer = SampleUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sample = dataset_sample_upload(
            dataset_id=dataset.id,
            membership=request_membership(request),
            upload=serializer.validated_data["file"],
            contains_personal_data=serializer.validated_data["contains_personal_data"],
        )
        return Response(SampleSummarySerializer(sample).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, dataset_id: uuid.UUID) -> Response:
        """The dataset's provider only; 404 `dataset_sample_not_found` when there is none. Audited
        (`dataset.sample_deleted`)."""
        dataset = self._dataset(dataset_id)
        dataset_sample_delete(dataset_id=dataset.id, membership=request_membership(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
