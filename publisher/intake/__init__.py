"""Intake: reading items from files and other feeds, and cleaning them at the door."""
