"""How the CLI prints its tables (``print_table``), called by every listing command instead of printing a rich
``Table`` itself.

- On a terminal: the table fits the terminal's width (rich measures it like ``shutil.get_terminal_size``:
  ``COLUMNS`` or the tty's size). Cells never wrap: a cell too long for its column is cut with ``…``, so every
  row stays one line.
- Piped or redirected: a plain layout for ``cut``, ``awk``, ``sort`` or ``column -t -s$'\\t'``: no title, no
  borders, no colours, no truncation; a header line then one line per row, cells separated by tabs (tabs and
  line breaks inside a cell become spaces).

``-o json`` / ``-o yaml`` (``common.print_json``) are for scripts that want every field.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from alertscaler.cli.common import out


def _plain(cell: RenderableType) -> str:
    if isinstance(cell, Text):
        text = cell.plain
    elif isinstance(cell, str):
        text = Text.from_markup(cell).plain
    else:
        text = str(cell)
    return " ".join(text.replace("\t", " ").splitlines())


def plain_lines(table: Table) -> list[str]:
    """``table`` as header + rows of tab-separated plain text, nothing cut."""
    columns = table.columns
    lines = ["\t".join(_plain(c.header) for c in columns)]
    cells = [list(c.cells) for c in columns]
    for row in range(table.row_count):
        lines.append("\t".join(_plain(col[row]) if row < len(col) else "" for col in cells))
    return lines


def fit(table: Table, width: int) -> Table:
    """Make ``table`` at most ``width`` columns wide, cells cut (with ``…``), never wrapped. A table that fits keeps
    its borders; one that does not loses them (one space between columns, like ``kubectl get``), and its widest
    columns are cut to one common width while the narrower ones stay whole. The title is cut too."""
    columns = table.columns
    natural = [max([cell_len(_plain(c.header)), *(cell_len(_plain(cell)) for cell in c.cells)]) for c in columns]
    for column in columns:
        column.no_wrap = True
        column.overflow = "ellipsis"
    if isinstance(table.title, str):
        table.title = Text.from_markup(table.title, overflow="ellipsis")
        table.title.no_wrap = True
    bordered = (len(columns) + 1 if table.box else 0) + 2 * len(columns)  # borders, a space each side of a cell
    if sum(natural) + bordered <= width:
        return table
    table.box, table.show_edge, table.pad_edge, table.collapse_padding = None, False, False, True
    table.padding = (0, 1)
    room = max(len(columns), width - (len(columns) - 1))
    cap = max(natural, default=1)
    while cap > 1 and sum(min(n, cap) for n in natural) > room:
        cap -= 1
    for column, n in zip(columns, natural, strict=True):
        column.width = max(1, min(n, cap))
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` on ``console`` (default: stdout): fitted on a terminal, plain when piped."""
    console = console or out
    if console.is_terminal:
        console.print(fit(table, console.width), soft_wrap=False, crop=True)
    else:
        console.file.write("".join(line + "\n" for line in plain_lines(table)))
