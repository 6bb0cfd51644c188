"""Grid walks (巡查): tracks, visited buildings, due lists and figures (issue 18)."""
