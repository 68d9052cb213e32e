"""Discord-facing feature modules, loaded as discord.py extensions."""
