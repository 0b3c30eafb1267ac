"""Pipelines: the steps that join intake, store, renderers and delivery, called by entry points."""
