"""The walks' word list and every number their rules use: the one home of each.

Why each number (docs/walks.md gives the longer reasoning):

* A phone's GPS fix outdoors is good to 5–15 m (its reported ``accuracy_m`` is the radius
  of 68 % confidence, W3C Geolocation API §GeolocationCoordinates); beside tall buildings
  it is worse. A fix reporting worse than :data:`ACCURACY_MAX_M` cannot tell one
  building's entrance from its neighbour's, so it is dropped.
* People walk at 1.2–1.5 m/s and hurry at 2–2.5 m/s; :data:`SPEED_MAX_MPS` (4 m/s, a
  jog) is beyond any walk, so a step faster than that — after allowing both fixes their
  stated error — is not a walk but a bad fix (or a ride, which is not a walk either).
* A *jump* is an out-and-back spike: one fix more than :data:`JUMP_M` from both its
  neighbours while the neighbours lie within half that distance of each other. Phones
  produce these when they switch to a Wi-Fi or cell-tower position for one fix.
* A *stop*: consecutive fixes within :data:`STOP_RADIUS_M` of the first for at least
  :data:`STOP_MIN_S` collapse to the one fix nearest their centre. Standing at a door for
  ten minutes makes the fixes wander by 5–20 m; left in, that wander adds hundreds of
  metres of "walking" and can brush a neighbour's entrance.
* Matching: a kept fix is moved to the nearest point of the walking network
  (``walk_edge``) when that lies within :data:`SNAP_MAX_M` (two standard phone errors);
  farther away (a courtyard without mapped paths) it stays where it was measured.
* Visited: the track passes within :data:`VISIT_RADIUS_M` of the building's entrance
  area — its footprint, and its door on the network: the point of ``walk_edge`` nearest
  the footprint, when within :data:`ENTRANCE_MAX_M` of it (walks.sql, ``walk_visits``).
"""

from __future__ import annotations

from enum import StrEnum


class WalkStatus(StrEnum):
    """A walk (巡查) runs from its start until its end; nothing is recorded after."""

    running = "running"
    ended = "ended"


WALK_STATUSES: tuple[WalkStatus, ...] = tuple(WalkStatus)
#: why a fix was left out of the cleaned track (walk_point.dropped)
DROP_REASONS: tuple[str, ...] = ("accuracy", "speed", "jump", "stop")

ACCURACY_MAX_M = 30.0
SPEED_MAX_MPS = 4.0
JUMP_M = 50.0
STOP_RADIUS_M = 20.0
STOP_MIN_S = 180.0
SNAP_MAX_M = 25.0
VISIT_RADIUS_M = 15.0
ENTRANCE_MAX_M = 60.0

#: a chunk (POST /api/v1/walks/{id}/points) holds at most this many fixes: at one fix
#: every 5 s, 500 are 40 minutes of walking — what a phone gathers in a long outage
CHUNK_MAX_POINTS = 500
#: a phone's clock may run this far ahead of the server's (a fix "from the future")
CLOCK_SKEW_S = 300.0
#: fixes may come from this far outside the district's bounding box (metres): a worker
#: on the boundary street, a fix's error
BOUNDS_MARGIN_M = 500.0

#: today's suggested route (walks/due_route.py, docs/walks.md "Today's suggested route"):
#: at most this many stops are ordered; the heuristic is quadratic per pass, and 60 doors
#: are a day's walk of a grid (at 30–90 s per door and 50–100 m between doors, 2–3 hours).
#: Above the cap the most overdue are taken (ties: the nearest by network first) and the
#: rest are counted in ``left_out`` (reason ``over_cap``); they come in as stops are passed.
ROUTE_MAX_STOPS = 60
#: the searches of the route's distance matrix reach this many times the straight span of
#: its points (plus the start's access leg): a detour around a block or a fenced compound
#: is within it; a door not reached inside it is left out as ``unreachable``
ROUTE_DETOUR = 3.0
#: …and never less than this (metres): small routes still get room to go round
ROUTE_MIN_SEARCH_M = 1000.0
