"""The published catalogue as linked data: DCAT-AP 3 (rdflib graphs) and ODRL 2.2 policies (JSON-LD).

Pure builders over model instances and a base URL; the views (marketplace/apis/dcat.py) fetch the rows
through marketplace/selectors/catalogue_export.py and hand the results to the renderers here."""
