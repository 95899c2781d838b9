"""Serving: the service (one entry point for the page, the CLI and the API), the model registry
(cards, shared lazy loading, time-outs, batching), takes and the allocator. Imports models, audio
and core."""
