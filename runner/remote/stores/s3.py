"""S3 through boto3: managed (multipart, threaded) transfers; credentials from the usual chain
(on a machine: its instance profile); AWS_ENDPOINT_URL points it at another server (tests: moto)."""

import os

from .base import S3_PART, ObjectInfo, Store, StoreError, atomic_target

_client = None


def client():
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        # One client for all threads (boto3 clients are thread-safe), with a pool to match.
        # SigV4 everywhere: presigned URLs would otherwise be SigV2 in some regions, which S3
        # refuses for KMS-encrypted objects and newer buckets.
        _client = boto3.client("s3", config=Config(max_pool_connections=32, signature_version="s3v4",
                                                   retries={"max_attempts": 5, "mode": "standard"}))
    return _client


_http = None


def http():
    """A connection pool for small GETs by presigned URL: botocore spends more CPU per request
    (endpoint rules, signing, parsing) than a small object's transfer takes, and on a small
    machine that CPU is taken from the transfer itself (benchmarks/s3_pull_vs_awscli.py)."""
    global _http
    if _http is None:
        import urllib3
        from urllib3.util.retry import Retry

        retry = Retry(total=5, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504), allowed_methods=None)
        bundle = os.environ.get("AWS_CA_BUNDLE")
        _http = urllib3.PoolManager(maxsize=32, retries=retry, **({"ca_certs": bundle} if bundle else {}))
    return _http


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=S3_PART, multipart_chunksize=S3_PART, max_concurrency=8)


def _identity():
    try:
        import boto3

        return boto3.client("sts").get_caller_identity()["Arn"]
    except Exception:  # the identity is only for the message; not knowing it is no error
        return "your AWS identity"


class S3Store(Store):
    def __init__(self, location):
        self.location = location
        self.bucket = location.bucket
        self.prefix = location.prefix + "/" if location.prefix else ""

    def _error(self, e, action):
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(e, NoCredentialsError):
            return StoreError("no_credentials", "no AWS credentials found: run `aws configure` or set AWS_PROFILE")
        if isinstance(e, ClientError):
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404") and action in ("read from", "delete from"):
                return StoreError("missing_object", "an object of s3://%s is gone" % self.bucket)
            if code in ("NoSuchBucket", "404", "NotFound"):
                return StoreError("missing_bucket", "the bucket s3://%s does not exist: create it or check the name" % self.bucket)
            if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
                return StoreError("denied", "%s lacks the right to %s s3://%s" % (_identity(), action, self.bucket))
        return StoreError("other", "S3 failed to %s s3://%s: %s" % (action, self.bucket, e))

    def check(self, write):
        try:
            client().list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except Exception as e:
            raise self._error(e, "list") from e

    def objects(self):
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for o in page.get("Contents", ()):
                    rel = o["Key"][len(self.prefix):]
                    if not rel or rel.endswith("/"):
                        continue  # folder markers some tools create
                    etag = o.get("ETag", "").strip('"')
                    if "-" in etag:
                        yield ObjectInfo(rel, o["Size"], s3_multipart_etag=etag)
                    else:
                        yield ObjectInfo(rel, o["Size"], md5=etag or None)
        except Exception as e:
            raise self._error(e, "list") from e

    def upload(self, local_path, rel, size):
        try:
            if size < S3_PART:
                # One request: boto3's managed transfer sets up a thread pool per call, which
                # costs more than a small object's whole transfer.
                with open(local_path, "rb") as f:
                    client().put_object(Bucket=self.bucket, Key=self.prefix + rel, Body=f)
            else:
                client().upload_file(local_path, self.bucket, self.prefix + rel, Config=_transfer_config())
        except Exception as e:
            raise self._error(e, "write to") from e

    def download(self, rel, local_path, size=None):
        tmp = atomic_target(local_path)
        try:
            if size is not None and size < S3_PART:
                self._get_small(rel, tmp, size)
            else:
                client().download_file(self.bucket, self.prefix + rel, tmp, Config=_transfer_config())
        except Exception as e:
            raise self._error(e, "read from") from e
        os.replace(tmp, local_path)

    def _get_small(self, rel, tmp, size):
        from botocore.exceptions import ClientError
        from urllib3.exceptions import HTTPError

        # The URL is valid for a minute and never leaves this process, nor any message: it holds
        # a signature (and a session token) in its query string.
        url = client().generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self.prefix + rel},
                                              ExpiresIn=60)
        try:
            reply = http().request("GET", url, preload_content=True)
        except HTTPError as e:
            raise ClientError({"Error": {"Code": "Network", "Message": type(e).__name__}}, "GetObject") from None
        if reply.status == 404:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": ""}}, "GetObject")
        if reply.status != 200 or len(reply.data) != size:
            # Whatever the fast path could not do (an odd bucket policy, a changed object), the
            # SDK's own path does, or says why.
            client().download_file(self.bucket, self.prefix + rel, tmp, Config=_transfer_config())
            return
        with open(tmp, "wb") as f:
            f.write(reply.data)

    def delete(self, rel):
        try:
            client().delete_object(Bucket=self.bucket, Key=self.prefix + rel)
        except Exception as e:
            raise self._error(e, "delete from") from e
