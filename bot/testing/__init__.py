"""Test doubles that speak real network protocols (fake Discord, fake image providers)."""
