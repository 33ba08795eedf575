"""Receiving updates: the polling loop and its inbox, the webhook endpoint, per-chat order."""
