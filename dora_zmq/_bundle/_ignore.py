"""Which files of a dataflow's folder are shipped: defaults plus ``.dora-zmq-ignore``.

The ignore file sits next to the dataflow YAML and uses ``.gitignore`` syntax (``#``
comments, ``!`` to re-include, a trailing ``/`` for folders only, a leading ``/`` to anchor
at the folder, ``**``), matched by ``pathspec``, the library black and others use for the
same job. Its patterns come after the defaults, so ``!out/`` ships an ``out/`` folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import BundleError

if TYPE_CHECKING:
    import pathspec

__all__ = ["DEFAULT_IGNORE", "IGNORE_FILE", "IgnoreRules"]

IGNORE_FILE = ".dora-zmq-ignore"

#: Never useful on another machine, often large: version control, caches, virtualenvs (they
#: hold absolute paths of this machine), and ``out/``, where runs write their logs.
DEFAULT_IGNORE: tuple[str, ...] = (
    ".git/",
    ".hg/",
    ".svn/",
    "__pycache__/",
    "*.py[cod]",
    ".venv*/",
    "venv/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    "node_modules/",
    ".DS_Store",
    "/out/",
)

_MAX_IGNORE_FILE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """Compiled ignore patterns for one folder.

    Attributes:
        patterns: the defaults, then the ignore file's lines.
        source: the ignore file read, if there was one.
    """

    patterns: tuple[str, ...]
    source: Path | None
    _spec: pathspec.GitIgnoreSpec

    @classmethod
    def for_folder(cls, folder: Path, ignore_file: Path | None = None) -> "IgnoreRules":
        """The defaults plus ``ignore_file`` (default: ``folder/.dora-zmq-ignore`` if present).

        Raises:
            BundleError: the ignore file cannot be read or has an invalid pattern.
        """
        path = ignore_file if ignore_file is not None else folder / IGNORE_FILE
        lines: list[str] = []
        source = None
        if ignore_file is not None or path.is_file():
            try:
                text = path.read_bytes()[:_MAX_IGNORE_FILE].decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise BundleError(f"cannot read the ignore file {path}: {exc}") from exc
            lines = text.splitlines()
            source = path
        return cls.from_patterns([*DEFAULT_IGNORE, *lines], source)

    @classmethod
    def from_patterns(cls, patterns: list[str] | tuple[str, ...], source: Path | None = None) -> "IgnoreRules":
        """Rules from gitignore-style lines (no defaults added).

        Raises:
            BundleError: a line is not a valid pattern.
        """
        import pathspec  # imported when packing, not by every process that imports dora_zmq (6 ms)

        try:
            spec = pathspec.GitIgnoreSpec.from_lines(patterns)
        except (ValueError, TypeError) as exc:  # pathspec raises GitWildMatchPatternError(ValueError)
            where = f" in {source}" if source else ""
            raise BundleError(f"invalid ignore pattern{where}: {exc}") from exc
        return cls(tuple(patterns), source, spec)

    def ignored(self, relative: str, is_dir: bool) -> bool:
        """Whether the file or folder at ``relative`` (``/``-separated, from the folder) is left out."""
        return self._spec.match_file(relative + "/" if is_dir else relative)
