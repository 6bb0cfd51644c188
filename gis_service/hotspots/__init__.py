"""Where problems come back: recurring spots (recurrence.py) and Gi* hotspots (gistar.py)."""
