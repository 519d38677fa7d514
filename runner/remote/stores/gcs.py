"""GCS through google-cloud-storage; credentials from Application Default Credentials (on a
machine: its service account); STORAGE_EMULATOR_HOST points it at an emulator (tests)."""

import base64
import os
import threading

from .base import ObjectInfo, Store, StoreError, atomic_target

_local = threading.local()


def client():
    # One client per thread: google-cloud-storage's HTTP session is not meant to be shared.
    c = getattr(_local, "client", None)
    if c is None:
        from google.cloud import storage

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            c = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "emulator"), credentials=AnonymousCredentials())
        else:
            c = storage.Client()
        _local.client = c
    return c


def _identity():
    try:
        creds = client()._credentials
        return getattr(creds, "service_account_email", None) or "your Google identity"
    except Exception:  # only for the message
        return "your Google identity"


class GcsStore(Store):
    def __init__(self, location):
        self.location = location
        self.bucket_name = location.bucket
        self.prefix = location.prefix + "/" if location.prefix else ""

    def _error(self, e, action):
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import DefaultCredentialsError

        if isinstance(e, DefaultCredentialsError):
            return StoreError("no_credentials", "no Google credentials found: run `gcloud auth application-default login`")
        if isinstance(e, gexc.NotFound) and action in ("read from", "delete from"):
            return StoreError("missing_object", "an object of gs://%s is gone" % self.bucket_name)
        if isinstance(e, gexc.NotFound):
            return StoreError("missing_bucket", "the bucket gs://%s does not exist: create it or check the name" % self.bucket_name)
        if isinstance(e, gexc.Forbidden):
            return StoreError("denied", "%s lacks the right to %s gs://%s" % (_identity(), action, self.bucket_name))
        return StoreError("other", "GCS failed to %s gs://%s: %s" % (action, self.bucket_name, e))

    def _bucket(self):
        return client().bucket(self.bucket_name)

    def check(self, write):
        try:
            next(iter(client().list_blobs(self.bucket_name, prefix=self.prefix, max_results=1)), None)
        except Exception as e:
            raise self._error(e, "list") from e

    def objects(self):
        try:
            for blob in client().list_blobs(self.bucket_name, prefix=self.prefix):
                rel = blob.name[len(self.prefix):]
                if not rel or rel.endswith("/"):
                    continue
                md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None
                yield ObjectInfo(rel, blob.size or 0, md5=md5, crc32c=blob.crc32c)
        except Exception as e:
            raise self._error(e, "list") from e

    def upload(self, local_path, rel, size):
        try:
            self._bucket().blob(self.prefix + rel).upload_from_filename(local_path, checksum="md5" if size else None)
        except Exception as e:
            raise self._error(e, "write to") from e

    def download(self, rel, local_path, size=None):
        tmp = atomic_target(local_path)
        try:
            self._bucket().blob(self.prefix + rel).download_to_filename(tmp)
        except Exception as e:
            raise self._error(e, "read from") from e
        os.replace(tmp, local_path)

    def delete(self, rel):
        try:
            self._bucket().blob(self.prefix + rel).delete()
        except Exception as e:
            err = self._error(e, "delete from")
            if err.kind != "missing_object":  # already gone is what we wanted
                raise err from e
