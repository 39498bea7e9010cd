"""Export folders of a trained run: ``<run>/export/<backend>_<precision>_<WxH>/`` is written under a temporary
name, renamed when complete and reused while its ``manifest.json`` matches (:func:`cached_export`).

What the manifest holds is :meth:`benchmarking.backends.options.BackendOptions.manifest`; which folder is used (an
explicit one, the run's cached export or a temporary one) is
:meth:`benchmarking.backends.options.BackendOptions.exported`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

#: opset of every ONNX export (part of the manifest: another opset means a new export)
ONNX_OPSET = 17
#: version of the export layout and manifest (``manifest.json`` of a run's export folder)
EXPORT_FORMAT = 1
MANIFEST = "manifest.json"


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _same_export(found: dict | None, manifest: dict) -> bool:
    return found is not None and {k: v for k, v in found.items() if k != "file"} == manifest


def cached_export(final: Path, manifest: dict, write: Callable[[Path], Path]) -> Path:
    """The file of the export in ``final`` when its ``manifest.json`` matches ``manifest``; otherwise
    ``write(tmp)`` into a temporary sibling folder, the manifest (with the file's relative path) added last, and
    the folder renamed to ``final`` (an older export there moved aside and removed). A failed export leaves
    nothing; a concurrent run that published the same export first wins and this one's copy is dropped.

    Args:
        final: the export folder, e.g. ``<run>/export/openvino_int8_512x512``.
        manifest: what the export depends on (:meth:`BackendOptions.manifest`).
        write: ``write(folder) -> path of the file to run`` (inside ``folder``).

    Returns:
        the exported file inside ``final``.

    Raises:
        OSError: ``final`` cannot be written, or is replaced by other runs on every attempt.
    """
    found = _read_manifest(final)
    if _same_export(found, manifest) and (final / found["file"]).is_file():
        return final / found["file"]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        rel = write(tmp).relative_to(tmp)
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "file": str(rel)}, indent=2) + "\n")
        for _ in range(3):
            try:
                os.rename(tmp, final)  # fails while final exists and holds files
                return final / rel
            except OSError:
                pass
            if _same_export(_read_manifest(final), manifest):
                return final / rel  # published by a concurrent run; this copy is removed below
            aside = final.with_name(f".{final.name}.old.{uuid.uuid4().hex[:8]}")
            try:
                os.rename(final, aside)
            except FileNotFoundError:
                continue
            shutil.rmtree(aside, ignore_errors=True)
        raise OSError(f"cannot publish the export {final}: the folder keeps being replaced")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
