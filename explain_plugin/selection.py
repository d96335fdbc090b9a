"""Which items of a dataset a run explains: ``--subset``, ``--filter``, ``--ids``, ``--limit``.

Filters are Datumaro's own XPath item filters (``Dataset.filter``); items whose
media is not a readable image are skipped and counted, never fatal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

from explain_plugin.errors import CliError


@dataclass
class Selection:
    """What to select; empty fields select everything."""

    subsets: Sequence[str] = ()
    filter_expr: str | None = None
    ids: Sequence[str] = ()
    limit: int | None = None

    def describe(self) -> dict:
        """The selection as it enters a run's identity."""
        return {"subsets": sorted(self.subsets), "filter": self.filter_expr or None,
                "ids": sorted(self.ids), "limit": self.limit}


@dataclass
class SelectionStats:
    selected: int = 0
    skipped_no_image: int = 0
    skipped_ids: list[str] = field(default_factory=list)  # a few, for the message


def parse_ids(text: str | None) -> list[str]:
    """``--ids a,b,train/c`` or ``--ids @FILE`` (one id a line)."""
    if not text:
        return []
    if text.startswith("@"):
        from pathlib import Path

        path = Path(text[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise CliError(f"cannot read --ids file '{path}': {e.strerror}") from None
        return [line.strip() for line in lines if line.strip()]
    return [t.strip() for t in text.split(",") if t.strip()]


def apply_filters(dataset, selection: Selection) -> Iterator:
    """The dataset's items in the selection's subsets that pass its filter expression.

    Wraps the dataset (``Dataset.filter`` would change it in place): Datumaro's
    own XPath item filter, the one ``datum filter -e`` runs.
    """
    if selection.subsets:
        known = set(dataset.subsets())
        missing = [s for s in selection.subsets if s not in known]
        if missing:
            raise CliError(f"unknown subset(s) {', '.join(missing)}: the dataset has "
                           f"{', '.join(sorted(known)) or 'none'}")
    source = dataset
    if selection.filter_expr:
        import warnings

        from datumaro.components.filter import XPathDatasetFilter

        expr = selection.filter_expr
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                source = XPathDatasetFilter(dataset, expr)
        except Exception as e:
            raise CliError(f"bad --filter '{expr}': {e}; write an XPath item filter such as "
                           "\"/item[subset='val']\" or \"/item[annotation/label='cat']\"") from None
    wanted = set(selection.subsets)
    for item in source:
        if not wanted or item.subset in wanted:
            yield item


def item_key(item) -> str:
    """``subset/id`` (just ``id`` in the default subset): how users name items."""
    return f"{item.subset}/{item.id}" if item.subset and item.subset != "default" else item.id


def has_image(item) -> bool:
    from datumaro.components.media import Image

    media = item.media
    if not isinstance(media, Image):
        return False
    try:
        return bool(media.has_data)
    except Exception:
        return False


def select_items(dataset, selection: Selection, stats: SelectionStats) -> Iterator:
    """Items to explain, in dataset order; updates ``stats`` as it goes."""
    ids = set(selection.ids)
    seen_ids: set[str] = set()
    try:
        items = apply_filters(dataset, selection)
        for item in items:
            if ids:
                names = {item_key(item), item.id, f"{item.subset}/{item.id}"} & ids
                if not names:
                    continue
                seen_ids.update(names)
            if not has_image(item):
                stats.skipped_no_image += 1
                if len(stats.skipped_ids) < 5:
                    stats.skipped_ids.append(item_key(item))
                continue
            if selection.limit is not None and stats.selected >= selection.limit:
                return
            stats.selected += 1
            yield item
    except CliError:
        raise
    except Exception as e:  # datumaro's filter errors surface while iterating
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CliError(f"cannot select items: {detail}") from e
    if ids and not selection.limit:
        missing = sorted(ids - seen_ids)
        if missing:
            raise CliError(f"--ids: no item {', '.join(missing[:5])}"
                           f"{', ...' if len(missing) > 5 else ''} in the target "
                           "(write ids as ID or SUBSET/ID)")


def count_items(dataset, selection: Selection) -> int:
    """How many items ``select_items`` will yield (one pass over the item list)."""
    stats = SelectionStats()
    for _ in select_items(dataset, selection, stats):
        pass
    return stats.selected
