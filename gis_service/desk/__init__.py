"""The command desk (issue 15): the front door at ``/``, the case queue at ``/desk/`` and
its API (``/api/v1/desk/…``), and the navigation bar the desk and map pages share."""
