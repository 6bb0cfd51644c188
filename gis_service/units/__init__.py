"""The four-level grid (district → subdistrict → community → grid → building)."""
