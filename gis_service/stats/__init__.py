"""Resolution statistics: how many cases each unit closed, on time, reworked, rated."""
