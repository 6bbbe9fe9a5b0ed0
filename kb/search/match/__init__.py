"""Need <-> result matching, split by job: records, scoring, reasons, the matcher, the batch sheet."""

from kb.search.match.export import EXPORT_FORMATS, EXPORT_HEADERS, export_rows, write_table
from kb.search.match.matcher import TARGET, Filters, Matcher
from kb.search.match.reasons import same_area
from kb.search.match.records import Record, load_records
from kb.search.match.scoring import highlight, shown_terms, term_overlap, terms

__all__ = ["EXPORT_FORMATS", "EXPORT_HEADERS", "TARGET", "Filters", "Matcher", "Record", "export_rows", "highlight",
           "load_records", "same_area", "shown_terms", "term_overlap", "terms", "write_table"]
