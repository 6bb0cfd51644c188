"""Notifications: the transactional outbox, the sender, the inbox and the channels."""
