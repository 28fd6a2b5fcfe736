"""Opening stores as zarr-python groups."""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import urllib.parse
import weakref
from typing import Any

import zarr
import zarr.storage

from .._convert import store_url
from ..errors import CorruptStoreError, InvalidInputError, StoreNotFoundError

_PENDING_ROOT = {"zarr_format": 3, "node_type": "group", "attributes": {"zvf_pending": True}}

# URL each S3 store was opened from (with its ?options), so that store_path()
# hands the engine exactly what the caller gave open_store(). Keyed by id():
# stores are not hashable; the entry goes when the store does.
_S3_URLS: dict[int, str] = {}
_S3_OPTIONS = ("endpoint", "region", "profile", "addressing")

# The asynchronous s3fs filesystems behind open_store()'s S3 groups. s3fs gives
# those no finaliser (it does for synchronous ones): their aiohttp session lives
# on the event loop that first used it, zarr-python's, and was left open at exit,
# so every S3 script ended with "Unclosed client session" on stderr.
_ASYNC_S3: weakref.WeakSet[Any] = weakref.WeakSet()


def _close_async_s3_sessions() -> None:
    from zarr.core.sync import sync

    for fs in list(_ASYNC_S3):
        creator = getattr(fs, "_s3creator", None)
        if creator is None:  # never connected
            continue
        try:
            sync(creator.__aexit__(None, None, None), timeout=5)
        except Exception:  # exiting anyway: the worst case is the old warning
            pass
        fs._s3creator = None


# Registered after zarr's own exit handler (imported above), so this one runs
# first, while zarr's event loop still runs.
atexit.register(_close_async_s3_sessions)


def _has_partitions(path: str) -> bool:
    return os.path.isdir(os.path.join(path, ".zvf", "partitions"))


def _is_s3(url: str) -> bool:
    return url[:5].lower() == "s3://"


def _open_group(store: Any, mode: str, url: str) -> zarr.Group:
    """zarr.open_group, with a root document that does not parse as a group
    reported as the package's CorruptStoreError (zarr raises JSONDecodeError,
    or ContainsArrayError when it is an array's)."""
    try:
        return zarr.open_group(store=store, mode=mode)
    except (ValueError, zarr.errors.ContainsArrayError) as e:
        raise CorruptStoreError(f"{url}/zarr.json is not a readable group document: {e}") from e


def open_store(path: Any, mode: str = "r") -> zarr.Group:
    """Open a ZV store as a real :class:`zarr.Group`.

    ``mode="r"`` opens a finalised store read-only. ``mode="r+"`` opens it for
    update; on a store that so far holds only partitions (written by
    ``write_points_partition``) it also creates the root group node, so that
    the finalisation step can be called on the returned group::

        root = open_store(path, mode="r+")
        write_multiscale_metadata(root)      # finalises the partitions
        zarr.consolidate_metadata(root.store)

    ``path`` may be ``s3://bucket/prefix`` (needs the ``cloud`` extra): the
    group then lives on zarr-python's FsspecStore over s3fs, with the same
    credentials, region and endpoint (AWS_ENDPOINT_URL, or ``?endpoint=`` in
    the URL) as the engine uses. See docs/s3.md.
    """
    if isinstance(path, zarr.Group):
        return path
    if mode not in ("r", "r+"):
        raise InvalidInputError(f"mode must be 'r' or 'r+', got {mode!r}")
    url = store_url(path)
    if _is_s3(url):
        return _open_s3(url, mode)
    if not os.path.isdir(url):
        raise StoreNotFoundError(f"no store at {url}")
    root_key = os.path.join(url, "zarr.json")
    if not os.path.exists(root_key):
        if mode == "r" or not _has_partitions(url):
            pending = " (it holds partitions: finalise it first)" if _has_partitions(url) else ""
            raise StoreNotFoundError(f"{url} is not a ZV store: it has no zarr.json{pending}")
        # Atomic create: the finaliser replaces this node with the real root.
        fd, tmp = tempfile.mkstemp(dir=url, prefix=".zarr.json.", suffix=".zvftmp")
        with os.fdopen(fd, "w") as f:
            json.dump(_PENDING_ROOT, f)
        os.replace(tmp, root_key)
    store = zarr.storage.LocalStore(url, read_only=(mode == "r"))
    return _open_group(store, mode, url)


def _parse_s3_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``s3://bucket/prefix?opt=v`` -> (bucket, prefix, options), as the engine reads it."""
    rest = url[5:]
    rest, _, query = rest.partition("?")
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not bucket:
        raise InvalidInputError(f"S3 URL {url!r} has no bucket; expected s3://BUCKET/PREFIX")
    options: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        name = name.lower()
        if name not in _S3_OPTIONS:
            raise InvalidInputError(
                f"unknown option {name!r} in S3 URL {url!r}; the options are {', '.join(_S3_OPTIONS)}"
            )
        options[name] = value
    return bucket, prefix, options


def _s3_storage_options(options: dict[str, str]) -> dict[str, Any]:
    """s3fs settings matching the engine's resolution (docs/s3.md)."""
    env = os.environ
    endpoint = options.get("endpoint") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    region = options.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    addressing = (options.get("addressing") or env.get("ZVF_S3_ADDRESSING") or "").lower()
    if not addressing and endpoint:
        addressing = "path"
    storage: dict[str, Any] = {"use_listings_cache": False}
    if endpoint:
        if "://" not in endpoint:
            endpoint = "https://" + endpoint
        storage["endpoint_url"] = endpoint.rstrip("/")
    if region:
        storage["client_kwargs"] = {"region_name": region}
    if addressing in ("path", "virtual"):
        storage["config_kwargs"] = {"s3": {"addressing_style": addressing}}
    if options.get("profile"):
        storage["profile"] = options["profile"]
    return storage


def _open_s3(url: str, mode: str) -> zarr.Group:
    try:
        import s3fs
    except ImportError as err:
        raise ImportError(
            f"open_store({url!r}) needs s3fs for zarr-python's FsspecStore: "
            "install the cloud extra, pip install 'zvf[cloud]'"
        ) from err
    bucket, prefix, options = _parse_s3_url(url)
    storage = _s3_storage_options(options)
    fs = s3fs.S3FileSystem(**storage)
    root = f"{bucket}/{prefix}" if prefix else bucket
    location = f"s3://{root}"
    if not fs.exists(f"{root}/zarr.json"):
        partitions = bool(fs.ls(f"{root}/.zvf/partitions", detail=False)) if fs.exists(f"{root}/.zvf/partitions") else False
        if mode == "r" or not partitions:
            if not partitions and not fs.exists(root):
                raise StoreNotFoundError(f"no store at {location}")
            pending = " (it holds partitions: finalise it first)" if partitions else ""
            raise StoreNotFoundError(f"{location} is not a ZV store: it has no zarr.json{pending}")
        # One PUT: atomic on S3. The finaliser replaces this node with the real root.
        fs.pipe_file(f"{root}/zarr.json", json.dumps(_PENDING_ROOT).encode())
    async_fs = s3fs.S3FileSystem(asynchronous=True, **storage)
    _ASYNC_S3.add(async_fs)
    store = zarr.storage.FsspecStore(async_fs, read_only=(mode == "r"), path=root)
    _S3_URLS[id(store)] = url
    weakref.finalize(store, _S3_URLS.pop, id(store), None)
    return _open_group(store, mode, url)


def store_path(root: Any) -> str:
    """The location behind a zarr.Group from :func:`open_store`, or a path.

    A group on a LocalStore gives its directory, one on an S3 FsspecStore its
    ``s3://bucket/prefix`` URL (with the options it was opened with).
    """
    if isinstance(root, zarr.Group):
        store = root.store
        if root.path in ("", "/"):
            if isinstance(store, zarr.storage.LocalStore):
                return str(store.root)
            if isinstance(store, zarr.storage.FsspecStore):
                if id(store) in _S3_URLS:
                    return _S3_URLS[id(store)]
                protocol = store.fs.protocol
                protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
                if "s3" in protocols or "s3a" in protocols:
                    return "s3://" + store.path.strip("/")
        raise InvalidInputError(
            f"expected the root group of a local or s3:// ZV store, got group {root.path!r} on {store!r}"
        )
    return store_url(root)


__all__ = ["open_store"]
