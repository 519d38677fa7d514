"""Where a dataset or a run's outputs live: `gs://bucket/prefix`, `s3://bucket/prefix` or a folder."""

import os
import re
from dataclasses import dataclass

_BUCKET = {
    "s3": re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    "gs": re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$"),
}


class BadLocation(ValueError):
    """A location the user wrote that cannot be right; the message says how to fix it."""


@dataclass(frozen=True)
class Location:
    scheme: str  # "gs", "s3" or "file"
    bucket: str  # empty for a folder
    prefix: str  # key prefix without a trailing "/" (or the folder's absolute path)

    @property
    def is_bucket(self):
        return self.scheme in ("gs", "s3")

    def __str__(self):
        if not self.is_bucket:
            return self.prefix
        return "%s://%s/%s" % (self.scheme, self.bucket, self.prefix) if self.prefix else "%s://%s" % (self.scheme, self.bucket)

    def child(self, name):
        if not self.is_bucket:
            return Location("file", "", os.path.join(self.prefix, name))
        return Location(self.scheme, self.bucket, "%s/%s" % (self.prefix, name) if self.prefix else name)


def parse_location(text):
    m = re.match(r"^([A-Za-z0-9]+)://(.*)$", text)
    if not m:
        return Location("file", "", os.path.abspath(os.path.expanduser(text)))
    scheme, rest = m.group(1).lower(), m.group(2)
    if scheme not in _BUCKET:
        raise BadLocation("%s: only gs://, s3:// and local folders are supported" % text)
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET[scheme].match(bucket):
        raise BadLocation(
            "%s: %r is not a valid bucket name (lowercase letters, digits, dots and hyphens; write %s://BUCKET/PATH)"
            % (text, bucket, scheme)
        )
    prefix = prefix.strip("/")
    if "//" in prefix or any(part in (".", "..") for part in prefix.split("/") if prefix):
        raise BadLocation("%s: the path inside the bucket has an empty, '.' or '..' part" % text)
    return Location(scheme, bucket, prefix)
