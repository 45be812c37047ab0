"""The model hub: which models exist (registry), which are installed (store), which one a name
means (resolve), and getting new ones (download with consent, or import from a file).

* ``registry`` — ``Resources/Models.json``: name, version, URL, SHA-256, size of known models;
* ``store`` — installed packages under ``<MOME_HOME>/models/<name>/<version>/``, the active model
  and rollback (``state``);
* ``download`` — consent first, then a verified download into the store;
* ``resolve`` — ``--model NAME[@VERSION]|PATH`` → package path (``DEFAULT_MODEL`` when none is
  named or active), never downloading;
* ``verify`` — checksum check of any package folder or .zip.
* ``samples`` — remote samples (``mome sample NAME --download``): the same consent and verified
  download, then conversion into ``<MOME_HOME>/samples/NAME/``.
"""

from .download import download_model
from .errors import (
    ChecksumMismatchError,
    ConsentRequiredError,
    DownloadError,
    ModelNotFoundError,
    RegistryError,
    SizeMismatchError,
    StoreError,
)
from .naming import parse_spec, version_key
from .paths import default_home, default_models_dir
from .registry import RegistryEntry, default_registry_file, find_entry, load_registry
from .resolve import DEFAULT_MODEL, bundled_path, resolve_model
from .store import InstalledModel, ModelStore
from .verify import verify_package

__all__ = [
    "DEFAULT_MODEL",
    "ChecksumMismatchError",
    "ConsentRequiredError",
    "DownloadError",
    "InstalledModel",
    "ModelNotFoundError",
    "ModelStore",
    "RegistryEntry",
    "RegistryError",
    "SizeMismatchError",
    "StoreError",
    "bundled_path",
    "default_home",
    "default_models_dir",
    "default_registry_file",
    "download_model",
    "find_entry",
    "load_registry",
    "parse_spec",
    "resolve_model",
    "verify_package",
    "version_key",
]
