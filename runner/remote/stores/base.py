"""What every store offers the sync: a sorted, streamed listing and single-object transfers."""

import hashlib
import os
from dataclasses import dataclass
from typing import Iterator, Optional

from ..location import Location

# boto3's and the AWS CLI's default part size: an S3 ETag of "<md5>-<parts>" was made with it.
S3_PART = 8 * 1024 * 1024


class StoreError(Exception):
    """A store refused or cannot be reached; `kind` is missing_bucket, denied, no_credentials or other."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


@dataclass
class ObjectInfo:
    rel: str  # path below the location, "/"-separated
    size: int
    md5: Optional[str] = None  # hex, when the store knows it
    s3_multipart_etag: Optional[str] = None  # "<hex>-<parts>"
    crc32c: Optional[str] = None  # base64, as GCS gives it (composite objects have no md5)
    mtime_ns: Optional[int] = None  # folders only


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def s3_multipart_etag(path, parts):
    """The ETag S3 gives an object uploaded in `parts` parts of S3_PART bytes."""
    digests = []
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(S3_PART), b""):
            digests.append(hashlib.md5(block).digest())
    if len(digests) != parts:
        return None  # uploaded with another part size: cannot be compared, so it is sent again
    return "%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), parts)


def atomic_target(path):
    """A temporary name beside `path` (renamed into place once complete)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path + ".trainrig-part"


class Store:
    location: Location

    def check(self, write):
        """Raise StoreError if the location cannot be read (or written, with `write`)."""
        raise NotImplementedError

    def objects(self) -> Iterator[ObjectInfo]:
        """Every object below the location, sorted by the UTF-8 bytes of `rel`, streamed."""
        raise NotImplementedError

    def upload(self, local_path, rel, size):
        raise NotImplementedError

    def download(self, rel, local_path, size=None):
        raise NotImplementedError

    def delete(self, rel):
        raise NotImplementedError
