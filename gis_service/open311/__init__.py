"""Open311 GeoReport v2 at /open311/v2/: services are our sub-categories, service requests
are our cases, client apps authenticate with an api_key (keys.py) that may be scoped to a
unit. Everything is answered in JSON or XML, errors included (formats.py)."""
