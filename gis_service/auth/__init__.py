"""People, roles and jurisdiction: who may see and do what, enforced in every query."""
