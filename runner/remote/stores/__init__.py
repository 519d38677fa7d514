"""Object stores a sync reads and writes: a folder, S3 (boto3) or GCS (google-cloud-storage).

The cloud clients are imported only when a bucket is used: on the machine they live in the small
tool environment the runner prepares, never in the training's.
"""

from ..location import Location
from .base import ObjectInfo, Store, StoreError


def open_store(location: Location) -> Store:
    if location.scheme == "s3":
        from .s3 import S3Store

        return S3Store(location)
    if location.scheme == "gs":
        from .gcs import GcsStore

        return GcsStore(location)
    from .folder import FolderStore

    return FolderStore(location)


__all__ = ["ObjectInfo", "Store", "StoreError", "open_store"]
