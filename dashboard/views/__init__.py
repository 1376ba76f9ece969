"""The dashboard's pages, one module each (rendering only; data comes from :mod:`dashboard.queries`)."""
