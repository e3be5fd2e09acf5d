"""The directory itself: intake, exports, adapters and sources, analyses of the view, history and snapshots."""
