"""First names by country from Jörg Michael's ``nam_dict.txt`` (shipped in the gender-guesser
wheel), as ``country<TAB>name`` pairs for the conditional (1→N) generator.

The file is fixed-column: the sex code, the name from column 4, and from column 31 one hexadecimal
frequency digit (1 rare ... D very common, blank: absent) per country in the order of
:data:`COUNTRIES`. A ``+`` in column 30 marks a duplicate spelled with expanded umlauts (skipped,
as the file's header advises); a ``+`` inside a name stands for "-", " " or nothing (kept as "-").
"""
from rnnkit.data.text import DataError, numbered_lines, read_text

COUNTRIES = [
    "Great Britain", "Ireland", "USA", "Italy", "Malta", "Portugal", "Spain", "France", "Belgium",
    "Luxembourg", "Netherlands", "East Frisia", "Germany", "Austria", "Switzerland", "Iceland",
    "Denmark", "Norway", "Sweden", "Finland", "Estonia", "Latvia", "Lithuania", "Poland",
    "Czech Republic", "Slovakia", "Hungary", "Romania", "Bulgaria", "Bosnia and Herzegovina",
    "Croatia", "Kosovo", "Macedonia", "Montenegro", "Serbia", "Slovenia", "Albania", "Greece",
    "Russia", "Belarus", "Moldova", "Ukraine", "Armenia", "Azerbaijan", "Georgia",
    "Central Asia", "Turkey", "Arabia/Persia", "Israel", "China", "India/Sri Lanka", "Japan",
    "Korea", "Vietnam", "other countries",
]
MIN_FREQUENCY = 1   # keep a (country, name) pair when the name's frequency digit there is >= this


def parse_line(line):
    """(name, {country: frequency}) for one name line, or None for comments, equivalences and
    the expanded-umlaut duplicates; a frequency that is not a hexadecimal digit raises
    ValueError."""
    line = line.rstrip("\r\n")
    if not line or line[0] in "#=" or len(line) < 31 or line[29] == "+":
        return None
    name = line[3:29].strip().replace("+", "-")
    freqs = {}
    for country, digit in zip(COUNTRIES, line[30:30 + len(COUNTRIES)]):
        if digit.strip():
            freqs[country] = int(digit, 16)
    return (name, freqs) if name else None


def name_pairs(files):
    """Builder for the ``names`` data set: ``country<TAB>name`` lines (TSV bytes), one per
    country where the name's frequency is at least :data:`MIN_FREQUENCY`."""
    out = []
    for f in sorted(files):
        for n, line in numbered_lines(read_text(f)):
            try:
                parsed = parse_line(line)
            except ValueError:
                raise DataError(f"{f}:{n}: expected a hexadecimal frequency digit (1-D) or a "
                                f"blank per country from column 31, got {line[30:85]!r}") from None
            if parsed is None:
                continue
            name, freqs = parsed
            out += [f"{c}\t{name}\n" for c, v in freqs.items() if v >= MIN_FREQUENCY]
    return "".join(out).encode("utf-8")
