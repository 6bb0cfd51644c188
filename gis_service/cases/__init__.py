"""Cases found on grid walks, tracked from report to rating."""
