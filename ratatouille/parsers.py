"""`from ratatouille.parsers import excel_parser` as in the seed's Python pipeline example."""

from ratatouille_nb.parsers import csv_parser, excel_parser

__all__ = ["csv_parser", "excel_parser"]
