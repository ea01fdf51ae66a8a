"""Compares rows an engine returned with the CSV `fstream query --format csv` wrote: the same
number of rows (at least one), in order, each value equal (numbers to 1e-9, NULL as an
empty field, booleans as true/false). Imported by interop.py and spark_sql.py."""
import csv
import math


def same(value, text):
    """Whether an engine's value equals fstream's CSV field."""
    if value is None:
        return text == ""
    if isinstance(value, bool):
        return str(value).lower() == text
    if isinstance(value, (int, float)):
        return math.isclose(float(value), float(text), rel_tol=1e-9, abs_tol=1e-12)
    return str(value) == text


def assert_rows_match(columns, rows, csv_path):
    """Asserts that `rows` (tuples in the order of `columns`) equal the CSV's; returns how many."""
    with open(csv_path) as f:
        expected = list(csv.DictReader(f))
    assert len(rows) == len(expected) > 0, (rows, expected)
    for row, want in zip(rows, expected):
        for column, value in zip(columns, row):
            assert same(value, want[column]), (column, value, want[column], row)
    return len(rows)
