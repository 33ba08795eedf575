"""HTTP endpoints served next to the bot on PORT."""
