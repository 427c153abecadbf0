"""More real series for the forecasting benchmark, written as CSV files into a local cache.

Each comes from a package's own files, never the web: statsmodels' bundled data sets (the
benchmark's ``bench`` extra installs statsmodels) and the forecasting CSVs inside the sktime
1.2.0 wheel (``pip download``, read out of the archive, nothing installed). None of them was
used to tune rnnkit's forecaster. The files go to ``$RNNKIT_DATA/bench-series`` (default
``~/.cache/rnnkit/bench-series``); data is never committed.

    SERIES[name] = (source, file inside it, builder, extra train arguments)
"""
import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

from rnnkit.data.datasets import cache_dir

SKTIME = "sktime==1.2.0"
SHORT = ["--val-fraction", "0.15", "--test-fraction", "0.15"]   # ~110 steps: 10% < horizon 12


def quarterly(year, quarter, column):
    """Rows with year and quarter columns -> ``quarter,<column>`` CSV text (``YYYY-Qn``)."""
    def build(text):
        rows = list(csv.DictReader(io.StringIO(text)))
        return f"quarter,{column}\n" + "".join(
            f"{int(float(r[year]))}-Q{int(float(r[quarter]))},{r[column]}\n" for r in rows)
    return build


def labelled(label, column, rename=None):
    """``label,<column>`` from a CSV with those columns (an sktime file's unnamed index, a
    ``1970 Q1`` quarter)."""
    def build(text):
        rows = list(csv.DictReader(io.StringIO(text)))
        return f"time,{rename or column}\n" + "".join(
            f"{r[label].replace(' Q', '-Q')},{r[column]}\n" for r in rows)
    return build


MACRO = "statsmodels/datasets/macrodata/macrodata.csv"
USCHANGE = "sktime/datasets/data/Uschange/Uschange.csv"
SERIES = {
    **{f"us-{c}": ("statsmodels", MACRO, quarterly("year", "quarter", c), [])
       for c in ("realinv", "cpi", "unemp", "tbilrate")},
    **{f"de-{c.lower()}": ("statsmodels", "statsmodels/datasets/interest_inflation/E6.csv",
                           quarterly("year", "quarter", c), SHORT) for c in ("Dp", "R")},
    "lynx": ("sktime", "sktime/datasets/data/Lynx/Lynx.csv", labelled("", "0", "lynx"), SHORT),
    **{f"uschange-{c.lower()}": ("sktime", USCHANGE, labelled("Quarter", c), [])
       for c in ("Consumption", "Production", "Unemployment")},
}


def source_text(source, member, folder):
    """The text of ``member`` in the installed statsmodels or in the sktime wheel."""
    if source == "statsmodels":
        import statsmodels
        return (Path(statsmodels.__file__).parent.parent / member).read_text(encoding="utf-8")
    wheels = sorted(folder.glob("sktime-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary", ":all:", "-d", str(folder), SKTIME], check=True)
        wheels = sorted(folder.glob("sktime-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        return z.read(member).decode("utf-8")


def series_path(name):
    """The CSV file of an extra series, written on first use."""
    folder = cache_dir() / "bench-series"
    path = folder / f"{name}.csv"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        source, member, build, _ = SERIES[name]
        path.write_text(build(source_text(source, member, folder)), encoding="utf-8")
    return path


def train_args(name, steps):
    """The ``rnnkit train`` arguments of an extra series (its CSV is written when first run)."""
    return ["forecast", "--data", f"@{name}", "--max-steps", steps, *SERIES[name][3]]


def resolve_args(args):
    """``@name`` in train arguments -> the series' CSV file, written if not there yet."""
    return [str(series_path(a[1:])) if a.startswith("@") and a[1:] in SERIES else a for a in args]
