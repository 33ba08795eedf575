"""Mluv.Me: a Telegram bot for practising spoken Czech with Honzík."""

__version__ = "1.0.0"
SERVICE_NAME = "mluv-me"
