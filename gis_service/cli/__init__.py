"""The ``gis-service`` console script: the same functions the API calls."""
