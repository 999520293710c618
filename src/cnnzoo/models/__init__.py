"""Model families. Importing this package imports every module in it, which registers the
models; a new family is a new file here, with no edit to any other file."""

import importlib
import pkgutil

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod}")
